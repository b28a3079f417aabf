"""Reads of alerts (the portal builds on these): who sees which alerts."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from risk.choices import ACTIVE_STATES
from risk.models import Alert, EscalationPolicy
from screening.models import Clinician


def alerts_visible_to(*, clinician: Clinician, active_only: bool = True) -> QuerySet[Alert]:
    """Alerts a clinician sees: those assigned to them, those of patients of their care teams,
    and, for the clinic's on-call clinician and clinical lead, every alert of the clinic."""
    alerts = Alert.objects.filter(organisation_id=clinician.organisation_id)
    policy = EscalationPolicy.objects.filter(organisation_id=clinician.organisation_id).first()
    if policy is None or clinician.pk not in (policy.on_call_id, policy.clinical_lead_id):
        alerts = alerts.filter(
            Q(assigned_to=clinician)
            | Q(patient__treating_clinician=clinician)
            | Q(patient__care_team__in=clinician.care_teams.all())
        )
    if active_only:
        alerts = alerts.filter(state__in=ACTIVE_STATES)
    return alerts.distinct().order_by("-created_at")
