"""manage.py fit_fusion: fits a clinic's weights from its PHQ-9-labelled history."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from screening.ml.fusion.fusion import mood_to_phq9
from screening.models import (
    DailyMoodScore,
    DiaryEntry,
    FusionWeights,
    QuestionnaireResponse,
    TextAnalysis,
)
from screening.services import scoring


def _history(patient: Any, *, days: int, seed: int) -> None:
    """Per day: a PHQ-9, a diary whose text valence tracks it closely and a self-rating that is
    noise. A good fit must trust the text far more than the self-rating."""
    rng = random.Random(seed)
    start = timezone.localdate() - dt.timedelta(days=days * 8)
    for i in range(days):
        day = start + dt.timedelta(days=i * 8)  # 8 days apart: windows do not overlap
        truth = rng.uniform(-9, 4)
        common = {
            "patient": patient,
            "client_timestamp": timezone.now(),
            "timezone": "UTC",
            "local_date": day,
        }
        entry = DiaryEntry.objects.create(
            idempotency_key=uuid.uuid4(), text="x", self_rated_mood=rng.randint(0, 10), **common
        )
        TextAnalysis.objects.create(
            patient=patient,
            source="diary",
            diary_entry=entry,
            local_date=day,
            valence=max(-1, min(1, (truth + rng.gauss(0, 0.7)) / 10)),
            confidence=0.9,
            scores={"valence_probs": {"negative": 0.9, "neutral": 0.05, "positive": 0.05}},
        )
        QuestionnaireResponse.objects.create(
            idempotency_key=uuid.uuid4(),
            instrument="phq9",
            answers=[0] * 9,
            total=round(mood_to_phq9(truth)),
            severity="x",
            item9=0,
            **common,
        )


def test_fit_fusion_reports_and_writes(world: Any) -> None:
    _history(world.patient_a, days=14, seed=1)
    _history(world.patient_b, days=14, seed=2)
    out = StringIO()
    call_command("fit_fusion", world.clinic.slug, "--write", "--ridge", "0.1", stdout=out)
    text = out.getvalue()
    assert "examples: 28" in text and "fitted  MAE" in text and "CCC" in text
    stored = FusionWeights.objects.get(organisation=world.clinic)
    assert stored.weights["diary_text"] > stored.weights["self_rated"]
    assert stored.report["mae"] < stored.report["default_mae"]
    assert stored.ccc is not None and stored.ccc > 0.7
    # the clinic's daily moods now use them
    day = QuestionnaireResponse.objects.filter(patient=world.patient_a).first().local_date  # type: ignore[union-attr]
    row = scoring.daily_mood_recompute(patient=world.patient_a, local_date=day)
    assert row.weights_id == stored.pk
    assert isinstance(row, DailyMoodScore)


def test_fit_fusion_without_enough_data_fails(world: Any) -> None:
    _history(world.patient_a, days=3, seed=1)
    with pytest.raises(CommandError, match="Too little labelled data"):
        call_command("fit_fusion", world.clinic.slug, stdout=StringIO())
    assert not FusionWeights.objects.exists()


def test_fit_fusion_unknown_clinic(db: Any) -> None:
    with pytest.raises(CommandError):
        call_command("fit_fusion", "nope", stdout=StringIO())


def test_weights_stored_on_the_old_scale_do_not_dilute_the_phq9(world: Any) -> None:
    """Weights fitted before their sum was pinned to the defaults' sum summed to the number of
    fitted modalities (4 here, against 2.1 for their defaults): used as they are, a PHQ-9 would
    count for less than half of what it counts for with the defaults."""
    FusionWeights.objects.create(
        organisation=world.clinic,
        weights={"self_rated": 1.0, "diary_text": 1.0, "voice": 1.0, "face": 1.0},
        fusion_version="fusion-1.0",
        n_examples=40,
        mae=1.0,
    )
    config, fitted = scoring.fusion_config_for(patient=world.patient_a)
    assert fitted is not None
    fitted_sum = sum(config.weights[m] for m in ("self_rated", "diary_text", "voice", "face"))
    assert fitted_sum == pytest.approx(0.8 + 0.7 + 0.35 + 0.25)
    assert config.weights["phq9"] == 1.0 and config.weights["gad7"] == 0.4
