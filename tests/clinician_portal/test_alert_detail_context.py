"""The alert page's context: the earlier alerts a red alert superseded (with their evidence), and
the recent days against a baseline made of the days before them only."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from privacy.audit import Actor
from risk.models import Alert, AlertEvidence
from screening.services.questionnaires import questionnaire_submit
from screening.services.scoring import baseline_config
from tests.clinician_portal.conftest import (
    Portal,
    event_ids,
    new_events,
    non_audit_queries,
    raise_help_alert,
)
from tests.factories import (
    CareTeamFactory,
    OrganisationFactory,
    make_clinician,
    make_day_moods,
    make_patient,
    make_superseded_alert,
)

PHQ9_ITEM9 = [2, 2, 2, 2, 1, 1, 1, 1, 2]  # item 9 = 2: an orange alert
CRISIS_EXCERPT = "tonight I want to end it all, nobody would notice"


def _phq9_orange(patient: Any) -> Alert:
    questionnaire_submit(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        idempotency_key=uuid.uuid4(),
        instrument="phq9",
        answers=PHQ9_ITEM9,
        client_timestamp=timezone.now() - dt.timedelta(minutes=5),
    )
    orange = Alert.objects.get(patient=patient, state="open")
    assert orange.tier == "orange"
    return orange


def _crisis_evidence(alert: Alert, *, excerpt: str = CRISIS_EXCERPT) -> AlertEvidence:
    start = excerpt.index("end it all")
    return AlertEvidence.objects.create(
        alert=alert,
        patient_id=alert.patient_id,
        rule_id="crisis_double_verified",
        rule_set_version=alert.rule_set_version,
        tier=alert.tier,
        event_kind="text_scored",
        dedupe_key=f"text:{uuid.uuid4()}",
        local_date=alert.local_date,
        snapshot={
            "excerpt": excerpt,
            "span": [start, start + len("end it all")],
            "source": "diary",
        },
    )


def _superseded_alert(by: Alert, *, tier: str = "yellow", evidence: int = 2) -> Alert:
    """An earlier low-mood alert of ``by``'s patient that ``by`` superseded."""
    events = [{"kind": "daily_mood", "mood": -6.0 - i} for i in range(evidence)]
    return make_superseded_alert(by, tier=tier, rule_id="low_mood_streak", events=events)


# --- earlier alerts this one superseded -----------------------------------------------------------
def test_red_alert_page_shows_the_orange_alert_it_superseded_with_its_evidence(
    portal: Portal, treating: Client
) -> None:
    patient = portal.world.patient_a
    orange = _phq9_orange(patient)
    _crisis_evidence(orange)
    red = raise_help_alert(patient)
    assert red.tier == "red"
    assert Alert.objects.get(pk=orange.pk).superseded_by_id == red.pk
    before = event_ids()
    response = treating.get(f"/portal/alerts/{red.pk}")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Earlier alerts this one superseded" in body
    assert f'href="/portal/alerts/{orange.pk}"' in body
    detail = response.context["detail"]
    assert [s.alert.pk for s in detail.superseded] == [orange.pk]
    earlier = detail.superseded[0]
    kinds = {e.event_kind for e in earlier.evidence}
    assert {"questionnaire_scored", "text_scored"} <= kinds
    assert {e.event_kind for e in detail.evidence} == {"help_pressed"}  # its own stay its own
    # The crisis excerpt is rendered like the alert's own evidence (matched words marked).
    assert "<mark>end it all</mark>" in body
    assert "item9" in body or "item 9" in body
    # One read, recorded once: the page's own access event covers the superseded evidence.
    events = new_events(before)
    assert [(e.action, e.resource_id) for e in events] == [("portal.alert.view", str(red.pk))]
    # The orange alert's own page is reachable through the link and lists nothing superseded.
    own = treating.get(f"/portal/alerts/{orange.pk}")
    assert own.status_code == 200
    assert own.context["detail"].superseded == []
    assert "Earlier alerts this one superseded" not in own.content.decode()


def test_superseded_chain_is_followed_to_the_first_alert(portal: Portal, treating: Client) -> None:
    patient = portal.world.patient_a
    orange = _phq9_orange(patient)
    yellow = _superseded_alert(orange, tier="yellow", evidence=1)
    red = raise_help_alert(patient)
    detail = treating.get(f"/portal/alerts/{red.pk}").context["detail"]
    # Red superseded orange, which had superseded yellow: both, oldest first.
    assert [s.alert.pk for s in detail.superseded] == [orange.pk, yellow.pk]
    by_pk = {s.alert.pk: s for s in detail.superseded}
    assert [e.event_kind for e in by_pk[yellow.pk].evidence] == ["daily_mood"]


def test_an_alert_of_another_patient_or_clinic_is_never_shown_as_superseded(
    portal: Portal, treating: Client
) -> None:
    world = portal.world
    red = raise_help_alert(world.patient_a)
    other = _phq9_orange(world.patient_b)
    _crisis_evidence(other, excerpt="Bob says: I will end it all today")
    clinic = OrganisationFactory()
    team = CareTeamFactory(organisation=clinic)
    stranger = make_patient(team=team, clinician=make_clinician(team=team))
    elsewhere = _phq9_orange(stranger)
    # A corrupt link must not leak another patient's (or clinic's) evidence onto this page.
    Alert.objects.filter(pk__in=[other.pk, elsewhere.pk]).update(
        state="superseded", superseded_by=red
    )
    response = treating.get(f"/portal/alerts/{red.pk}")
    assert response.status_code == 200
    assert response.context["detail"].superseded == []
    body = response.content.decode()
    assert "Earlier alerts this one superseded" not in body
    assert "Bob says" not in body and str(other.pk) not in body and str(elsewhere.pk) not in body


def test_superseded_alerts_cost_no_query_per_alert_or_evidence(
    portal: Portal, treating: Client, django_assert_max_num_queries: Any
) -> None:
    patient = portal.world.patient_a
    red = raise_help_alert(patient)
    _superseded_alert(red, tier="orange", evidence=1)
    with CaptureQueriesContext(connection) as few:
        assert treating.get(f"/portal/alerts/{red.pk}").status_code == 200
    for tier in ("orange", "yellow", "yellow"):
        lower = _superseded_alert(red, tier=tier, evidence=4)
        _superseded_alert(lower, tier="yellow", evidence=3)
    with django_assert_max_num_queries(30), CaptureQueriesContext(connection) as many:
        response = treating.get(f"/portal/alerts/{red.pk}")
    assert len(response.context["detail"].superseded) == 7
    assert len(non_audit_queries(many)) == len(non_audit_queries(few))


# --- the baseline ---------------------------------------------------------------------------------
def _moods(patient: Any, values: dict[int, float]) -> dt.date:
    """Day signals ``days ago -> mood`` on the patient's own calendar; returns their today."""
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(patient.timezone)).date()
    make_day_moods(patient, today=today, values=values)
    return today


def test_the_days_shown_are_not_their_own_baseline(portal: Portal, treating: Client) -> None:
    """The reported case: -8.44, -8.44, -5.28 read as "+2.11 against baseline" on the day of the
    help press, because the baseline was the mean of the very days shown."""
    patient = portal.world.patient_a
    _moods(patient, {2: -8.44, 1: -8.44, 0: -5.28})
    red = raise_help_alert(patient)
    response = treating.get(f"/portal/alerts/{red.pk}")
    body = response.content.decode()
    detail = response.context["detail"]
    assert detail.baseline is None
    assert [d for _, d in detail.recent_scores] == [None, None, None]
    assert "+2.11" not in body and "+2.1" not in body
    assert "No baseline yet" in body


def test_too_little_earlier_history_is_no_baseline_yet(portal: Portal, treating: Client) -> None:
    patient = portal.world.patient_a
    config = baseline_config()
    # One daily mood fewer than the scoring's own baseline needs, all before the days shown.
    _moods(patient, {15 + i: 2.0 for i in range(config.min_recordings - 1)} | {0: -5.28})
    red = raise_help_alert(patient)
    response = treating.get(f"/portal/alerts/{red.pk}")
    detail = response.context["detail"]
    assert detail.baseline is None
    assert detail.baseline_count == config.min_recordings - 1
    assert "No baseline yet" in response.content.decode()


def test_baseline_is_the_28_days_before_the_first_day_shown(
    portal: Portal, treating: Client
) -> None:
    patient = portal.world.patient_a
    today = _moods(
        patient,
        {
            # shown (today - 14 .. today): never part of the baseline
            14: 9.0,
            2: -8.44,
            1: -8.44,
            0: -5.28,
            # the 28 days before the first day shown (15 .. 42 days ago): mean 2.0
            15: 1.0,
            20: 2.0,
            30: 3.0,
            41: 4.0,
            42: 0.0,
            # older than that: ignored
            43: -9.0,
            60: 10.0,
        },
    )
    red = raise_help_alert(patient)
    response = treating.get(f"/portal/alerts/{red.pk}")
    detail = response.context["detail"]
    assert detail.baseline == 2.0
    assert detail.baseline_count == 5
    assert detail.baseline_from == today - dt.timedelta(days=42)
    assert detail.baseline_until == today - dt.timedelta(days=15)
    diffs = {s.day: d for s, d in detail.recent_scores}
    assert set(diffs) == {today - dt.timedelta(days=ago) for ago in (14, 2, 1, 0)}
    assert diffs[today] == -5.28 - 2.0
    assert diffs[today - dt.timedelta(days=14)] == 9.0 - 2.0
    body = response.content.decode()
    assert "No baseline yet" not in body
    assert "-7.3" in body  # the help-press day, well below the earlier days
