"""Sign-in: password then TOTP, enrolment shown once, lockout, idle logoff, CSRF, all audited."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest
from django.test import Client
from django.urls import reverse

from clinician_portal.access import SESSION_LAST_SEEN
from clinician_portal.models import LoginThrottle, StaffTotp
from clinician_portal.services import (
    portal_demo_totp_ensure,
    totp_secret,
    totp_secret_set,
)
from config.errors import DecryptionFailed
from privacy.models import AccessEvent
from tests.clinician_portal.conftest import Portal
from tests.factories import PASSWORD


def _events(action: str, **filters: Any) -> list[AccessEvent]:
    return list(AccessEvent.objects.filter(action=action, **filters).order_by("seq"))


def test_two_step_sign_in_then_queue(portal: Portal) -> None:
    user = portal.world.clinician.user
    client = portal.login_flow(user)
    response = client.get("/portal/alerts/")
    assert response.status_code == 200
    assert b"Alert queue" in response.content
    reasons = [e.reason for e in _events("portal.login", actor_id=user.pk)]
    assert reasons == ["password_ok", "totp_ok"]


def test_password_alone_does_not_sign_in(portal: Portal) -> None:
    client = Client()
    user = portal.world.clinician.user
    client.post("/portal/login/", {"username": user.username, "password": PASSWORD})
    response = client.get("/portal/alerts/")
    assert response.status_code == 302
    assert response["Location"].startswith("/portal/login/")


def test_first_sign_in_enrols_and_shows_the_secret_once(world: Any) -> None:
    user = world.clinician.user
    client = Client()
    response = client.post("/portal/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    page = client.get("/portal/login/verify/")
    assert page.status_code == 200
    record = StaffTotp.objects.get(user=user)
    secret = totp_secret(record=record)
    assert secret.encode() in page.content  # shown to enrol
    assert b"otpauth://totp/" in page.content
    assert secret.encode() not in bytes(record.sealed_secret)  # stored sealed
    response = client.post("/portal/login/verify/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.confirmed_at is not None
    # Signing in again never shows the confirmed secret.
    second = Client()
    second.post("/portal/login/", {"username": user.username, "password": PASSWORD})
    again = second.get("/portal/login/verify/")
    assert secret.encode() not in again.content
    assert b"otpauth://" not in again.content
    assert AccessEvent.objects.filter(action="portal.totp_enrol", actor_id=user.pk).count() == 1


def test_a_code_is_accepted_once(portal: Portal) -> None:
    user = portal.world.clinician.user
    code = portal.code(user)
    first = Client()
    first.post("/portal/login/", {"username": user.username, "password": PASSWORD})
    assert first.post("/portal/login/verify/", {"code": code}).status_code == 302
    replay = Client()
    replay.post("/portal/login/", {"username": user.username, "password": PASSWORD})
    response = replay.post("/portal/login/verify/", {"code": code})
    assert response.status_code == 400
    assert replay.get("/portal/alerts/").status_code == 302


def test_wrong_code_is_refused_and_audited(portal: Portal) -> None:
    user = portal.world.clinician.user
    client = Client()
    client.post("/portal/login/", {"username": user.username, "password": PASSWORD})
    wrong = portal.code(user, offset_steps=10)
    response = client.post("/portal/login/verify/", {"code": wrong})
    assert response.status_code == 400
    denied = _events("portal.login", actor_id=user.pk, outcome="denied")
    assert [e.reason for e in denied] == ["bad_totp"]
    assert wrong not in str([e.__dict__ for e in denied])


def test_lockout_after_repeated_failures(portal: Portal, settings: Any) -> None:
    settings.VIGIL_PORTAL_LOCKOUT_ATTEMPTS = 5
    settings.VIGIL_PORTAL_LOCKOUT_SECONDS = 900
    user = portal.world.clinician.user
    client = Client()
    statuses = [
        client.post("/portal/login/", {"username": user.username, "password": "wrong"}).status_code
        for _ in range(5)
    ]
    assert statuses == [400, 400, 400, 400, 429]
    # Even the right password is refused while locked.
    response = client.post("/portal/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 429
    assert b"locked" in response.content
    reasons = [e.reason for e in _events("portal.login", actor_id=user.pk)]
    assert reasons == ["bad_password"] * 4 + ["bad_password;locked", "locked_out"]
    assert LoginThrottle.objects.get(username=user.username.lower()).locked_until is not None


def test_lock_expires(portal: Portal, settings: Any) -> None:
    settings.VIGIL_PORTAL_LOCKOUT_ATTEMPTS = 2
    settings.VIGIL_PORTAL_LOCKOUT_SECONDS = 60
    user = portal.world.clinician.user
    client = Client()
    for _ in range(2):
        client.post("/portal/login/", {"username": user.username, "password": "wrong"})
    assert (
        client.post("/portal/login/", {"username": user.username, "password": PASSWORD}).status_code
        == 429
    )
    import datetime as dt

    from django.utils import timezone

    LoginThrottle.objects.update(locked_until=timezone.now() - dt.timedelta(seconds=1))
    ok = client.post("/portal/login/", {"username": user.username, "password": PASSWORD})
    assert ok.status_code == 302


def test_unknown_usernames_are_locked_too(db: Any, settings: Any) -> None:
    settings.VIGIL_PORTAL_LOCKOUT_ATTEMPTS = 3
    client = Client()
    codes = [
        client.post("/portal/login/", {"username": "nobody", "password": "x"}).status_code
        for _ in range(4)
    ]
    assert codes == [400, 400, 429, 429]
    events = _events("portal.login", outcome="denied")
    assert all(e.actor_id is None for e in events)
    assert all("nobody" not in (e.reason + e.purpose) for e in events)


@pytest.mark.parametrize("who", ["patient_a", "admin"])
def test_only_staff_may_sign_in(portal: Portal, who: str) -> None:
    from screening.models import User

    if who == "admin":
        user = User.objects.create_user("admin-x", password=PASSWORD, role="admin")
    else:
        user = portal.world.patient_a.user
    client = Client()
    response = client.post("/portal/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 400
    assert _events("portal.login", actor_id=user.pk)[0].reason == "role_not_allowed"


def test_idle_timeout_signs_out(portal: Portal, settings: Any) -> None:
    settings.VIGIL_PORTAL_IDLE_TIMEOUT_SECONDS = 60
    user = portal.world.clinician.user
    client = portal.sign_in(user)
    assert client.get("/portal/alerts/").status_code == 200
    session = client.session
    session[SESSION_LAST_SEEN] = time.time() - 61
    session.save()
    response = client.get("/portal/alerts/")
    assert response.status_code == 302
    assert "idle=1" in response["Location"]
    assert client.get("/portal/alerts/").status_code == 302  # really signed out
    assert _events("portal.logout", actor_id=user.pk)[0].reason == "idle"


def test_background_refresh_is_not_activity(portal: Portal, settings: Any) -> None:
    settings.VIGIL_PORTAL_IDLE_TIMEOUT_SECONDS = 60
    client = portal.sign_in(portal.world.clinician.user)
    session = client.session
    session[SESSION_LAST_SEEN] = time.time() - 50
    session.save()
    before = client.session[SESSION_LAST_SEEN]
    poll = client.get("/portal/alerts/rows/", headers={"X-Portal-Poll": "1"})
    assert poll.status_code == 200
    assert client.session[SESSION_LAST_SEEN] == before
    session = client.session
    session[SESSION_LAST_SEEN] = time.time() - 61
    session.save()
    expired = client.get("/portal/alerts/rows/", headers={"X-Portal-Poll": "1"})
    assert expired.status_code == 401


def test_csrf_is_enforced(portal: Portal) -> None:
    client = Client(enforce_csrf_checks=True)
    user = portal.world.clinician.user
    response = client.post("/portal/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 403
    page = client.get("/portal/login/")
    token = page.context["csrf_token"]
    response = client.post(
        "/portal/login/",
        {"username": user.username, "password": PASSWORD, "csrfmiddlewaretoken": str(token)},
    )
    assert response.status_code == 302


def test_logout_is_post_only_and_audited(portal: Portal) -> None:
    user = portal.world.clinician.user
    client = portal.sign_in(user)
    assert client.get("/portal/logout/").status_code == 405
    assert client.post("/portal/logout/").status_code == 302
    assert client.get("/portal/alerts/").status_code == 302
    assert _events("portal.logout", actor_id=user.pk)[0].reason == "user"


def test_open_redirect_is_refused(portal: Portal) -> None:
    user = portal.world.clinician.user
    client = Client()
    client.post(
        "/portal/login/?next=https://evil.example/",
        {"username": user.username, "password": PASSWORD, "next": "https://evil.example/"},
    )
    response = client.post(
        "/portal/login/verify/", {"code": portal.code(user), "next": "https://evil.example/"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:queue")


def test_sealed_secret_is_bound_to_its_user(portal: Portal) -> None:
    world = portal.world
    mine = StaffTotp.objects.get(user=world.clinician.user)
    theirs = StaffTotp.objects.get(user=world.colleague.user)
    theirs.sealed_secret = mine.sealed_secret
    theirs.kek_id = mine.kek_id
    theirs.save()
    with pytest.raises(DecryptionFailed):
        totp_secret(record=theirs)


def test_demo_secret_is_stable(world: Any) -> None:
    user = world.auditor.user
    first = portal_demo_totp_ensure(user)
    assert portal_demo_totp_ensure(user) == first
    assert StaffTotp.objects.get(user=user).confirmed_at is not None
    replaced = totp_secret_set(user=user, secret=pyotp.random_base32())
    assert replaced.confirmed_at is None
