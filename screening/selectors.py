"""Reads of patient data. Every read records an access event (IDs only)."""

from __future__ import annotations

import uuid

from django.db import models

from config.errors import NotFound
from privacy.audit import Actor, access_record
from privacy.choices import AccessOutcome
from screening.models import DiaryEntry, Patient, QuestionnaireResponse, VideoSubmission

_RESOURCES: dict[str, type[models.Model]] = {
    "diary": DiaryEntry,
    "video": VideoSubmission,
    "questionnaire": QuestionnaireResponse,
}


def patient_profile_get(*, actor: Actor, patient: Patient) -> dict[str, str]:
    access_record(
        actor=actor,
        action="profile.read",
        patient_id=patient.pk,
        resource_type="Patient",
        resource_id=patient.pk,
    )
    return {
        "pseudonym": patient.pseudonym,
        "timezone": patient.timezone,
        "locale": patient.locale,
        "clinic": patient.organisation.name,
        "care_team": patient.care_team.name,
    }


def patient_inputs_list(*, actor: Actor, patient: Patient, kind: str) -> models.QuerySet:
    """The patient's own inputs of one kind, newest first (the caller pages them)."""
    model = _RESOURCES[kind]
    access_record(
        actor=actor, action=f"{kind}.list", patient_id=patient.pk, resource_type=model.__name__
    )
    return model._default_manager.filter(patient=patient).order_by("-created_at", "-id")


def patient_input_get(
    *, actor: Actor, patient: Patient, kind: str, input_id: uuid.UUID
) -> models.Model:
    """One of the patient's own inputs. Another patient's id answers exactly like a missing one
    (404), and the attempt is logged as denied against the owner.
    """
    model = _RESOURCES[kind]
    row = model._default_manager.filter(pk=input_id).first()
    if row is None or row.patient_id != patient.pk:  # type: ignore[attr-defined]
        access_record(
            actor=actor,
            action=f"{kind}.read",
            outcome=AccessOutcome.DENIED,
            patient_id=row.patient_id if row is not None else None,  # type: ignore[attr-defined]
            resource_type=model.__name__,
            resource_id=input_id,
            status_code=404,
            reason="not_owner" if row is not None else "not_found",
        )
        raise NotFound()
    access_record(
        actor=actor,
        action=f"{kind}.read",
        patient_id=patient.pk,
        resource_type=model.__name__,
        resource_id=row.pk,
    )
    return row
