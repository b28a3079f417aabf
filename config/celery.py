"""Celery application: three queues, reliability settings declared once.

- ``default``: light bookkeeping (token purge, stuck-job reaper, notifications later).
- ``media``: CPU-heavy media work (decode, prosody, face, transcript). Prefetch 1.
- ``gpu``: batched model inference; served by CPU workers when no GPU exists.

Reliability (why each setting):
- ``task_acks_late`` + ``task_reject_on_worker_lost``: a job whose worker dies is redelivered, not
  lost. Tasks are idempotent (they claim the row and skip finished work), so redelivery is safe.
- ``worker_prefetch_multiplier = 1``: a worker holds one job at a time, so a slow video does not
  hold others hostage and a crash redelivers at most one job.
- ``visibility_timeout`` (Redis) is set in settings longer than the longest hard time limit.
- Results are not stored: tasks write their outcome to the database, where the API reads it.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("vigil")
app.config_from_object("django.conf:settings", namespace="CELERY")

app.conf.update(
    task_queues=(Queue("default"), Queue("media"), Queue("gpu")),
    task_default_queue="default",
    task_routes={
        "screening.tasks.video_process": {"queue": "media"},
    },
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_track_started=False,
    task_serializer="json",
    accept_content=["json"],
    task_time_limit=15 * 60,
    task_soft_time_limit=14 * 60,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    beat_schedule={
        "reap-stuck-media-jobs": {
            "task": "screening.tasks.media_jobs_reap",
            "schedule": 60.0,
        },
        "purge-expired-tokens": {
            "task": "privacy.tasks.tokens_purge_expired",
            "schedule": 60.0 * 60,
        },
        "anchor-audit-chain": {
            "task": "privacy.tasks.audit_anchor_record",
            "schedule": 5 * 60.0,
        },
        # Alerts past their acknowledgement deadline escalate one level per sweep (idempotent).
        "risk-escalation-sweep": {
            "task": "risk.tasks.escalation_sweep",
            "schedule": 30.0,
            "options": {"expires": 25},
        },
        # Notifications in the outbox go out at least once, with backoff, keyed per recipient.
        "risk-outbox-relay": {
            "task": "risk.tasks.outbox_relay",
            "schedule": 10.0,
            "options": {"expires": 10},
        },
        "risk-adherence-sweep": {
            "task": "risk.tasks.adherence_sweep",
            "schedule": 60.0 * 60,
            "options": {"expires": 30 * 60},
        },
    },
)
app.autodiscover_tasks(["screening", "privacy", "risk"])
