"""A flood of refusals from callers that are not signed in cannot grow the audit chain unbounded.

Anyone can send bad tokens or passwords, and each refusal is a row in the append-only chain. Past
``VIGIL_RATE_ANON_REFUSALS`` per address and window, one ``audit.refusals_suppressed`` event marks
the flood (with the address, so auditors see it) and the rest of the window is not written. The
responses never change, and signed-in actors' refusals are always written one by one.

Personas: two anonymous addresses, patient A and patient B (a signed-in refusal).
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from config.env import EnvError, env_rate, parse_rate
from privacy import audit
from privacy.api.selectors import ANONYMOUS_UNATTRIBUTED
from privacy.models import AccessEvent

FLOODER = "203.0.113.66"
NEIGHBOUR = "198.51.100.5"
LIMIT = 3


@pytest.fixture(autouse=True)
def _small_limit(settings: Any) -> None:
    settings.VIGIL_RATE_ANON_REFUSALS = (LIMIT, 60)


def _bad_token(client: APIClient, address: str) -> Any:
    return client.get(
        "/api/v1/me", HTTP_AUTHORIZATION="Bearer vgl_not-a-real-token", REMOTE_ADDR=address
    )


def _anonymous_events(address: str) -> list[AccessEvent]:
    return list(
        AccessEvent.objects.filter(ANONYMOUS_UNATTRIBUTED, ip_address=address).order_by("seq")
    )


def test_past_the_limit_one_marker_is_written_and_the_answers_do_not_change(world):
    client = APIClient()
    responses = [_bad_token(client, FLOODER) for _ in range(LIMIT + 4)]
    assert [r.status_code for r in responses] == [401] * (LIMIT + 4)
    assert {r.json()["error"]["code"] for r in responses} == {"authentication_failed"}

    events = _anonymous_events(FLOODER)
    assert len(events) == LIMIT + 1
    assert [(e.status_code, e.reason) for e in events[:LIMIT]] == [
        (401, "authentication_failed")
    ] * LIMIT
    marker = events[-1]
    assert marker.action == audit.REFUSALS_SUPPRESSED_ACTION
    assert (marker.outcome, marker.actor_id, marker.patient_id) == ("denied", None, None)
    assert marker.reason == f"over {LIMIT} per 60s"
    # the marker is written as the first refusal past the limit arrives, with its request id
    assert marker.request_id == responses[LIMIT]["X-Request-ID"]
    assert audit.audit_chain_head().seq == AccessEvent.objects.count()  # the chain stays whole


def test_another_address_is_counted_on_its_own(world):
    client = APIClient()
    for _ in range(LIMIT + 2):
        _bad_token(client, FLOODER)
    assert _bad_token(client, NEIGHBOUR).status_code == 401
    (event,) = _anonymous_events(NEIGHBOUR)
    assert event.status_code == 401


def test_the_next_window_is_recorded_again(world, monkeypatch):
    client = APIClient()
    now = [1_800_000_000.0]
    monkeypatch.setattr(audit.time, "time", lambda: now[0])
    for _ in range(LIMIT + 2):
        _bad_token(client, FLOODER)
    assert len(_anonymous_events(FLOODER)) == LIMIT + 1
    now[0] += 60
    _bad_token(client, FLOODER)
    events = _anonymous_events(FLOODER)
    assert len(events) == LIMIT + 2
    assert events[-1].action != audit.REFUSALS_SUPPRESSED_ACTION


def test_failed_logins_count_towards_the_same_limit(world, client):
    """Admin-site logins (recorded by a signal) and API logins are refusals of callers who are
    not signed in, like bad tokens."""
    for attempt in range(LIMIT + 2):
        client.post(
            "/admin/login/",
            {"username": "nobody-here", "password": f"wrong-{attempt}"},
            REMOTE_ADDR=FLOODER,
        )
    actions = [e.action for e in _anonymous_events(FLOODER)]
    assert actions == ["auth.session_login"] * LIMIT + [audit.REFUSALS_SUPPRESSED_ACTION]


def test_signed_in_refusals_are_always_written(world):
    """A patient asking for the auditors' log is refused each time and each is recorded, from
    the flooding address too: the limit is only for callers nobody can name."""
    for _ in range(LIMIT + 2):
        _bad_token(APIClient(), FLOODER)
    forbidden = world.client_for(world.patient_a.user)
    for _ in range(LIMIT + 3):
        assert forbidden.get("/api/v1/audit/events", REMOTE_ADDR=FLOODER).status_code == 403
    refused = AccessEvent.objects.filter(actor_id=world.patient_a.user.pk, outcome="denied")
    assert refused.count() == LIMIT + 3
    assert AccessEvent.objects.filter(action=audit.REFUSALS_SUPPRESSED_ACTION).count() == 1


def test_a_cache_fault_never_costs_an_event(world, monkeypatch):
    from django.core.cache import cache

    def broken(*args: Any, **kwargs: Any) -> int:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "incr", broken)
    client = APIClient()
    for _ in range(LIMIT + 2):
        assert _bad_token(client, FLOODER).status_code == 401
    events = _anonymous_events(FLOODER)
    assert len(events) == LIMIT + 2
    assert audit.REFUSALS_SUPPRESSED_ACTION not in {e.action for e in events}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("120/min", (120, 60)), ("5/s", (5, 1)), ("30/hour", (30, 3600)), ("2/day", (2, 86400))],
)
def test_rates_parse(raw, expected):
    assert parse_rate(raw) == expected


@pytest.mark.parametrize("raw", ["0/min", "ten/min", "5/fortnight", "5"])
def test_malformed_rates_name_the_variable(raw, monkeypatch):
    monkeypatch.setenv("VIGIL_RATE_ANON_REFUSALS", raw)
    with pytest.raises(EnvError, match="VIGIL_RATE_ANON_REFUSALS is malformed"):
        env_rate("VIGIL_RATE_ANON_REFUSALS", "120/min")
    monkeypatch.delenv("VIGIL_RATE_ANON_REFUSALS")
    assert env_rate("VIGIL_RATE_ANON_REFUSALS", "120/min") == (120, 60)
