"""The help button: recorded at once, answered with crisis lines, collapsed, never throttled."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from risk.intake import HELP_REQUEST_HANDLERS
from screening.models import CareTeam, Emergency, HelpRequest, Organisation
from tests.conftest import assert_error, new_key, now_iso
from tests.factories import make_patient

URL = "/api/v1/help"


@pytest.fixture
def spy() -> Any:
    """Registers a handler on the risk seam; records what it saw; removes it afterwards."""
    calls: list[dict[str, Any]] = []

    def handler(*, help_request: Any, new_emergency: bool) -> None:
        connection = transaction.get_connection()
        calls.append(
            {
                "help_request_id": help_request.pk,
                "emergency_id": help_request.emergency_id,
                "new_emergency": new_emergency,
                "in_atomic_block": connection.in_atomic_block,
                "press_visible": HelpRequest.objects.filter(pk=help_request.pk).exists(),
            }
        )

    HELP_REQUEST_HANDLERS.append(handler)
    yield calls
    HELP_REQUEST_HANDLERS.remove(handler)


def patient_client(world: Any, *, locale: str) -> Any:
    team = CareTeam.objects.get(pk=world.patient_a.care_team_id)
    patient = make_patient(team=team, clinician=world.clinician, locale=locale)
    return patient, world.client_for(patient.user)


def _numbers(crisis: dict[str, Any]) -> list[str]:
    return [r.get("phone", "") for r in crisis["resources"]]


# --- one press -------------------------------------------------------------------------------
def test_a_press_is_recorded_and_answered_with_crisis_resources(world, client_a, spy):
    response = client_a.post(URL)
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == {"help_request_id", "emergency_id", "received_at", "crisis"}
    press = HelpRequest.objects.get(pk=data["help_request_id"])
    assert press.patient_id == world.patient_a.pk
    assert str(press.emergency_id) == data["emergency_id"]
    assert press.locale == "en-US"
    emergency = Emergency.objects.get(pk=data["emergency_id"])
    assert (emergency.status, emergency.press_count) == ("open", 1)
    crisis = data["crisis"]
    assert crisis["locale"] == "en-US"
    assert crisis["emergency_number"] == "911"
    assert "988" in _numbers(crisis)
    assert crisis["message"]
    assert [c["new_emergency"] for c in spy] == [True]


def test_a_press_may_carry_a_key_and_a_timestamp(world, client_a):
    ts = now_iso()
    response = client_a.post(URL, {"idempotency_key": new_key(), "client_timestamp": ts})
    assert response.status_code == 201
    press = HelpRequest.objects.get()
    assert press.client_timestamp is not None
    assert press.client_timestamp.isoformat().startswith(ts[:19])


@pytest.mark.parametrize(
    ("locale", "emergency_number", "phone", "name"),
    [
        ("en-US", "911", "988", "988 Suicide & Crisis Lifeline"),
        ("es-US", "911", "988", "988 Suicide & Crisis Lifeline"),
        ("en-GB", "999", "116 123", "Samaritans"),
        ("en_GB", "999", "116 123", "Samaritans"),
        ("en-gb", "999", "116 123", "Samaritans"),
        ("fr-FR", "112", "3114", None),
        ("de-DE", "112", "0800 111 0 111", "TelefonSeelsorge"),
        ("en-AU", "000", "13 11 14", "Lifeline Australia"),
    ],
)
def test_resources_follow_the_patients_locale(world, locale, emergency_number, phone, name):
    patient, client = patient_client(world, locale=locale)
    crisis = client.post(URL).json()["crisis"]
    assert crisis["locale"] == locale
    assert crisis["emergency_number"] == emergency_number
    assert phone in _numbers(crisis)
    if name:
        assert name in [r["name"] for r in crisis["resources"]]
    assert HelpRequest.objects.get(patient=patient).locale == locale


@pytest.mark.parametrize("locale", ["xx-ZZ", "en", "pt-BR", ""])
def test_an_unknown_region_falls_back_to_112(world, locale):
    patient, client = patient_client(world, locale=locale or "en-US")
    if not locale:
        type(patient).objects.filter(pk=patient.pk).update(locale="")
    response = client.post(URL)
    assert response.status_code == 201
    assert response.json()["crisis"]["emergency_number"] == "112"
    assert HelpRequest.objects.filter(patient=patient).count() == 1


def test_get_shows_resources_without_recording_a_press(world, client_a, spy):
    response = client_a.get(URL)
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"locale", "emergency_number", "message", "resources"}
    assert data["emergency_number"] == "911"
    assert "988" in _numbers(data)
    assert HelpRequest.objects.count() == 0
    assert Emergency.objects.count() == 0
    assert spy == []


# --- clinic overrides ------------------------------------------------------------------------
CLINIC_LINE = {"name": "Clinic out-of-hours line", "phone": "+1 212 555 0100", "hours": "24/7"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"en-US": {"resources": [CLINIC_LINE]}},
        {"US": {"resources": [CLINIC_LINE]}},
        {"en-US": [CLINIC_LINE]},  # the shape documented on Organisation.crisis_resources
    ],
    ids=["by locale", "by region", "list of resources"],
)
@pytest.mark.parametrize("method", ["post", "get"])
def test_clinic_overrides_come_first(world, client_a, overrides, method):
    Organisation.objects.filter(pk=world.clinic.pk).update(crisis_resources=overrides)
    response = getattr(client_a, method)(URL)
    assert response.status_code in (200, 201)
    data = response.json()
    crisis = data["crisis"] if method == "post" else data
    assert crisis["resources"][0]["name"] == CLINIC_LINE["name"]
    assert crisis["resources"][0]["phone"] == CLINIC_LINE["phone"]
    assert "988" in _numbers(crisis)  # the national line is still offered
    assert crisis["emergency_number"] == "911"


def test_a_clinic_may_replace_the_emergency_number(world, client_a):
    Organisation.objects.filter(pk=world.clinic.pk).update(
        crisis_resources={"en-US": {"emergency_number": "000", "resources": []}}
    )
    assert client_a.post(URL).json()["crisis"]["emergency_number"] == "000"


def test_overrides_for_another_locale_are_not_shown(world, client_a):
    Organisation.objects.filter(pk=world.clinic.pk).update(
        crisis_resources={"en-GB": {"resources": [CLINIC_LINE]}}
    )
    crisis = client_a.post(URL).json()["crisis"]
    assert CLINIC_LINE["name"] not in [r["name"] for r in crisis["resources"]]


# --- repeated presses ------------------------------------------------------------------------
def test_thirty_quick_presses_are_thirty_requests_and_one_emergency(world, client_a, spy):
    responses = [client_a.post(URL) for _ in range(30)]
    assert [r.status_code for r in responses] == [201] * 30
    assert len({r.json()["help_request_id"] for r in responses}) == 30
    assert len({r.json()["emergency_id"] for r in responses}) == 1
    assert HelpRequest.objects.filter(patient=world.patient_a).count() == 30
    emergency = Emergency.objects.get(patient=world.patient_a)
    assert emergency.status == "open"
    assert emergency.press_count == 30
    assert emergency.presses.count() == 30
    assert (
        emergency.last_press_at >= HelpRequest.objects.order_by("received_at").first().received_at
    )
    assert [c["new_emergency"] for c in spy] == [True] + [False] * 29
    assert all(c["in_atomic_block"] and c["press_visible"] for c in spy)


def test_a_retried_press_with_the_same_key_creates_nothing(world, client_a, spy):
    key = new_key()
    first = client_a.post(URL, {"idempotency_key": key})
    again = client_a.post(URL, {"idempotency_key": key})
    assert first.status_code == again.status_code == 201
    assert again.json()["help_request_id"] == first.json()["help_request_id"]
    assert again.json()["emergency_id"] == first.json()["emergency_id"]
    assert again.json()["crisis"]["emergency_number"] == "911"
    assert HelpRequest.objects.count() == 1
    assert Emergency.objects.get().press_count == 1
    assert len(spy) == 1
    other = client_a.post(URL, {"idempotency_key": new_key()})
    assert other.json()["help_request_id"] != first.json()["help_request_id"]
    assert Emergency.objects.get().press_count == 2


def test_two_patients_have_their_own_emergencies(world, client_a, client_b):
    a = client_a.post(URL).json()
    b = client_b.post(URL).json()
    assert a["emergency_id"] != b["emergency_id"]
    assert Emergency.objects.count() == 2


def test_after_an_emergency_is_closed_a_press_opens_a_new_one(world, client_a, spy):
    first = client_a.post(URL).json()
    Emergency.objects.filter(pk=first["emergency_id"]).update(
        status="closed", closed_at=timezone.now()
    )
    second = client_a.post(URL).json()
    assert second["emergency_id"] != first["emergency_id"]
    assert Emergency.objects.get(pk=second["emergency_id"]).press_count == 1
    assert Emergency.objects.get(pk=first["emergency_id"]).press_count == 1
    assert [c["new_emergency"] for c in spy] == [True, True]


def test_each_press_is_an_access_event_with_no_content(world, client_a):
    from privacy.models import AccessEvent

    response = client_a.post(URL)
    # The press's own event (the risk engine records the alert it raised as another event).
    event = AccessEvent.objects.get(request_id=response["X-Request-ID"], action="help.create")
    assert (event.action, event.outcome, event.patient_id) == (
        "help.create",
        "allowed",
        world.patient_a.pk,
    )
    assert event.resource_id == response.json()["help_request_id"]


# --- never throttled, never waits on the broker ----------------------------------------------
def test_help_is_never_throttled_while_the_diary_is(world, client_a, throttle_rates):
    throttle_rates(user="2/min")
    diary = {"client_timestamp": now_iso(), "text": "x"}
    codes = [
        client_a.post("/api/v1/diary-entries", {**diary, "idempotency_key": new_key()}).status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 429]
    throttled = client_a.get("/api/v1/diary-entries")
    error = assert_error(throttled, 429, "rate_limited")
    assert error["retry_after_seconds"] > 0
    for _ in range(30):
        assert client_a.post(URL).status_code == 201
    assert client_a.get(URL).status_code == 200
    assert Emergency.objects.get().press_count == 30


def test_help_works_when_the_broker_is_unreachable(world, client_a, monkeypatch, spy):
    import celery.app.task
    import kombu.messaging
    from celery.app.base import Celery

    from config.celery import app

    attempts: list[str] = []

    def refuse(name: str) -> Any:
        def _raise(*args: Any, **kwargs: Any) -> None:
            attempts.append(name)
            raise ConnectionRefusedError("broker is down")

        return _raise

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(kombu.messaging.Producer, "publish", refuse("publish"))
    monkeypatch.setattr(Celery, "send_task", refuse("send_task"))
    monkeypatch.setattr(celery.app.task.Task, "apply_async", refuse("apply_async"))
    response = client_a.post(URL)
    assert response.status_code == 201
    assert response.json()["crisis"]["emergency_number"] == "911"
    assert HelpRequest.objects.count() == 1
    assert len(spy) == 1
    assert attempts == []


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [("database", 503, "service_unavailable"), ("bug", 500, "server_error")],
    ids=["database-down", "internal-error"],
)
def test_a_press_that_cannot_be_recorded_still_answers_with_crisis_resources(
    world, monkeypatch, failure, status, code
):
    """The database is down (or a bug): the press is not stored, but the answer still tells the
    patient where to get help, for their language, and that the clinic was not told."""
    from django.db import OperationalError

    from screening.api import views

    def broken(**kwargs: Any) -> Any:
        raise OperationalError("down") if failure == "database" else RuntimeError("bug")

    monkeypatch.setattr(views, "help_request_create", broken)
    client = world.client_for(world.patient_a.user)
    client.raise_request_exception = False
    response = client.post(URL, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.8")
    error = assert_error(response, status, code)
    crisis = error["crisis"]
    assert crisis["emergency_number"] == "999"
    assert crisis["resources"]
    assert "could not be recorded" in crisis["message"]
    assert HelpRequest.objects.count() == 0


def test_other_endpoints_add_no_crisis_block_to_their_errors(world, monkeypatch):
    from django.db import OperationalError

    from screening.api import views

    def broken(**kwargs: Any) -> Any:
        raise OperationalError("down")

    monkeypatch.setattr(views, "diary_entry_create", broken)
    client = world.client_for(world.patient_a.user)
    body = {"idempotency_key": new_key(), "client_timestamp": now_iso()}
    error = assert_error(client.post("/api/v1/diary-entries", {**body, "text": "x"}), 503)
    assert "crisis" not in error


# --- the risk seam ---------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_risk_seam_runs_inside_the_press_transaction(world, client_a, spy):
    # No test-case transaction here: an atomic block inside the handler is the service's own.
    assert transaction.get_connection().in_atomic_block is False
    first = client_a.post(URL).json()
    second = client_a.post(URL).json()
    assert [c["in_atomic_block"] for c in spy] == [True, True]
    assert [c["new_emergency"] for c in spy] == [True, False]
    assert [str(c["help_request_id"]) for c in spy] == [
        first["help_request_id"],
        second["help_request_id"],
    ]
    assert all(c["press_visible"] for c in spy)


def test_a_failing_risk_handler_never_loses_the_press(world, client_a, caplog):
    def broken(*, help_request: Any, new_emergency: bool) -> None:
        Emergency.objects.update(press_count=999)  # a half-done write by the broken handler
        raise RuntimeError("risk engine failed")

    HELP_REQUEST_HANDLERS.append(broken)
    try:
        response = client_a.post(URL)
    finally:
        HELP_REQUEST_HANDLERS.remove(broken)
    # The patient is answered and the press stands; the handler's own writes are rolled back
    # (it ran in a savepoint) and the failure is logged with ids only.
    assert response.status_code == 201
    assert response.json()["crisis"]["emergency_number"] == "911"
    assert HelpRequest.objects.count() == 1
    assert Emergency.objects.get().press_count == 1
    assert any("risk intake failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "body",
    [
        {"idempotency_key": "not-a-uuid"},
        {"client_timestamp": "yesterday-ish"},
        {"idempotency_key": "nope", "client_timestamp": 12},
        ["a", "list"],
    ],
)
def test_malformed_optional_fields_never_refuse_help(world, client_a, body):
    response = client_a.post(URL, body, format="json")
    assert response.status_code == 201
    assert HelpRequest.objects.count() == 1


def test_a_valid_field_is_kept_when_the_other_is_malformed(world, client_a):
    key = str(uuid.uuid4())
    response = client_a.post(
        URL, {"idempotency_key": key, "client_timestamp": "garbage"}, format="json"
    )
    assert response.status_code == 201
    assert str(HelpRequest.objects.get().idempotency_key) == key


def test_a_body_that_is_not_json_never_refuses_help(world, client_a):
    response = client_a.post(URL, data=b"\xff{not json", content_type="application/json")
    assert response.status_code == 201
    assert HelpRequest.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("idempotency_key=x&client_timestamp=y", "application/x-www-form-urlencoded"),
        ("help", "text/plain"),
        (
            b'--B0UND\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--B0UND--\r\n',
            "multipart/form-data; boundary=B0UND",
        ),
    ],
    ids=["form-encoded", "text-plain", "multipart"],
)
def test_a_body_of_an_unsupported_media_type_never_refuses_help(
    world, client_a, spy, data, content_type
):
    response = client_a.post(URL, data=data, content_type=content_type)
    assert response.status_code == 201, response.content
    press = HelpRequest.objects.get()
    assert str(press.pk) == response.json()["help_request_id"]
    assert press.idempotency_key is None
    assert response.json()["crisis"]["emergency_number"] == "911"
    assert [c["new_emergency"] for c in spy] == [True]


@pytest.mark.parametrize(
    "case", ["over the body limit", "a broken Content-Length"], ids=["too-large", "bad-length"]
)
def test_an_oversized_or_broken_body_never_refuses_help(world, client_a, spy, settings, case):
    """The size check runs before any view (413/400 for every other endpoint); the help button
    leaves such a body unread and records the press."""
    if case == "over the body limit":
        body = b'{"pad": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + b'"}'
        response = client_a.post(URL, data=body, content_type="application/json")
    else:
        response = client_a.post(
            URL, data=b"{}", content_type="application/json", CONTENT_LENGTH="abc"
        )
    assert response.status_code == 201, response.content[:300]
    assert HelpRequest.objects.count() == 1
    assert response.json()["crisis"]["resources"]
    assert [c["new_emergency"] for c in spy] == [True]


def test_other_endpoints_still_refuse_an_oversized_body(world, client_a, settings):
    body = b'{"text": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + b'"}'
    response = client_a.post("/api/v1/diary-entries", data=body, content_type="application/json")
    assert response.status_code == 413


# --- refusals --------------------------------------------------------------------------------
def test_anonymous_cannot_press(world, anon):
    assert_error(anon.post(URL), 401, "authentication_required")
    assert HelpRequest.objects.count() == 0


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_are_405(world, client_a, method):
    assert_error(getattr(client_a, method)(URL), 405, "method_not_allowed")
    assert HelpRequest.objects.count() == 0
