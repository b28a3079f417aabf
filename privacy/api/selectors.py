"""Reads behind the privacy API. Each one records itself as an access event first.

Auditors see their own clinic only: events about its patients (and events without a patient whose
actor belongs to the clinic, such as its staff's logins), its patients' consent records and its
break-glass accesses. Nothing here reads clinical content.

Requests refused before anyone signed in (401s, failed logins: role ``anonymous``, no account, no
patient) belong to no clinic: every auditor sees them, with the caller's IP address, so that probes
and password guessing are seen at all. They carry ids and codes only (action, resource type, status,
error code), never a path's values or a username.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from config.errors import NotFound
from privacy.audit import Actor, access_record
from privacy.choices import ANONYMOUS_ROLE, AccessOutcome
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


#: Events of callers that were not signed in and touched no patient: no clinic owns them, so
#: every clinic's auditors see them (the audit API, the portal's console and FHIR AuditEvent).
ANONYMOUS_UNATTRIBUTED = Q(patient__isnull=True, actor__isnull=True, actor_role=ANONYMOUS_ROLE)


def audit_event_is_anonymous(*, event: AccessEvent) -> bool:
    """The event's caller was not signed in (a refused request, a failed login)."""
    return event.actor_id is None and event.actor_role == ANONYMOUS_ROLE


def audit_event_actor_label(*, event: AccessEvent) -> str | None:
    """Who acted, as auditors see it: staff by username; a patient only by pseudonym (usernames
    could identify them); a caller that was not signed in as ``anonymous``; else None (system)."""
    user = event.actor
    if user is None:
        return ANONYMOUS_ROLE if audit_event_is_anonymous(event=event) else None
    patient = getattr(user, "patient", None)
    if patient is not None:
        return str(patient.pseudonym)
    return str(user.username)


def audit_event_client_ip(*, event: AccessEvent) -> str | None:
    """The caller's IP address, shown only for callers that were not signed in: it is all that
    tells one prober from another. Signed-in actors are named; their addresses stay in the log."""
    return event.ip_address if audit_event_is_anonymous(event=event) else None


def audit_events_list(
    *,
    actor: Actor,
    auditor: Auditor,
    patient: str | None = None,
    actor_name: str | None = None,
    role: str | None = None,
    ip: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    break_glass: bool | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[AccessEvent]:
    """Access events of the auditor's clinic, and those of callers that were not signed in, newest
    first, filtered. ``patient`` is a pseudonym, ``actor_name`` a member of staff's username or a
    patient's pseudonym (never a patient's username), ``role`` an actor role (``anonymous`` for
    callers not signed in) and ``ip`` the address of a caller that was not signed in."""
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
            role=role,
            ip=ip,
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
        Q(patient__organisation_id=org)
        | (Q(patient__isnull=True) & staff_or_own)
        | ANONYMOUS_UNATTRIBUTED
    )
    if patient:
        query = query.filter(patient=target) if target else query.none()
    if actor_name:
        # Staff by username, patients only by pseudonym (as the actor column names them): a
        # patient's username must not find, and so link to, the pseudonymous rows of that patient.
        query = query.filter(
            Q(actor__username=actor_name, actor__patient__isnull=True)
            | Q(actor__patient__pseudonym=actor_name)
        )
    if role:
        query = query.filter(actor_role=role)
    if ip:
        # Only callers that were not signed in: a signed-in patient's address is not a search key.
        query = query.filter(actor__isnull=True, actor_role=ANONYMOUS_ROLE, ip_address=ip)
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
