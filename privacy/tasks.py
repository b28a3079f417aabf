from __future__ import annotations

from celery import shared_task

from privacy.services import tokens_purge_expired as purge


@shared_task(name="privacy.tasks.tokens_purge_expired", time_limit=120)
def tokens_purge_expired() -> int:
    return purge()
