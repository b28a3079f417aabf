"""Break-glass: a clinician outside a patient's care team opens the record for a stated reason.

The access lasts ``VIGIL_BREAK_GLASS_MINUTES``, is recorded as an access event flagged
``break_glass`` with the reason as its purpose, and waits for an auditor's review. Only clinicians
of the patient's own clinic may break the glass; the care team has nothing to break.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.errors import PermissionDenied, ValidationFailed
from privacy.audit import Actor, access_record
from privacy.choices import AccessOutcome, Role
from privacy.models import BreakGlassAccess, BreakGlassReview
from screening.models import Auditor, Clinician, Patient

#: The shortest reason accepted (after stripping): "emergency" alone is not a reason.
REASON_MIN_CHARS = 10
REASON_MAX_CHARS = 500
NOTE_MAX_CHARS = 500

CARE_TEAM = "care_team"
BREAK_GLASS = "break_glass"


def clinician_in_care_team(*, clinician: Clinician, patient: Patient) -> bool:
    """The treating clinician, or a member of the patient's care team."""
    if patient.treating_clinician_id == clinician.pk:
        return True
    return clinician.care_teams.filter(pk=patient.care_team_id).exists()


def clinician_patient_access(*, clinician: Clinician, patient: Patient) -> str | None:
    """Why ``clinician`` may see ``patient``'s record: ``"care_team"``, ``"break_glass"`` (an
    unexpired break-glass access), or None (they may not)."""
    if clinician.organisation_id != patient.organisation_id:
        return None
    if clinician_in_care_team(clinician=clinician, patient=patient):
        return CARE_TEAM
    if break_glass_active(clinician=clinician, patient=patient) is not None:
        return BREAK_GLASS
    return None


def break_glass_active(*, clinician: Clinician, patient: Patient) -> BreakGlassAccess | None:
    """The clinician's latest unexpired break-glass access to the patient, if any."""
    return (
        BreakGlassAccess.objects.filter(
            clinician=clinician, patient=patient, expires_at__gt=timezone.now()
        )
        .order_by("-expires_at")
        .first()
    )


def _refuse(*, actor: Actor, patient: Patient, reason: str, message: str) -> PermissionDenied:
    access_record(
        actor=actor,
        action="break_glass.open",
        patient_id=patient.pk,
        outcome=AccessOutcome.DENIED,
        resource_type="BreakGlassAccess",
        status_code=403,
        reason=reason,
        break_glass=True,
    )
    return PermissionDenied(message)


def break_glass_open(
    *, actor: Actor, clinician: Clinician, patient: Patient, reason: str
) -> BreakGlassAccess:
    """Open a time-limited access to a patient outside the clinician's care team.

    The reason is required (at least 10 characters) and is recorded as the event's purpose; a
    refusal (another clinic, someone else's account) is recorded as a denied event.
    """
    reason = (reason or "").strip()
    if len(reason) < REASON_MIN_CHARS:
        raise ValidationFailed(
            fields={"reason": [f"State the reason in at least {REASON_MIN_CHARS} characters."]}
        )
    if len(reason) > REASON_MAX_CHARS:
        raise ValidationFailed(
            fields={"reason": [f"Keep the reason under {REASON_MAX_CHARS} characters."]}
        )
    if actor.user_id != clinician.user_id or actor.role != Role.CLINICIAN:
        raise _refuse(
            actor=actor,
            patient=patient,
            reason="not_own_account",
            message="Break-glass access is opened by the clinician themself.",
        )
    if clinician.organisation_id != patient.organisation_id:
        raise _refuse(
            actor=actor,
            patient=patient,
            reason="other_clinic",
            message="This patient belongs to another clinic.",
        )
    if patient.erased_at is not None:
        raise _refuse(
            actor=actor,
            patient=patient,
            reason="erased",
            message="This patient's record was erased.",
        )
    if clinician_in_care_team(clinician=clinician, patient=patient):
        raise ValidationFailed(
            "You are in this patient's care team: there is nothing to break.",
            fields={"patient": ["Already in the patient's care team."]},
        )
    now = timezone.now()
    with transaction.atomic():
        access = BreakGlassAccess.objects.create(
            clinician=clinician,
            patient=patient,
            reason=reason,
            expires_at=now + dt.timedelta(minutes=settings.VIGIL_BREAK_GLASS_MINUTES),
        )
        access_record(
            actor=actor,
            action="break_glass.open",
            patient_id=patient.pk,
            resource_type="BreakGlassAccess",
            resource_id=access.pk,
            purpose=reason,
            break_glass=True,
        )
    return access


def break_glass_review(
    *, actor: Actor, access: BreakGlassAccess, appropriate: bool, note: str = ""
) -> BreakGlassReview:
    """An auditor of the patient's clinic judges a break-glass access (a newer review
    supersedes an older one; none is ever changed). An inappropriate verdict needs a note."""
    note = (note or "").strip()
    if len(note) > NOTE_MAX_CHARS:
        raise ValidationFailed(fields={"note": [f"At most {NOTE_MAX_CHARS} characters."]})
    if not appropriate and not note:
        raise ValidationFailed(fields={"note": ["Say why the access was not appropriate."]})
    patient = access.patient
    reviewer_id = actor.user_id
    is_auditor = (
        actor.role == Role.AUDITOR
        and reviewer_id is not None
        and Auditor.objects.filter(
            user_id=reviewer_id, organisation_id=patient.organisation_id
        ).exists()
    )
    if not is_auditor or reviewer_id is None:
        access_record(
            actor=actor,
            action="break_glass.review",
            patient_id=patient.pk,
            outcome=AccessOutcome.DENIED,
            resource_type="BreakGlassAccess",
            resource_id=access.pk,
            status_code=403,
            reason="not_clinic_auditor",
        )
        raise PermissionDenied("Break-glass accesses are reviewed by the clinic's auditors.")
    with transaction.atomic():
        review = BreakGlassReview.objects.create(
            access=access, reviewer_id=reviewer_id, appropriate=appropriate, note=note
        )
        access_record(
            actor=actor,
            action="break_glass.review",
            patient_id=patient.pk,
            resource_type="BreakGlassAccess",
            resource_id=access.pk,
            reason="appropriate" if appropriate else "inappropriate",
        )
    return review
