"""A day's mood that no longer stands leaves the risk engine's state: no NEW alert counts it.

Two ways a mood stops standing: the patient withdraws a consent with deletion of derived data
(the daily moods made with it are deleted), or the day is recomputed and now abstains (a consent
withdrawn without deletion, its input gone). Risk keeps its own copy of each day's mood
(``PatientDaySignals``), which ``low_mood_streak`` and ``crisis_double_verified`` read, so
screening retracts it there (``risk.intake.daily_mood_retracted``) and recomputes the days from
what remains. Alerts already raised are the clinical record and stay.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.utils import timezone

from privacy.audit import Actor
from privacy.choices import ConsentScope
from privacy.consent import consent_change
from privacy.erasure import patient_erase
from risk.intake import daily_mood_retracted
from risk.models import Alert, AlertEvidence, PatientDaySignals
from screening.models import DailyMoodScore
from screening.services import scoring
from tests.screening import test_scoring as base
from tests.screening.test_scoring import FakeScorer, patient_actor, write

scorer = base.scorer  # fixtures
eager = base.eager

LOW_TEXT = "An awful day, nothing helped at all."  # long enough to count fully (>= 20 chars)


def _day(days_ago: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days_ago)


def _streaks(patient: Any) -> list[Alert]:
    return list(Alert.objects.filter(patient=patient, rule_id="low_mood_streak"))


def _withdraw_text(patient: Any, *, delete_derived: bool) -> None:
    consent_change(
        actor=patient_actor(patient),
        patient=patient,
        scope=ConsentScope.TEXT_ANALYSIS,
        granted=False,
        delete_derived=delete_derived,
    )


def test_a_withdrawn_deleted_mood_leaves_risk_and_no_streak_counts_it(
    world: Any, scorer: FakeScorer, eager: list, django_capture_on_commit_callbacks: Any
) -> None:
    patient = world.patient_a
    with django_capture_on_commit_callbacks(execute=True):
        first = write(world, LOW_TEXT, when=_day(2))  # made from the text alone
    with django_capture_on_commit_callbacks(execute=True):
        write(world, "x", mood=0, when=_day(1))  # the patient's own rating: -10
    assert DailyMoodScore.objects.get(patient=patient, local_date=first.local_date).score <= -6  # type: ignore[operator]
    assert not _streaks(patient)
    eager.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _withdraw_text(patient, delete_derived=True)
    # risk forgot the day's mood at once; the day was recomputed from what remains (nothing)
    day = PatientDaySignals.objects.get(patient=patient, local_date=first.local_date)
    assert day.mood is None and day.mood_independent is None and day.mood_modalities == []
    recomputes = {tuple(args) for name, args, _ in eager if name == "daily_mood_recompute"}
    assert (str(patient.pk), first.local_date.isoformat()) in recomputes
    recomputed = DailyMoodScore.objects.get(patient=patient, local_date=first.local_date)
    assert recomputed.abstained and recomputed.score is None
    # a third low day: without the deleted day there is no streak of three
    with django_capture_on_commit_callbacks(execute=True):
        write(world, "x", mood=0, when=_day(0))
    assert not _streaks(patient)


def test_alerts_raised_before_stay_and_later_ones_do_not_count_the_deleted_day(
    world: Any, scorer: FakeScorer, eager: list, django_capture_on_commit_callbacks: Any
) -> None:
    patient = world.patient_a
    with django_capture_on_commit_callbacks(execute=True):
        first = write(world, LOW_TEXT, when=_day(3))
    for days_ago in (2, 1):
        with django_capture_on_commit_callbacks(execute=True):
            write(world, "x", mood=0, when=_day(days_ago))
    [raised] = _streaks(patient)  # three low days
    state, evidence = raised.state, list(raised.evidence_items.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        _withdraw_text(patient, delete_derived=True)
    raised.refresh_from_db()
    assert raised.state == state  # the clinical record stays as it was
    assert list(raised.evidence_items.values_list("pk", flat=True)) == evidence
    with django_capture_on_commit_callbacks(execute=True):
        write(world, "x", mood=0, when=_day(0))
    deleted_day = first.local_date.isoformat()
    later = AlertEvidence.objects.filter(patient=patient, rule_id="low_mood_streak").exclude(
        pk__in=evidence
    )
    assert later.exists()  # days 2..4 are a real streak of the remaining data
    assert all(deleted_day not in item.snapshot["days"] for item in later)


def test_a_recompute_that_now_abstains_retracts_the_day(
    world: Any, scorer: FakeScorer, eager: list, django_capture_on_commit_callbacks: Any
) -> None:
    patient = world.patient_a
    with django_capture_on_commit_callbacks(execute=True):
        first = write(world, LOW_TEXT, when=_day(2))
    with django_capture_on_commit_callbacks(execute=True):
        write(world, "x", mood=0, when=_day(1))
    _withdraw_text(patient, delete_derived=False)  # the mood stays stored...
    assert DailyMoodScore.objects.get(patient=patient, local_date=first.local_date).score
    # ...until the day is recomputed: without the text it abstains, and risk forgets it
    row = scoring.daily_mood_run(patient_id=patient.pk, local_date=first.local_date)
    assert row is not None and row.abstained
    day = PatientDaySignals.objects.get(patient=patient, local_date=first.local_date)
    assert day.mood is None
    with django_capture_on_commit_callbacks(execute=True):
        write(world, "x", mood=0, when=_day(0))
    assert not _streaks(patient)


def test_retracting_clears_the_mood_and_its_drop_only(world: Any) -> None:
    patient = world.patient_a
    day = timezone.localdate()
    drop = {"kind": "baseline_drop", "source_id": f"mood:{day}", "code": "mood", "score": -2.0}
    voice = {"kind": "baseline_drop", "source_id": "v1", "code": "voice", "score": -3.0}
    crisis = {"kind": "crisis_language", "source_id": "t1", "code": "passive_ideation"}
    PatientDaySignals.objects.create(
        patient=patient,
        local_date=day,
        mood=-8.0,
        mood_confidence=0.5,
        mood_independent=-9.0,
        mood_modalities=["self_rated"],
        crisis=[{**crisis, "score": None}],
        corroboration=[drop, voice],
    )
    assert daily_mood_retracted(patient=patient, local_dates=[day], baseline_drop_only=True) == 1
    row = PatientDaySignals.objects.get(patient=patient, local_date=day)
    assert row.mood == -8.0 and row.corroboration == [voice]
    assert daily_mood_retracted(patient=patient, local_dates=[day, day - dt.timedelta(1)]) == 1
    row.refresh_from_db()
    assert (row.mood, row.mood_confidence, row.mood_independent, row.mood_modalities) == (
        None,
        None,
        None,
        [],
    )
    assert row.corroboration == [voice] and len(row.crisis) == 1  # other signals stay
    assert daily_mood_retracted(patient=patient, local_dates=[day]) == 0  # idempotent


def test_an_erasure_deletes_moods_without_recomputing_them(
    world: Any,
    scorer: FakeScorer,
    eager: list,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    tmp_path: Any,
) -> None:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    patient = world.patient_a
    with django_capture_on_commit_callbacks(execute=True):
        write(world, LOW_TEXT, mood=2)
    eager.clear()
    with django_capture_on_commit_callbacks(execute=True):
        patient_erase(actor=Actor.system(), patient=patient, reason=f"ticket {uuid.uuid4()}")
    assert eager == []
    assert not DailyMoodScore.objects.filter(patient=patient).exists()
