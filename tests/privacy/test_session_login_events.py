from __future__ import annotations

from privacy.models import AccessEvent
from tests.factories import PASSWORD


def test_admin_logins_and_failures_are_recorded_without_credentials(world, client):
    user = world.clinician.user
    user.is_staff = True
    user.save()
    bad = client.post("/admin/login/", {"username": user.username, "password": "wrong-guess-1"})
    assert bad.status_code == 200  # the admin shows its form again
    failed = AccessEvent.objects.filter(action="auth.session_login", outcome="denied")
    assert failed.count() == 1
    event = failed.get()
    assert event.actor_id is None
    assert user.username not in str(event.__dict__) and "wrong-guess-1" not in str(event.__dict__)

    ok = client.post("/admin/login/", {"username": user.username, "password": PASSWORD})
    assert ok.status_code == 302
    assert AccessEvent.objects.filter(
        action="auth.session_login", outcome="allowed", actor_id=user.pk
    ).exists()


def test_api_logins_are_recorded_once(world, client):
    from rest_framework.test import APIClient

    APIClient().post(
        "/api/v1/auth/login",
        {"username": world.patient_a.user.username, "password": "nope-nope"},
        format="json",
    )
    assert AccessEvent.objects.filter(action="auth.session_login").count() == 0
    assert AccessEvent.objects.filter(action="auth.login", outcome="denied").count() == 1
