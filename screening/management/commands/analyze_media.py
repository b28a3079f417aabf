"""Run the media pipeline on local files: ``manage.py analyze_media PATH... [--json]``.

The same :func:`screening.ml.media.pipeline.analyze_media` the workers run, on files the operator
has on disk (not patient uploads from storage). One JSON object per file on stdout (``--json``:
one line each; otherwise indented); a tqdm progress bar on stderr. A file that cannot be analysed
prints its named failure (``{"file", "error": {"reason", "message"}}``) and the command goes on;
the exit status is 1 when any file failed. Needs no database.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from screening.ml.artifacts import ModelIntegrityError
from screening.ml.media.pipeline import PipelineRejected, analyze_media
from screening.services.media_analysis import media_config_from_settings


class Command(BaseCommand):
    help = "Analyse local video/audio files (voice, face, transcript) and print the features."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--json", action="store_true", help="one compact JSON object per line")
        parser.add_argument("--backend", choices=("torch", "librosa"), default=None)
        parser.add_argument("--no-face", action="store_true", help="skip face analysis")
        parser.add_argument("--no-voice", action="store_true", help="skip prosody and transcript")
        parser.add_argument("--no-transcript", action="store_true", help="skip the transcript")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        from tqdm import tqdm

        overrides: dict[str, Any] = {}
        if options["backend"]:
            overrides["prosody_backend"] = options["backend"]
        if options["no_transcript"]:
            overrides["transcribe"] = False
        config = media_config_from_settings(**overrides)
        consent = {"voice", "face", "text"}
        if options["no_face"]:
            consent.discard("face")
        if options["no_voice"]:
            consent.discard("voice")
        paths: list[Path] = options["paths"]
        failed = 0
        bar = tqdm(
            total=100 * len(paths),
            file=sys.stderr,
            disable=options["no_progress"],
            unit="%",
            leave=False,
        )
        try:
            for index, path in enumerate(paths):
                base = 100 * index

                def on_stage(
                    stage: str, percent: int, base: int = base, name: str = path.name
                ) -> None:
                    bar.set_description(f"{name}: {stage}")
                    bar.update(max(0, base + percent - bar.n))

                record: dict[str, Any] = {"file": str(path)}
                try:
                    result = analyze_media(path, config=config, consent=consent, on_stage=on_stage)
                    record.update(result.as_dict())
                except PipelineRejected as exc:
                    failed += 1
                    record["error"] = {"reason": exc.reason, "message": exc.message}
                except FileNotFoundError:
                    failed += 1
                    record["error"] = {"reason": "not_found", "message": "No such file."}
                except ModelIntegrityError as exc:
                    raise CommandError(str(exc)) from None
                bar.update(max(0, base + 100 - bar.n))
                self._print(record, compact=options["json"])
        finally:
            bar.close()
        if failed:
            raise CommandError(f"{failed} of {len(paths)} file(s) could not be analysed")

    def _print(self, record: dict[str, Any], *, compact: bool) -> None:
        text = (
            json.dumps(record, separators=(",", ":")) if compact else json.dumps(record, indent=2)
        )
        self.stdout.write(text)
        self.stdout.flush()
