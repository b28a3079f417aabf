"""Patient timeline, caseload and break-glass, for every persona."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from privacy.audit import Actor
from privacy.choices import ConsentScope
from privacy.consent import consent_change
from privacy.models import AccessEvent, BreakGlassAccess
from risk.models import Alert, PatientDaySignals
from screening.models import DiaryEntry
from tests.clinician_portal.conftest import (
    Portal,
    event_ids,
    new_events,
    non_audit_queries,
    raise_help_alert,
)
from tests.factories import (
    CareTeamFactory,
    DiaryEntryFactory,
    OrganisationFactory,
    make_clinician,
    make_day_moods,
    make_patient,
)


def _scores(patient: Any, values: dict[int, float | None]) -> None:
    """Day signals ``days ago -> mood`` (None: a day with a row but no score)."""
    today = timezone.now().astimezone(dt.UTC).date()
    for ago, mood in values.items():
        PatientDaySignals.objects.create(
            patient=patient,
            local_date=today - dt.timedelta(days=ago),
            mood=mood,
            mood_confidence=None if mood is None else 0.8,
        )


def test_timeline_for_treating_clinician(portal: Portal, treating: Client) -> None:
    patient = portal.world.patient_a
    _scores(patient, {1: -2.0, 2: -1.0, 5: 3.0, 6: None})
    raise_help_alert(patient)
    DiaryEntryFactory(patient=patient, text="A private sentence about my week.")
    response = treating.get(f"/portal/patients/{patient.pseudonym}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<svg" in body and 'class="band"' in body
    assert body.count('class="line"') == 2  # a gap splits the line in two runs
    assert 'class="marker tier-red"' in body
    assert "Alice Example" in body  # the display name, decrypted for the care team
    assert "A private sentence" not in body  # no care-team sharing consent
    assert "Mood looked low" in body  # a plain-language explanation
    event = AccessEvent.objects.filter(action="portal.patient.view", patient=patient).get()
    assert event.outcome == "allowed" and not event.break_glass


def test_diary_text_with_sharing_consent(portal: Portal, treating: Client) -> None:
    patient = portal.world.patient_a
    consent_change(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        scope=ConsentScope.CARE_TEAM_SHARING,
        granted=True,
        document_version="1",
    )
    DiaryEntryFactory(patient=patient, text="A private sentence about my week.")
    body = treating.get(f"/portal/patients/{patient.pseudonym}/").content.decode()
    assert "A private sentence about my week." in body


def test_timeline_without_scores_says_so(portal: Portal, treating: Client) -> None:
    response = treating.get(f"/portal/patients/{portal.world.patient_b.pseudonym}/")
    assert response.status_code == 200
    assert b"No scores yet." in response.content
    assert b"<svg" not in response.content


def test_colleague_is_refused_then_breaks_the_glass(portal: Portal, colleague: Client) -> None:
    patient = portal.world.patient_a
    response = colleague.get(f"/portal/patients/{patient.pseudonym}/")
    assert response.status_code == 403
    assert b"Alice Example" not in response.content
    assert b"Break the glass" in response.content
    assert AccessEvent.objects.filter(
        action="portal.patient.view", outcome="denied", patient=patient
    ).exists()
    short = colleague.post(f"/portal/patients/{patient.pseudonym}/break-glass", {"reason": "now"})
    assert short.status_code == 400
    assert not BreakGlassAccess.objects.exists()
    response = colleague.post(
        f"/portal/patients/{patient.pseudonym}/break-glass",
        {"reason": "Covering the on-call rota, patient phoned the front desk in distress."},
    )
    assert response.status_code == 302
    page = colleague.get(f"/portal/patients/{patient.pseudonym}/")
    assert page.status_code == 200
    assert b"Break-glass access" in page.content
    assert AccessEvent.objects.filter(
        action="portal.patient.view", patient=patient, break_glass=True, outcome="allowed"
    ).exists()


def test_other_clinic_patient_is_404(portal: Portal, treating: Client) -> None:
    clinic = OrganisationFactory()
    team = CareTeamFactory(organisation=clinic)
    stranger = make_patient(team=team, clinician=make_clinician(team=team))
    assert treating.get(f"/portal/patients/{stranger.pseudonym}/").status_code == 404
    response = treating.post(
        f"/portal/patients/{stranger.pseudonym}/break-glass",
        {"reason": "Trying to look at another clinic's patient."},
    )
    assert response.status_code == 404
    assert treating.get("/portal/patients/P-NOPE/").status_code == 404


def test_auditor_never_sees_the_timeline(portal: Portal, auditor: Client) -> None:
    response = auditor.get(f"/portal/patients/{portal.world.patient_a.pseudonym}/")
    assert response.status_code == 403
    assert b"Alice" not in response.content


def test_caseload(portal: Portal, treating: Client, colleague: Client) -> None:
    world = portal.world
    _scores(world.patient_a, {0: -4.0, 1: -4.0, 8: 2.0, 9: 2.0})
    raise_help_alert(world.patient_a)
    # The patient's own local day (the UTC date is a day ahead of New York after 00:00 UTC).
    patient_today = timezone.now().astimezone(ZoneInfo(world.patient_b.timezone)).date()
    DiaryEntryFactory(patient=world.patient_b, local_date=patient_today)
    response = treating.get("/portal/patients/")
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [r.patient.pk for r in rows] == [world.patient_a.pk, world.patient_b.pk]
    first, second = rows
    assert first.open_alerts == 1 and first.top_tier == "red"
    assert first.last_score is not None and first.last_score.score == -4.0
    assert first.trend is not None and first.trend < -5
    assert first.last_contact is None
    assert second.last_contact is not None and second.adherence_days == 1
    # The colleague's caseload has none of them.
    other = colleague.get("/portal/patients/")
    assert other.context["rows"] == []
    assert world.patient_a.pseudonym.encode() not in other.content


def test_caseload_puts_each_shown_patient_in_their_access_trail(
    portal: Portal, treating: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clinician_portal import views

    world = portal.world
    before = event_ids()
    response = treating.get("/portal/patients/")
    shown = [row.patient.pk for row in response.context["rows"]]
    assert sorted(shown) == sorted([world.patient_a.pk, world.patient_b.pk])
    events = new_events(before)
    assert [(e.action, e.patient_id) for e in events] == [("portal.caseload", None)] + [
        ("portal.caseload", pid) for pid in shown
    ]
    assert all(e.outcome == "allowed" and e.actor_id == world.clinician.user_id for e in events)
    # Only the page's patients: the second page of one row records its one patient.
    monkeypatch.setattr(views, "CASELOAD_PAGE", 1)
    before = event_ids()
    second = treating.get("/portal/patients/?page=2")
    assert [(e.action, e.patient_id) for e in new_events(before)] == [
        ("portal.caseload", None),
        ("portal.caseload", second.context["rows"][0].patient.pk),
    ]
    assert second.context["rows"][0].patient.pk == shown[1]
    rows = world.client_for(world.patient_b.user).get("/api/v1/access-log").json()["results"]
    assert "portal.caseload" in {row["action"] for row in rows}


def test_caseload_query_count_is_flat(portal: Portal, treating: Client) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from screening.models import CareTeam

    with CaptureQueriesContext(connection) as few:
        treating.get("/portal/patients/")
    team = CareTeam.objects.get(pk=portal.world.patient_a.care_team_id)
    for _ in range(10):
        p = make_patient(team=team, clinician=portal.world.clinician)
        DiaryEntryFactory(patient=p)
        raise_help_alert(p)
    before = event_ids()
    with CaptureQueriesContext(connection) as many:
        response = treating.get("/portal/patients/")
    assert len(response.context["rows"]) == 12
    # No read per patient; the audit trail gets the page's event and one per patient shown.
    assert len(non_audit_queries(many)) == len(non_audit_queries(few)) <= 25
    assert len(new_events(before)) == 1 + 12


def test_timeline_query_count(
    portal: Portal, treating: Client, django_assert_max_num_queries: Any
) -> None:
    patient = portal.world.patient_a
    _scores(patient, {i: float(i % 7 - 3) for i in range(60)})
    for _ in range(5):
        DiaryEntryFactory(patient=patient)
    raise_help_alert(patient)
    with django_assert_max_num_queries(25):
        assert treating.get(f"/portal/patients/{patient.pseudonym}/").status_code == 200
    assert DiaryEntry.objects.filter(patient=patient).count() == 5
    assert Alert.objects.filter(patient=patient).count() == 1


def test_fused_daily_scores_with_abstentions(portal: Portal, treating: Client) -> None:
    from screening.models import DailyMoodScore

    patient = portal.world.patient_a
    today = timezone.now().astimezone(dt.UTC).date()
    for ago, score in ((1, -3.0), (2, None), (3, 2.0)):
        DailyMoodScore.objects.create(
            patient=patient,
            local_date=today - dt.timedelta(days=ago),
            score=score,
            confidence=0.0 if score is None else 0.7,
            abstained=score is None,
            reason="insufficient_signal" if score is None else "",
            explanation="" if score is None else "Lower mostly because of the diary's words.",
            fusion_version="fusion-1.0",
        )
    # A day signal on a day the fusion already scored is ignored (the fused row wins).
    _scores(patient, {1: 9.0, 5: 1.0})
    body = treating.get(f"/portal/patients/{patient.pseudonym}/").content.decode()
    assert (
        body.count('class="line"') == 3
    )  # days 5 | 3 | 1: abstained day 2 and empty day 4 are gaps
    assert "Lower mostly because of the diary" in body
    assert "No score: not enough reliable signal" in body
    assert "+9.0" not in body


def test_alert_page_highlights_crisis_words(portal: Portal, treating: Client) -> None:
    from screening.models import TextAnalysis

    patient = portal.world.patient_a
    entry = DiaryEntryFactory(patient=patient, text="Some context. I want to end it all. More.")
    TextAnalysis.objects.create(
        patient=patient,
        source="diary",
        diary_entry=entry,
        local_date=entry.local_date,
        valence=-0.8,
        confidence=0.9,
        crisis_category="suicidal_ideation",
        evidence=[
            {
                "id": "x:0",
                "start": 14,
                "end": 34,
                "category": "suicidal_ideation",
                "rule_id": "si.1",
                "excerpt": "I want to end it all",
            }
        ],
    )
    alert = raise_help_alert(patient)
    body = treating.get(f"/portal/alerts/{alert.pk}").content.decode()
    assert "<mark>I want to end it all</mark>" in body
    assert "Some context." not in body  # only the matched words, not the diary


def test_other_clinic_patient_probe_is_logged_without_the_patient(
    portal: Portal, treating: Client
) -> None:
    clinic = OrganisationFactory()
    team = CareTeamFactory(organisation=clinic)
    stranger = make_patient(team=team, clinician=make_clinician(team=team))
    before = set(AccessEvent.objects.values_list("pk", flat=True))
    response = treating.get(f"/portal/patients/{stranger.pseudonym}/")
    assert response.status_code == 404
    assert treating.get("/portal/patients/P-NOPE/").status_code == 404
    new = AccessEvent.objects.exclude(pk__in=before).order_by("seq")
    assert list(
        new.values_list(
            "actor_id",
            "action",
            "outcome",
            "patient_id",
            "resource_type",
            "resource_id",
            "status_code",
            "reason",
        )
    ) == [
        (
            portal.world.clinician.user_id,
            "portal.patient.view",
            "denied",
            None,
            "Patient",
            stranger.pseudonym,
            404,
            "other_clinic",
        ),
        (
            portal.world.clinician.user_id,
            "portal.patient.view",
            "denied",
            None,
            "Patient",
            "P-NOPE",
            404,
            "not_found",
        ),
    ]


def test_break_glass_on_another_clinics_patient_is_a_logged_probe(
    portal: Portal, treating: Client
) -> None:
    clinic = OrganisationFactory()
    team = CareTeamFactory(organisation=clinic)
    stranger = make_patient(team=team, clinician=make_clinician(team=team))
    before = set(AccessEvent.objects.values_list("pk", flat=True))
    response = treating.post(
        f"/portal/patients/{stranger.pseudonym}/break-glass",
        {"reason": "Trying to look at another clinic's patient."},
    )
    assert response.status_code == 404
    new = AccessEvent.objects.exclude(pk__in=before)
    assert list(new.values_list("action", "outcome", "patient_id", "resource_id", "reason")) == [
        ("break_glass.open", "denied", None, stranger.pseudonym, "other_clinic")
    ]
    assert not new.filter(break_glass=True).exists()


def test_caseload_uses_each_patients_local_day(portal: Portal) -> None:
    """Auckland (UTC+13) and Honolulu (UTC-10) around their midnights: each row counts its days
    (last score, 7-day trend, 14-day adherence) from its own patient's local date."""
    import freezegun

    from screening.models import Patient

    world = portal.world
    Patient.objects.filter(pk=world.patient_a.pk).update(timezone="Pacific/Auckland")
    Patient.objects.filter(pk=world.patient_b.pk).update(timezone="Pacific/Honolulu")
    auckland_today, honolulu_today = dt.date(2025, 3, 11), dt.date(2025, 3, 10)

    # Auckland: today's score is -4 (a UTC "today" would miss it and show yesterday's +3), the
    # week before is +2: the trend is only right on the local day.
    make_day_moods(world.patient_a, today=auckland_today, values={0: -4.0, 1: 3.0, 7: 2.0, 8: 2.0})
    # Honolulu: a diary entry 13 local days ago still counts for 14-day adherence.
    DiaryEntryFactory(patient=world.patient_b, local_date=honolulu_today - dt.timedelta(days=13))
    DiaryEntryFactory(patient=world.patient_b, local_date=honolulu_today)
    make_day_moods(world.patient_b, today=honolulu_today, values={0: 1.0, 6: 1.0, 7: 5.0, 13: 5.0})
    # 11:30 UTC on 10 March: already 11 March in Auckland (a UTC day would be a day behind).
    # 09:30 UTC on 11 March: still 10 March in Honolulu (a UTC day would be a day ahead).
    for moment in ("2025-03-10T11:30:00Z", "2025-03-11T09:30:00Z"):
        with freezegun.freeze_time(moment):  # signed in then (the session idles out otherwise)
            response = portal.sign_in(world.clinician.user).get("/portal/patients/")
        assert response.status_code == 200
        rows = {r.patient.pk: r for r in response.context["rows"]}
        auckland, honolulu = rows[world.patient_a.pk], rows[world.patient_b.pk]
        assert auckland.last_score is not None and auckland.last_score.day == auckland_today
        assert auckland.last_score.score == -4.0
        # last 7 days: -4, +3 -> -0.5; the 7 before: +2, +2 -> 2.0
        assert auckland.trend == -2.5, moment
        assert honolulu.last_score is not None and honolulu.last_score.day == honolulu_today
        assert honolulu.adherence_days == 2, moment
        # last 7 days: +1, +1; the 7 before: +5, +5
        assert honolulu.trend == -4.0, moment
