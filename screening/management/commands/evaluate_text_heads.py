"""Reprint the text heads' dev metrics, recomputed from the committed head files.

Needs the development data in ../shared/datasets (a fresh clone has none): without it the command
says so and exits cleanly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from screening.ml.text import datasets as ds
from screening.ml.text.heads import HEADS_DIR
from screening.ml.text.training import evaluate_all


class Command(BaseCommand):
    help = "Recompute the text heads' metrics on the shared dev data (needs ../shared/datasets)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--data-dir", type=Path, default=None)
        parser.add_argument("--cache-dir", type=Path, default=None)
        parser.add_argument("--heads-dir", type=Path, default=HEADS_DIR)
        parser.add_argument(
            "--quantized",
            action="store_true",
            help="the int8 encoder and its own heads (<head>-int8.*) instead of fp32",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        data_dir = opts["data_dir"] or ds.default_data_dir()
        try:
            ds.require(data_dir)
        except ds.DatasetMissing as exc:
            self.stdout.write(self.style.WARNING(f"nothing to evaluate: {exc}"))
            return
        results = evaluate_all(
            data_dir=data_dir,
            cache_dir=opts["cache_dir"] or ds.default_cache_dir(),
            heads_dir=opts["heads_dir"],
            quantized=opts["quantized"],
            log=self.stdout.write,
        )
        self.stdout.write(json.dumps(results, indent=2))
