"""Who gets an API bearer token from ``POST /api/v1/auth/login``, and with what.

- patients: the password;
- clinicians and auditors: the password and a current ``totp_code``, under the portal's lockout;
- everyone else (administrators, system accounts, superusers, a patient account with admin-site
  rights): nothing, even with the right password. They get exactly the wrong-password answer
  (``login_failed``, 401), so the API never confirms an administrator's password outside the
  admin site's own login and lockout; the refusal is recorded as a denied ``auth.login`` with the
  reason ``api_login_not_allowed``, which the auditors see. No API endpoint serves them.
"""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from django.test import Client
from rest_framework.test import APIClient

from clinician_portal.services import totp_secret_set
from privacy.models import AccessEvent, ApiToken
from screening.models import User
from tests.conftest import assert_error
from tests.factories import PASSWORD

LOGIN = "/api/v1/auth/login"
WRONG = "Tr0ub4dor&3-wrong-password"
ADDRESS = "192.0.2.44"


def login(username: str, password: str = PASSWORD, **extra: Any) -> Any:
    body = {"username": username, "password": password, **extra}
    return APIClient().post(LOGIN, body, format="json", REMOTE_ADDR=ADDRESS)


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def enrol(user: Any) -> pyotp.TOTP:
    secret = pyotp.random_base32()
    totp_secret_set(user=user, secret=secret, confirmed=True)
    return pyotp.TOTP(secret)


def _event_text(event: AccessEvent) -> str:
    return " ".join(str(getattr(event, f.attname)) for f in AccessEvent._meta.concrete_fields)


#: Accounts that must never get a token: (username, create_user keyword arguments).
NOT_SERVED = {
    "admin": {"role": "admin", "is_staff": True},
    "admin_without_site_rights": {"role": "admin"},
    "system": {"role": "system"},
    "superuser_default_role": {"role": "patient", "is_staff": True, "is_superuser": True},
    "patient_role_with_admin_site": {"role": "patient", "is_staff": True},
}


@pytest.fixture
def not_served(db: Any) -> dict[str, User]:
    return {
        name: User.objects.create_user(f"ops-{name}", password=PASSWORD, **flags)
        for name, flags in NOT_SERVED.items()
    }


# --- patients: unchanged -------------------------------------------------------------------------
def test_a_patient_gets_a_token_with_the_password_alone(world):
    response = login(world.patient_a.user.username)
    assert response.status_code == 201, response.content
    assert bearer(response.json()["token"]).get("/api/v1/me").status_code == 200


def test_a_patient_with_a_wrong_password_is_the_generic_401(world):
    assert_error(login(world.patient_a.user.username, WRONG), 401, "login_failed")


# --- clinicians and auditors: the second factor --------------------------------------------------
@pytest.mark.parametrize("who", ["clinician", "auditor"])
def test_staff_need_the_code(world, who):
    user = getattr(world, who).user
    totp = enrol(user)
    tokens = ApiToken.objects.count()
    assert_error(login(user.username), 401, "totp_required")
    assert_error(login(user.username, totp_code="000000"), 401, "login_failed")
    assert ApiToken.objects.count() == tokens
    response = login(user.username, totp_code=totp.now())
    assert response.status_code == 201, response.content
    client = bearer(response.json()["token"])
    if who == "auditor":
        # The auditor's token reads the clinic's audit trail, as the portal's console does.
        assert client.get("/api/v1/audit/events").status_code == 200
    else:
        assert client.get("/fhir/QuestionnaireResponse").status_code == 200
    assert client.get("/api/v1/me").status_code == 403  # never a patient endpoint


@pytest.mark.parametrize("who", ["clinician", "auditor"])
def test_staff_without_a_confirmed_second_factor_get_no_token(world, who):
    user = getattr(world, who).user
    assert_error(login(user.username, totp_code="123456"), 403, "totp_not_enrolled")
    assert not ApiToken.objects.filter(user=user).exists()


@pytest.mark.parametrize("who", ["clinician", "auditor"])
def test_the_portal_lockout_still_applies(world, settings, who):
    settings.VIGIL_PORTAL_LOCKOUT_ATTEMPTS = 3
    user = getattr(world, who).user
    totp = enrol(user)
    codes = [login(user.username, WRONG, totp_code=totp.now()).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    assert_error(login(user.username, totp_code=totp.now()), 429, "locked_out")
    assert not ApiToken.objects.filter(user=user).exists()


# --- everyone else: no token ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(NOT_SERVED))
def test_accounts_no_endpoint_serves_are_refused_with_the_right_password(world, not_served, name):
    user = not_served[name]
    error = assert_error(login(user.username), 401, "login_failed")
    # Exactly the wrong-password answer: the API never confirms an administrator's password.
    wrong = assert_error(login(user.username, WRONG), 401, "login_failed")
    assert {k: v for k, v in error.items() if k != "request_id"} == {
        k: v for k, v in wrong.items() if k != "request_id"
    }
    assert not ApiToken.objects.filter(user=user).exists()
    event = AccessEvent.objects.get(request_id=error["request_id"])
    assert (event.action, event.outcome, event.status_code, event.reason) == (
        "auth.login",
        "denied",
        401,
        "api_login_not_allowed",
    )
    assert (event.actor_id, event.actor_role, event.ip_address) == (None, "anonymous", ADDRESS)
    assert user.username not in _event_text(event) and PASSWORD not in _event_text(event)


@pytest.mark.parametrize("name", ["admin", "superuser_default_role"])
def test_a_code_does_not_help_an_administrator(world, not_served, name):
    assert_error(login(not_served[name].username, totp_code="123456"), 401, "login_failed")
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("name", list(NOT_SERVED))
def test_a_wrong_password_is_the_generic_401_for_them_too(world, not_served, name):
    assert_error(login(not_served[name].username, WRONG), 401, "login_failed")


def test_an_inactive_administrator_is_the_generic_401(world, not_served):
    user = not_served["admin"]
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert_error(login(user.username), 401, "login_failed")


def test_administrator_attempts_are_rate_limited_like_any_login(world, not_served, throttle_rates):
    throttle_rates(login="2/min")
    user = not_served["admin"]
    assert [login(user.username).status_code for _ in range(3)] == [401, 401, 429]


def test_the_auditor_sees_the_refusal(world, not_served):
    error = assert_error(login(not_served["admin"].username), 401, "login_failed")
    auditor = world.client_for(world.auditor.user)
    rows = auditor.get("/api/v1/audit/events", {"role": "anonymous", "ip": ADDRESS}).json()
    row = next(r for r in rows["results"] if r["request_id"] == error["request_id"])
    assert (row["action"], row["reason"], row["status_code"], row["client_ip"]) == (
        "auth.login",
        "api_login_not_allowed",
        401,
        ADDRESS,
    )


def test_the_admin_site_itself_is_unchanged(world, not_served):
    client = Client()
    response = client.post(
        "/admin/login/", {"username": not_served["admin"].username, "password": PASSWORD}
    )
    assert response.status_code == 302
