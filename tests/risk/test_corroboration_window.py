"""Crisis language corroborated across local midnight (rule set v3, ``crisis_double_verified``
with ``window_days``: the crisis language's local day and the adjacent ones), through the
services: the state assembled from stored days, both arrival orders, alerts, de-duplication and
replays. v2 (the same local day only) stays selectable and keeps its behaviour."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

import pytest
from django.conf import settings

from privacy.audit import Actor
from risk import intake, services
from risk.models import Alert, AlertEvidence, OutboxMessage, PatientDaySignals, RuleSetSelection
from risk.rules.engine import CrisisLanguage, DailyMood, Event, MediaDistress, SignalRef
from risk.rules.loader import rule_sets
from screening.services import scoring
from screening.services.common import local_day
from tests.screening.test_scoring import CRISIS, FakeScorer, write

ORANGE = "crisis_double_verified"
TZ = "Europe/Berlin"
#: 23:50 and, twenty minutes later, 00:10 on the patient's wall clock: two local days.
BEFORE_MIDNIGHT = dt.datetime(2025, 6, 10, 23, 50, tzinfo=zoneinfo.ZoneInfo(TZ))
AFTER_MIDNIGHT = BEFORE_MIDNIGHT + dt.timedelta(minutes=20)
D = local_day(client_timestamp=BEFORE_MIDNIGHT, tz_name=TZ)
D1 = local_day(client_timestamp=AFTER_MIDNIGHT, tz_name=TZ)


def pin(rw: Any, version: str, overrides: dict[str, Any] | None = None) -> None:
    services.rule_set_select(
        actor=Actor.system(),
        organisation=rw.world.clinic,
        version=version,
        threshold_overrides=overrides or {},
    )


def text(day: dt.date, *, ref: str = "diary-1", source: str = "text") -> CrisisLanguage:
    return CrisisLanguage(
        local_date=day, category="passive_ideation", source=source, source_ref=ref
    )


def video(day: dt.date, *, ref: str = "video-1", score: float = 0.85) -> MediaDistress:
    return MediaDistress(local_date=day, video_id=ref, score=score)


def send(rw: Any, *events: Event) -> list[services.RaiseResult]:
    results: list[services.RaiseResult] = []
    for event in events:
        results.extend(intake.signal_received(patient=rw.patient, event=event))
    return results


def active(rw: Any) -> list[tuple[str, str]]:
    alerts = Alert.objects.filter(patient=rw.patient, state__in=["open", "acknowledged"])
    return [(a.tier, a.rule_id) for a in alerts]


def pair_rows(rw: Any) -> list[str]:
    rows = AlertEvidence.objects.filter(patient=rw.patient, rule_id=ORANGE)
    return list(rows.values_list("dedupe_key", flat=True))


def test_the_two_moments_are_twenty_minutes_and_one_local_day_apart():
    gap, days = AFTER_MIDNIGHT - BEFORE_MIDNIGHT, (D, D1)
    assert gap == dt.timedelta(minutes=20)
    assert days == (dt.date(2025, 6, 10), dt.date(2025, 6, 11))


@pytest.mark.parametrize("crisis_arrives_first", [True, False], ids=["crisis_first", "video_first"])
@pytest.mark.parametrize(
    "crisis_before_midnight", [True, False], ids=["text_2350_video_0010", "video_2350_text_0010"]
)
@pytest.mark.parametrize(("version", "expected"), [("v3", "orange"), ("v2", "yellow")])
def test_crisis_and_a_distressed_video_either_side_of_local_midnight(
    rw, version, expected, crisis_before_midnight, crisis_arrives_first
):
    pin(rw, version)
    crisis_day, video_day = (D, D1) if crisis_before_midnight else (D1, D)
    events = [text(crisis_day), video(video_day)]
    send(rw, *(events if crisis_arrives_first else reversed(events)))
    if expected == "yellow":  # v2: the same local day only
        assert active(rw) == [("yellow", "crisis_single")]
        assert pair_rows(rw) == []
        return
    assert active(rw) == [("orange", ORANGE)]
    alert = Alert.objects.get(patient=rw.patient, tier="orange")
    assert (alert.rule_set_version, alert.rule_set_hash) == ("v3", rule_sets()["v3"].sha256)
    assert alert.evidence["crisis"]["source_id"] == "text:diary-1"
    assert alert.evidence["crisis"]["local_date"] == crisis_day.isoformat()
    assert alert.evidence["corroboration"]["source_id"] == "video-1"
    assert alert.evidence["corroboration"]["local_date"] == video_day.isoformat()
    assert alert.evidence["params"]["window_days"] == 1
    assert pair_rows(rw) == [f"{ORANGE}:text:diary-1+media_distress:video-1"]


@pytest.mark.parametrize("apart", [2, 3])
@pytest.mark.parametrize("crisis_arrives_first", [True, False])
def test_signals_two_or_three_local_days_apart_do_not_confirm(rw, apart, crisis_arrives_first):
    pin(rw, "v3")
    events = [text(D), video(D + dt.timedelta(days=apart))]
    send(rw, *(events if crisis_arrives_first else reversed(events)))
    assert active(rw) == [("yellow", "crisis_single")]
    events = [text(D, ref="diary-2"), video(D - dt.timedelta(days=apart), ref="video-2")]
    send(rw, *(events if crisis_arrives_first else reversed(events)))
    assert active(rw) == [("yellow", "crisis_single")]
    assert pair_rows(rw) == []


def test_a_clinic_may_widen_the_window_to_two_days(rw):
    pin(rw, "v3", {ORANGE: {"window_days": 2}})
    send(rw, text(D), video(D + dt.timedelta(days=3)))
    assert active(rw) == [("yellow", "crisis_single")]
    send(rw, video(D - dt.timedelta(days=2), ref="video-2"))
    assert active(rw) == [("orange", ORANGE)]
    assert Alert.objects.get(tier="orange").evidence["rule_set"]["overrides"] == {
        ORANGE: {"window_days": 2}
    }


@pytest.mark.parametrize("crisis_arrives_first", [True, False])
def test_text_never_confirms_itself_across_midnight(rw, crisis_arrives_first):
    pin(rw, "v3")
    # the diary at 23:50 and the transcript of a video at 00:10: both crisis language
    transcript = text(D1, ref="video-1", source="transcript")
    # the next day's mood fused from its text alone, however low, and one whose text-free
    # part (the self-rating) is not low
    text_only = DailyMood(local_date=D1, score=-9, confidence=0.4, modalities=("diary_text",))
    not_low = DailyMood(
        local_date=D1, score=-8, modalities=("diary_text", "self_rated"), independent_score=-2
    )
    events = [text(D), transcript, text_only, not_low]
    send(rw, *(events if crisis_arrives_first else reversed(events)))
    assert active(rw) == [("yellow", "crisis_single")]
    assert not OutboxMessage.objects.filter(recipient_kind="emergency_contact").exists()
    # the next day's own rating, low: another kind of signal, which confirms
    low = DailyMood(
        local_date=D1, score=-7, modalities=("diary_text", "self_rated"), independent_score=-7
    )
    send(rw, low)
    assert active(rw) == [("orange", ORANGE)]
    alert = Alert.objects.get(tier="orange")
    assert alert.evidence["corroboration"]["kind"] == "daily_mood"
    assert alert.evidence["corroboration"]["local_date"] == D1.isoformat()


def test_replays_and_redeliveries_fire_the_pair_once(rw):
    pin(rw, "v3")
    (first,) = send(rw, text(D))
    (orange,) = send(rw, video(D1))
    assert orange.created and orange.alert.tier == "orange"
    outbox = OutboxMessage.objects.count()
    # the same video again (a retried task), the same text again (a re-scored entry), and
    # again in the other order: the pair's key is the same whichever arrived first
    for event in (video(D1), text(D), text(D), video(D1)):
        results = send(rw, event)
        assert all(r.duplicate for r in results), results
    assert pair_rows(rw) == [f"{ORANGE}:text:diary-1+media_distress:video-1"]
    assert Alert.objects.filter(patient=rw.patient, tier="orange").count() == 1
    assert OutboxMessage.objects.count() == outbox
    first.alert.refresh_from_db()
    assert first.alert.state == "superseded"
    # the stored days keep each signal once
    rows = {r.local_date: r for r in PatientDaySignals.objects.filter(patient=rw.patient)}
    assert len(rows[D].crisis) == 1 and len(rows[D1].corroboration) == 1


def test_a_second_pair_joins_the_orange_alert_as_new_evidence(rw):
    pin(rw, "v3")
    send(rw, text(D), video(D1))
    (joined,) = send(rw, video(D, ref="video-2"))
    assert joined.attached and joined.alert.tier == "orange"
    assert sorted(pair_rows(rw)) == [
        f"{ORANGE}:text:diary-1+media_distress:video-1",
        f"{ORANGE}:text:diary-1+media_distress:video-2",
    ]


def test_the_state_holds_the_windows_days_nearest_first(rw):
    pin(rw, "v3")
    send(
        rw,
        video(D - dt.timedelta(days=2), ref="far"),
        video(D - dt.timedelta(days=1), ref="before"),
        video(D + dt.timedelta(days=1), ref="after"),
        video(D, ref="same"),
    )
    rule_set = services.rule_set_for(organisation=rw.world.clinic)
    state = services._state_load(patient=rw.patient, event=text(D), rule_set=rule_set)
    assert [(r.source_id, r.local_date) for r in state.corroboration] == [
        ("same", D),
        ("before", D - dt.timedelta(days=1)),
        ("after", D + dt.timedelta(days=1)),
    ]
    assert all(isinstance(r, SignalRef) for r in state.corroboration)
    # ...and the nearest confirms: the same day's video
    send(rw, text(D))
    assert Alert.objects.get(tier="orange").evidence["corroboration"]["source_id"] == "same"
    pin(rw, "v2")
    v2 = services.rule_set_for(organisation=rw.world.clinic)
    state = services._state_load(patient=rw.patient, event=text(D), rule_set=v2)
    assert [r.source_id for r in state.corroboration] == ["same"]


# --- through the producers: a diary entry at 23:50, a self-rating at 00:10 -----------------------
@pytest.fixture
def scorer(monkeypatch: pytest.MonkeyPatch) -> FakeScorer:
    fake = FakeScorer()
    monkeypatch.setattr(scoring, "text_scorer", lambda: fake)
    return fake


@pytest.mark.parametrize(("version", "expected"), [("v3", "orange"), ("v2", "yellow")])
def test_a_crisis_diary_at_2350_and_a_low_self_rating_at_0010(rw, scorer, version, expected):
    pin(rw, version)
    tz = zoneinfo.ZoneInfo(rw.patient.timezone)
    # yesterday evening and just after midnight, on the patient's wall clock (in the past)
    today = dt.datetime.now(tz).date()
    written = dt.datetime.combine(today - dt.timedelta(days=2), dt.time(23, 50), tz)
    rated = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(0, 10), tz)
    entry = write(rw.world, CRISIS, when=written)  # text alone: its mood confirms nothing
    scoring.text_analysis_run(entry_id=entry.pk)
    assert active(rw) == [("yellow", "crisis_single")]
    later = write(rw.world, "Could not sleep.", mood=1, when=rated)  # the patient's own rating
    assert (later.local_date - entry.local_date).days == 1
    scoring.text_analysis_run(entry_id=later.pk)
    if expected == "yellow":
        assert active(rw) == [("yellow", "crisis_single")]
        return
    assert active(rw) == [("orange", ORANGE)]
    evidence = Alert.objects.get(tier="orange").evidence
    assert evidence["crisis"]["source_id"] == f"text:{entry.pk}"
    assert evidence["crisis"]["local_date"] == entry.local_date.isoformat()
    assert (evidence["corroboration"]["kind"], evidence["corroboration"]["code"]) == (
        "daily_mood",
        "self_rated",
    )
    assert evidence["corroboration"]["local_date"] == later.local_date.isoformat()


# --- the default ---------------------------------------------------------------------------------
def test_v3_is_the_default_rule_set(rw):
    # A clinic that chose nothing, and a new selection, get v3. (The setting lives in
    # config/settings.py and .env.example: VIGIL_RISK_RULE_SET_DEFAULT=v3.)
    assert settings.VIGIL_RISK_RULE_SET_DEFAULT == "v3"
    assert RuleSetSelection().version == "v3"
    (raised,) = send(rw, text(D, ref=str(uuid.uuid4())))
    assert raised.alert.rule_set_version == "v3"
    assert raised.alert.rule_set_hash == rule_sets()["v3"].sha256
