"""Reads behind the privacy API. Each one records itself as an access event first.

Auditors see their own clinic only: events about its patients (and events without a patient whose
actor belongs to the clinic, such as its staff's logins), its patients' consent records and its
break-glass accesses. Nothing here reads clinical content.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from config.errors import NotFound
from privacy.audit import Actor, access_record
from privacy.choices import AccessOutcome
from privacy.models import (
    AccessEvent,
    BreakGlassAccess,
    BreakGlassReview,
    ConsentRecord,
)
from screening.models import Auditor, Patient


# --- patients --------------------------------------------------------------------------------
def patient_access_log(*, actor: Actor, patient: Patient) -> QuerySet[AccessEvent]:
    """Every event about the patient's record, newest first (the caller pages it)."""
    access_record(
        actor=actor, action="access_log.list", patient_id=patient.pk, resource_type="AccessEvent"
    )
    return (
        AccessEvent.objects.filter(patient=patient)
        .select_related(
            "actor__clinician__organisation",
            "actor__auditor__organisation",
            "actor__patient__organisation",
        )
        .order_by("-occurred_at", "-id")
    )


# --- auditors --------------------------------------------------------------------------------
def _filters_used(**filters: Any) -> str:
    used = sorted(name for name, value in filters.items() if value not in (None, ""))
    return ("filters:" + ",".join(used))[:64] if used else ""


def _clinic_patient(*, auditor: Auditor, pseudonym: str | None) -> Patient | None:
    if not pseudonym:
        return None
    return Patient.objects.filter(
        organisation_id=auditor.organisation_id, pseudonym=pseudonym
    ).first()


def _period(
    query: QuerySet, field: str, since: dt.datetime | None, until: dt.datetime | None
) -> QuerySet:
    if since is not None:
        query = query.filter(**{f"{field}__gte": since})
    if until is not None:
        query = query.filter(**{f"{field}__lt": until})
    return query


def audit_events_list(
    *,
    actor: Actor,
    auditor: Auditor,
    patient: str | None = None,
    actor_name: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    break_glass: bool | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[AccessEvent]:
    """Access events of the auditor's clinic, newest first, filtered. ``patient`` is a pseudonym,
    ``actor_name`` a username (or a patient's pseudonym)."""
    org = auditor.organisation_id
    target = _clinic_patient(auditor=auditor, pseudonym=patient)
    access_record(
        actor=actor,
        action="audit.events",
        patient_id=target.pk if target else None,
        resource_type="AccessEvent",
        reason=_filters_used(
            patient=patient,
            actor=actor_name,
            action=action,
            outcome=outcome,
            break_glass=break_glass,
            since=since,
            until=until,
        ),
    )
    staff_or_own = (
        Q(actor__clinician__organisation_id=org)
        | Q(actor__auditor__organisation_id=org)
        | Q(actor__patient__organisation_id=org)
    )
    query: QuerySet[AccessEvent] = AccessEvent.objects.filter(
        Q(patient__organisation_id=org) | (Q(patient__isnull=True) & staff_or_own)
    )
    if patient:
        query = query.filter(patient=target) if target else query.none()
    if actor_name:
        query = query.filter(
            Q(actor__username=actor_name) | Q(actor__patient__pseudonym=actor_name)
        )
    if action:
        query = query.filter(action=action)
    if outcome:
        query = query.filter(outcome=outcome)
    if break_glass is not None:
        query = query.filter(break_glass=break_glass)
    query = _period(query, "occurred_at", since, until)
    return query.select_related("actor__patient", "patient").order_by("-occurred_at", "-id")


def audit_consents_list(
    *,
    actor: Actor,
    auditor: Auditor,
    patient: str | None = None,
    scope: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[ConsentRecord]:
    """Consent grants and withdrawals of the clinic's patients, newest first, filtered."""
    target = _clinic_patient(auditor=auditor, pseudonym=patient)
    access_record(
        actor=actor,
        action="audit.consents",
        patient_id=target.pk if target else None,
        resource_type="Consent",
        reason=_filters_used(patient=patient, scope=scope, since=since, until=until),
    )
    query: QuerySet[ConsentRecord] = ConsentRecord.objects.filter(
        patient__organisation_id=auditor.organisation_id
    )
    if patient:
        query = query.filter(patient=target) if target else query.none()
    if scope:
        query = query.filter(scope=scope)
    query = _period(query, "created_at", since, until)
    return query.select_related("patient", "actor").order_by("-created_at", "-id")


def _with_reviews(query: QuerySet[BreakGlassAccess]) -> QuerySet[BreakGlassAccess]:
    reviews = BreakGlassReview.objects.select_related("reviewer").order_by("-created_at", "-id")
    return query.select_related("clinician__user", "patient").prefetch_related(
        Prefetch("reviews", queryset=reviews)
    )


def audit_break_glass_list(
    *,
    actor: Actor,
    auditor: Auditor,
    patient: str | None = None,
    reviewed: bool | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[BreakGlassAccess]:
    """Break-glass accesses to the clinic's patients, newest first, each with its reviews."""
    target = _clinic_patient(auditor=auditor, pseudonym=patient)
    access_record(
        actor=actor,
        action="audit.break_glass",
        patient_id=target.pk if target else None,
        resource_type="BreakGlassAccess",
        reason=_filters_used(patient=patient, reviewed=reviewed, since=since, until=until),
    )
    query: QuerySet[BreakGlassAccess] = BreakGlassAccess.objects.filter(
        patient__organisation_id=auditor.organisation_id
    )
    if patient:
        query = query.filter(patient=target) if target else query.none()
    if reviewed is not None:
        has_review = Exists(BreakGlassReview.objects.filter(access=OuterRef("pk")))
        query = query.filter(has_review if reviewed else ~has_review)
    query = _period(query, "created_at", since, until)
    return _with_reviews(query).order_by("-created_at", "-id")


def audit_break_glass_get(
    *, actor: Actor, auditor: Auditor, access_id: uuid.UUID
) -> BreakGlassAccess:
    """One break-glass access of the auditor's clinic; another clinic's answers like a missing one
    (404), and the attempt is recorded as denied."""
    access = _with_reviews(BreakGlassAccess.objects.filter(pk=access_id)).first()
    if access is None or access.patient.organisation_id != auditor.organisation_id:
        access_record(
            actor=actor,
            action="audit.break_glass.review",
            outcome=AccessOutcome.DENIED,
            patient_id=access.patient_id if access is not None else None,
            resource_type="BreakGlassAccess",
            resource_id=access_id,
            status_code=404,
            reason="other_clinic" if access is not None else "not_found",
        )
        raise NotFound()
    return access
