"""Celery tasks of the FHIR API: thin, ids only."""

from __future__ import annotations

import uuid

from celery import shared_task
from django.db import InterfaceError, OperationalError


@shared_task(
    name="clinician_portal.fhir.tasks.fhir_export_run",
    acks_late=True,
    time_limit=30 * 60,
    soft_time_limit=29 * 60,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def fhir_export_run(job_id: str) -> None:
    from clinician_portal.fhir.services import export_run

    export_run(job_id=uuid.UUID(job_id))


@shared_task(name="clinician_portal.fhir.tasks.fhir_exports_expire", ignore_result=True)
def fhir_exports_expire() -> int:
    """Crypto-shred exports older than ``VIGIL_FHIR_EXPORT_TTL_HOURS``, and those whose requester
    lost access to one of their patients (beat, hourly)."""
    from clinician_portal.fhir.services import export_access_sweep, export_expire

    return export_expire() + export_access_sweep()
