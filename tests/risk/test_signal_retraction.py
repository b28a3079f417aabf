"""A consent withdrawal with deletion takes the derived signals out of risk's per-day state:
deleted video distress or a deleted face drop must not confirm new crisis language, and deleted
crisis language must not be confirmed by a new signal (risk.services.day_signals_retract)."""

from __future__ import annotations

import datetime as dt

import pytest

from risk import intake
from risk.models import Alert, AlertEvidence, PatientDaySignals
from risk.rules.engine import BaselineDrop, CrisisLanguage, MediaDistress

DAY = dt.date(2026, 11, 20)


def distress(rw, day: dt.date = DAY) -> None:
    intake.signal_received(
        patient=rw.patient,
        event=MediaDistress(local_date=day, video_id="video-1", score=0.9, model_version="t"),
    )
    intake.signal_received(
        patient=rw.patient,
        event=BaselineDrop(
            local_date=day, signal="face", z=-3.0, source_ref="video-1", model_version="t"
        ),
    )


def crisis(rw, source: str = "text", ref: str = "entry-1", day: dt.date = DAY) -> None:
    intake.signal_received(
        patient=rw.patient,
        event=CrisisLanguage(
            local_date=day,
            category="passive_ideation",
            source=source,
            source_ref=ref,
            span_ids=(f"{ref}:0",),
            model_version="t",
        ),
    )


def rules_fired(rw) -> set[str]:
    """Every rule that fired for the patient (a firing may join an open alert as evidence)."""
    return set(AlertEvidence.objects.filter(patient=rw.patient).values_list("rule_id", flat=True))


def test_without_retraction_distress_confirms_crisis_language(rw):
    """The control: the same signals, nothing withdrawn, give the orange alert."""
    distress(rw)
    crisis(rw)
    assert "crisis_double_verified" in rules_fired(rw)


@pytest.mark.parametrize("next_day", [False, True], ids=["same-day", "adjacent-day"])
def test_deleted_video_signals_confirm_nothing(rw, next_day):
    distress(rw)
    changed = intake.derived_signals_retracted(
        patient=rw.patient, signals=["media_distress", "face", "voice", "transcript"]
    )
    assert changed == 1
    assert PatientDaySignals.objects.get(patient=rw.patient, local_date=DAY).corroboration == []
    crisis(rw, day=DAY + dt.timedelta(days=1) if next_day else DAY)
    # yellow for review (the face drop had fired its own yellow): no orange from deleted data
    assert rules_fired(rw) == {"baseline_drop", "crisis_single"}
    assert not Alert.objects.filter(patient=rw.patient, tier="orange").exists()


def test_deleted_crisis_language_is_not_confirmed_later(rw):
    crisis(rw, source="text", ref="entry-1")
    crisis(rw, source="transcript", ref="video-9")
    intake.derived_signals_retracted(patient=rw.patient, signals=["text"])
    (left,) = PatientDaySignals.objects.get(patient=rw.patient, local_date=DAY).crisis
    assert left["source_id"] == "transcript:video-9"  # only what was deleted goes
    intake.derived_signals_retracted(patient=rw.patient, signals=["transcript"])
    distress(rw)
    assert "crisis_double_verified" not in rules_fired(rw)
    assert not Alert.objects.filter(patient=rw.patient, tier="orange").exists()


def test_retraction_is_idempotent_and_keeps_what_it_was_not_asked_about(rw):
    distress(rw)
    crisis(rw)
    before = Alert.objects.count()
    assert intake.derived_signals_retracted(patient=rw.patient, signals=["face"]) == 1
    assert intake.derived_signals_retracted(patient=rw.patient, signals=["face"]) == 0
    row = PatientDaySignals.objects.get(patient=rw.patient, local_date=DAY)
    assert [r["kind"] for r in row.corroboration] == ["media_distress"]
    assert len(row.crisis) == 1
    assert Alert.objects.count() == before  # alerts already raised stay


def test_an_unknown_signal_name_is_refused(rw):
    with pytest.raises(ValueError):
        intake.derived_signals_retracted(patient=rw.patient, signals=["mood"])
