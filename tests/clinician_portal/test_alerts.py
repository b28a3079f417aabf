"""The alert queue, the alert page and its actions, for every persona."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from privacy.models import AccessEvent
from risk.models import Alert, AlertTransition, OutboxMessage
from tests.clinician_portal.conftest import (
    Portal,
    event_ids,
    new_events,
    non_audit_queries,
    raise_help_alert,
)
from tests.factories import CareTeamFactory, OrganisationFactory, make_clinician, make_patient


def _rows(response: Any) -> list[str]:
    return [str(item["alert"].pk) for item in response.context["items"]]


# --- personas on the queue -----------------------------------------------------------------------
def test_queue_shows_the_care_teams_alerts(treating: Client, red_alert: Alert) -> None:
    response = treating.get("/portal/alerts/")
    assert response.status_code == 200
    assert _rows(response) == [str(red_alert.pk)]
    assert red_alert.patient.pseudonym.encode() in response.content
    assert b'data-deadline="' in response.content


def test_queue_hides_other_teams_alerts(colleague: Client, red_alert: Alert) -> None:
    response = colleague.get("/portal/alerts/")
    assert response.status_code == 200
    assert _rows(response) == []
    assert red_alert.patient.pseudonym.encode() not in response.content


@pytest.mark.parametrize("path", ["/portal/alerts/", "/portal/alerts/rows/", "/portal/patients/"])
def test_auditor_gets_403_on_clinical_pages(auditor: Client, red_alert: Alert, path: str) -> None:
    response = auditor.get(path)
    assert response.status_code == 403
    assert red_alert.patient.pseudonym.encode() not in response.content
    assert AccessEvent.objects.filter(outcome="denied", reason="wrong_role").exists()


@pytest.mark.parametrize("path", ["/portal/alerts/", "/portal/patients/", "/portal/audit/events/"])
def test_anonymous_and_patient_are_sent_to_sign_in(
    patient_client: Client, path: str, red_alert: Alert
) -> None:
    for client in (Client(), patient_client):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/portal/login/")


def test_queue_order_red_first_then_deadline(portal: Portal, treating: Client) -> None:
    world = portal.world
    red = raise_help_alert(world.patient_b)
    orange = raise_help_alert(world.patient_a)
    # Make the second one orange with the earliest deadline: red must still come first.
    Alert.objects.filter(pk=orange.pk).update(
        tier="orange", ack_deadline=timezone.now() - dt.timedelta(minutes=5)
    )
    third = Alert.objects.get(pk=red.pk)
    response = treating.get("/portal/alerts/")
    assert _rows(response) == [str(third.pk), str(orange.pk)]
    assert b"Breached" in response.content  # the overdue orange one is marked


def test_queue_puts_open_alerts_before_acknowledged_ones_of_the_same_tier(
    portal: Portal, treating: Client
) -> None:
    from risk import services
    from tests.risk.conftest import actor_for

    world = portal.world
    old = raise_help_alert(world.patient_a)
    services.alert_acknowledge(actor=actor_for(world.clinician), alert_id=old.pk)
    # acknowledged days ago and left unresolved: its (met) deadline is long past
    Alert.objects.filter(pk=old.pk).update(ack_deadline=timezone.now() - dt.timedelta(days=3))
    new = raise_help_alert(world.patient_b)
    response = treating.get("/portal/alerts/")
    assert _rows(response) == [str(new.pk), str(old.pk)]
    assert [i["alert"].state for i in response.context["items"]] == ["open", "acknowledged"]


def test_queue_filters(portal: Portal, treating: Client) -> None:
    world = portal.world
    a = raise_help_alert(world.patient_a)
    b = raise_help_alert(world.patient_b)
    Alert.objects.filter(pk=b.pk).update(tier="yellow", assigned_to=None)
    assert _rows(treating.get("/portal/alerts/?tier=red")) == [str(a.pk)]
    assert _rows(treating.get("/portal/alerts/?tier=yellow")) == [str(b.pk)]
    assert _rows(treating.get("/portal/alerts/?assignee=me")) == [str(a.pk)]
    assert _rows(treating.get("/portal/alerts/?assignee=unassigned")) == [str(b.pk)]
    treating.post(f"/portal/alerts/{a.pk}/acknowledge")
    assert _rows(treating.get("/portal/alerts/?state=acknowledged")) == [str(a.pk)]
    assert _rows(treating.get("/portal/alerts/?state=open")) == [str(b.pk)]
    assert len(_rows(treating.get("/portal/alerts/?tier=bogus"))) == 2  # bad filter ignored


def test_fragment_is_rows_only(treating: Client, red_alert: Alert) -> None:
    response = treating.get("/portal/alerts/rows/")
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert str(red_alert.pk).encode() in response.content


# --- alert page ----------------------------------------------------------------------------------
def test_alert_page_shows_rule_evidence_and_history(treating: Client, red_alert: Alert) -> None:
    response = treating.get(f"/portal/alerts/{red_alert.pk}")
    assert response.status_code == 200
    body = response.content.decode()
    assert red_alert.rule_id in body
    assert red_alert.rule_set_version in body
    assert "help_pressed" in body  # the evidence's event kind
    assert "raised" in body  # history
    assert AccessEvent.objects.filter(
        action="portal.alert.view", resource_id=str(red_alert.pk), outcome="allowed"
    ).exists()


def test_alert_page_denied_to_colleague_and_logged(colleague: Client, red_alert: Alert) -> None:
    response = colleague.get(f"/portal/alerts/{red_alert.pk}")
    assert response.status_code == 403
    assert red_alert.patient.pseudonym.encode() not in response.content
    assert AccessEvent.objects.filter(
        action="portal.alert.view", outcome="denied", patient_id=red_alert.patient_id
    ).exists()


def test_other_clinics_alert_is_404(portal: Portal, db: Any) -> None:
    clinic = OrganisationFactory()
    team = CareTeamFactory(organisation=clinic)
    doctor = make_clinician(team=team)
    stranger = make_patient(team=team, clinician=doctor)
    alert = raise_help_alert(stranger)
    client = portal.sign_in(portal.world.clinician.user)
    assert client.get(f"/portal/alerts/{alert.pk}").status_code == 404
    assert client.post(f"/portal/alerts/{alert.pk}/acknowledge").status_code == 404
    assert client.get(f"/portal/alerts/{uuid.uuid4()}").status_code == 404
    assert Alert.objects.get(pk=alert.pk).state == "open"


# --- actions -------------------------------------------------------------------------------------
def test_acknowledge_then_resolve(treating: Client, red_alert: Alert) -> None:
    response = treating.post(f"/portal/alerts/{red_alert.pk}/acknowledge")
    assert response.status_code == 302
    red_alert.refresh_from_db()
    assert red_alert.state == "acknowledged"
    queue = treating.get("/portal/alerts/")
    assert queue.context["items"][0]["alert"].state == "acknowledged"
    response = treating.post(
        f"/portal/alerts/{red_alert.pk}/resolve",
        {"disposition": "contacted_patient", "note": "Called, safe at home, plan agreed."},
    )
    assert response.status_code == 302
    red_alert.refresh_from_db()
    assert red_alert.state == "resolved"
    assert red_alert.resolution_note == "Called, safe at home, plan agreed."
    assert _rows(treating.get("/portal/alerts/")) == []
    actions = set(
        AccessEvent.objects.filter(resource_id=str(red_alert.pk)).values_list("action", flat=True)
    )
    assert {"alert.acknowledge", "alert.resolve"} <= actions


def test_resolve_needs_disposition_and_note(treating: Client, red_alert: Alert) -> None:
    response = treating.post(f"/portal/alerts/{red_alert.pk}/resolve", {"disposition": ""})
    assert response.status_code == 400
    assert b'role="alert"' in response.content
    red_alert.refresh_from_db()
    assert red_alert.state == "open"


def test_acknowledge_twice_is_a_message_not_a_crash(treating: Client, red_alert: Alert) -> None:
    treating.post(f"/portal/alerts/{red_alert.pk}/acknowledge")
    response = treating.post(f"/portal/alerts/{red_alert.pk}/acknowledge", follow=True)
    assert response.status_code == 200
    assert b"cannot become acknowledged" in response.content


def test_escalate_notifies_the_next_level(
    portal: Portal, treating: Client, red_alert: Alert
) -> None:
    from risk.models import EscalationPolicy

    world = portal.world
    world.colleague.user.email = "oncall@clinic.test"  # only reachable clinicians count
    world.colleague.user.save(update_fields=["email"])
    EscalationPolicy.objects.create(organisation=world.clinic, on_call=world.colleague)
    response = treating.post(f"/portal/alerts/{red_alert.pk}/escalate")
    assert response.status_code == 302
    red_alert.refresh_from_db()
    assert red_alert.escalation_level >= 1
    assert AlertTransition.objects.filter(
        alert=red_alert, note_code__startswith="escalated_manual"
    ).exists()
    manual = OutboxMessage.objects.filter(alert=red_alert, idempotency_key__contains="manual-")
    assert manual.exists()
    assert AccessEvent.objects.filter(action="alert.escalate_manual").exists()


def test_reassign_to_care_team_member(portal: Portal, treating: Client, red_alert: Alert) -> None:
    from screening.models import CareTeam

    team = CareTeam.objects.get(pk=portal.world.patient_a.care_team_id)
    member = make_clinician(team=team)
    response = treating.post(f"/portal/alerts/{red_alert.pk}/reassign", {"assignee": member.pk})
    assert response.status_code == 302
    red_alert.refresh_from_db()
    assert red_alert.assigned_to_id == member.pk
    assert OutboxMessage.objects.filter(recipient_id=str(member.user_id), alert=red_alert).exists()
    # Someone outside the care team cannot be given it.
    response = treating.post(
        f"/portal/alerts/{red_alert.pk}/reassign", {"assignee": portal.world.colleague.pk}
    )
    assert response.status_code == 400
    red_alert.refresh_from_db()
    assert red_alert.assigned_to_id == member.pk


@pytest.mark.parametrize("action", ["acknowledge", "escalate", "resolve", "reassign"])
def test_colleague_cannot_act(colleague: Client, red_alert: Alert, action: str) -> None:
    data = {"disposition": "other", "note": "x", "assignee": "1"}
    response = colleague.post(f"/portal/alerts/{red_alert.pk}/{action}", data)
    assert response.status_code == 403
    red_alert.refresh_from_db()
    assert red_alert.state == "open"
    assert AccessEvent.objects.filter(outcome="denied", patient_id=red_alert.patient_id).exists()


@pytest.mark.parametrize("action", ["acknowledge", "escalate", "resolve", "reassign"])
def test_auditor_cannot_act(auditor: Client, red_alert: Alert, action: str) -> None:
    assert auditor.post(f"/portal/alerts/{red_alert.pk}/{action}").status_code == 403
    red_alert.refresh_from_db()
    assert red_alert.state == "open"


def test_actions_need_post(treating: Client, red_alert: Alert) -> None:
    assert treating.get(f"/portal/alerts/{red_alert.pk}/acknowledge").status_code == 405


# --- query counts ---------------------------------------------------------------------------
def test_queue_queries_do_not_grow_with_alerts(
    portal: Portal, treating: Client, django_assert_max_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from screening.models import CareTeam

    raise_help_alert(portal.world.patient_a)
    with CaptureQueriesContext(connection) as one:
        treating.get("/portal/alerts/")
    team = CareTeam.objects.get(pk=portal.world.patient_a.care_team_id)
    for _ in range(12):
        raise_help_alert(make_patient(team=team, clinician=portal.world.clinician))
    before = event_ids()
    with CaptureQueriesContext(connection) as many:
        response = treating.get("/portal/alerts/")
    assert len(response.context["items"]) == 13
    # Reads stay flat; the audit trail gets the page's event and one per patient shown that the
    # first view (within the trail window) did not already record: the 12 new ones.
    assert len(non_audit_queries(many)) == len(non_audit_queries(one)) <= 15
    assert len(new_events(before)) == 1 + 12
    # The refresh right after records itself only (the page just put every patient in the trail).
    before = event_ids()
    with django_assert_max_num_queries(15), CaptureQueriesContext(connection) as refresh:
        treating.get("/portal/alerts/rows/", headers={"X-Portal-Poll": "1"})
    assert len(non_audit_queries(refresh)) <= 10
    assert len(new_events(before)) == 1


def test_alert_page_query_count(
    treating: Client, red_alert: Alert, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(30):
        assert treating.get(f"/portal/alerts/{red_alert.pk}").status_code == 200


def test_escalate_and_reassign_lock_the_alert_row_only(
    portal: Portal, treating: Client, red_alert: Alert
) -> None:
    """Joining the patient into SELECT ... FOR UPDATE would lock the patient row after the
    alert, the reverse of every service that locks the patient first (a PostgreSQL deadlock)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from screening.models import CareTeam

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks (no FOR UPDATE in its SQL)")
    member = make_clinician(team=CareTeam.objects.get(pk=portal.world.patient_a.care_team_id))
    with CaptureQueriesContext(connection) as queries:
        treating.post(f"/portal/alerts/{red_alert.pk}/escalate")
        treating.post(f"/portal/alerts/{red_alert.pk}/reassign", {"assignee": member.pk})
    alert_locks = [
        q["sql"]
        for q in queries.captured_queries
        if "FOR UPDATE" in q["sql"] and 'FROM "risk_alert"' in q["sql"]
    ]
    assert len(alert_locks) >= 2
    assert all('FOR UPDATE OF "risk_alert"' in sql for sql in alert_locks), alert_locks


def test_alert_page_flags_an_alert_nobody_in_the_chain_can_reach(
    treating: Client, red_alert: Alert
) -> None:
    from risk import services

    # The portal world's clinicians have no e-mail address and the clinic no on-call or lead.
    assert services.alert_escalate(alert_id=red_alert.pk, now=red_alert.ack_deadline)
    red_alert.refresh_from_db()
    assert red_alert.unreachable_since is not None and red_alert.next_escalation_at is not None
    response = treating.get(f"/portal/alerts/{red_alert.pk}")
    assert response.status_code == 200
    assert b'id="alert-unreachable"' in response.content
    assert b"escalation_unreachable" in response.content  # in the history too


# --- a past assignment gives no lasting access ----------------------------------------------------
def _resolve(alert: Alert, clinician: Any) -> None:
    from privacy.audit import Actor
    from risk.services import alert_resolve

    alert_resolve(
        actor=Actor(user_id=clinician.user_id, role="clinician"),
        alert_id=alert.pk,
        disposition="contacted_patient",
        note="Called, safe at home.",
    )


def test_past_assignee_outside_the_care_team_loses_the_resolved_alert(
    portal: Portal, treating: Client, colleague: Client, red_alert: Alert
) -> None:
    world = portal.world
    # The colleague (another care team) was handed the alert, e.g. while on call.
    Alert.objects.filter(pk=red_alert.pk).update(assigned_to=world.colleague)
    assert colleague.get(f"/portal/alerts/{red_alert.pk}").status_code == 200  # active: theirs
    _resolve(red_alert, world.clinician)
    before = set(AccessEvent.objects.values_list("pk", flat=True))
    response = colleague.get(f"/portal/alerts/{red_alert.pk}")
    assert response.status_code == 403
    assert red_alert.patient.pseudonym.encode() not in response.content
    new = AccessEvent.objects.exclude(pk__in=before)
    assert not new.filter(outcome="allowed").exists()  # no ordinary read of the patient
    assert list(new.values_list("outcome", "action", "patient_id", "resource_id", "reason")) == [
        ("denied", "portal.alert.view", red_alert.patient_id, str(red_alert.pk), "not_in_care_team")
    ]
    # The care team still sees the closed alert; an anonymous browser is sent to sign in.
    assert treating.get(f"/portal/alerts/{red_alert.pk}").status_code == 200
    assert Client().get(f"/portal/alerts/{red_alert.pk}").status_code == 302


def test_on_call_still_sees_a_resolved_alert(
    portal: Portal, colleague: Client, red_alert: Alert
) -> None:
    from risk.models import EscalationPolicy

    world = portal.world
    EscalationPolicy.objects.create(organisation=world.clinic, on_call=world.colleague)
    Alert.objects.filter(pk=red_alert.pk).update(assigned_to=world.colleague)
    _resolve(red_alert, world.clinician)
    assert colleague.get(f"/portal/alerts/{red_alert.pk}").status_code == 200


# --- cross-clinic probes are logged ---------------------------------------------------------------
def test_other_clinics_alert_probe_is_logged_without_the_patient(portal: Portal, db: Any) -> None:
    clinic = OrganisationFactory()
    team = CareTeamFactory(organisation=clinic)
    stranger = make_patient(team=team, clinician=make_clinician(team=team))
    alert = raise_help_alert(stranger)
    client = portal.sign_in(portal.world.clinician.user)
    before = set(AccessEvent.objects.values_list("pk", flat=True))
    response = client.get(f"/portal/alerts/{alert.pk}")
    assert response.status_code == 404
    assert stranger.pseudonym.encode() not in response.content
    assert client.post(f"/portal/alerts/{alert.pk}/acknowledge").status_code == 404
    missing = uuid.uuid4()
    assert client.get(f"/portal/alerts/{missing}").status_code == 404
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
            "portal.alert.view",
            "denied",
            None,
            "Alert",
            str(alert.pk),
            404,
            "other_clinic",
        ),
        (
            portal.world.clinician.user_id,
            "alert.acknowledge",  # the action attempted
            "denied",
            None,
            "Alert",
            str(alert.pk),
            404,
            "other_clinic",
        ),
        (
            portal.world.clinician.user_id,
            "portal.alert.view",
            "denied",
            None,
            "Alert",
            str(missing),
            404,
            "not_found",
        ),
    ]
    assert Alert.objects.get(pk=alert.pk).state == "open"


# --- the queue's reads are in each shown patient's access trail -----------------------------------
def _trail(events: list[Any]) -> list[tuple[str, Any]]:
    return [(e.action, e.patient_id) for e in events]


def test_queue_and_its_refresh_are_recorded_in_each_shown_patients_trail(
    portal: Portal, treating: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clinician_portal import selectors

    world = portal.world
    raise_help_alert(world.patient_a)
    raise_help_alert(world.patient_b)
    before = event_ids()
    response = treating.get("/portal/alerts/")
    shown = [item["alert"].patient_id for item in response.context["items"]]
    assert sorted(shown) == sorted([world.patient_a.pk, world.patient_b.pk])
    page = new_events(before)
    assert _trail(page) == [("portal.queue", None)] + [("portal.queue", pid) for pid in shown]
    assert all(e.outcome == "allowed" and e.actor_id == world.clinician.user_id for e in page)
    assert {e.resource_type for e in page[1:]} == {"Patient"}

    # The background refresh is recorded like the page; its patients were just recorded.
    before = event_ids()
    fragment = treating.get("/portal/alerts/rows/", headers={"X-Portal-Poll": "1"})
    assert fragment.status_code == 200 and world.patient_a.pseudonym.encode() in fragment.content
    assert _trail(new_events(before)) == [("portal.queue.refresh", None)]
    # So is the page opened again within the window: the page itself, not 1 event per patient
    # per view (a 111-alert queue wrote 111 chained events on every view).
    before = event_ids()
    assert treating.get("/portal/alerts/").status_code == 200
    assert _trail(new_events(before)) == [("portal.queue", None)]

    # Once the window has passed, a refresh puts them in their trails again.
    monkeypatch.setattr(selectors, "QUEUE_REFRESH_TRAIL_WINDOW", dt.timedelta(0))
    before = event_ids()
    treating.get("/portal/alerts/rows/", headers={"X-Portal-Poll": "1"})
    assert _trail(new_events(before)) == [("portal.queue.refresh", None)] + [
        ("portal.queue.refresh", pid) for pid in shown
    ]
    # ... which is what the patient's own access log shows.
    rows = world.client_for(world.patient_a.user).get("/api/v1/access-log").json()["results"]
    assert {"portal.queue", "portal.queue.refresh"} <= {row["action"] for row in rows}


def test_an_empty_queue_refresh_is_still_recorded(treating: Client) -> None:
    before = event_ids()
    assert treating.get("/portal/alerts/rows/").status_code == 200
    assert _trail(new_events(before)) == [("portal.queue.refresh", None)]


# --- a refused action is recorded as the action attempted -----------------------------------------
@pytest.mark.parametrize(
    ("action", "recorded", "data"),
    [
        ("acknowledge", "alert.acknowledge", {}),
        ("escalate", "alert.escalate_manual", {}),
        ("resolve", "alert.resolve", {"disposition": "other", "note": "x"}),
        ("resolve", "alert.resolve", {"disposition": ""}),  # an incomplete form: still a 403
        ("reassign", "alert.reassign", {"assignee": "1"}),
        ("reassign", "alert.reassign", {"assignee": "nobody"}),  # likewise, not a 400
    ],
)
def test_a_refused_action_is_recorded_as_the_attempted_action(
    colleague: Client, red_alert: Alert, action: str, recorded: str, data: dict[str, str]
) -> None:
    before = event_ids()
    response = colleague.post(f"/portal/alerts/{red_alert.pk}/{action}", data)
    assert response.status_code == 403
    assert red_alert.patient.pseudonym.encode() not in response.content
    assert [
        (e.action, e.outcome, e.patient_id, e.resource_id, e.status_code, e.reason)
        for e in new_events(before)
    ] == [(recorded, "denied", red_alert.patient_id, str(red_alert.pk), 403, "not_in_care_team")]


def test_a_successful_action_is_recorded_under_the_same_name(
    treating: Client, red_alert: Alert
) -> None:
    before = event_ids()
    assert treating.post(f"/portal/alerts/{red_alert.pk}/acknowledge").status_code == 302
    assert ("alert.acknowledge", "allowed") in {(e.action, e.outcome) for e in new_events(before)}


# --- an erased patient's alert --------------------------------------------------------------------
def test_an_erased_patients_alert_is_404_recorded_as_denied(
    portal: Portal, treating: Client, red_alert: Alert
) -> None:
    from privacy.audit import Actor
    from privacy.erasure import patient_erase

    patient = portal.world.patient_a
    patient_erase(actor=Actor.system(), patient=patient, reason="Patient request, ticket 4711")
    # The alert row stays (closed by the erasure), its evidence now unreadable.
    assert Alert.objects.filter(pk=red_alert.pk).values_list("state", flat=True).get() == "resolved"
    before = event_ids()
    response = treating.get(f"/portal/alerts/{red_alert.pk}")
    assert response.status_code == 404
    assert patient.pseudonym.encode() not in response.content
    assert treating.post(f"/portal/alerts/{red_alert.pk}/acknowledge").status_code == 404
    events = new_events(before)
    assert [
        (e.action, e.outcome, e.patient_id, e.resource_id, e.status_code, e.reason) for e in events
    ] == [
        ("portal.alert.view", "denied", patient.pk, str(red_alert.pk), 404, "patient_erased"),
        ("alert.acknowledge", "denied", patient.pk, str(red_alert.pk), 404, "patient_erased"),
    ]
