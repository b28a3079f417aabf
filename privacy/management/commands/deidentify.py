"""De-identify a JSONL file of texts: ``{"id": ..., "text": ...}`` per line in, redacted out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from privacy.storage import private_text_open


class Command(BaseCommand):
    help = (
        'Read JSONL lines {"id", "text"} and write {"id", "text" (redacted), "withheld", '
        '"spans": [{entity_type, start, end, score, placeholder}]}. Malformed lines are reported '
        "by line number (never their content), counted and skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--input", required=True, metavar="FILE.jsonl")
        parser.add_argument("--output", required=True, metavar="FILE.jsonl")
        parser.add_argument(
            "--no-progress", action="store_true", help="no progress bar (it goes to stderr)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from tqdm import tqdm

        from privacy.deid.engine import deidentify, get_analyzer

        source = Path(options["input"])
        target = Path(options["output"])
        if not source.is_file():
            raise CommandError(f"no such input file: {source}")
        if source.resolve() == target.resolve():
            raise CommandError("--output must differ from --input")
        with source.open("rb") as handle:
            total = sum(1 for _ in handle)

        get_analyzer()  # load the model before the bar starts
        done = bad = withheld = 0
        with (
            source.open("rb") as reader,
            private_text_open(target) as writer,
        ):
            lines = tqdm(
                enumerate(self._lines(reader), 1),
                total=total,
                unit="line",
                file=sys.stderr,
                disable=options["no_progress"],
                desc="deidentify",
            )
            for number, line in lines:
                if line is None or not line.strip():
                    if line is None:
                        bad += 1
                        self._report(number, "not valid UTF-8")
                    continue
                record, problem = self._parse(line)
                if record is None:
                    bad += 1
                    self._report(number, problem)
                    continue
                result = deidentify(record["text"], record_id=record["id"])
                withheld += int(result.withheld)
                out = {
                    "id": record["id"],
                    "text": result.text,
                    "withheld": result.withheld,
                    "spans": [span.as_dict() for span in result.spans],
                }
                writer.write(json.dumps(out, ensure_ascii=False) + "\n")
                done += 1
        summary = f"{done} de-identified, {bad} bad line(s) skipped, {withheld} withheld"
        self.stderr.write(summary)
        self.stdout.write(summary)

    @staticmethod
    def _lines(reader: Any) -> Any:
        """Decoded lines of the file; ``None`` for a line that is not valid UTF-8."""
        for raw in reader:
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                yield None

    @staticmethod
    def _parse(line: str) -> tuple[dict[str, Any] | None, str]:
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            return None, "not valid JSON"
        if not isinstance(record, dict):
            return None, "not a JSON object"
        if "id" not in record:
            return None, 'no "id"'
        if not isinstance(record.get("text"), str):
            return None, '"text" missing or not a string'
        if not isinstance(record["id"], str | int) or isinstance(record["id"], bool):
            return None, '"id" must be a string or an integer'
        return record, ""

    def _report(self, number: int, problem: str) -> None:
        self.stderr.write(f"line {number}: {problem}; skipped")
