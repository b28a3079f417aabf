"""Fit a clinic's fusion weights on its own labelled history and report MAE and Lin's CCC.

Labels are PHQ-9 totals (mapped to the mood scale) of patients who have other modality scores
within ``--window-days`` of the questionnaire. ``--write`` stores the weights (``FusionWeights``);
the clinic's daily moods use the newest stored weights. Too little data: says so, exits non-zero.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from screening.ml.fusion.fusion import DEFAULT_WEIGHTS, InsufficientData, fit_weights
from screening.models import Organisation
from screening.services.scoring import fusion_fit_rows, fusion_weights_store


class Command(BaseCommand):
    help = "Fit the daily-mood fusion weights of a clinic from its PHQ-9-labelled history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organisation", help="The clinic's slug.")
        parser.add_argument("--window-days", type=int, default=3)
        parser.add_argument("--ridge", type=float, default=1.0)
        parser.add_argument("--min-examples", type=int, default=20)
        parser.add_argument("--write", action="store_true", help="Store the fitted weights.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        organisation = Organisation.objects.filter(slug=options["organisation"]).first()
        if organisation is None:
            raise CommandError("No clinic with that slug.")
        rows = fusion_fit_rows(organisation_id=organisation.pk, window_days=options["window_days"])
        try:
            result = fit_weights(rows, ridge=options["ridge"], min_rows=options["min_examples"])
        except InsufficientData as exc:
            raise CommandError(f"Too little labelled data to fit weights: {exc}.") from None
        report = result.as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
        else:
            self.stdout.write(f"examples: {result.n}  modalities: {', '.join(result.modalities)}")
            self.stdout.write(f"fitted  MAE {result.mae:.3f}  CCC {result.ccc:.3f}")
            self.stdout.write(
                f"default MAE {result.baseline_mae:.3f}  CCC {result.baseline_ccc:.3f}"
            )
            for name, weight in sorted(result.weights.items()):
                self.stdout.write(
                    f"  {name:16s} {weight:.3f} (default {DEFAULT_WEIGHTS[name]:.2f})"
                )
        if options["write"]:
            stored = fusion_weights_store(
                organisation_id=organisation.pk,
                result=result,
                ridge=options["ridge"],
                window_days=options["window_days"],
            )
            self.stdout.write(f"stored as FusionWeights {stored.pk}")
