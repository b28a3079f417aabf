"""Celery tasks: thin. They take ids, call one service, and declare retries and limits here."""

from __future__ import annotations

import uuid

from celery import shared_task
from django.db import InterfaceError, OperationalError

from screening.services import videos

# A database blip retries with backoff; anything else is the service's to record as a failure.
_DB_RETRY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 120,
    "max_retries": 5,
}


@shared_task(
    name="screening.tasks.video_process",
    acks_late=True,
    time_limit=15 * 60,
    soft_time_limit=14 * 60,
    **_DB_RETRY,
)
def video_process(video_id: str) -> None:
    videos.video_process(video_id=uuid.UUID(video_id))


@shared_task(name="screening.tasks.media_jobs_reap", time_limit=120, **_DB_RETRY)
def media_jobs_reap() -> dict[str, int]:
    return videos.media_jobs_reap()
