"""Re-wrap every data key under a new key-encryption key (KEK rotation); records are untouched.

Procedure (see README, "Keys, rotation and erasure"):

1. Add the new key to the keyring (``VIGIL_KEYRING`` or the keyring file), keeping the old one.
2. Set ``VIGIL_ACTIVE_KEK_ID`` to the new key id, so new data keys are wrapped under it; restart
   web and workers.
3. ``manage.py rotate_keys --to NEW`` (re-run it if it was interrupted: it continues).
   Staff TOTP secrets (sealed directly under the KEK) are re-sealed in the same run, and the keys
   of live FHIR bulk-export jobs re-wrapped.
4. When it says "KEK OLD is no longer used by any data key" (or ``--check-retirable OLD`` exits
   0), remove the old key from the keyring and restart.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from clinician_portal.fhir.services import export_kek_usage, export_keys_rewrap
from config.errors import KeyNotFound
from privacy.audit import Actor
from privacy.keys import keyring
from privacy.rotation import (
    kek_rotate,
    kek_rotation_pending,
    kek_usage,
    totp_kek_usage,
    totp_reseal_pending,
)
from screening.models import User


class Command(BaseCommand):
    help = (
        "Re-wrap every data key (current and retired, not destroyed) under the key-encryption key "
        "--to, in batches; resumable and idempotent. Never re-encrypts records."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", metavar="KID", help="the new KEK id (must be loaded)")
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--dry-run", action="store_true", help="count and test-unwrap, change nothing"
        )
        parser.add_argument(
            "--check-retirable",
            metavar="KID",
            help="only check whether any live data key still uses KID (exit 1 if one does)",
        )
        parser.add_argument("--by", metavar="USERNAME", help="the person running the rotation")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        target = options["to"]
        if not target:
            if not options["check_retirable"]:
                raise CommandError("Give --to KID (or --check-retirable KID).")
            self._check_retirable(options["check_retirable"])
            return
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            ring = keyring()
            ring.get(target)
        except KeyNotFound as exc:
            raise CommandError(
                f"{exc.message} Add it to VIGIL_KEYRING or the keyring file, restart, and run "
                "this again."
            ) from None
        if ring.active_id != target:
            self.stderr.write(
                f"Warning: the active KEK is '{ring.active_id}', so new data keys are still "
                f"wrapped under it. Set VIGIL_ACTIVE_KEK_ID={target} and restart the service."
            )
        actor = self._actor(options["by"])
        pending = kek_rotation_pending(to=target)
        totp_pending = totp_reseal_pending(to=target)
        verb = "Checking" if options["dry_run"] else "Re-wrapping"
        self.stdout.write(
            f"{verb} {pending} data keys under KEK '{target}' (batches of {options['batch_size']})."
        )
        self.stdout.write(f"{verb} {totp_pending} staff TOTP secrets under KEK '{target}'.")
        bar = tqdm(
            total=pending + totp_pending,
            unit="key",
            desc="re-wrap",
            file=sys.stderr,
            disable=options["no_progress"] or options["verbosity"] < 1,
        )
        try:
            report = kek_rotate(
                to=target,
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
                actor=actor,
                progress=bar.update,
            )
        finally:
            bar.close()

        exports_done, exports_failed = export_keys_rewrap(
            to=target, dry_run=options["dry_run"], actor=actor
        )
        for job_id in exports_failed:
            self.stderr.write(f"FAILED FHIR export job {job_id}: its key could not be unwrapped")
        self.stdout.write(
            f"{'Would re-wrap' if options['dry_run'] else 'Re-wrapped'} {exports_done} FHIR "
            f"export job keys; {len(exports_failed)} failed."
        )
        export_usage = export_kek_usage()
        for dek_id, reason in sorted(report.failed.items(), key=lambda item: str(item[0])):
            self.stderr.write(f"FAILED data key {dek_id} (under KEK {reason})")
        for user_id, reason in sorted(report.totp_failed.items()):
            self.stderr.write(f"FAILED staff TOTP secret of user {user_id} (under KEK {reason})")
        if report.dry_run:
            self.stdout.write(
                f"Dry run: {report.rewrapped} data keys would be re-wrapped, "
                f"{len(report.failed)} would fail; {report.totp_resealed} staff TOTP secrets "
                f"would be re-sealed, {len(report.totp_failed)} would fail. Nothing was changed."
            )
        else:
            self.stdout.write(
                f"Re-wrapped {report.rewrapped} data keys in {report.batches} batches; "
                f"{len(report.failed)} failed to unwrap; "
                f"{report.changed_meanwhile} changed meanwhile."
            )
            self.stdout.write(
                f"Re-sealed {report.totp_resealed} staff TOTP secrets in {report.totp_batches} "
                f"batches; {len(report.totp_failed)} failed to open; "
                f"{report.totp_changed_meanwhile} changed meanwhile."
            )
        usage = ", ".join(f"{kid}: {n}" for kid, n in report.usage.items()) or "none"
        self.stdout.write(f"Live data keys by KEK: {usage}.")
        if not report.dry_run:
            for kid, n in report.usage.items():
                if kid != target and n:
                    self.stdout.write(f"KEK {kid} is still used by {n} data keys: keep it loaded.")
            for kid, n in report.totp_usage.items():
                if kid != target and n:
                    self.stdout.write(
                        f"KEK {kid} is still used by {n} staff TOTP secrets: keep it loaded."
                    )
            for kid, n in export_usage.items():
                if kid != target and n:
                    self.stdout.write(
                        f"KEK {kid} is still used by {n} FHIR export jobs: keep it loaded."
                    )
            for kid in report.retirable:
                if export_usage.get(kid):
                    continue
                self.stdout.write(
                    f"KEK {kid} is no longer used by any data key or TOTP secret: it can be "
                    "removed from the keyring."
                )
        if report.failed or report.totp_failed or exports_failed:
            problems = []
            if exports_failed:
                problems.append(f"{len(exports_failed)} export job keys could not be unwrapped")
            if report.failed:
                problems.append(f"{len(report.failed)} data keys could not be unwrapped")
            if report.totp_failed:
                problems.append(f"{len(report.totp_failed)} staff TOTP secrets could not be opened")
            raise CommandError(
                f"{' and '.join(problems)} (listed above); they are still under their old KEK. "
                "Do not remove that KEK."
            )
        if options["check_retirable"]:
            self._check_retirable(options["check_retirable"])

    def _check_retirable(self, kid: str) -> None:
        n = kek_usage().get(kid, 0)
        if n:
            raise CommandError(f"KEK {kid} is still used by {n} data keys: it cannot be retired.")
        totp = totp_kek_usage().get(kid, 0)
        if totp:
            raise CommandError(
                f"KEK {kid} is still used by {totp} staff TOTP secrets: it cannot be retired."
            )
        exports = export_kek_usage().get(kid, 0)
        if exports:
            raise CommandError(
                f"KEK {kid} is still used by {exports} FHIR export jobs: it cannot be retired."
            )
        self.stdout.write(
            f"KEK {kid} is no longer used by any data key or TOTP secret: it can be retired."
        )

    def _actor(self, username: str | None) -> Actor:
        if not username:
            return Actor.system()
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user '{username}'.")
        return Actor(user_id=user.pk, role=user.role)
