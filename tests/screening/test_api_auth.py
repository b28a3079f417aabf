"""Login, tokens and logout: expiring bearer tokens stored only as SHA-256, rate-limited login."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pyotp
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from clinician_portal.models import LoginThrottle, StaffTotp
from clinician_portal.services import totp_secret_set
from privacy.auth import token_issue
from privacy.models import AccessEvent, ApiToken
from tests.conftest import assert_error
from tests.factories import PASSWORD

LOGIN = "/api/v1/auth/login"
TOKENS = "/api/v1/auth/tokens"
LOGOUT = "/api/v1/auth/logout"
WRONG = "Tr0ub4dor&3-wrong-password"


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def login(username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return APIClient().post(
        LOGIN, {"username": username, "password": password, **extra}, format="json"
    )


def _event_text(event: AccessEvent) -> str:
    return " ".join(str(getattr(event, f.attname)) for f in AccessEvent._meta.concrete_fields)


# --- login -----------------------------------------------------------------------------------
def test_login_issues_a_token_that_works(world):
    user = world.patient_a.user
    response = login(user.username, device_name="Alice's phone")
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == {"token", "token_id", "expires_at"}
    assert data["token"].startswith("vgl_")
    assert len(data["token"]) >= 40
    token = ApiToken.objects.get(pk=data["token_id"])
    assert token.user_id == user.pk
    assert token.name == "Alice's phone"
    assert token.expires_at > timezone.now() + dt.timedelta(days=29)
    me = bearer(data["token"]).get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["pseudonym"] == world.patient_a.pseudonym
    event = AccessEvent.objects.get(request_id=response["X-Request-ID"])
    assert (event.action, event.outcome, event.actor_id) == ("auth.login", "allowed", user.pk)
    assert PASSWORD not in _event_text(event)
    assert data["token"] not in _event_text(event)


def test_tokens_are_stored_only_as_sha256(world):
    response = login(world.patient_a.user.username)
    raw = response.json()["token"]
    row = ApiToken.objects.filter(pk=response.json()["token_id"]).values().get()
    assert row["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert row["key_prefix"] == raw[:12]
    for value in row.values():
        assert raw not in str(value)
    # Nor anywhere in the access log.
    for event in AccessEvent.objects.all():
        assert raw not in _event_text(event)


def test_each_login_is_a_new_token(world):
    username = world.patient_a.user.username
    first = login(username).json()
    second = login(username).json()
    assert first["token"] != second["token"]
    assert first["token_id"] != second["token_id"]
    assert bearer(first["token"]).get("/api/v1/me").status_code == 200


@pytest.mark.parametrize("who", ["wrong password", "unknown user", "inactive user", "empty pw"])
def test_failed_login_is_401_and_logged_without_the_password(world, who):
    user = world.patient_a.user
    username, password = user.username, WRONG
    if who == "unknown user":
        username = "nobody-by-this-name"
    elif who == "inactive user":
        type(user).objects.filter(pk=user.pk).update(is_active=False)
        password = PASSWORD
    elif who == "empty pw":
        password = " "
    tokens_before = ApiToken.objects.count()
    response = login(username, password)
    error = assert_error(response, 401, "login_failed")
    assert error["message"] == "Wrong username or password."
    assert ApiToken.objects.count() == tokens_before
    event = AccessEvent.objects.get(request_id=error["request_id"])
    assert (event.action, event.outcome, event.status_code) == ("auth.login", "denied", 401)
    assert event.reason == "login_failed"
    assert event.actor_id is None
    for stored in AccessEvent.objects.all():
        text = _event_text(stored)
        assert password.strip() == "" or password not in text
        assert PASSWORD not in text
        assert WRONG not in text


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "a"},
        {"password": PASSWORD},
        {"username": "a", "password": "x" * 257},
        {"username": ["a"], "password": PASSWORD},
    ],
)
def test_malformed_login_is_400(world, body):
    response = APIClient().post(LOGIN, body, format="json")
    assert_error(response, 400, "validation_failed")
    assert not ApiToken.objects.exclude(name="test").exists()


def test_login_is_rate_limited(world, throttle_rates):
    throttle_rates(login="3/min")
    user = world.patient_a.user
    codes = [login(user.username, WRONG).status_code for _ in range(3)]
    assert codes == [401, 401, 401]
    limited = login(user.username, WRONG)
    error = assert_error(limited, 429, "rate_limited")
    assert isinstance(error["retry_after_seconds"], int)
    assert 0 < error["retry_after_seconds"] <= 60
    assert int(limited["Retry-After"]) > 0
    # Even the right password waits: the limit is on attempts, not on failures.
    assert_error(login(user.username), 429, "rate_limited")
    assert not ApiToken.objects.filter(user=user).exclude(name="test").exists()


def test_the_default_login_rate_allows_a_few_attempts(world):
    for _ in range(3):
        assert login(world.patient_a.user.username).status_code == 201


def test_login_ignores_a_bad_bearer_header(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer vgl_garbage")
    response = client.post(
        LOGIN, {"username": world.patient_a.user.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201


# --- tokens ----------------------------------------------------------------------------------
@pytest.fixture
def a_tokens(world: Any) -> dict[str, Any]:
    user = world.patient_a.user
    phone, phone_raw = token_issue(user=user, name="phone")
    tablet, tablet_raw = token_issue(user=user, name="tablet")
    revoked, _ = token_issue(user=user, name="revoked")
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    expired, _ = token_issue(user=user, name="expired")
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(hours=1))
    b_token, b_raw = token_issue(user=world.patient_b.user, name="b-phone")
    return {
        "phone": phone,
        "phone_raw": phone_raw,
        "tablet": tablet,
        "tablet_raw": tablet_raw,
        "b": b_token,
        "b_raw": b_raw,
    }


def test_the_token_list_shows_only_own_active_tokens_and_marks_the_current_one(world, a_tokens):
    response = bearer(a_tokens["phone_raw"]).get(TOKENS)
    assert response.status_code == 200
    rows = response.json()
    assert {row["name"] for row in rows} == {"phone", "tablet"}
    for row in rows:
        assert set(row) == {
            "id",
            "name",
            "key_prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "current",
        }
        assert row["current"] is (row["name"] == "phone")
    assert a_tokens["phone_raw"] not in response.content.decode()
    assert a_tokens["phone"].key_hash not in response.content.decode()
    from_tablet = bearer(a_tokens["tablet_raw"]).get(TOKENS).json()
    assert [row["name"] for row in from_tablet if row["current"]] == ["tablet"]


def test_using_a_token_records_when(world, a_tokens):
    assert ApiToken.objects.get(pk=a_tokens["phone"].pk).last_used_at is None
    bearer(a_tokens["phone_raw"]).get("/api/v1/me")
    assert ApiToken.objects.get(pk=a_tokens["phone"].pk).last_used_at is not None


def test_revoking_a_token_stops_it(world, a_tokens):
    phone = bearer(a_tokens["phone_raw"])
    tablet = bearer(a_tokens["tablet_raw"])
    response = phone.delete(f"{TOKENS}/{a_tokens['tablet'].pk}")
    assert response.status_code == 204
    assert ApiToken.objects.get(pk=a_tokens["tablet"].pk).revoked_at is not None
    assert_error(tablet.get("/api/v1/me"), 401, "authentication_failed")
    assert phone.get("/api/v1/me").status_code == 200
    assert {row["name"] for row in phone.get(TOKENS).json()} == {"phone"}
    # Revoking again is harmless.
    assert phone.delete(f"{TOKENS}/{a_tokens['tablet'].pk}").status_code == 204
    event = AccessEvent.objects.get(request_id=response["X-Request-ID"])
    assert (event.action, event.resource_id) == ("auth.token_revoke", str(a_tokens["tablet"].pk))


def test_a_token_can_revoke_itself(world, a_tokens):
    phone = bearer(a_tokens["phone_raw"])
    assert phone.delete(f"{TOKENS}/{a_tokens['phone'].pk}").status_code == 204
    assert_error(phone.get(TOKENS), 401, "authentication_failed")


def test_another_users_token_cannot_be_revoked(world, a_tokens):
    phone = bearer(a_tokens["phone_raw"])
    theirs = phone.delete(f"{TOKENS}/{a_tokens['b'].pk}")
    missing = phone.delete(f"{TOKENS}/00000000-0000-4000-8000-000000000000")
    assert_error(theirs, 404, "not_found")
    assert_error(missing, 404, "not_found")
    assert theirs.json()["error"]["message"] == missing.json()["error"]["message"]
    assert ApiToken.objects.get(pk=a_tokens["b"].pk).revoked_at is None
    assert bearer(a_tokens["b_raw"]).get("/api/v1/me").status_code == 200


def test_revoking_another_users_token_is_logged_as_denied(world, a_tokens):
    """The 404 reveals nothing, but probing token ids leaves a denied event per attempt."""
    phone = bearer(a_tokens["phone_raw"])
    for token_id in (a_tokens["b"].pk, "00000000-0000-4000-8000-000000000000"):
        response = phone.delete(f"{TOKENS}/{token_id}")
        assert_error(response, 404, "not_found")
        event = AccessEvent.objects.get(request_id=response["X-Request-ID"], outcome="denied")
        assert event.actor_id == world.patient_a.user_id
        assert (event.action, event.resource_type) == ("auth.token_revoke", "ApiToken")
        assert (event.resource_id, event.status_code) == (str(token_id), 404)
        assert event.patient_id is None  # a token is nobody's record: B's identity is not linked
    assert ApiToken.objects.get(pk=a_tokens["b"].pk).revoked_at is None
    # An allowed revocation is not a denial.
    ok = phone.delete(f"{TOKENS}/{a_tokens['tablet'].pk}")
    assert ok.status_code == 204
    assert not AccessEvent.objects.filter(request_id=ok["X-Request-ID"], outcome="denied").exists()


def test_the_schema_documents_the_token_list_as_a_list(world):
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    ok = schema["paths"]["/api/v1/auth/tokens"]["get"]["responses"]["200"]
    body = ok["content"]["application/json"]["schema"]
    assert body["type"] == "array"
    assert body["items"]["$ref"].endswith("/Token")


def test_logout_revokes_only_the_current_token(world, a_tokens):
    phone = bearer(a_tokens["phone_raw"])
    response = phone.post(LOGOUT)
    assert response.status_code == 204
    assert response.content == b""
    assert ApiToken.objects.get(pk=a_tokens["phone"].pk).revoked_at is not None
    assert_error(phone.get("/api/v1/me"), 401, "authentication_failed")
    assert_error(phone.post(LOGOUT), 401, "authentication_failed")
    assert bearer(a_tokens["tablet_raw"]).get("/api/v1/me").status_code == 200


def test_login_then_logout_round_trip(world):
    raw = login(world.patient_a.user.username).json()["token"]
    client = bearer(raw)
    assert client.get("/api/v1/diary-entries").status_code == 200
    assert client.post(LOGOUT).status_code == 204
    assert_error(client.get("/api/v1/diary-entries"), 401, "authentication_failed")


def test_token_endpoints_need_a_token(world, anon, a_tokens):
    assert_error(anon.get(TOKENS), 401, "authentication_required")
    assert_error(anon.post(LOGOUT), 401, "authentication_required")
    assert_error(anon.delete(f"{TOKENS}/{a_tokens['phone'].pk}"), 401, "authentication_required")
    assert ApiToken.objects.get(pk=a_tokens["phone"].pk).revoked_at is None


@pytest.mark.parametrize(
    ("method", "url"), [("get", LOGIN), ("get", LOGOUT), ("post", TOKENS), ("get", "token")]
)
def test_wrong_methods_on_auth_endpoints_are_405(world, a_tokens, method, url):
    if url == "token":
        url = f"{TOKENS}/{a_tokens['phone'].pk}"
    response = getattr(bearer(a_tokens["phone_raw"]), method)(url)
    assert_error(response, 405, "method_not_allowed")


def test_login_is_rate_limited_per_username_across_addresses(world, throttle_rates):
    throttle_rates(login="100/min", login_user="3/min")
    username = world.patient_a.user.username

    def from_address(name: str, password: str, address: str) -> Any:
        body = {"username": name, "password": password}
        return APIClient().post(LOGIN, body, format="json", REMOTE_ADDR=address)

    for index in range(3):
        assert from_address(username, "wrong", f"10.0.0.{index + 1}").status_code == 401
    # The same name in another case is the same account.
    assert_error(from_address(username.upper(), PASSWORD, "10.0.0.99"), 429, "rate_limited")
    # Another user from the same addresses is not affected.
    assert from_address(world.patient_b.user.username, PASSWORD, "10.0.0.1").status_code == 201


# --- staff: the second factor and the portal's lockout -----------------------------------------
STAFF = ["clinician", "auditor"]


def _staff(world: Any, who: str) -> Any:
    return world.clinician.user if who == "clinician" else world.auditor.user


def _enrol(user: Any) -> pyotp.TOTP:
    secret = pyotp.random_base32()
    totp_secret_set(user=user, secret=secret, confirmed=True)
    return pyotp.TOTP(secret)


@pytest.mark.parametrize("who", STAFF)
def test_staff_get_no_token_with_the_password_alone(world, who):
    user = _staff(world, who)
    _enrol(user)
    tokens_before = ApiToken.objects.count()
    error = assert_error(login(user.username), 401, "totp_required")
    assert "totp_code" in error["message"]
    assert ApiToken.objects.count() == tokens_before


def test_a_password_only_clinician_cannot_reach_fhir(world):
    """The reviewer's path: log in with the password, then read FHIR with the token."""
    user = world.clinician.user
    _enrol(user)
    response = login(user.username)
    assert response.status_code == 401
    assert "token" not in response.json()
    assert APIClient().get("/fhir/QuestionnaireResponse").status_code == 401


@pytest.mark.parametrize("who", STAFF)
def test_staff_get_a_token_with_password_and_totp_code(world, who):
    user = _staff(world, who)
    totp = _enrol(user)
    response = login(user.username, totp_code=totp.now(), device_name="EHR")
    assert response.status_code == 201, response.content
    token = ApiToken.objects.get(pk=response.json()["token_id"])
    assert token.user_id == user.pk
    resource = "QuestionnaireResponse" if who == "clinician" else "Consent"
    assert bearer(response.json()["token"]).get(f"/fhir/{resource}").status_code == 200
    reasons = list(
        AccessEvent.objects.filter(action="portal.login", actor_id=user.pk)
        .order_by("seq")
        .values_list("reason", flat=True)
    )
    assert reasons == ["password_ok", "totp_ok"]
    code = totp.now()
    for event in AccessEvent.objects.all():
        assert code not in _event_text(event) and PASSWORD not in _event_text(event)


def test_a_staff_code_is_accepted_once(world):
    user = world.clinician.user
    code = _enrol(user).now()
    assert login(user.username, totp_code=code).status_code == 201
    assert_error(login(user.username, totp_code=code), 401, "login_failed")


def test_a_staff_member_without_a_confirmed_second_factor_is_sent_to_the_portal(world):
    user = world.clinician.user
    totp_secret_set(user=user, secret=pyotp.random_base32(), confirmed=False)
    assert_error(login(user.username, totp_code="123456"), 403, "totp_not_enrolled")
    assert not ApiToken.objects.filter(user=user).exclude(name="test").exists()
    assert StaffTotp.objects.get(user=user).confirmed_at is None  # the API never confirms


@pytest.mark.parametrize("bad", ["password", "code"])
def test_staff_failures_are_the_generic_401_and_count_towards_the_portal_lockout(
    world, settings, bad
):
    settings.VIGIL_PORTAL_LOCKOUT_ATTEMPTS = 3
    user = world.clinician.user
    totp = _enrol(user)
    for _ in range(3):
        if bad == "password":
            response = login(user.username, WRONG, totp_code=totp.now())
        else:
            response = login(user.username, totp_code="000000")
        if response.status_code == 401:
            assert response.json()["error"]["code"] == "login_failed"
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "locked_out"
    assert LoginThrottle.objects.get(username=user.username.lower()).locked_until is not None
    # Even both right factors are refused now, here and in the portal.
    assert_error(login(user.username, totp_code=totp.now()), 429, "locked_out")
    assert not ApiToken.objects.filter(user=user).exclude(name="test").exists()
    portal = Client().post("/portal/login/", {"username": user.username, "password": PASSWORD})
    assert portal.status_code == 429


def test_a_portal_lockout_also_stops_api_logins(world, settings):
    settings.VIGIL_PORTAL_LOCKOUT_ATTEMPTS = 2
    user = world.auditor.user
    totp = _enrol(user)
    for _ in range(2):
        Client().post("/portal/login/", {"username": user.username, "password": WRONG})
    assert_error(login(user.username, totp_code=totp.now()), 429, "locked_out")


def test_a_patient_needs_no_code_and_an_extra_one_changes_nothing(world):
    user = world.patient_a.user
    assert login(user.username).status_code == 201
    assert login(user.username, totp_code="123456").status_code == 201
    assert not LoginThrottle.objects.exists()
