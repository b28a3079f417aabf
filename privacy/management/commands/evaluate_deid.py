"""Print precision, recall and F2 per entity type of the de-identifier on the labelled sets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Evaluate privacy.deid on labelled JSONL sets (default: the committed eval and templated "
        "sets): span-level precision, recall and F2 per entity type (a span counts when 50%% of "
        "its characters are covered by a compatible span), and the share of no-PHI sentences "
        "left unchanged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--set",
            dest="sets",
            action="append",
            metavar="FILE",
            help="a JSONL set to evaluate (repeatable; default: both committed sets)",
        )
        parser.add_argument(
            "--show-errors",
            action="store_true",
            help="also list every missed and spurious span (the sets are synthetic text)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        from privacy.deid.engine import get_analyzer
        from privacy.deid.evaluation import DEFAULT_SETS, evaluate, format_report, load_set

        paths = [Path(p) for p in (options["sets"] or DEFAULT_SETS)]
        for path in paths:
            if not path.is_file():
                raise CommandError(f"no such file: {path}")
        get_analyzer()
        self.stderr.write(f"engine loaded in {time.perf_counter() - started:.1f}s")
        for path in paths:
            examples = load_set(path)
            started = time.perf_counter()
            report = evaluate(examples, name=path.name)
            elapsed = time.perf_counter() - started
            self.stdout.write(format_report(report))
            self.stdout.write(
                f"time: {elapsed:.2f}s for {len(examples)} sentences "
                f"({1000 * elapsed / max(1, len(examples)):.1f} ms each)\n"
            )
            if options["show_errors"]:
                for miss in report.misses:
                    self.stdout.write(
                        f"  {miss.kind:<8} {miss.example_id:<8} {miss.entity_type:<22} "
                        f"{miss.surface!r}"
                    )
                self.stdout.write("")
