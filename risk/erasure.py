"""What the risk engine closes when a patient is erased (registered with privacy's erasure).

Runs inside the erasure transaction, before the patient's data keys are destroyed, and reads no
encrypted field. Active alerts are resolved with the code ``patient_erased`` (so nobody is paged
for a patient who no longer exists in Vigil), their undelivered notifications are cancelled, the
per-day signals the rules read are deleted, and an open help-button emergency is closed. The alert
rows stay as the safety record: their evidence becomes unreadable with the keys.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from privacy.audit import Actor
from privacy.erasure import erasure_hook_register
from risk.choices import ACTIVE_STATES, AlertState, Disposition, OutboxState
from risk.models import Alert, AlertTransition, OutboxMessage, PatientDaySignals
from screening.choices import EmergencyStatus
from screening.models import Emergency


@erasure_hook_register("risk")
def risk_patient_erased(*, patient: Any) -> int:
    now = timezone.now()
    actor = Actor.system()
    closed = 0
    for alert in Alert.objects.select_for_update().filter(patient=patient, state__in=ACTIVE_STATES):
        previous = alert.state
        Alert.objects.filter(pk=alert.pk).update(
            state=AlertState.RESOLVED,
            disposition=Disposition.OTHER,
            resolved_at=now,
            next_escalation_at=None,
            updated_at=now,
        )
        AlertTransition.objects.create(
            alert=alert,
            from_state=previous,
            to_state=AlertState.RESOLVED,
            actor_id=None,
            actor_role=actor.role,
            note_code="patient_erased",
        )
        closed += 1
    cancelled = OutboxMessage.objects.filter(
        Q(alert__patient=patient),
        state__in=[OutboxState.PENDING, OutboxState.SENDING],
    ).update(state=OutboxState.CANCELLED, last_error="patient_erased", updated_at=now)
    signals, _ = PatientDaySignals.objects.filter(patient=patient).delete()
    emergencies = Emergency.objects.filter(patient=patient, status=EmergencyStatus.OPEN).update(
        status=EmergencyStatus.CLOSED, closed_at=now
    )
    return closed + cancelled + signals + emergencies
