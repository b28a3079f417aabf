"""The Celery configuration that the fault tests rely on, checked without any server.

Every periodic task must be publishable exactly the way beat publishes it: a task whose soft time
limit exceeds its hard limit is refused by ``apply_async`` (a ``ValueError``), and beat would then
never run it (that is how the stuck-job reaper and the token purge were silently dead).
"""

from __future__ import annotations

from typing import Any

import pytest
from celery.beat import ScheduleEntry, Scheduler

from config.celery import app
from tests.reliability.helpers import celery_publishing_to


def _our_tasks() -> dict[str, Any]:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_every_task_has_a_soft_limit_within_its_hard_limit() -> None:
    for name, task in _our_tasks().items():
        if task.soft_time_limit and task.time_limit:
            assert task.soft_time_limit <= task.time_limit, name
        assert task.time_limit, f"{name} has no hard time limit"
        # Redis redelivers an unacknowledged job after the visibility timeout: it must be longer
        # than any job can run, or a live job would be handed to a second worker.
        visibility = app.conf.broker_transport_options.get("visibility_timeout")
        if visibility is not None:
            assert task.time_limit < visibility, name


def test_beat_can_publish_every_periodic_task() -> None:
    with celery_publishing_to("memory://"):
        scheduler = Scheduler(app, lazy=True)
        for name, spec in app.conf.beat_schedule.items():
            entry = ScheduleEntry(
                name=name,
                task=spec["task"],
                schedule=spec["schedule"],
                options=spec.get("options", {}),
                app=app,
            )
            scheduler.apply_async(entry, advance=False)  # raises SchedulingError on refusal


def test_reliability_settings_for_media() -> None:
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True
    media = _our_tasks()["screening.tasks.video_process"]
    assert media.acks_late is True
    assert conf.task_routes["screening.tasks.video_process"]["queue"] == "media"
    # A publish to a dead broker gives up within seconds (the request is not held hostage).
    policy = conf.task_publish_retry_policy
    worst = (
        conf.broker_connection_timeout * (policy["max_retries"] + 1)
        + policy["interval_max"] * policy["max_retries"]
    )
    assert worst <= 10


@pytest.mark.parametrize("name", ["screening.tasks.media_jobs_reap"])
def test_reaper_is_publishable(name: str) -> None:
    with celery_publishing_to("memory://"):
        _our_tasks()[name].apply_async()
