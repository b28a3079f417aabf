"""The privacy API: a patient's access log, and the auditors' views of their clinic.

Personas: patient A and B, the treating clinician, a colleague outside the care team, the clinic's
auditor, an auditor of another clinic and anonymous. Auditors never see clinical content.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from privacy.audit import Actor, access_record
from privacy.breakglass import break_glass_open, break_glass_review
from privacy.models import AccessEvent, BreakGlassAccess, BreakGlassReview
from tests.conftest import assert_error, new_key, now_iso
from tests.factories import CareTeamFactory, OrganisationFactory, make_auditor, make_clinician

SECRET = "SECRET-DIARY-TEXT-never-for-auditors-91c2"
REASON = "Covering the on-call rota: urgent review of the safety plan."

# (url name, method, takes a pk, audit action of the view)
AUDITOR_ROUTES = [
    ("audit-events", "get", False, "audit.events"),
    ("audit-consents", "get", False, "audit.consents"),
    ("audit-break-glass", "get", False, "audit.break_glass"),
    ("audit-break-glass-review", "post", True, "audit.break_glass.review"),
    ("audit-chain", "get", False, "audit.chain"),
    ("audit-chain-verify", "post", False, "audit.chain.verify"),
]
AUDITOR_GETS = [r for r in AUDITOR_ROUTES if r[1] == "get"]


def _url(name: str, pk: Any = None) -> str:
    return reverse(f"api:{name}", kwargs={"pk": pk}) if pk is not None else reverse(f"api:{name}")


def _call(client: APIClient, name: str, method: str, pk: Any = None, **data: Any) -> Any:
    if method == "post":
        return client.post(_url(name, pk), data or {"appropriate": True}, format="json")
    return client.get(_url(name, pk), data)


def _results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content[:500]
    return response.json()["results"]


def _all_pages(client: APIClient, url: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    response = client.get(url, params)
    while True:
        body = response.json()
        rows.extend(body["results"])
        if not body["next"]:
            return rows
        response = client.get(body["next"])


@pytest.fixture
def auditor(world: Any) -> APIClient:
    return world.client_for(world.auditor.user)


@pytest.fixture
def foreign(world: Any) -> dict[str, Any]:
    """Another clinic with its own clinician and auditor."""
    clinic = OrganisationFactory()
    team = CareTeamFactory(organisation=clinic)
    clinician = make_clinician(team=team)
    auditor = make_auditor(organisation=clinic)
    return {"clinician": clinician, "auditor": auditor, "client": world.client_for(auditor.user)}


@pytest.fixture
def activity(world: Any, client_a: APIClient, client_b: APIClient) -> dict[str, Any]:
    """A and B write diary entries (A's with the secret text), read them; the colleague breaks the
    glass on A; a stranger is refused."""
    entry = client_a.post(
        "/api/v1/diary-entries",
        {"idempotency_key": new_key(), "client_timestamp": now_iso(), "text": SECRET},
        format="json",
    )
    assert entry.status_code == 201
    client_a.get(f"/api/v1/diary-entries/{entry.json()['id']}")
    client_b.post(
        "/api/v1/diary-entries",
        {"idempotency_key": new_key(), "client_timestamp": now_iso(), "text": SECRET + "-b"},
        format="json",
    )
    client_b.get("/api/v1/diary-entries")
    access = break_glass_open(
        actor=Actor(user_id=world.colleague.user_id, role="clinician"),
        clinician=world.colleague,
        patient=world.patient_a,
        reason=REASON,
    )
    return {"entry_id": entry.json()["id"], "access": access}


# --- personas on the auditor routes ---------------------------------------------------------------
def _pk(name: str, activity: dict[str, Any] | None = None) -> Any:
    if name != "audit-break-glass-review":
        return None
    return activity["access"].pk if activity else uuid.uuid4()


@pytest.mark.parametrize(("name", "method", "takes_pk", "action"), AUDITOR_ROUTES)
def test_anonymous_gets_401_on_auditor_routes(world, anon, name, method, takes_pk, action):
    error = assert_error(_call(anon, name, method, _pk(name)), 401, "authentication_required")
    event = AccessEvent.objects.get(request_id=error["request_id"])
    assert (event.action, event.outcome, event.status_code) == (action, "denied", 401)


@pytest.mark.parametrize("who", ["patient_a", "clinician", "colleague"])
@pytest.mark.parametrize(("name", "method", "takes_pk", "action"), AUDITOR_ROUTES)
def test_patients_and_clinicians_get_403_on_auditor_routes(
    world, activity, who, name, method, takes_pk, action
):
    user = getattr(world, who).user
    reviews = BreakGlassReview.objects.count()
    response = _call(world.client_for(user), name, method, _pk(name, activity))
    error = assert_error(response, 403, "permission_denied")
    assert BreakGlassReview.objects.count() == reviews
    event = AccessEvent.objects.get(request_id=error["request_id"])
    assert (event.action, event.outcome, event.status_code) == (action, "denied", 403)
    assert (event.actor_id, event.actor_role) == (user.pk, user.role)
    assert SECRET not in response.content.decode()


def test_an_auditor_role_without_a_clinic_is_refused(world):
    from screening.services.people import user_create

    user = user_create(username="loose-auditor", password=None, role="auditor")
    assert_error(world.client_for(user).get("/api/v1/audit/events"), 403, "permission_denied")


@pytest.mark.parametrize("who", ["auditor", "clinician"])
def test_staff_get_403_on_the_access_log(world, who):
    response = world.client_for(getattr(world, who).user).get("/api/v1/access-log")
    error = assert_error(response, 403, "permission_denied")
    assert AccessEvent.objects.get(request_id=error["request_id"]).action == "access_log"


def test_anonymous_gets_401_on_the_access_log(world, anon):
    assert_error(anon.get("/api/v1/access-log"), 401, "authentication_required")


# --- the patient's access log ---------------------------------------------------------------------
def test_a_patient_sees_who_accessed_their_record_and_only_theirs(
    world, client_a, activity, auditor
):
    auditor.get("/api/v1/audit/events", {"patient": world.patient_a.pseudonym})
    response = client_a.get("/api/v1/access-log")
    rows = _results(response)
    ids = {row["id"] for row in rows}
    a_events = set(AccessEvent.objects.filter(patient=world.patient_a).values_list("id", flat=True))
    assert ids == a_events  # includes this very read
    assert not ids & set(
        AccessEvent.objects.filter(patient=world.patient_b).values_list("id", flat=True)
    )
    assert rows[0]["action"] == "access_log.list" and rows[0]["by_you"] is True
    assert set(rows[0]) == {
        "id",
        "occurred_at",
        "role",
        "clinic",
        "by_you",
        "action",
        "purpose",
        "outcome",
        "break_glass",
    }
    glass = next(row for row in rows if row["action"] == "break_glass.open")
    assert glass["role"] == "clinician"
    assert glass["clinic"] == world.clinic.name
    assert glass["purpose"] == REASON
    assert glass["break_glass"] is True and glass["by_you"] is False
    audited = next(row for row in rows if row["action"] == "audit.events")
    assert (audited["role"], audited["clinic"]) == ("auditor", world.clinic.name)
    body = response.content.decode()
    for person in (world.colleague, world.auditor, world.clinician):
        assert person.user.username not in body
    assert world.patient_a.user.username not in body
    occurred = [row["occurred_at"] for row in rows]
    assert occurred == sorted(occurred, reverse=True)
    event = AccessEvent.objects.get(request_id=response["X-Request-ID"])
    assert (event.action, event.patient_id, event.actor_id) == (
        "access_log.list",
        world.patient_a.pk,
        world.patient_a.user_id,
    )


def test_b_does_not_see_a_break_glass_on_a(world, client_b, activity):
    rows = _results(client_b.get("/api/v1/access-log"))
    assert all(row["action"] != "break_glass.open" for row in rows)
    assert REASON not in str(rows)


def test_the_access_log_is_cursor_paged_without_gaps_or_repeats(world, client_a):
    for i in range(7):
        access_record(actor=Actor.system(), action=f"paging.{i}", patient_id=world.patient_a.pk)
    first = client_a.get("/api/v1/access-log", {"page_size": 3})
    assert len(first.json()["results"]) == 3
    before = set(AccessEvent.objects.filter(patient=world.patient_a).values_list("id", flat=True))
    rows = _all_pages(client_a, "/api/v1/access-log", page_size=3)
    ids = [row["id"] for row in rows]
    # Every page is a read of its own; the walk starts at the first page's own read and goes back
    # in time, so later pages' reads are not in it. None repeats, none is lost.
    assert len(ids) == len(set(ids))
    assert set(ids) == before | {ids[0]}
    assert AccessEvent.objects.get(pk=ids[0]).action == "access_log.list"
    assert ids == sorted(ids, reverse=True)


# --- auditor: events ------------------------------------------------------------------------------
def test_the_auditor_sees_their_clinics_events_without_clinical_content(
    world, activity, auditor, foreign
):
    stranger = foreign["clinician"]
    foreign_event = access_record(
        actor=Actor(user_id=stranger.user_id, role="clinician"), action="foreign.only"
    )
    rows = _all_pages(auditor, "/api/v1/audit/events")
    ids = {row["id"] for row in rows}
    assert (
        set(
            AccessEvent.objects.filter(patient__organisation=world.clinic).values_list(
                "id", flat=True
            )
        )
        <= ids
    )
    assert foreign_event.id not in ids
    glass = next(row for row in rows if row["action"] == "break_glass.open")
    assert glass["actor"] == world.colleague.user.username
    assert glass["patient"] == world.patient_a.pseudonym
    assert glass["break_glass"] is True and glass["purpose"] == REASON
    read = next(
        row
        for row in rows
        if row["action"] == "diary.read" and row["resource_id"] == activity["entry_id"]
    )
    # A patient acting is shown by pseudonym, never by username.
    assert read["actor"] == world.patient_a.pseudonym
    assert world.patient_a.user.username not in str(rows)


def test_an_auditor_of_another_clinic_sees_nothing_of_this_clinic(world, activity, foreign):
    client = foreign["client"]
    events = _all_pages(client, "/api/v1/audit/events")
    clinic_ids = set(
        AccessEvent.objects.filter(patient__organisation=world.clinic).values_list("id", flat=True)
    )
    assert not {row["id"] for row in events} & clinic_ids
    assert all(row["patient"] is None for row in events)  # only their own audit queries
    by_pseudonym = client.get("/api/v1/audit/events", {"patient": world.patient_a.pseudonym})
    assert _results(by_pseudonym) == []
    assert _results(client.get("/api/v1/audit/consents")) == []
    assert _results(client.get("/api/v1/audit/break-glass")) == []
    response = client.post(
        f"/api/v1/audit/break-glass/{activity['access'].pk}/reviews",
        {"appropriate": True},
        format="json",
    )
    error = assert_error(response, 404, "not_found")
    assert not BreakGlassReview.objects.exists()
    event = AccessEvent.objects.get(request_id=error["request_id"])
    assert (event.outcome, event.reason, event.patient_id) == (
        "denied",
        "other_clinic",
        world.patient_a.pk,
    )
    for body in (str(events), by_pseudonym.content.decode()):
        assert world.patient_a.pseudonym not in body
        assert world.patient_b.pseudonym not in body


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"action": "diary.create"}, lambda row, w: row["action"] == "diary.create"),
        ({"outcome": "denied"}, lambda row, w: row["outcome"] == "denied"),
        ({"break_glass": "true"}, lambda row, w: row["break_glass"] is True),
        ({"break_glass": "false"}, lambda row, w: row["break_glass"] is False),
        ("patient_b", lambda row, w: row["patient"] == w.patient_b.pseudonym),
        ("colleague", lambda row, w: row["actor"] == w.colleague.user.username),
        ("actor_a", lambda row, w: row["actor"] == w.patient_a.pseudonym),
    ],
)
def test_event_filters(world, activity, auditor, params, check):
    if params == "patient_b":
        params = {"patient": world.patient_b.pseudonym}
    elif params == "colleague":
        params = {"actor": world.colleague.user.username}
    elif params == "actor_a":
        params = {"actor": world.patient_a.pseudonym}
    world.client_for(world.colleague.user).get("/api/v1/me")  # a denied event
    rows = _all_pages(auditor, "/api/v1/audit/events", **params)
    assert rows
    assert all(check(row, world) for row in rows), rows


def test_the_actor_filter_never_matches_a_patients_username(world, activity, auditor):
    """A patient's username would link that person to their pseudonymous rows: only staff are
    found by username, patients by pseudonym."""
    assert AccessEvent.objects.filter(actor_id=world.patient_a.user_id).exists()
    response = auditor.get("/api/v1/audit/events", {"actor": world.patient_a.user.username})
    assert _results(response) == []
    assert world.patient_a.pseudonym not in response.content.decode()
    by_pseudonym = _all_pages(auditor, "/api/v1/audit/events", actor=world.patient_a.pseudonym)
    assert by_pseudonym and {row["actor"] for row in by_pseudonym} == {world.patient_a.pseudonym}
    by_username = _all_pages(auditor, "/api/v1/audit/events", actor=world.auditor.user.username)
    assert by_username and {row["actor"] for row in by_username} == {world.auditor.user.username}


def test_event_time_filters(world, activity, auditor):
    old = access_record(actor=Actor.system(), action="old.one", patient_id=world.patient_a.pk)
    cut = timezone.now()
    new = access_record(actor=Actor.system(), action="new.one", patient_id=world.patient_a.pk)
    since = {row["id"] for row in _all_pages(auditor, "/api/v1/audit/events", since=cut)}
    until = {row["id"] for row in _all_pages(auditor, "/api/v1/audit/events", until=cut)}
    assert new.id in since and old.id not in since
    assert old.id in until and new.id not in until
    assert not since & until
    window = _all_pages(
        auditor,
        "/api/v1/audit/events",
        since=(cut - dt.timedelta(hours=1)).isoformat(),
        until=(cut + dt.timedelta(hours=1)).isoformat(),
        action="old.one",
    )
    assert [row["id"] for row in window] == [old.id]


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-01-01T00:00:00"},  # no offset
        {"until": "yesterday"},
        {"outcome": "maybe"},
        {"break_glass": "perhaps"},
        {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    ],
)
def test_bad_filters_are_400(world, auditor, params):
    assert_error(auditor.get("/api/v1/audit/events", params), 400, "validation_failed")


def test_an_unknown_pseudonym_finds_nothing(world, activity, auditor):
    assert _results(auditor.get("/api/v1/audit/events", {"patient": "P-000000000000"})) == []


def test_audit_events_are_cursor_paged(world, auditor):
    for _ in range(9):
        access_record(actor=Actor.system(), action="page.me", patient_id=world.patient_b.pk)
    pages = []
    response = auditor.get("/api/v1/audit/events", {"action": "page.me", "page_size": 4})
    while True:
        body = response.json()
        pages.append([row["id"] for row in body["results"]])
        if not body["next"]:
            break
        assert "cursor" in parse_qs(urlsplit(body["next"]).query)
        response = auditor.get(body["next"])
    assert [len(page) for page in pages] == [4, 4, 1]
    ids = [i for page in pages for i in page]
    assert ids == sorted(ids, reverse=True)
    assert set(ids) == set(
        AccessEvent.objects.filter(action="page.me").values_list("id", flat=True)
    )


def test_every_auditor_query_is_an_access_event(world, activity, auditor):
    for name, method, _, action in AUDITOR_ROUTES:
        response = _call(
            auditor,
            name,
            method,
            _pk(name, activity),
            **({"appropriate": True} if method == "post" else {}),
        )
        assert response.status_code in (200, 201), (name, response.content[:300])
        recorded = set(
            AccessEvent.objects.filter(request_id=response["X-Request-ID"]).values_list(
                "action", "outcome", "actor_id"
            )
        )
        expected_action = "break_glass.review" if name == "audit-break-glass-review" else action
        assert (expected_action, "allowed", world.auditor.user_id) in recorded


def test_a_patient_filter_is_recorded_against_that_patient(world, auditor):
    response = auditor.get("/api/v1/audit/events", {"patient": world.patient_b.pseudonym})
    event = AccessEvent.objects.get(request_id=response["X-Request-ID"])
    assert (event.action, event.patient_id, event.reason) == (
        "audit.events",
        world.patient_b.pk,
        "filters:patient",
    )


# --- auditor: consents ----------------------------------------------------------------------------
def test_consent_history_with_versions_hashes_and_filters(world, client_a, auditor, foreign):
    client_a.post("/api/v1/consents", {"scope": "text_analysis", "granted": False}, format="json")
    rows = _all_pages(auditor, "/api/v1/audit/consents")
    assert {row["patient"] for row in rows} == {
        world.patient_a.pseudonym,
        world.patient_b.pseudonym,
    }
    withdrawal = rows[0]
    assert (withdrawal["scope"], withdrawal["granted"], withdrawal["patient"]) == (
        "text_analysis",
        False,
        world.patient_a.pseudonym,
    )
    grant = next(row for row in rows if row["granted"])
    assert grant["document_version"] == "1" and len(grant["document_sha256"]) == 64
    assert grant["actor_role"] == "patient"
    only_a = _all_pages(
        auditor, "/api/v1/audit/consents", patient=world.patient_a.pseudonym, scope="face_analysis"
    )
    assert [(r["patient"], r["scope"]) for r in only_a] == [
        (world.patient_a.pseudonym, "face_analysis")
    ]
    later = _all_pages(
        auditor,
        "/api/v1/audit/consents",
        since=(timezone.now() - dt.timedelta(minutes=5)).isoformat(),
    )
    assert len(later) == len(rows)
    assert _all_pages(auditor, "/api/v1/audit/consents", until="2000-01-01T00:00:00Z") == []
    assert_error(auditor.get("/api/v1/audit/consents", {"scope": "gossip"}), 400)


# --- auditor: break-glass -------------------------------------------------------------------------
def test_break_glass_list_and_review(world, activity, auditor):
    rows = _results(auditor.get("/api/v1/audit/break-glass"))
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == str(activity["access"].pk)
    assert (row["clinician"], row["patient"], row["reason"]) == (
        world.colleague.user.username,
        world.patient_a.pseudonym,
        REASON,
    )
    assert row["active"] is True and row["latest_review"] is None
    assert _results(auditor.get("/api/v1/audit/break-glass", {"reviewed": "true"})) == []

    url = f"/api/v1/audit/break-glass/{activity['access'].pk}/reviews"
    assert_error(auditor.post(url, {"appropriate": False}, format="json"), 400, "validation_failed")
    assert_error(auditor.post(url, {"note": "x"}, format="json"), 400, "validation_failed")
    first = auditor.post(url, {"appropriate": True, "note": "On call."}, format="json")
    assert first.status_code == 201, first.content
    assert (first.json()["appropriate"], first.json()["reviewer"]) == (
        True,
        world.auditor.user.username,
    )
    second = auditor.post(
        url, {"appropriate": False, "note": "No contact with the patient followed."}, format="json"
    )
    assert second.status_code == 201
    row = _results(auditor.get("/api/v1/audit/break-glass", {"reviewed": "true"}))[0]
    assert row["latest_review"]["id"] == second.json()["id"]
    assert row["latest_review"]["appropriate"] is False
    assert _results(auditor.get("/api/v1/audit/break-glass", {"reviewed": "false"})) == []
    assert_error(
        auditor.post(
            f"/api/v1/audit/break-glass/{uuid.uuid4()}/reviews",
            {"appropriate": True},
            format="json",
        ),
        404,
        "not_found",
    )


def test_break_glass_filters(world, activity, auditor):
    other = break_glass_open(
        actor=Actor(user_id=world.colleague.user_id, role="clinician"),
        clinician=world.colleague,
        patient=world.patient_b,
        reason=REASON,
    )
    break_glass_review(
        actor=Actor(user_id=world.auditor.user_id, role="auditor"), access=other, appropriate=True
    )
    by_patient = _results(
        auditor.get("/api/v1/audit/break-glass", {"patient": world.patient_b.pseudonym})
    )
    assert [row["id"] for row in by_patient] == [str(other.pk)]
    waiting = _results(auditor.get("/api/v1/audit/break-glass", {"reviewed": "false"}))
    assert [row["id"] for row in waiting] == [str(activity["access"].pk)]
    assert len(_results(auditor.get("/api/v1/audit/break-glass"))) == 2
    assert BreakGlassAccess.objects.count() == 2


# --- auditor: the chain ---------------------------------------------------------------------------
def test_the_chain_result_is_verified_then_stored(world, activity, auditor):
    first = auditor.get("/api/v1/audit/chain")
    assert first.status_code == 200
    body = first.json()
    assert body["ok"] is True and body["cached"] is False and body["first_break"] is None
    assert body["head_seq"] >= AccessEvent.objects.count() - 1
    second = auditor.get("/api/v1/audit/chain").json()
    assert second["cached"] is True and second["verified_at"] == body["verified_at"]
    fresh = auditor.post("/api/v1/audit/chain/verify")
    assert fresh.status_code == 200
    assert fresh.json()["cached"] is False
    assert fresh.json()["head_seq"] > body["head_seq"]


def test_a_tampered_chain_is_reported_to_the_auditor(world, activity, auditor):
    from django.db import connection

    target = AccessEvent.objects.get(action="break_glass.open")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE privacy_accessevent SET purpose = %s WHERE id = %s", ["nothing", target.id]
        )
    body = auditor.post("/api/v1/audit/chain/verify").json()
    assert body["ok"] is False
    assert body["first_break"]["kind"] == "altered"
    assert (body["first_break"]["seq"], body["first_break"]["event_id"]) == (target.seq, target.id)
    stored = auditor.get("/api/v1/audit/chain").json()
    assert stored["cached"] is True and stored["ok"] is False


# --- no clinical content anywhere -----------------------------------------------------------------
def test_auditors_never_see_diary_text_or_names(world, activity, auditor):
    bodies = []
    for name, method, _, _ in AUDITOR_GETS:
        bodies.append(_call(auditor, name, method).content.decode())
        bodies.append(
            auditor.get(_url(name), {"patient": world.patient_a.pseudonym}).content.decode()
        )
    bodies.append(
        auditor.get(
            "/api/v1/audit/events", {"action": "diary.create", "page_size": 100}
        ).content.decode()
    )
    bodies.append(auditor.post("/api/v1/audit/chain/verify").content.decode())
    for body in bodies:
        assert SECRET not in body
        assert "Alice" not in body and "Bob" not in body
    assert any(activity["entry_id"] in body for body in bodies)  # ids are fine


# --- query counts do not grow with the page -------------------------------------------------------
@pytest.mark.parametrize(
    "url", ["/api/v1/audit/events", "/api/v1/audit/consents", "/api/v1/audit/break-glass"]
)
def test_auditor_lists_use_a_fixed_number_of_queries(
    world, activity, auditor, url, django_assert_max_num_queries
):
    auditor.get(url)  # warm the token and clinic lookups alike for both counts
    with django_assert_max_num_queries(20) as small:
        auditor.get(url, {"page_size": 2})
    for person in (world.patient_a, world.patient_b):
        access_record(actor=Actor(user_id=person.user_id, role="patient"), action="more")
    extra = break_glass_open(
        actor=Actor(user_id=world.colleague.user_id, role="clinician"),
        clinician=world.colleague,
        patient=world.patient_b,
        reason=REASON,
    )
    break_glass_review(
        actor=Actor(user_id=world.auditor.user_id, role="auditor"), access=extra, appropriate=True
    )
    with django_assert_max_num_queries(len(small.captured_queries)):
        auditor.get(url, {"page_size": 100})


def test_the_access_log_uses_a_fixed_number_of_queries(
    world, client_a, activity, auditor, django_assert_max_num_queries
):
    client_a.get("/api/v1/access-log")
    with django_assert_max_num_queries(20) as small:
        client_a.get("/api/v1/access-log", {"page_size": 1})
    for person in (world.clinician, world.colleague):
        access_record(
            actor=Actor(user_id=person.user_id, role="clinician"),
            action="more",
            patient_id=world.patient_a.pk,
        )
    access_record(
        actor=Actor(user_id=world.auditor.user_id, role="auditor"),
        action="more",
        patient_id=world.patient_a.pk,
    )
    with django_assert_max_num_queries(len(small.captured_queries)):
        client_a.get("/api/v1/access-log", {"page_size": 100})
