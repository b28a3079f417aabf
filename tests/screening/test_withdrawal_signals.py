"""Withdrawing face or voice consent with deletion takes the video's distress and baseline drops
out of risk's per-day state (risk.intake.derived_signals_retracted): deleted data confirms no new
crisis language. Withdrawing text consent with deletion does the same for the crisis language."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from privacy.choices import ConsentScope
from privacy.consent import consent_change
from risk.intake import signal_received
from risk.models import Alert, PatientDaySignals
from risk.rules.engine import BaselineDrop, CrisisLanguage, MediaDistress
from tests.screening import test_scoring as base
from tests.screening.test_scoring import FakeScorer, patient_actor, write

scorer = base.scorer  # fixtures
eager = base.eager


def _video_signals(patient: Any, day: dt.date) -> None:
    signal_received(
        patient=patient,
        event=MediaDistress(local_date=day, video_id="video-1", score=0.9, model_version="t"),
    )
    signal_received(
        patient=patient,
        event=BaselineDrop(
            local_date=day, signal="face", z=-3.0, source_ref="video-1", model_version="t"
        ),
    )


def _crisis(patient: Any, day: dt.date) -> None:
    signal_received(
        patient=patient,
        event=CrisisLanguage(
            local_date=day,
            category="passive_ideation",
            source="text",
            source_ref="entry-1",
            span_ids=("a:0",),
            model_version="t",
        ),
    )


def _withdraw(patient: Any, scope: str) -> None:
    consent_change(
        actor=patient_actor(patient),
        patient=patient,
        scope=scope,
        granted=False,
        delete_derived=True,
    )


def test_withdrawn_face_and_voice_confirm_no_new_crisis_language(world: Any) -> None:
    patient, day = world.patient_a, timezone.localdate()
    _video_signals(patient, day)
    _withdraw(patient, ConsentScope.FACE_ANALYSIS)
    _withdraw(patient, ConsentScope.VOICE_ANALYSIS)
    assert PatientDaySignals.objects.get(patient=patient, local_date=day).corroboration == []
    _crisis(patient, day)
    assert not Alert.objects.filter(patient=patient, tier="orange").exists()


def test_withdrawing_the_face_alone_keeps_the_voice_drop(world: Any) -> None:
    patient, day = world.patient_a, timezone.localdate()
    _video_signals(patient, day)
    signal_received(
        patient=patient,
        event=BaselineDrop(
            local_date=day, signal="voice", z=-3.0, source_ref="video-1", model_version="t"
        ),
    )
    _withdraw(patient, ConsentScope.FACE_ANALYSIS)
    row = PatientDaySignals.objects.get(patient=patient, local_date=day)
    assert [(r["kind"], r["code"]) for r in row.corroboration] == [("baseline_drop", "voice")]


def test_withdrawn_text_leaves_no_crisis_language_to_confirm(world: Any) -> None:
    patient, day = world.patient_a, timezone.localdate()
    _crisis(patient, day)
    _withdraw(patient, ConsentScope.TEXT_ANALYSIS)
    assert PatientDaySignals.objects.get(patient=patient, local_date=day).crisis == []
    _video_signals(patient, day)
    assert not Alert.objects.filter(patient=patient, tier="orange").exists()


# --- the mood baseline's floor (screening.ml.fusion.baseline.robust_z_mood) ----------------------
def test_one_rating_step_after_a_flat_week_raises_no_baseline_drop(
    world: Any, scorer: FakeScorer, eager: list, django_capture_on_commit_callbacks: Any
) -> None:
    """A patient who self-rates 5 every day, then 4: before the floor this was a -6 SD mood drop
    and a yellow ``baseline_drop`` alert; a real fall (5 every day, then 1) still is a drop."""
    now = timezone.now()
    for days_ago in range(7, 0, -1):
        with django_capture_on_commit_callbacks(execute=True):
            write(world, "ok", mood=5, when=now - dt.timedelta(days=days_ago))
    with django_capture_on_commit_callbacks(execute=True):
        today = write(world, "ok", mood=4, when=now).local_date  # the patient's local day
    row = PatientDaySignals.objects.get(patient=world.patient_a, local_date=today)
    assert row.mood is not None  # the day has its mood, and it is too small a move to count:
    assert all(r["score"] > -2.0 for r in row.corroboration if r["code"] == "mood")  # no support
    assert not Alert.objects.filter(patient=world.patient_a, rule_id="baseline_drop").exists()
    with django_capture_on_commit_callbacks(execute=True):
        write(world, "ok", mood=1, when=now + dt.timedelta(minutes=1))
    row.refresh_from_db()
    (drop,) = [r for r in row.corroboration if r["code"] == "mood"]
    assert drop["score"] <= -2.5
    assert Alert.objects.filter(patient=world.patient_a, rule_id="baseline_drop").exists()
