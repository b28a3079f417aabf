"""``/readyz`` says when escalation has silently stopped: an open alert or a pending notification
more than two minutes past due means beat is not running or no worker runs the sweeps
(config/health.py). Without it the first sign would be an alert nobody answered."""

from __future__ import annotations

import datetime as dt

from freezegun import freeze_time

from config.health import OVERDUE_AFTER
from risk import services, tasks
from risk.models import Alert, OutboxMessage
from risk.rules.engine import HelpPressed
from tests.risk.conftest import actor_for

T0 = dt.datetime(2025, 6, 10, 14, 0, tzinfo=dt.UTC)


def raise_red(rw) -> Alert:
    with freeze_time(T0):
        (result,) = services.signal_evaluate(
            patient=rw.patient, event=HelpPressed(local_date=T0.date(), help_request_id="press-1")
        )
    return result.alert


def readiness(client, at: dt.datetime) -> dict:
    with freeze_time(at):
        response = client.get("/readyz")
    assert response.status_code == 200  # degraded still serves: an operator must act
    return response.json()


def test_a_fresh_alert_and_its_notifications_are_not_overdue(rw, client):
    raise_red(rw)
    body = readiness(client, T0 + OVERDUE_AFTER)
    assert body["status"] == "ok"
    assert body["checks"]["escalation_sweep"] == "ok"
    assert body["checks"]["notifications"] == "ok"


def test_nobody_running_the_relay_shows_as_late_notifications(rw, client):
    raise_red(rw)
    assert OutboxMessage.objects.filter(state="pending").exists()
    body = readiness(client, T0 + OVERDUE_AFTER + dt.timedelta(seconds=1))
    assert body["status"] == "degraded"
    assert body["checks"]["notifications"] == "degraded"

    with freeze_time(T0 + OVERDUE_AFTER + dt.timedelta(seconds=2)):
        tasks.outbox_relay()  # the relay runs again: nothing is left past due
    body = readiness(client, T0 + OVERDUE_AFTER + dt.timedelta(seconds=3))
    assert body["checks"]["notifications"] == "ok"


def test_nobody_running_the_sweep_shows_as_an_overdue_escalation(rw, client):
    alert = raise_red(rw)
    with freeze_time(T0):
        tasks.outbox_relay()
    due = alert.next_escalation_at
    assert due is not None
    assert readiness(client, due + OVERDUE_AFTER)["checks"]["escalation_sweep"] == "ok"

    late = due + OVERDUE_AFTER + dt.timedelta(seconds=1)
    body = readiness(client, late)
    assert (body["status"], body["checks"]["escalation_sweep"]) == ("degraded", "degraded")

    with freeze_time(late):
        tasks.escalation_sweep()  # the sweep runs again: the alert moves to its next deadline
        tasks.outbox_relay()
    alert.refresh_from_db()
    assert alert.next_escalation_at is not None and alert.next_escalation_at > late
    body = readiness(client, late)
    assert body["checks"]["escalation_sweep"] == "ok"
    assert body["checks"]["notifications"] == "ok"


def test_an_acknowledged_alert_is_not_overdue(rw, client):
    alert = raise_red(rw)
    with freeze_time(T0):
        tasks.outbox_relay()
        services.alert_acknowledge(actor=actor_for(rw.clinician), alert_id=alert.pk)
    body = readiness(client, T0 + dt.timedelta(hours=3))
    assert body["checks"]["escalation_sweep"] == "ok"
