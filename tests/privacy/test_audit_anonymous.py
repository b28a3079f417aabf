"""Requests refused before anyone signed in (401s, failed logins) in the auditors' access log.

Such an event has no account and no patient, so no clinic owns it: every clinic's auditor sees it,
as ``anonymous``, with the caller's IP address, and can filter on both. It carries ids and codes
only: never a path's values (a pseudonym in a FHIR URL) nor the username that was tried.

Personas: anonymous callers (two addresses), patient A, the treating clinician, the clinic's
auditor and another clinic's auditor.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from privacy.models import AccessEvent
from tests.conftest import assert_error
from tests.factories import OrganisationFactory, make_auditor

PROBER = "203.0.113.7"
OTHER_PROBER = "198.51.100.23"
WRONG = "Tr0ub4dor&3-wrong-password"


def _all_pages(client: APIClient, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    response = client.get("/api/v1/audit/events", {"page_size": 200, **params})
    while True:
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        rows.extend(body["results"])
        if not body["next"]:
            return rows
        response = client.get(body["next"])


def _event(response: Any) -> AccessEvent:
    return AccessEvent.objects.get(request_id=response["X-Request-ID"])


@pytest.fixture
def auditor(world: Any) -> APIClient:
    return world.client_for(world.auditor.user)


@pytest.fixture
def refused(world: Any, anon: APIClient) -> dict[str, AccessEvent]:
    """Anonymous calls of the patient API (one with an id in its path), FHIR (a patient's
    pseudonym in its path), the audit API and a failed login with patient A's username."""
    pseudonym = world.patient_a.pseudonym
    calls = {
        "me": lambda: anon.get("/api/v1/me", REMOTE_ADDR=PROBER),
        "diary": lambda: anon.get(f"/api/v1/diary-entries/{uuid.uuid4()}", REMOTE_ADDR=PROBER),
        "fhir": lambda: anon.get(f"/fhir/Patient/{pseudonym}", REMOTE_ADDR=PROBER),
        "audit": lambda: anon.get("/api/v1/audit/events", REMOTE_ADDR=PROBER),
        "login": lambda: anon.post(
            "/api/v1/auth/login",
            {"username": world.patient_a.user.username, "password": WRONG},
            format="json",
            REMOTE_ADDR=PROBER,
        ),
        "other": lambda: anon.get("/api/v1/consents", REMOTE_ADDR=OTHER_PROBER),
    }
    events: dict[str, AccessEvent] = {}
    for name, call in calls.items():
        response = call()
        assert response.status_code == 401, (name, response.content[:300])
        events[name] = _event(response)
    return events


def test_the_refusals_are_recorded_without_an_account_or_a_patient(world, refused):
    for name, event in refused.items():
        assert (event.actor_id, event.patient_id) == (None, None), name
        assert (event.actor_role, event.outcome, event.status_code) == ("anonymous", "denied", 401)
        assert event.ip_address == (OTHER_PROBER if name == "other" else PROBER)
    assert (refused["fhir"].action, refused["fhir"].resource_type) == ("fhir.request", "Patient")
    assert (refused["login"].action, refused["login"].reason) == ("auth.login", "login_failed")


def test_the_clinics_auditor_sees_every_refusal_with_the_callers_address(world, refused, auditor):
    rows = {row["id"]: row for row in _all_pages(auditor)}
    for name, event in refused.items():
        row = rows[event.pk]
        assert (row["actor"], row["actor_role"], row["patient"]) == ("anonymous", "anonymous", None)
        assert row["client_ip"] == event.ip_address, name
        assert (row["outcome"], row["status_code"]) == ("denied", 401)
        assert (row["action"], row["resource_type"], row["reason"]) == (
            event.action,
            event.resource_type,
            event.reason,
        )


def test_an_auditor_of_another_clinic_sees_them_too_but_no_patient_data(world, refused):
    foreign = make_auditor(organisation=OrganisationFactory())
    client = world.client_for(foreign.user)
    rows = _all_pages(client)
    assert {event.pk for event in refused.values()} <= {row["id"] for row in rows}
    body = str(rows)
    assert world.patient_a.pseudonym not in body  # the FHIR path's value is never recorded
    assert world.patient_a.user.username not in body  # nor the username a login tried
    assert WRONG not in body
    # Still nothing of the first clinic's own events.
    assert not any(row["patient"] for row in rows)


def test_signed_in_actors_are_named_and_their_address_is_not_shown(world, refused, auditor):
    client_a = world.client_for(world.patient_a.user)
    own = _event(client_a.get("/api/v1/me", REMOTE_ADDR=PROBER))
    clinician = world.client_for(world.clinician.user)
    denied = _event(clinician.get("/api/v1/me", REMOTE_ADDR=PROBER))  # 403, a signed-in refusal
    rows = {row["id"]: row for row in _all_pages(auditor)}
    assert (rows[own.pk]["actor"], rows[own.pk]["client_ip"]) == (world.patient_a.pseudonym, None)
    assert (rows[denied.pk]["actor"], rows[denied.pk]["client_ip"]) == (
        world.clinician.user.username,
        None,
    )
    assert PROBER not in str([rows[own.pk], rows[denied.pk]])


def test_the_role_filter_finds_exactly_the_anonymous_events(world, refused, auditor):
    world.client_for(world.patient_a.user).get("/api/v1/me")
    anonymous = _all_pages(auditor, role="anonymous")
    assert {row["id"] for row in anonymous} == {event.pk for event in refused.values()}
    patients = _all_pages(auditor, role="patient")
    assert patients and all(row["actor_role"] == "patient" for row in patients)
    assert not {row["id"] for row in patients} & {event.pk for event in refused.values()}


def test_the_ip_filter_follows_one_anonymous_caller_only(world, refused, auditor):
    # Patient A signs in from the prober's address: a signed-in address is no search key.
    world.client_for(world.patient_a.user).get("/api/v1/me", REMOTE_ADDR=PROBER)
    rows = _all_pages(auditor, ip=PROBER)
    expected = {event.pk for name, event in refused.items() if name != "other"}
    assert {row["id"] for row in rows} == expected
    assert {row["id"] for row in _all_pages(auditor, ip=OTHER_PROBER)} == {refused["other"].pk}
    combined = _all_pages(auditor, ip=PROBER, action="auth.login")
    assert [row["id"] for row in combined] == [refused["login"].pk]


def test_the_filters_used_are_recorded_not_their_values(world, refused, auditor):
    response = auditor.get("/api/v1/audit/events", {"role": "anonymous", "ip": PROBER})
    assert response.status_code == 200
    query = AccessEvent.objects.get(request_id=response["X-Request-ID"])
    assert (query.action, query.reason) == ("audit.events", "filters:ip,role")
    assert PROBER not in query.reason and query.ip_address != PROBER


@pytest.mark.parametrize(
    "params", [{"role": "superuser"}, {"ip": "not-an-address"}, {"ip": "203.0.113.999"}]
)
def test_bad_role_or_ip_filters_are_400(world, auditor, params):
    error = assert_error(auditor.get("/api/v1/audit/events", params), 400, "validation_failed")
    assert set(error["fields"]) == set(params)


@pytest.mark.parametrize("who", ["patient_a", "clinician", "colleague"])
def test_the_new_filters_open_nothing_to_other_roles(world, refused, who):
    client = world.client_for(getattr(world, who).user)
    response = client.get("/api/v1/audit/events", {"role": "anonymous", "ip": PROBER})
    assert_error(response, 403, "permission_denied")
    assert PROBER not in response.content.decode()


def test_anonymous_cannot_read_them(world, refused, anon):
    response = anon.get("/api/v1/audit/events", {"role": "anonymous"})
    assert_error(response, 401, "authentication_required")
    assert PROBER not in response.content.decode()


def test_a_patients_access_log_holds_none_of_them(world, refused):
    client_a = world.client_for(world.patient_a.user)
    rows = client_a.get("/api/v1/access-log", {"page_size": 200}).json()["results"]
    assert not {row["id"] for row in rows} & {event.pk for event in refused.values()}


def test_failed_logins_are_bounded_by_the_login_rate_limit(world, anon, throttle_rates):
    """How anonymous floods are bounded today: login attempts past the rate limit are answered 429
    and write nothing. (Other refused 401s are not rate limited: DRF checks permissions before
    throttles; every one of them is one event.)"""
    throttle_rates(login="3/min")
    body = {"username": world.patient_a.user.username, "password": WRONG}
    before = AccessEvent.objects.filter(actor_role="anonymous").count()
    codes = [
        anon.post("/api/v1/auth/login", body, format="json", REMOTE_ADDR=PROBER).status_code
        for _ in range(6)
    ]
    assert codes == [401, 401, 401, 429, 429, 429]
    assert AccessEvent.objects.filter(actor_role="anonymous").count() == before + 3
