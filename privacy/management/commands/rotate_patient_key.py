"""Give one patient a new data key and re-encrypt all their data under it (suspected key leak)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import KeyNotFound
from privacy.audit import Actor
from privacy.rotation import patient_data_key_rotate
from screening.models import Patient, User


class Command(BaseCommand):
    help = (
        "Create a new data key for the patient, re-encrypt every encrypted field of their rows "
        "and every stored file under it, then destroy the old key. Resumable: run it again after "
        "an interruption."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patient", required=True, metavar="PSEUDONYM")
        parser.add_argument("--by", metavar="USERNAME", help="the person running the rotation")

    def handle(self, *args: Any, **options: Any) -> None:
        patient = Patient.objects.filter(pseudonym=options["patient"]).first()
        if patient is None:
            raise CommandError(f"No patient with pseudonym '{options['patient']}'.")
        actor = Actor.system()
        if options["by"]:
            user = User.objects.filter(username=options["by"], is_active=True).first()
            if user is None:
                raise CommandError(f"No active user '{options['by']}'.")
            actor = Actor(user_id=user.pk, role=user.role)
        try:
            report = patient_data_key_rotate(actor=actor, patient=patient)
        except KeyNotFound as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Patient {patient.pseudonym}: new data key {report.new_key_id}"
            f"{' (resumed an interrupted rotation)' if report.resumed else ''}."
        )
        self.stdout.write(
            f"Re-encrypted {report.records_reencrypted} records "
            f"({report.values_reencrypted} values) and {report.files_reencrypted} stored files; "
            f"{report.records_skipped} records and {report.files_skipped} files were already "
            "current."
        )
        for failure in report.failures:
            self.stderr.write(f"FAILED {failure}")
        for dek_id in report.destroyed_key_ids:
            self.stdout.write(f"Destroyed old data key {dek_id}.")
        if report.retired_key_ids:
            self.stderr.write(
                f"{len(report.retired_key_ids)} old data keys are still used by "
                f"{report.references} values or files and were kept (retired)."
            )
        if not report.complete:
            raise CommandError(
                "The rotation is not complete: fix or remove what failed, then run this again."
            )
