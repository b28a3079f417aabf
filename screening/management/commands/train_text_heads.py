"""Train the text heads (valence, emotions, suicide risk) on ../shared/datasets and write them.

Frozen all-MiniLM-L6-v2 embeddings (cached under ``var/text-cache``) + small linear heads exported
as numpy weights to ``screening/ml/text/heads/``. Seeded and reproducible; needs no database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from screening.ml.text import datasets as ds
from screening.ml.text.heads import HEADS_DIR
from screening.ml.text.training import ADAPTER_FILE, ADAPTER_RECIPE, TrainConfig, train_all


class Command(BaseCommand):
    help = "Train the text heads on the shared development datasets (no DB needed)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--data-dir", type=Path, default=None)
        parser.add_argument("--cache-dir", type=Path, default=None)
        parser.add_argument("--heads-dir", type=Path, default=HEADS_DIR)
        parser.add_argument(
            "--only", nargs="+", choices=["valence", "emotions", "risk"], default=None
        )
        parser.add_argument("--subsample", type=int, default=TrainConfig.goemotions_train_subsample)
        parser.add_argument(
            "--quantized",
            action="store_true",
            help="fit the heads on the int8 encoder's embeddings (written as <head>-int8.*)",
        )
        parser.add_argument(
            "--adapter",
            action="store_true",
            help="fine-tune low-rank adapters on the encoder (per fold for the risk metrics, "
            f"then on all users, written as {ADAPTER_FILE}) and fit every head on the adapted "
            "embeddings; hours on 2 CPU cores, minutes on a GPU",
        )
        parser.add_argument(
            "--treatment-weight",
            type=float,
            default=None,
            help="with --adapter: the total weight of the GoEmotions rows that talk of treatment "
            "(supportive examples for the adapters), relative to the passages'; default: the "
            f"recipe's ({ADAPTER_RECIPE['treatment_weight']})",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        data_dir = opts["data_dir"] or ds.default_data_dir()
        try:
            ds.require(data_dir)
        except ds.DatasetMissing as exc:
            raise CommandError(str(exc)) from exc
        if opts["treatment_weight"] is not None and not opts["adapter"]:
            raise CommandError("--treatment-weight needs --adapter")
        adapter = dict(ADAPTER_RECIPE) if opts["adapter"] else None
        if adapter is not None and opts["treatment_weight"] is not None:
            adapter["treatment_weight"] = opts["treatment_weight"]
        try:
            cfg = TrainConfig(
                goemotions_train_subsample=opts["subsample"],
                quantized=opts["quantized"],
                adapter=adapter,
            )
        except ValueError as exc:  # the recipe is checked in one place, TrainConfig
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"config hash {cfg.config_hash()}")
        results = train_all(
            cfg=cfg,
            data_dir=data_dir,
            cache_dir=opts["cache_dir"] or ds.default_cache_dir(),
            heads_dir=opts["heads_dir"],
            log=self.stdout.write,
            only=opts["only"] or ("valence", "emotions", "risk"),
        )
        self.stdout.write(json.dumps(results, indent=2))
        self.stdout.write(self.style.SUCCESS(f"heads written to {opts['heads_dir']}"))
