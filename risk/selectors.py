"""Reads of alerts (the portal builds on these): who sees which alerts."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from risk.choices import ACTIVE_STATES
from risk.models import Alert, AlertEvidence, EscalationPolicy
from screening.models import Clinician

#: The relations an alert's superseded alerts hang from. Tiers only go up (yellow -> orange ->
#: red) and an alert supersedes only lower tiers, so two links reach every alert it absorbed.
SUPERSEDED_LOOKUPS = ("supersedes", "supersedes__supersedes")

#: What :func:`alert_superseded` itself reads of each superseded alert.
_SUPERSEDED_FIELDS = ("id", "patient_id", "organisation_id", "created_at", "superseded_by_id")


def alert_superseded_prefetch(
    *, fields: Sequence[str] = (), with_evidence: bool = False
) -> tuple[Prefetch[Any] | str, ...]:
    """Prefetches for :func:`alert_superseded` over many alerts: a fixed number of queries per
    page, whatever the number of alerts (``fields``: what the caller reads of the superseded
    alerts beyond their identity; ``with_evidence``: their evidence items too)."""
    only = sorted({*_SUPERSEDED_FIELDS, *fields})
    lookups: list[Prefetch[Any] | str] = []
    for lookup in SUPERSEDED_LOOKUPS:
        lookups.append(Prefetch(lookup, queryset=Alert.objects.only(*only)))
        if with_evidence:
            lookups.append(f"{lookup}__evidence_items")
    return tuple(lookups)


def alert_superseded(*, alert: Alert) -> list[Alert]:
    """The alerts this one superseded, directly or through one it superseded, oldest first (from
    :func:`alert_superseded_prefetch` when the caller prefetched, else a query per link). Only
    those of the same patient and clinic: the visibility check that let this alert through
    covers no others."""
    found: list[Alert] = []
    for lower in alert.supersedes.all():
        found.append(lower)
        found.extend(lower.supersedes.all())
    return sorted(
        (
            a
            for a in found
            if a.patient_id == alert.patient_id and a.organisation_id == alert.organisation_id
        ),
        key=lambda a: (a.created_at, str(a.pk)),
    )


def help_presses_with_evidence(*, patient_ids: Iterable[uuid.UUID], since: dt.datetime) -> set[str]:
    """Ids of the help presses (of these patients, evidence recorded since ``since``) that the
    engine counted: its dedupe key for a press is ``<rule>:<press id>``."""
    from risk.rules.engine import HelpPressed

    keys = AlertEvidence.objects.filter(
        patient_id__in=set(patient_ids), event_kind=HelpPressed.kind, created_at__gte=since
    ).values_list("dedupe_key", flat=True)
    return {key.split(":", 1)[-1] for key in keys}


def alerts_visible_to(*, clinician: Clinician, active_only: bool = True) -> QuerySet[Alert]:
    """Alerts a clinician sees: the active ones assigned to them, those of patients of their care
    teams, and, for the clinic's on-call clinician and clinical lead, every alert of the clinic.
    Being assigned gives no lasting access: once an alert is resolved, a past assignee outside
    the care team no longer sees it (nor, through it, the patient's recent data)."""
    alerts = Alert.objects.filter(organisation_id=clinician.organisation_id)
    policy = EscalationPolicy.objects.filter(organisation_id=clinician.organisation_id).first()
    if policy is None or clinician.pk not in (policy.on_call_id, policy.clinical_lead_id):
        alerts = alerts.filter(
            Q(assigned_to=clinician, state__in=ACTIVE_STATES)
            | Q(patient__treating_clinician=clinician)
            | Q(patient__care_team__in=clinician.care_teams.all())
        )
    if active_only:
        alerts = alerts.filter(state__in=ACTIVE_STATES)
    return alerts.distinct().order_by("-created_at")


def alert_queue_for(
    *,
    clinician: Clinician,
    tier: str | None = None,
    state: str | None = None,
    assignee: str | None = None,
) -> QuerySet[Alert]:
    """The portal's queue: the clinician's active alerts, red first; within a tier the open
    (unacknowledged) ones before the acknowledged ones, then by the time left to the
    acknowledgement deadline (breached ones first). An acknowledged alert's deadline is past
    and met, so it must not push new open alerts down (the portal cuts the queue at
    ``QUEUE_LIMIT``). ``assignee``: ``"me"``, ``"unassigned"`` or a clinician's id. Patient
    and assignee are joined (no query per row)."""
    from django.db.models import Case, IntegerField, Value, When

    from risk.choices import AlertState, Tier

    alerts = alerts_visible_to(clinician=clinician, active_only=True)
    if tier:
        alerts = alerts.filter(tier=tier)
    if state:
        alerts = alerts.filter(state=state)
    if assignee == "me":
        alerts = alerts.filter(assigned_to=clinician)
    elif assignee == "unassigned":
        alerts = alerts.filter(assigned_to__isnull=True)
    elif assignee and assignee.isdigit():
        alerts = alerts.filter(assigned_to_id=int(assignee))
    rank = Case(
        When(tier=Tier.RED, then=Value(0)),
        When(tier=Tier.ORANGE, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    state_rank = Case(
        When(state=AlertState.OPEN, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return (
        alerts.select_related("patient", "assigned_to__user")
        .only(  # what a queue row shows: not the encrypted evidence, nor the users' passwords
            "id",
            "tier",
            "state",
            "rule_id",
            "ack_deadline",
            "created_at",
            "organisation_id",
            "patient__id",
            "patient__pseudonym",
            "assigned_to__id",
            "assigned_to__user__id",
            "assigned_to__user__username",
            "assigned_to__user__first_name",
            "assigned_to__user__last_name",
        )
        .annotate(tier_rank=rank, state_rank=state_rank)
        .order_by("tier_rank", "state_rank", "ack_deadline", "created_at")
    )


def alert_assignees_for(*, alert: Alert) -> QuerySet[Clinician]:
    """Clinicians an alert may be reassigned to: the treating clinician, the patient's care team,
    and the clinic's on-call clinician and clinical lead."""
    policy = EscalationPolicy.objects.filter(organisation_id=alert.organisation_id).first()
    extra = [pk for pk in (policy.on_call_id, policy.clinical_lead_id) if pk] if policy else []
    return (
        Clinician.objects.filter(organisation_id=alert.organisation_id, user__is_active=True)
        .filter(
            Q(pk=alert.patient.treating_clinician_id)
            | Q(care_teams=alert.patient.care_team_id)
            | Q(pk__in=extra)
        )
        .select_related("user")
        .distinct()
        .order_by("user__last_name", "user__username")
    )
