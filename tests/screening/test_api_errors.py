"""One error shape for every refusal: {"error": {code, message, status, request_id, ...}}."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError
from rest_framework.test import APIClient

from tests.conftest import ERROR_KEYS, assert_error, new_key, now_iso

#: Extra keys a code may add to the base four.
EXTRAS = {
    "validation_failed": {"fields"},
    "rate_limited": {"retry_after_seconds"},
}


def _diary(**overrides: Any) -> dict[str, Any]:
    return {"idempotency_key": new_key(), "client_timestamp": now_iso(), "text": "hi", **overrides}


def _conflict(ctx: dict[str, Any]) -> Any:
    body = _diary()
    ctx["a"].post("/api/v1/diary-entries", body, format="json")
    return ctx["a"].post("/api/v1/diary-entries", {**body, "text": "other"}, format="json")


def _throttled(ctx: dict[str, Any]) -> Any:
    ctx["throttle_rates"](user="1/min")
    ctx["a"].get("/api/v1/me")
    return ctx["a"].get("/api/v1/me")


def _too_large(ctx: dict[str, Any]) -> Any:
    body = json.dumps(_diary(text="x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
    return ctx["a"].generic("POST", "/api/v1/diary-entries", body, content_type="application/json")


CASES: dict[str, tuple[int, str, Callable[[dict[str, Any]], Any]]] = {
    "validation": (
        400,
        "validation_failed",
        lambda c: c["a"].post("/api/v1/diary-entries", {"text": "hi"}, format="json"),
    ),
    "malformed json": (
        400,
        "malformed_request",
        lambda c: c["a"].generic(
            "POST",
            "/api/v1/diary-entries",
            b'{"text": "\xff\xfe"}',
            content_type="application/json",
        ),
    ),
    "bad content-length": (
        400,
        "bad_request",
        lambda c: c["a"].generic(
            "POST",
            "/api/v1/diary-entries",
            b"{}",
            content_type="application/json",
            CONTENT_LENGTH="-x",
        ),
    ),
    "anonymous": (401, "authentication_required", lambda c: c["anon"].get("/api/v1/me")),
    "bad token": (
        401,
        "authentication_failed",
        lambda c: c["bad"].get("/api/v1/me"),
    ),
    "login failed": (
        401,
        "login_failed",
        lambda c: c["anon"].post(
            "/api/v1/auth/login", {"username": "x", "password": "y"}, format="json"
        ),
    ),
    "clinician": (403, "permission_denied", lambda c: c["clinician"].get("/api/v1/me")),
    "missing record": (
        404,
        "not_found",
        lambda c: c["a"].get(f"/api/v1/diary-entries/{uuid.uuid4()}"),
    ),
    "unknown api route": (404, "not_found", lambda c: c["a"].get("/api/v1/nope")),
    "trailing slash": (404, "not_found", lambda c: c["a"].get("/api/v1/me/")),
    "non-uuid id": (404, "not_found", lambda c: c["a"].get("/api/v1/diary-entries/123")),
    "bad cursor": (
        404,
        "not_found",
        lambda c: c["a"].get("/api/v1/diary-entries", {"cursor": "zzz"}),
    ),
    "put on a list": (
        405,
        "method_not_allowed",
        lambda c: c["a"].put("/api/v1/diary-entries", _diary(), format="json"),
    ),
    "delete me": (405, "method_not_allowed", lambda c: c["a"].delete("/api/v1/me")),
    "patch consents": (405, "method_not_allowed", lambda c: c["a"].patch("/api/v1/consents")),
    "post history": (
        405,
        "method_not_allowed",
        lambda c: c["a"].post("/api/v1/consents/history"),
    ),
    "xml wanted": (
        406,
        "not_acceptable",
        lambda c: c["a"].get("/api/v1/me", HTTP_ACCEPT="application/xml"),
    ),
    "conflict": (409, "idempotency_conflict", _conflict),
    "too large": (413, "payload_too_large", _too_large),
    "form body": (
        415,
        "unsupported_media_type",
        lambda c: c["a"].post(
            "/api/v1/diary-entries", "text=hi", content_type="application/x-www-form-urlencoded"
        ),
    ),
    "throttled": (429, "rate_limited", _throttled),
}


@pytest.fixture
def ctx(world, client_a, anon, throttle_rates) -> dict[str, Any]:
    return {
        "a": client_a,
        "anon": anon,
        "clinician": world.client_for(world.clinician.user),
        "bad": APIClient(HTTP_AUTHORIZATION="Bearer vgl_never-issued"),
        "throttle_rates": throttle_rates,
    }


@pytest.mark.parametrize(("status", "code", "make"), CASES.values(), ids=CASES.keys())
def test_every_4xx_has_the_one_error_shape(ctx, status, code, make):
    response = make(ctx)
    assert response["Content-Type"] == "application/json"
    error = assert_error(response, status, code)
    assert set(error) - ERROR_KEYS <= EXTRAS.get(code, set()), error
    assert response["X-Request-ID"] == error["request_id"]
    assert len(error["request_id"]) >= 8
    assert "detail" not in response.content.decode()
    if response.status_code == 405:
        assert response["Allow"]
    if response.status_code == 429:
        assert int(response["Retry-After"]) == error["retry_after_seconds"]
    if response.status_code == 401:
        assert "WWW-Authenticate" in response or code == "login_failed"


@pytest.mark.parametrize(("status", "code", "make"), CASES.values(), ids=CASES.keys())
def test_a_well_formed_client_request_id_is_echoed_in_errors(ctx, status, code, make):
    rid = f"app-{uuid.uuid4().hex[:12]}"
    for client in (ctx["a"], ctx["anon"], ctx["clinician"], ctx["bad"]):
        client.defaults["HTTP_X_REQUEST_ID"] = rid
    response = make(ctx)
    assert response.status_code == status
    assert response["X-Request-ID"] == rid
    assert response.json()["error"]["request_id"] == rid


def test_a_hostile_request_id_is_replaced(world, client_a):
    response = client_a.get("/api/v1/nope", HTTP_X_REQUEST_ID="x\nInjected: yes")
    error = assert_error(response, 404, "not_found")
    assert error["request_id"] != "x\nInjected: yes"
    assert "\n" not in error["request_id"]


def test_each_request_gets_its_own_id(world, anon):
    ids = {anon.get("/api/v1/me").json()["error"]["request_id"] for _ in range(5)}
    assert len(ids) == 5


def test_validation_errors_name_every_bad_field(world, client_a):
    response = client_a.post(
        "/api/v1/diary-entries",
        {"idempotency_key": "x", "client_timestamp": "y", "self_rated_mood": 99},
        format="json",
    )
    error = assert_error(response, 400, "validation_failed")
    assert set(error["fields"]) == {
        "idempotency_key",
        "client_timestamp",
        "text",
        "self_rated_mood",
    }
    for messages in error["fields"].values():
        assert isinstance(messages, list) and all(isinstance(m, str) for m in messages)


def test_nested_field_errors_are_plain_strings(world, client_a):
    response = client_a.post(
        "/api/v1/questionnaires",
        {
            "idempotency_key": new_key(),
            "client_timestamp": now_iso(),
            "instrument": "gad7",
            "answers": [0, 0, 9, 0, 0, 0, "x"],
        },
        format="json",
    )
    error = assert_error(response, 400, "validation_failed")
    answers = error["fields"]["answers"]
    assert isinstance(answers, dict)
    assert set(answers) == {"2", "6"}
    assert all(isinstance(m, str) for ms in answers.values() for m in ms)


def test_error_messages_never_echo_the_submitted_text(world, client_a):
    secret = "my-very-private-words"
    responses = [
        client_a.post(
            "/api/v1/diary-entries", _diary(text=secret, self_rated_mood=11), format="json"
        ),
        client_a.post("/api/v1/diary-entries", _diary(text=secret * 5000), format="json"),
        client_a.generic(
            "POST",
            "/api/v1/diary-entries",
            f'{{"text": "{secret}", '.encode(),
            content_type="application/json",
        ),
    ]
    for response in responses:
        assert response.status_code == 400
        assert secret not in response.content.decode()


def test_a_database_outage_is_a_clean_503(world, client_a, monkeypatch):
    from screening import selectors

    def down(**kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(selectors, "patient_inputs_list", down)
    response = client_a.get("/api/v1/diary-entries")
    error = assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"] == "5"
    assert "connection refused" not in error["message"]


def test_an_unexpected_failure_is_a_500_in_the_error_shape(world, client_a, monkeypatch):
    from screening import selectors

    def boom(**kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(selectors, "patient_inputs_list", boom)
    client_a.raise_request_exception = False
    response = client_a.get("/api/v1/diary-entries")
    error = assert_error(response, 500, "server_error")
    assert "secret internals" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert error["request_id"] == response["X-Request-ID"]


def test_successful_responses_are_not_wrapped(world, client_a):
    response = client_a.get("/api/v1/me")
    assert response.status_code == 200
    assert "error" not in response.json()
    assert response["Cache-Control"] == "no-store"
