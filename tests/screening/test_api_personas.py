"""Who may call which endpoint: every URL of the patient API, every method, every persona.

- anonymous, expired and revoked tokens: 401 in the error shape, logged as denied;
- clinicians (treating or not) and auditors: 403 on patient endpoints, logged as denied;
- patient A never sees or changes patient B's anything: B's ids answer exactly like missing ids.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.urls import URLPattern, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from privacy.api import urls as privacy_api_urls
from privacy.auth import token_issue
from privacy.models import AccessEvent, ApiToken, ConsentRecord
from screening.api import urls as screening_api_urls
from screening.models import (
    DiaryEntry,
    Emergency,
    HelpRequest,
    Patient,
    QuestionnaireResponse,
    VideoSubmission,
)
from tests.conftest import assert_error, new_key, now_iso

SECRET = "SECRET-DIARY-TEXT-do-not-log-7f3a"

#: Every /api/v1 route (the patient API and the privacy API share the ``api`` namespace).
API_PATTERNS = [*screening_api_urls.urlpatterns, *privacy_api_urls.urlpatterns]

# (url name, method, takes a pk, audit action of the view, patient-only endpoint)
ENDPOINTS: list[tuple[str, str, bool, str, bool]] = [
    ("logout", "post", False, "auth.logout", False),
    ("tokens", "get", False, "auth.tokens", False),
    ("token-revoke", "delete", True, "auth.token_revoke", False),
    ("me", "get", False, "me", True),
    ("diary-list", "get", False, "diary", True),
    ("diary-list", "post", False, "diary", True),
    ("diary-detail", "get", True, "diary.read", True),
    ("video-list", "get", False, "video", True),
    ("video-list", "post", False, "video", True),
    ("video-detail", "get", True, "video.read", True),
    ("questionnaire-list", "get", False, "questionnaire", True),
    ("questionnaire-list", "post", False, "questionnaire", True),
    ("questionnaire-detail", "get", True, "questionnaire.read", True),
    ("help", "get", False, "help", True),
    ("help", "post", False, "help", True),
    ("consents", "get", False, "consent", True),
    ("consents", "post", False, "consent", True),
    ("consent-history", "get", False, "consent.history", True),
    ("access-log", "get", False, "access_log", True),
    # Auditor routes: personas in tests/privacy/test_audit_api.py; 401s here.
    ("audit-events", "get", False, "audit.events", False),
    ("audit-consents", "get", False, "audit.consents", False),
    ("audit-break-glass", "get", False, "audit.break_glass", False),
    ("audit-break-glass-review", "post", True, "audit.break_glass.review", False),
    ("audit-chain", "get", False, "audit.chain", False),
    ("audit-chain-verify", "post", False, "audit.chain.verify", False),
]
PATIENT_ENDPOINTS = [e for e in ENDPOINTS if e[4]]
ACCOUNT_ENDPOINTS = [e for e in ENDPOINTS if not e[4]]


def _ids(endpoints: list[tuple[str, str, bool, str, bool]]) -> list[str]:
    return [f"{method.upper()} {name}" for name, method, *_ in endpoints]


def _payload(name: str) -> dict[str, Any] | None:
    key, ts = new_key(), now_iso()
    if name == "diary-list":
        return {"idempotency_key": key, "client_timestamp": ts, "text": SECRET}
    if name == "questionnaire-list":
        return {
            "idempotency_key": key,
            "client_timestamp": ts,
            "instrument": "phq9",
            "answers": [1] * 9,
        }
    if name == "consents":
        return {"scope": "research", "granted": True, "document_version": "1"}
    if name == "help":
        return {"idempotency_key": key}
    return None


def _call(client: APIClient, name: str, method: str, pk: Any = None) -> Any:
    url = reverse(f"api:{name}", kwargs={"pk": pk}) if pk is not None else reverse(f"api:{name}")
    data = _payload(name)
    if method == "post" and name == "video-list":
        data = {"idempotency_key": new_key(), "client_timestamp": now_iso(), "text": SECRET}
        return client.post(url, data, format="multipart")
    if data is not None:
        return getattr(client, method)(url, data, format="json")
    return getattr(client, method)(url)


def make_video(patient: Patient) -> VideoSubmission:
    now = timezone.now()
    return VideoSubmission.objects.create(
        patient=patient,
        idempotency_key=uuid.uuid4(),
        client_timestamp=now,
        timezone=patient.timezone,
        local_date=now.date(),
        storage_name=f"{patient.pk}/{uuid.uuid4()}",
        size_bytes=1234,
        duration_seconds=3.0,
        container="mp4",
        video_codec="h264",
        width=320,
        height=240,
    )


def _counts() -> dict[str, int]:
    return {
        "diary": DiaryEntry.objects.count(),
        "questionnaire": QuestionnaireResponse.objects.count(),
        "video": VideoSubmission.objects.count(),
        "help": HelpRequest.objects.count(),
        "emergency": Emergency.objects.count(),
        "consent": ConsentRecord.objects.count(),
        "revoked_tokens": ApiToken.objects.filter(revoked_at__isnull=False).count(),
    }


def _event_strings(event: AccessEvent) -> str:
    return " ".join(str(getattr(event, f.attname)) for f in AccessEvent._meta.concrete_fields)


def _assert_no_secret_logged() -> None:
    for event in AccessEvent.objects.all():
        assert SECRET not in _event_strings(event)


@pytest.fixture
def b_rows(world: Any, client_b: APIClient) -> dict[str, Any]:
    """Patient B's diary entry, questionnaire, video and token, made the way B would."""
    diary = client_b.post(
        "/api/v1/diary-entries",
        {"idempotency_key": new_key(), "client_timestamp": now_iso(), "text": SECRET},
        format="json",
    )
    assert diary.status_code == 201
    questionnaire = client_b.post(
        "/api/v1/questionnaires",
        {
            "idempotency_key": new_key(),
            "client_timestamp": now_iso(),
            "instrument": "gad7",
            "answers": [2] * 7,
        },
        format="json",
    )
    assert questionnaire.status_code == 201
    token, raw = token_issue(user=world.patient_b.user, name="b-phone")
    return {
        "diary-detail": uuid.UUID(diary.json()["id"]),
        "questionnaire-detail": uuid.UUID(questionnaire.json()["id"]),
        "video-detail": make_video(world.patient_b).pk,
        "token-revoke": token.pk,
        "b_token_raw": raw,
    }


def _pk_for(name: str, takes_pk: bool, rows: dict[str, Any] | None = None) -> Any:
    if not takes_pk:
        return None
    return (rows or {}).get(name, uuid.uuid4())


# --- the table is complete -------------------------------------------------------------------
def test_the_persona_table_covers_every_url_and_method():
    covered = {(name, method) for name, method, *_ in ENDPOINTS} | {("login", "post")}
    expected = set()
    for pattern in API_PATTERNS:
        assert isinstance(pattern, URLPattern)
        view_class = pattern.callback.view_class  # type: ignore[attr-defined]
        for method in view_class.http_method_names:
            if method not in {"options", "head"} and hasattr(view_class, method):
                expected.add((pattern.name, method))
    assert covered == expected


@pytest.mark.parametrize(
    ("name", "method", "takes_pk", "action", "_p"), ENDPOINTS, ids=_ids(ENDPOINTS)
)
def test_the_audit_action_in_the_table_is_the_views(name, method, takes_pk, action, _p):
    pattern = next(p for p in API_PATTERNS if p.name == name)
    assert pattern.callback.view_class.audit_action == action  # type: ignore[attr-defined]


# --- anonymous, expired, revoked -------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "method", "takes_pk", "action", "_p"), ENDPOINTS, ids=_ids(ENDPOINTS)
)
def test_anonymous_gets_401_in_the_error_shape_and_is_logged(
    world, anon, name, method, takes_pk, action, _p
):
    before = _counts()
    response = _call(anon, name, method, _pk_for(name, takes_pk))
    error = assert_error(response, 401, "authentication_required")
    assert set(error) == {"code", "message", "status", "request_id"}
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert _counts() == before
    event = AccessEvent.objects.get(outcome="denied", request_id=error["request_id"])
    assert event.action == action
    assert event.status_code == 401
    assert event.actor_id is None
    assert event.actor_role == "anonymous"
    assert event.reason == "authentication_required"
    _assert_no_secret_logged()


def _expired(user: Any) -> APIClient:
    token, raw = token_issue(user=user, name="old")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _revoked(user: Any) -> APIClient:
    token, raw = token_issue(user=user, name="gone")
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _unknown(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer vgl_this-token-was-never-issued")
    return client


def _inactive(user: Any) -> APIClient:
    _, raw = token_issue(user=user, name="inactive")
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.mark.parametrize("make_client", [_expired, _revoked, _unknown, _inactive])
@pytest.mark.parametrize(
    ("name", "method", "takes_pk", "action", "_p"), ENDPOINTS, ids=_ids(ENDPOINTS)
)
def test_bad_tokens_get_401_and_are_logged(world, make_client, name, method, takes_pk, action, _p):
    client = make_client(world.patient_a.user)
    before = _counts()
    response = _call(client, name, method, _pk_for(name, takes_pk))
    error = assert_error(response, 401, "authentication_failed")
    # One message for every kind of bad token: nothing to probe.
    assert error["message"] == "Invalid or expired token."
    assert _counts() == before
    event = AccessEvent.objects.get(outcome="denied", request_id=error["request_id"])
    assert (event.action, event.status_code) == (action, 401)
    _assert_no_secret_logged()


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Token abc", "Basic dXNlcjpwYXNz", "Bearer \xe9t\xe9"]
)
def test_malformed_authorization_headers_get_401(world, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/diary-entries")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"authentication_required", "authentication_failed"}


def test_an_expired_token_stops_working_at_its_expiry(world, client_a):
    token = ApiToken.objects.filter(user=world.patient_a.user).get()
    assert client_a.get("/api/v1/me").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
    assert_error(client_a.get("/api/v1/me"), 401, "authentication_failed")


# --- clinicians and auditors -----------------------------------------------------------------
STAFF = ["clinician", "colleague", "auditor"]


def _staff_user(world: Any, who: str) -> Any:
    return getattr(world, who).user


@pytest.mark.parametrize("who", STAFF)
@pytest.mark.parametrize(
    ("name", "method", "takes_pk", "action", "_p"), PATIENT_ENDPOINTS, ids=_ids(PATIENT_ENDPOINTS)
)
def test_staff_get_403_on_patient_endpoints_and_are_logged(
    world, b_rows, who, name, method, takes_pk, action, _p
):
    user = _staff_user(world, who)
    client = world.client_for(user)
    before = _counts()
    response = _call(client, name, method, _pk_for(name, takes_pk, b_rows))
    error = assert_error(response, 403, "permission_denied")
    assert _counts() == before
    event = AccessEvent.objects.get(outcome="denied", request_id=error["request_id"])
    assert event.action == action
    assert event.status_code == 403
    assert event.actor_id == user.pk
    assert event.actor_role == user.role
    _assert_no_secret_logged()


@pytest.mark.parametrize("who", STAFF)
def test_staff_may_manage_only_their_own_tokens(world, b_rows, who):
    user = _staff_user(world, who)
    client = world.client_for(user)
    listed = client.get("/api/v1/auth/tokens")
    assert listed.status_code == 200
    assert {t["id"] for t in listed.json()} == {
        str(pk) for pk in ApiToken.objects.filter(user=user).values_list("pk", flat=True)
    }
    # A patient's token is not theirs to revoke.
    assert_error(client.delete(f"/api/v1/auth/tokens/{b_rows['token-revoke']}"), 404, "not_found")
    assert ApiToken.objects.get(pk=b_rows["token-revoke"]).revoked_at is None
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert_error(client.get("/api/v1/auth/tokens"), 401, "authentication_failed")


def test_an_erased_patient_is_refused(world, client_a):
    Patient.objects.filter(pk=world.patient_a.pk).update(erased_at=timezone.now())
    assert_error(client_a.get("/api/v1/diary-entries"), 403, "permission_denied")
    assert_error(client_a.post("/api/v1/help"), 403, "permission_denied")


# --- patient A and patient B -----------------------------------------------------------------
DETAILS = ["diary-detail", "questionnaire-detail", "video-detail"]


def _without_request_id(response: Any) -> dict[str, Any]:
    body = response.json()
    body["error"].pop("request_id")
    return body


@pytest.mark.parametrize("name", DETAILS)
def test_b_ids_answer_a_exactly_like_missing_ids(world, client_a, b_rows, name):
    theirs = client_a.get(reverse(f"api:{name}", kwargs={"pk": b_rows[name]}))
    missing = client_a.get(reverse(f"api:{name}", kwargs={"pk": uuid.uuid4()}))
    assert_error(theirs, 404, "not_found")
    assert_error(missing, 404, "not_found")
    assert _without_request_id(theirs) == _without_request_id(missing)
    assert theirs.content.decode().replace(theirs["X-Request-ID"], "") == (
        missing.content.decode().replace(missing["X-Request-ID"], "")
    )
    assert SECRET not in theirs.content.decode()


@pytest.mark.parametrize("name", DETAILS)
def test_a_reading_b_is_logged_as_denied_against_b(world, client_a, b_rows, name):
    response = client_a.get(reverse(f"api:{name}", kwargs={"pk": b_rows[name]}))
    event = AccessEvent.objects.get(request_id=response["X-Request-ID"])
    assert event.outcome == "denied"
    assert event.actor_id == world.patient_a.user_id
    assert event.patient_id == world.patient_b.pk
    assert event.resource_id == str(b_rows[name])
    assert (event.status_code, event.reason) == (404, "not_owner")
    missing_id = uuid.uuid4()
    response = client_a.get(reverse(f"api:{name}", kwargs={"pk": missing_id}))
    event = AccessEvent.objects.get(request_id=response["X-Request-ID"])
    assert (event.outcome, event.patient_id, event.reason) == ("denied", None, "not_found")
    _assert_no_secret_logged()


@pytest.mark.parametrize("name", DETAILS)
@pytest.mark.parametrize("method", ["put", "patch", "delete", "post"])
def test_a_cannot_change_b_inputs(world, client_a, b_rows, name, method):
    model = {
        "diary-detail": DiaryEntry,
        "questionnaire-detail": QuestionnaireResponse,
        "video-detail": VideoSubmission,
    }[name]
    before = model.objects.filter(pk=b_rows[name]).values().get()
    response = getattr(client_a, method)(
        reverse(f"api:{name}", kwargs={"pk": b_rows[name]}), {"text": "mine now"}, format="json"
    )
    assert response.status_code in (404, 405)
    assert_error(response, response.status_code)
    assert model.objects.filter(pk=b_rows[name]).values().get() == before


def test_a_cannot_revoke_b_token(world, client_a, b_rows):
    assert_error(client_a.delete(f"/api/v1/auth/tokens/{b_rows['token-revoke']}"), 404, "not_found")
    assert ApiToken.objects.get(pk=b_rows["token-revoke"]).revoked_at is None
    b = APIClient()
    b.credentials(HTTP_AUTHORIZATION=f"Bearer {b_rows['b_token_raw']}")
    assert b.get("/api/v1/me").status_code == 200


@pytest.mark.parametrize("name", ["diary-list", "questionnaire-list", "video-list"])
def test_a_lists_only_own_inputs(world, client_a, b_rows, name):
    make_video(world.patient_a)
    client_a.post(
        "/api/v1/diary-entries",
        {"idempotency_key": new_key(), "client_timestamp": now_iso(), "text": "mine"},
        format="json",
    )
    client_a.post(
        "/api/v1/questionnaires",
        {
            "idempotency_key": new_key(),
            "client_timestamp": now_iso(),
            "instrument": "phq9",
            "answers": [0] * 9,
        },
        format="json",
    )
    response = client_a.get(reverse(f"api:{name}"))
    assert response.status_code == 200
    ids = {row["id"] for row in response.json()["results"]}
    assert len(ids) == 1
    assert str(b_rows[name.replace("-list", "-detail")]) not in ids
    assert SECRET not in response.content.decode()


def test_a_help_press_and_consent_change_touch_only_a(world, client_a, client_b):
    b_consents = list(
        ConsentRecord.objects.filter(patient=world.patient_b).values_list("pk", flat=True)
    )
    assert client_a.post("/api/v1/help").status_code == 201
    withdraw = {"scope": "text_analysis", "granted": False}
    assert client_a.post("/api/v1/consents", withdraw, format="json").status_code == 201
    assert not Emergency.objects.filter(patient=world.patient_b).exists()
    assert Emergency.objects.filter(patient=world.patient_a).count() == 1
    assert (
        list(ConsentRecord.objects.filter(patient=world.patient_b).values_list("pk", flat=True))
        == b_consents
    )
    b_state = {
        row["scope"]: row["granted"] for row in client_b.get("/api/v1/consents").json()["scopes"]
    }
    assert b_state["text_analysis"] is True
    b_history = client_b.get("/api/v1/consents/history").json()["results"]
    assert {row["id"] for row in b_history} == set(b_consents)


def test_me_shows_only_the_caller(world, client_a, client_b):
    a = client_a.get("/api/v1/me").json()
    b = client_b.get("/api/v1/me").json()
    assert a["pseudonym"] == world.patient_a.pseudonym
    assert b["pseudonym"] == world.patient_b.pseudonym
    assert "Alice" not in str(b) and "Bob" not in str(a)


# --- allowed reads are logged too --------------------------------------------------------------
def test_a_reading_own_entry_is_logged_as_allowed_with_the_patient(world, client_a):
    created = client_a.post(
        "/api/v1/diary-entries",
        {"idempotency_key": new_key(), "client_timestamp": now_iso(), "text": SECRET},
        format="json",
    )
    entry_id = created.json()["id"]
    response = client_a.get(f"/api/v1/diary-entries/{entry_id}")
    assert response.status_code == 200
    assert response.json()["text"] == SECRET
    event = AccessEvent.objects.get(request_id=response["X-Request-ID"])
    assert event.action == "diary.read"
    assert event.outcome == "allowed"
    assert event.patient_id == world.patient_a.pk
    assert event.actor_id == world.patient_a.user_id
    assert event.actor_role == "patient"
    assert event.resource_type == "DiaryEntry"
    assert event.resource_id == entry_id
    create_event = AccessEvent.objects.get(request_id=created["X-Request-ID"])
    assert (create_event.action, create_event.outcome) == ("diary.create", "allowed")
    _assert_no_secret_logged()


@pytest.mark.parametrize(
    ("url", "action"),
    [
        ("/api/v1/diary-entries", "diary.list"),
        ("/api/v1/questionnaires", "questionnaire.list"),
        ("/api/v1/videos", "video.list"),
    ],
)
def test_a_listing_is_logged_as_allowed(world, client_a, url, action):
    response = client_a.get(url)
    assert response.status_code == 200
    event = AccessEvent.objects.get(request_id=response["X-Request-ID"])
    assert (event.action, event.outcome, event.patient_id) == (
        action,
        "allowed",
        world.patient_a.pk,
    )
