"""An erased patient's alerts stop paging anyone, and nothing the risk engine keeps needs a key."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from privacy.audit import Actor
from privacy.erasure import patient_erase
from risk.choices import AlertState, OutboxState
from risk.models import Alert, OutboxMessage, PatientDaySignals
from risk.services import escalation_sweep
from screening.choices import EmergencyStatus
from screening.models import Emergency
from screening.services.help import help_request_create
from tests.risk.conftest import phq9, submit_phq9


def test_erasure_closes_alerts_cancels_notifications_and_the_emergency(rw):
    patient = rw.patient
    help_request_create(actor=Actor(user_id=patient.user_id, role="patient"), patient=patient)
    submit_phq9(patient, phq9(12, 1))
    assert Alert.objects.filter(patient=patient, state=AlertState.OPEN).exists()
    assert OutboxMessage.objects.filter(alert__patient=patient, state=OutboxState.PENDING).exists()

    admin = rw.lead.user
    patient_erase(
        actor=Actor(user_id=admin.pk, role="admin"),
        patient=patient,
        reason="patient request ticket 4711",
    )

    assert not Alert.objects.filter(
        patient=patient, state__in=[AlertState.OPEN, AlertState.ACKNOWLEDGED]
    ).exists()
    assert not OutboxMessage.objects.filter(
        alert__patient=patient, state__in=[OutboxState.PENDING, OutboxState.SENDING]
    ).exists()
    assert not PatientDaySignals.objects.filter(patient=patient).exists()
    assert Emergency.objects.get(patient=patient).status == EmergencyStatus.CLOSED
    # Long past every deadline, the sweeper finds nothing of theirs to escalate.
    later = timezone.now() + dt.timedelta(days=3)
    escalation_sweep(now=later)
    assert not OutboxMessage.objects.filter(
        alert__patient=patient, state=OutboxState.PENDING
    ).exists()
    # Other patients' alerts are untouched.
    submit_phq9(rw.world.patient_b, phq9(12, 1))
    assert Alert.objects.filter(patient=rw.world.patient_b, state=AlertState.OPEN).exists()
