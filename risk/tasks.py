"""Celery tasks: thin. Periodic (beat) entry points for the escalation sweeper, the outbox relay
and the non-adherence check. Each is idempotent and safe to run concurrently or twice."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from risk import services

# A database blip retries with backoff; the next beat tick would also pick the work up.
_DB_RETRY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 3,
}


@shared_task(name="risk.tasks.escalation_sweep", time_limit=60, soft_time_limit=50, **_DB_RETRY)
def escalation_sweep() -> dict[str, int]:
    return services.escalation_sweep()


@shared_task(name="risk.tasks.outbox_relay", time_limit=180, soft_time_limit=170, **_DB_RETRY)
def outbox_relay() -> dict[str, int]:
    return services.outbox_relay()


@shared_task(name="risk.tasks.adherence_sweep", time_limit=15 * 60, soft_time_limit=14 * 60)
def adherence_sweep() -> dict[str, int]:
    return services.adherence_sweep()
