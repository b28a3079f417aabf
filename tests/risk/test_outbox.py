"""The notification outbox: e-mail and signed webhooks, retries with backoff, exactly one delivery
per idempotency key on our side (concurrent relays, a crash between sending and marking), the
broker down, consent for the emergency contact, and messages free of patient text."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core import mail
from django.db import connection, connections
from freezegun import freeze_time

from privacy.audit import Actor
from privacy.consent import consent_change
from risk import services, tasks
from risk.models import Alert, EscalationPolicy, OutboxMessage
from risk.rules.engine import HelpPressed
from screening.models import DiaryEntry
from screening.services.people import emergency_contact_set
from tests.conftest import new_key, now_iso
from tests.risk.conftest import phq9, submit_phq9

T0 = dt.datetime(2025, 6, 10, 14, 0, tzinfo=dt.UTC)
SECRET = "test-webhook-secret-0123456789abcdef"


class Hook:
    """A local SMS/pager gateway: records each POST; answers 500 while ``failures`` > 0."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.failures = 0
        self.lock = threading.Lock()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def hook(settings: Any) -> Any:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.requests.append((dict(self.headers), body))
                failing = state.failures > 0
                state.failures -= int(failing)
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.VIGIL_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{server.server_address[1]}/hook"
    settings.VIGIL_ALERT_WEBHOOK_SECRET = SECRET
    yield state
    server.shutdown()
    server.server_close()


def red(rw: Any, ref: str = "press-1") -> Alert:
    (result,) = services.signal_evaluate(
        patient=rw.patient, event=HelpPressed(local_date=T0.date(), help_request_id=ref)
    )
    return result.alert


def keys_sent_by_mail() -> list[str]:
    return [m.extra_headers["X-Vigil-Idempotency-Key"] for m in mail.outbox]


# --- e-mail --------------------------------------------------------------------------------------
def test_email_is_delivered_once_per_key(rw):
    submit_phq9(rw.patient, phq9(2, 1))
    message = OutboxMessage.objects.get()
    assert message.state == "pending"
    assert services.outbox_relay()["sent"] == 1
    (email,) = mail.outbox
    assert email.to == ["treating@clinic.test"]
    assert email.extra_headers["X-Vigil-Idempotency-Key"] == message.idempotency_key
    assert "/portal/alerts/" in email.body
    message.refresh_from_db()
    assert (message.state, message.attempts, message.last_error) == ("sent", 1, "")
    assert message.sent_at is not None
    assert services.outbox_relay()["claimed"] == 0
    assert len(mail.outbox) == 1
    state = services.alert_delivery_state(alert=message.alert)
    assert [(d["channel"], d["state"]) for d in state] == [("email", "sent")]


def test_a_clinician_without_an_address_is_a_visible_failure(rw):
    rw.clinician.user.email = ""
    rw.clinician.user.save()
    submit_phq9(rw.patient, phq9(2, 1))
    services.outbox_relay()
    message = OutboxMessage.objects.get()
    assert (message.state, message.last_error) == ("failed", "no_address")


# --- webhook -------------------------------------------------------------------------------------
def test_webhooks_are_signed_and_the_signature_verifies(rw, hook):
    alert = red(rw)
    channels = sorted(OutboxMessage.objects.values_list("recipient_id", "channel"))
    assert channels == sorted(
        (str(user), channel)
        for user in (rw.clinician.user_id, rw.on_call.user_id)  # red pages the on-call too
        for channel in ("email", "webhook")
    )
    counts = services.outbox_relay()
    assert counts["sent"] == 4
    assert len(hook.requests) == 2
    for headers, body in hook.requests:
        timestamp, signature = headers["X-Vigil-Timestamp"], headers["X-Vigil-Signature"]
        assert signature.startswith("sha256=")
        assert services.webhook_signature_verify(
            secret=SECRET, timestamp=timestamp, body=body, signature=signature
        )
        assert not services.webhook_signature_verify(
            secret=SECRET, timestamp=timestamp, body=body + b" ", signature=signature
        )
        assert not services.webhook_signature_verify(
            secret="another-secret", timestamp=timestamp, body=body, signature=signature
        )
        assert not services.webhook_signature_verify(
            secret=SECRET,
            timestamp=timestamp,
            body=body,
            signature=signature,
            now=int(timestamp) + 3600,  # a replay an hour later
        )
        payload = json.loads(body)
        assert payload["idempotency_key"] == headers["X-Vigil-Idempotency-Key"]
        assert set(payload) == {
            "type",
            "alert_id",
            "tier",
            "level",
            "repeat",
            "link",
            "idempotency_key",
            "recipient",
        }
        assert payload["alert_id"] == str(alert.pk) and payload["tier"] == "red"


def test_failures_retry_with_exponential_backoff_then_succeed(rw, hook):
    EscalationPolicy.objects.filter(pk=rw.policy.pk).update(on_call=None)
    hook.failures = 2
    with freeze_time(T0):
        red(rw)
        services.outbox_relay()
    webhook = OutboxMessage.objects.get(channel="webhook")
    assert (webhook.state, webhook.attempts, webhook.last_error) == ("pending", 1, "http_500")
    assert webhook.next_attempt_at == T0 + dt.timedelta(seconds=30)
    with freeze_time(T0 + dt.timedelta(seconds=29)):
        assert services.outbox_relay()["claimed"] == 0  # not due yet
    with freeze_time(T0 + dt.timedelta(seconds=30)):
        services.outbox_relay()
    webhook.refresh_from_db()
    assert (webhook.attempts, webhook.next_attempt_at) == (2, T0 + dt.timedelta(seconds=90))
    with freeze_time(T0 + dt.timedelta(seconds=90)):
        services.outbox_relay()
    webhook.refresh_from_db()
    assert (webhook.state, webhook.attempts, webhook.last_error) == ("sent", 3, "")
    keys = {headers["X-Vigil-Idempotency-Key"] for headers, _ in hook.requests}
    assert len(hook.requests) == 3 and keys == {webhook.idempotency_key}


def test_delivery_gives_up_after_the_last_attempt(rw, hook, settings):
    settings.VIGIL_ALERT_OUTBOX_MAX_ATTEMPTS = 2
    EscalationPolicy.objects.filter(pk=rw.policy.pk).update(on_call=None)
    hook.failures = 100
    with freeze_time(T0):
        alert = red(rw)
        services.outbox_relay()
    with freeze_time(T0 + dt.timedelta(minutes=1)):
        services.outbox_relay()
    with freeze_time(T0 + dt.timedelta(hours=2)):
        assert services.outbox_relay()["claimed"] == 0
    delivery = {d["channel"]: d for d in services.alert_delivery_state(alert=alert)}
    assert (delivery["webhook"]["state"], delivery["webhook"]["attempts"]) == ("failed", 2)
    assert delivery["webhook"]["last_error"] == "http_500"
    assert delivery["email"]["state"] == "sent"


def test_an_unreachable_gateway_is_a_connection_error(rw, settings):
    settings.VIGIL_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/nothing-listens-here"
    settings.VIGIL_ALERT_WEBHOOK_SECRET = SECRET
    red(rw)
    services.outbox_relay()
    errors = set(OutboxMessage.objects.filter(channel="webhook").values_list("state", "last_error"))
    assert errors == {("pending", "connection_error")}


# --- exactly once on our side --------------------------------------------------------------------
def test_a_second_relay_running_meanwhile_claims_nothing_already_claimed(rw, monkeypatch):
    red(rw)
    inner: list[dict[str, int]] = []
    original = services._send_email

    def send_while_another_relay_runs(message: Any, address: Any) -> None:
        if not inner:
            inner.append(services.outbox_relay())  # a second relay starts mid-delivery
        original(message, address)

    monkeypatch.setattr(services, "_send_email", send_while_another_relay_runs)
    outer = services.outbox_relay()
    assert outer["sent"] == 2 and inner == [
        {"claimed": 0, "sent": 0, "retry": 0, "failed": 0, "cancelled": 0}
    ]
    assert sorted(keys_sent_by_mail()) == sorted(
        OutboxMessage.objects.values_list("idempotency_key", flat=True)
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_relays_in_threads_deliver_each_key_once(rw, monkeypatch):
    alert = red(rw)
    for i in range(18):
        OutboxMessage.objects.create(
            alert=alert,
            recipient_kind="user",
            recipient_id=str(rw.clinician.user_id),
            channel="email",
            level=9,
            repeat=i,
            idempotency_key=f"test-{i}",
            payload={"type": "alert", "alert_id": str(alert.pk), "tier": "red"},
            next_attempt_at=T0,
        )
    total = OutboxMessage.objects.count()
    delivered: list[str] = []
    lock = threading.Lock()

    def slow_send(message: Any, address: Any) -> None:
        time.sleep(0.01)
        with lock:
            delivered.append(message.idempotency_key)

    monkeypatch.setattr(services, "_send_email", slow_send)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def relay() -> None:
        try:
            barrier.wait()
            services.outbox_relay(batch=3)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=relay) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(delivered) == total and len(set(delivered)) == total
    assert set(OutboxMessage.objects.values_list("state", flat=True)) == {"sent"}


def test_a_crash_between_sending_and_marking_resends_with_the_same_key(rw, monkeypatch, settings):
    """At least once: the receiver de-duplicates on the idempotency key (a header and the
    e-mail's Message-ID; for webhooks also in the signed body)."""
    EscalationPolicy.objects.filter(pk=rw.policy.pk).update(on_call=None)
    original_mark = services._mark

    def die_after_sending(message: Any, **changes: Any) -> bool:
        raise SystemExit("the worker was killed")

    with freeze_time(T0):
        red(rw)
        monkeypatch.setattr(services, "_mark", die_after_sending)
        with pytest.raises(SystemExit):
            services.outbox_relay()
        monkeypatch.setattr(services, "_mark", original_mark)
    message = OutboxMessage.objects.get()
    assert message.state == "sending" and len(mail.outbox) == 1
    with freeze_time(T0 + dt.timedelta(seconds=settings.VIGIL_ALERT_OUTBOX_LEASE_SECONDS - 1)):
        assert services.outbox_relay()["claimed"] == 0  # the first relay may still be alive
    with freeze_time(T0 + dt.timedelta(seconds=settings.VIGIL_ALERT_OUTBOX_LEASE_SECONDS + 1)):
        assert services.outbox_relay()["sent"] == 1
    message.refresh_from_db()
    assert (message.state, message.attempts) == ("sent", 2)
    # Sent twice, one key: a receiver that de-duplicates on it delivers exactly once.
    assert keys_sent_by_mail() == [message.idempotency_key] * 2
    assert len({m.extra_headers["Message-ID"] for m in mail.outbox}) == 1


# --- the broker ----------------------------------------------------------------------------------
def _wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _broker_down(monkeypatch: Any, *, hang_seconds: float = 0.0) -> list[str]:
    calls: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        time.sleep(hang_seconds)  # an unreachable host: the connect times out
        calls.append("refused")
        raise ConnectionRefusedError("broker unreachable")

    from config.celery import app

    monkeypatch.setattr(tasks.outbox_relay, "apply_async", refuse)
    monkeypatch.setattr(tasks.outbox_relay, "delay", refuse)
    monkeypatch.setattr(app, "send_task", refuse)
    return calls


@pytest.mark.django_db(transaction=True)
def test_a_red_alert_from_the_help_button_with_the_broker_and_workers_down(
    rw, client_a, monkeypatch, settings
):
    settings.VIGIL_ALERT_RELAY_ON_COMMIT = True  # the service tries to kick the relay...
    calls = _broker_down(monkeypatch, hang_seconds=2.0)  # ...and the broker hangs, then refuses
    started = time.monotonic()
    response = client_a.post(
        "/api/v1/help", {"idempotency_key": new_key(), "client_timestamp": now_iso()}
    )
    assert time.monotonic() - started < 1.5  # the patient's answer never waits on the broker
    assert response.status_code == 201
    assert response.json()["crisis"]["emergency_number"] == "911"
    _wait_for(lambda: calls == ["refused"])  # tried once, after commit, off the request's path
    alert = Alert.objects.get()
    assert (alert.tier, alert.state, alert.rule_id) == ("red", "open", "help_button")
    assert (
        str(alert.evidence_items.get().snapshot["event"]["help_request_id"])
        == response.json()["help_request_id"]
    )
    rows = list(OutboxMessage.objects.filter(alert=alert))
    assert len(rows) == 2 and {r.state for r in rows} == {"pending"}
    assert mail.outbox == []
    # The broker comes back; the beat relay runs (here: the task body, as a worker would).
    assert tasks.outbox_relay()["sent"] == 2
    assert tasks.outbox_relay()["claimed"] == 0
    assert sorted(keys_sent_by_mail()) == sorted(r.idempotency_key for r in rows)


def test_the_relay_is_kicked_after_commit_when_the_broker_is_up(
    rw, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.VIGIL_ALERT_RELAY_ON_COMMIT = True
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.outbox_relay, "apply_async", lambda **kw: sent.append(kw))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        red(rw)
    assert sent == []  # nothing before commit
    for callback in callbacks:
        callback()
    _wait_for(lambda: sent == [{"retry": False, "expires": 120}])


# --- the emergency contact and message content ---------------------------------------------------
def _consent(rw: Any, granted: bool) -> None:
    consent_change(
        actor=Actor(user_id=rw.patient.user_id, role="patient"),
        patient=rw.patient,
        scope="emergency_contact",
        granted=granted,
        document_version="1" if granted else None,
    )


def test_consent_withdrawn_before_delivery_cancels_the_contacts_message(rw):
    emergency_contact_set(patient=rw.patient, name="Carol", email="carol@example.test")
    _consent(rw, True)
    submit_phq9(rw.patient, phq9(2, 1))
    contact_row = OutboxMessage.objects.get(recipient_kind="emergency_contact")
    _consent(rw, False)
    services.outbox_relay()
    contact_row.refresh_from_db()
    assert (contact_row.state, contact_row.last_error) == ("cancelled", "consent_withdrawn")
    assert [m.to for m in mail.outbox] == [["treating@clinic.test"]]


def test_messages_carry_no_patient_text_and_no_diagnosis(rw, hook):
    patient = rw.patient
    secret_text = "I wrote something very private about Zanzibar"
    DiaryEntry.objects.create(
        patient=patient,
        idempotency_key=uuid.uuid4(),
        text=secret_text,
        client_timestamp=T0,
        timezone=patient.timezone,
        local_date=T0.date(),
    )
    emergency_contact_set(
        patient=patient, name="Carol Contact", phone="+15550100", email="carol@example.test"
    )
    _consent(rw, True)
    response = submit_phq9(patient, phq9(21, 2))  # item 9 and a severe total
    services.outbox_relay()
    red(rw)  # supersedes the orange alert
    services.outbox_relay()
    texts = [f"{m.subject}\n{m.body}\n{m.extra_headers}" for m in mail.outbox]
    texts += [body.decode() for _, body in hook.requests]
    texts += [json.dumps(p) for p in OutboxMessage.objects.values_list("payload", flat=True)]
    assert len(mail.outbox) == 4 and len(hook.requests) == 4
    assert any(m.to == ["carol@example.test"] for m in mail.outbox)
    forbidden = [
        "Zanzibar",
        "private",
        "Alice",
        "Example",
        "Carol",
        patient.pseudonym,
        str(patient.pk),
        str(response.pk),
        "phq",
        "PHQ",
        "item",
        "suicid",
        "self-harm",
        "depress",
        "severe",
        response.severity,
        "crisis",
    ]
    for text in texts:
        for word in forbidden:
            assert word not in text, (word, text[:200])


# --- the tasks -----------------------------------------------------------------------------------
def test_the_tasks_are_thin_and_idempotent(rw):
    with freeze_time(T0):
        red(rw)
    with freeze_time(T0 + dt.timedelta(minutes=5)):
        assert tasks.escalation_sweep()["escalated"] == 1
        assert tasks.escalation_sweep()["escalated"] == 0
        assert tasks.outbox_relay()["sent"] == 4
        assert tasks.outbox_relay()["claimed"] == 0
    assert tasks.adherence_sweep()["checked"] == 2
    assert connection.vendor in {"sqlite", "postgresql"}
