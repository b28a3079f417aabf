"""Creating clinics, clinicians, auditors and patients (admin, demo seed and tests use these)."""

from __future__ import annotations

import uuid

from django.db import transaction

from privacy.audit import Actor, access_record
from privacy.choices import Role
from privacy.datakeys import patient_key_create
from privacy.fields import EncryptedTextField
from risk.intake import patient_transferred
from screening.models import (
    Auditor,
    CareTeam,
    Clinician,
    EmergencyContact,
    Organisation,
    Patient,
    User,
)


def user_create(
    *,
    username: str,
    password: str | None,
    role: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> User:
    user = User(
        username=username, role=role, email=email, first_name=first_name, last_name=last_name
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user


@transaction.atomic
def clinician_create(
    *,
    organisation: Organisation,
    username: str,
    password: str | None,
    title: str = "",
    care_teams: list[CareTeam] | None = None,
    first_name: str = "",
    last_name: str = "",
) -> Clinician:
    user = user_create(
        username=username,
        password=password,
        role=Role.CLINICIAN,
        first_name=first_name,
        last_name=last_name,
    )
    clinician = Clinician.objects.create(user=user, organisation=organisation, title=title)
    for team in care_teams or []:
        team.members.add(clinician)
    return clinician


@transaction.atomic
def auditor_create(*, organisation: Organisation, username: str, password: str | None) -> Auditor:
    user = user_create(username=username, password=password, role=Role.AUDITOR)
    return Auditor.objects.create(user=user, organisation=organisation)


@transaction.atomic
def patient_create(
    *,
    organisation: Organisation,
    treating_clinician: Clinician,
    care_team: CareTeam,
    username: str,
    password: str | None,
    display_name: str | None = None,
    timezone: str = "UTC",
    locale: str = "en-US",
    birth_year: int | None = None,
    actor: Actor | None = None,
) -> Patient:
    """A patient gets a login, a data key (before any encrypted field is written) and a record.
    With an ``actor`` (a person creating the patient, e.g. in the admin) the creation is recorded
    as the access event ``patient.create``."""
    if care_team.organisation_id != organisation.pk:
        raise ValueError("care team belongs to another clinic")
    if treating_clinician.organisation_id != organisation.pk:
        raise ValueError("clinician belongs to another clinic")
    user = user_create(username=username, password=password, role=Role.PATIENT)
    patient_id = uuid.uuid4()
    patient_key_create(patient_id=patient_id)
    patient = Patient(
        id=patient_id,
        user=user,
        organisation=organisation,
        treating_clinician=treating_clinician,
        care_team=care_team,
        display_name=display_name,
        timezone=timezone,
        locale=locale,
        birth_year=birth_year,
    )
    patient.full_clean(exclude=["user", "display_name"])
    patient.save()
    if actor is not None:
        access_record(
            actor=actor,
            action="patient.create",
            patient_id=patient.pk,
            resource_type="Patient",
            resource_id=patient.pk,
        )
    return patient


def _patient_audited_fields() -> dict[str, str]:
    """Field name -> column attribute of what ``patient_update`` records a change of: all but the
    key and the encrypted fields (comparing those would decrypt them)."""
    return {
        field.name: field.attname
        for field in Patient._meta.concrete_fields
        if not field.primary_key and not isinstance(field, EncryptedTextField)
    }


@transaction.atomic
def patient_update(*, actor: Actor, patient: Patient) -> Patient:
    """Save an existing patient's edited record (the admin's form). The care team and treating
    clinician must be of the patient's clinic. If the clinic changed, the patient's active alerts
    follow them to the new clinic in the same transaction (``risk.intake.patient_transferred``:
    re-assigned, recorded, escalated there), so the clinic notified is the one that may act.

    Any change is recorded as the access event ``patient.update`` naming the fields that changed
    (names only, never values); setting or releasing the legal hold is recorded on its own as
    ``patient.legal_hold_set`` / ``patient.legal_hold_release``."""
    if patient.care_team.organisation_id != patient.organisation_id:
        raise ValueError("care team belongs to another clinic")
    if patient.treating_clinician.organisation_id != patient.organisation_id:
        raise ValueError("clinician belongs to another clinic")
    audited = _patient_audited_fields()
    previous = (
        Patient.objects.select_for_update().filter(pk=patient.pk).values(*audited.values()).get()
    )
    patient.save()
    if previous["organisation_id"] != patient.organisation_id:
        # Risk work first, audit records last: each access_record takes the audit chain's head,
        # which would otherwise stay locked while every moved alert is re-armed and notified.
        patient_transferred(actor=actor, patient=patient)
    changed = [name for name, attr in audited.items() if previous[attr] != getattr(patient, attr)]
    if changed:
        access_record(
            actor=actor,
            action="patient.update",
            patient_id=patient.pk,
            resource_type="Patient",
            resource_id=patient.pk,
            purpose=f"fields: {', '.join(changed)}",
        )
    if "legal_hold" in changed:
        access_record(
            actor=actor,
            action="patient.legal_hold_set" if patient.legal_hold else "patient.legal_hold_release",
            patient_id=patient.pk,
            resource_type="Patient",
            resource_id=patient.pk,
        )
    return patient


def emergency_contact_set(
    *,
    patient: Patient,
    name: str,
    phone: str | None = None,
    email: str | None = None,
    relationship: str = "",
) -> EmergencyContact:
    contact = EmergencyContact.objects.filter(patient=patient).first() or EmergencyContact(
        patient=patient
    )
    contact.name = name
    contact.phone = phone
    contact.email = email
    contact.relationship = relationship
    contact.save()
    return contact
