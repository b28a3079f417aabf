"""The help button. Recorded synchronously, answered with crisis resources, never refused."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from privacy.audit import Actor, access_record
from risk.intake import help_request_received, help_requests_alerted
from screening.choices import EmergencyStatus
from screening.crisis import crisis_resources_for
from screening.models import Emergency, HelpRequest, Patient

logger = logging.getLogger("vigil.help")

#: The recovery sweep looks this far back, scans at most this many presses, and re-runs the risk
#: intake for at most ``HELP_SWEEP_LIMIT`` of them per run (the next tick takes the rest).
HELP_SWEEP_WINDOW = dt.timedelta(hours=24)
HELP_SWEEP_SCAN = 5000
HELP_SWEEP_LIMIT = 200


def help_request_create(
    *,
    actor: Actor,
    patient: Patient,
    idempotency_key: uuid.UUID | None = None,
    client_timestamp: dt.datetime | None = None,
) -> tuple[HelpRequest, dict[str, Any]]:
    """Record a press and collapse it into the patient's one open emergency.

    A retried request (same idempotency key) returns the first press. Presses without a key are
    all recorded: a frightened patient pressing five times is five presses, one emergency.
    """
    resources = crisis_resources_for(
        locale=patient.locale, clinic_overrides=patient.organisation.crisis_resources
    )
    if idempotency_key is not None:
        existing = HelpRequest.objects.filter(
            patient=patient, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            return existing, resources
    try:
        with transaction.atomic():
            press = _record_press(
                actor=actor,
                patient=patient,
                idempotency_key=idempotency_key,
                client_timestamp=client_timestamp,
            )
    except IntegrityError:
        # A concurrent retry with the same key won the race; or two first presses raced to
        # open the emergency: the retry below attaches to the one that exists.
        existing = (
            HelpRequest.objects.filter(patient=patient, idempotency_key=idempotency_key).first()
            if idempotency_key is not None
            else None
        )
        if existing is not None:
            return existing, resources
        with transaction.atomic():
            press = _record_press(
                actor=actor,
                patient=patient,
                idempotency_key=idempotency_key,
                client_timestamp=client_timestamp,
            )
    return press, resources


def _record_press(
    *,
    actor: Actor,
    patient: Patient,
    idempotency_key: uuid.UUID | None,
    client_timestamp: dt.datetime | None,
) -> HelpRequest:
    now = timezone.now()
    # Serialise presses of one patient (PostgreSQL row lock; SQLite serialises writers anyway).
    Patient.objects.select_for_update().filter(pk=patient.pk).first()
    emergency = Emergency.objects.filter(patient=patient, status=EmergencyStatus.OPEN).first()
    new_emergency = emergency is None
    if emergency is None:
        emergency = Emergency.objects.create(patient=patient, last_press_at=now)
    else:
        Emergency.objects.filter(pk=emergency.pk).update(
            press_count=F("press_count") + 1, last_press_at=now
        )
    press = HelpRequest.objects.create(
        patient=patient,
        emergency=emergency,
        idempotency_key=idempotency_key,
        client_timestamp=client_timestamp,
        locale=patient.locale,
    )
    try:
        with transaction.atomic():  # a savepoint: the risk engine's writes commit with the press
            help_request_received(help_request=press, new_emergency=new_emergency)
    except Exception:
        # A fault in the risk engine must never lose a patient's call for help: the press stands
        # and the failure is logged (ids only); ``help_requests_sweep`` (beat, every minute)
        # re-runs the intake for every recent press that has no alert evidence.
        logger.exception("risk intake failed for help request %s", press.pk)
    # Audited last: appending to the hash chain locks its head until this transaction commits,
    # so the lock is held for the few statements left, not for the risk engine's work (every
    # audited write in the system queues behind that lock).
    access_record(
        actor=actor,
        action="help.create",
        patient_id=patient.pk,
        resource_type="HelpRequest",
        resource_id=press.pk,
    )
    return press


def help_requests_sweep(
    *,
    now: dt.datetime | None = None,
    window: dt.timedelta = HELP_SWEEP_WINDOW,
    scan: int = HELP_SWEEP_SCAN,
    limit: int = HELP_SWEEP_LIMIT,
) -> dict[str, int]:
    """Re-run the risk intake for recent presses that have no alert evidence (their intake
    failed), so that every press gets its red alert. Idempotent: a press whose evidence exists is
    skipped, and the risk engine counts a press's signal once (dedupe key ``<rule>:<press id>``),
    so two sweeps, or a sweep beside a press, raise nothing twice."""
    now = now or timezone.now()
    since = now - window
    recent = list(
        HelpRequest.objects.filter(received_at__gte=since, patient__erased_at__isnull=True)
        .order_by("-received_at")
        .values_list("pk", "patient_id")[:scan]
    )
    if not recent:
        return {"scanned": 0, "missing": 0, "recovered": 0, "failed": 0}
    alerted = help_requests_alerted(
        patient_ids={patient_id for _, patient_id in recent}, since=since
    )
    missing = [pk for pk, _ in reversed(recent) if str(pk) not in alerted]
    recovered = failed = 0
    for press_id in missing[:limit]:
        try:
            with transaction.atomic():
                press = HelpRequest.objects.get(pk=press_id)
                first_of_emergency = not HelpRequest.objects.filter(
                    emergency_id=press.emergency_id, received_at__lt=press.received_at
                ).exists()
                help_request_received(help_request=press, new_emergency=first_of_emergency)
            recovered += 1
        except Exception:
            failed += 1
            logger.exception("help sweep: risk intake failed again for help request %s", press_id)
    if missing:
        logger.warning(
            "help sweep: %d presses without an alert, %d recovered, %d failed",
            len(missing),
            recovered,
            failed,
        )
    return {
        "scanned": len(recent),
        "missing": len(missing),
        "recovered": recovered,
        "failed": failed,
    }
