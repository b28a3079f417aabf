from __future__ import annotations

from config.celery import app


def test_every_scheduled_task_exists_and_queues_are_declared():
    app.loader.import_default_modules()
    registered = set(app.tasks.keys())
    for name, entry in app.conf.beat_schedule.items():
        assert entry["task"] in registered, f"beat entry {name} names an unknown task"
    assert {q.name for q in app.conf.task_queues} == {"default", "media", "gpu"}
    assert app.conf.task_routes["screening.tasks.video_process"]["queue"] == "media"


def test_reliability_settings():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_serializer == "json"
