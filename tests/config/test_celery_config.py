from __future__ import annotations

from config.celery import app


def test_every_scheduled_task_exists_and_queues_are_declared():
    app.loader.import_default_modules()
    registered = set(app.tasks.keys())
    for name, entry in app.conf.beat_schedule.items():
        assert entry["task"] in registered, f"beat entry {name} names an unknown task"
    assert {q.name for q in app.conf.task_queues} == {"default", "media", "gpu", "alerts"}
    assert app.conf.task_routes["screening.tasks.video_process"]["queue"] == "media"


def test_escalation_and_notifications_have_their_own_queue():
    """What a patient's safety waits on runs on the ``alerts`` queue only, so that a backlog of
    media, scoring or long sweeps on the other queues never delays an escalation."""

    router = app.amqp.router
    for name in (
        "risk.tasks.escalation_sweep",
        "risk.tasks.outbox_relay",
        "screening.tasks.help_requests_sweep",
    ):
        assert router.route({}, name)["queue"].name == "alerts", name
    for name in ("risk.tasks.adherence_sweep", "screening.tasks.media_jobs_reap"):
        assert router.route({}, name)["queue"].name == "default", name
    beat_alerts = {
        entry["task"]
        for entry in app.conf.beat_schedule.values()
        if router.route({}, entry["task"])["queue"].name == "alerts"
    }
    assert beat_alerts == {
        "risk.tasks.escalation_sweep",
        "risk.tasks.outbox_relay",
        "screening.tasks.help_requests_sweep",
    }


def test_make_run_starts_a_worker_for_every_queue():
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "scripts" / "run.sh").read_text()
    consumed = set()
    for line in script.splitlines():
        if "celery -A config worker" in line and "-Q " in line:
            consumed.update(line.split("-Q ", 1)[1].split()[0].split(","))
    assert consumed == {q.name for q in app.conf.task_queues}


def test_reliability_settings():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_serializer == "json"
