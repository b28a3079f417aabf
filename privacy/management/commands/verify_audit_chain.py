"""Verify the audit log's hash chain and its anchors; exit non-zero at the first break."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from privacy.chain_verify import DEFAULT_BATCH_SIZE, audit_chain_verify


class Command(BaseCommand):
    help = (
        "Check every access event in seq order (hash, seq gaps, prev_hash links), the chain head "
        "and every anchor (database rows and the VIGIL_AUDIT_ANCHOR_FILE file). Prints one OK "
        "line, or the first break (kind, seq, event id) and exits with status 1."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help="Events read per query (memory stays constant whatever the log's size).",
        )
        parser.add_argument(
            "--anchor-file",
            type=Path,
            default=None,
            help="Anchor file to check instead of VIGIL_AUDIT_ANCHOR_FILE.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        result = audit_chain_verify(
            batch_size=options["batch_size"], anchor_file=options["anchor_file"]
        )
        if not result.ok:
            raise CommandError(result.summary(), returncode=1)
        self.stdout.write(result.summary())
