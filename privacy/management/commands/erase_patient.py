"""Erase a patient by crypto-shredding (see privacy/erasure.py for exactly what happens)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import LegalHold, PermissionDenied, ValidationFailed
from privacy.erasure import erasure_actor, patient_erase
from screening.models import Patient, User


class Command(BaseCommand):
    help = (
        "Erase a patient: destroy their data keys, delete their inputs, files and derived data, "
        "disable their login. The reason is kept in the audit log: no clinical content."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patient", required=True, metavar="PSEUDONYM")
        parser.add_argument(
            "--reason",
            required=True,
            help="why (e.g. a request reference); kept in the audit log, never clinical content",
        )
        parser.add_argument(
            "--by", required=True, metavar="USERNAME", help="the staff user responsible"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        patient = Patient.objects.filter(pseudonym=options["patient"]).first()
        if patient is None:
            raise CommandError(f"No patient with pseudonym '{options['patient']}'.")
        user = User.objects.filter(username=options["by"]).first()
        if user is None:
            raise CommandError(f"No user '{options['by']}'.")
        try:
            actor = erasure_actor(user)
            result = patient_erase(actor=actor, patient=patient, reason=options["reason"])
        except (LegalHold, PermissionDenied) as exc:
            raise CommandError(exc.message) from None
        except ValidationFailed as exc:
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.extra["fields"].items())
            raise CommandError(problems) from None
        self.stdout.write(result.message)
