"""The help-press recovery sweep: a press whose risk intake failed still gets its red alert."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

import risk.services
from config.celery import app
from privacy.audit import Actor
from risk.choices import Tier
from risk.models import Alert, AlertEvidence
from screening import tasks
from screening.models import HelpRequest
from screening.services.help import help_request_create, help_requests_sweep


@pytest.fixture
def fail_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The risk intake raises for the next press (once), as a broken rule set or a bug would."""
    calls: list[int] = []
    real = risk.services.signal_evaluate

    def flaky(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("v9")
        return real(**kwargs)

    monkeypatch.setattr(risk.services, "signal_evaluate", flaky)
    return calls


def _press(world: Any) -> HelpRequest:
    patient = world.patient_a
    press, _ = help_request_create(
        actor=Actor(user_id=patient.user_id, role="patient"), patient=patient
    )
    return press


def _red(world: Any) -> int:
    return Alert.objects.filter(patient=world.patient_a, tier=Tier.RED).count()


def test_a_press_without_its_alert_gets_exactly_one_from_the_sweep(world, fail_once):
    press = _press(world)
    assert HelpRequest.objects.filter(pk=press.pk).exists()  # the press stands
    assert _red(world) == 0

    first = help_requests_sweep()
    assert first["missing"] == 1 and first["recovered"] == 1 and first["failed"] == 0
    assert _red(world) == 1
    assert AlertEvidence.objects.filter(dedupe_key=f"help_button:{press.pk}").count() == 1

    second = help_requests_sweep()
    assert second["missing"] == 0 and second["recovered"] == 0
    assert _red(world) == 1
    assert AlertEvidence.objects.filter(dedupe_key=f"help_button:{press.pk}").count() == 1


def test_presses_with_their_alert_are_left_alone(world, monkeypatch):
    _press(world)
    _press(world)
    assert _red(world) == 1  # two presses, one emergency, one red alert with two evidences

    def boom(**kwargs: Any) -> Any:
        raise AssertionError("the sweep must not re-run a press that has its alert")

    monkeypatch.setattr(risk.services, "signal_evaluate", boom)
    assert help_requests_sweep() == {"scanned": 2, "missing": 0, "recovered": 0, "failed": 0}


def test_a_press_that_keeps_failing_is_counted_and_retried_next_tick(world, monkeypatch):
    def boom(**kwargs: Any) -> Any:
        raise KeyError("v9")

    monkeypatch.setattr(risk.services, "signal_evaluate", boom)
    _press(world)
    assert help_requests_sweep()["failed"] == 1
    monkeypatch.undo()
    assert help_requests_sweep()["recovered"] == 1
    assert _red(world) == 1


def test_the_sweep_looks_back_a_bounded_window(world, fail_once):
    press = _press(world)
    later = timezone.now() + dt.timedelta(hours=25)
    assert help_requests_sweep(now=later)["scanned"] == 0
    assert _red(world) == 0
    assert help_requests_sweep(limit=0)["recovered"] == 0
    assert help_requests_sweep()["recovered"] == 1
    assert AlertEvidence.objects.filter(dedupe_key=f"help_button:{press.pk}").count() == 1


def test_the_task_runs_the_sweep_and_beat_schedules_it(world, fail_once):
    _press(world)
    assert tasks.help_requests_sweep.apply().get()["recovered"] == 1
    assert _red(world) == 1
    entry = app.conf.beat_schedule["help-requests-sweep"]
    assert entry["task"] == tasks.help_requests_sweep.name == "screening.tasks.help_requests_sweep"
    assert entry["schedule"] == 60.0
    assert tasks.help_requests_sweep.time_limit and tasks.help_requests_sweep.soft_time_limit
