"""Who is who: clinics, care teams, clinicians, auditors, patients and their emergency contact."""

from __future__ import annotations

import secrets
import uuid
import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models

from privacy.choices import Role
from privacy.fields import EncryptedTextField


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone: {value}")


def new_pseudonym() -> str:
    """A stable, random, non-identifying patient id for FHIR, audits and exports."""
    return "P-" + secrets.token_hex(6).upper()


class User(AbstractUser):
    """A login. ``role`` decides which surface the user may use (patient API, portal, audit)."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.PATIENT)

    def __str__(self) -> str:
        return self.username


class Organisation(models.Model):
    """A clinic."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    default_locale = models.CharField(max_length=16, default="en-US")
    #: Optional per-clinic crisis resources ({"en-US": [{"name":..., "phone":...}]}) that take
    #: precedence over the built-in ones.
    crisis_resources = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Clinician(models.Model):
    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="clinician")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="clinicians"
    )
    title = models.CharField(max_length=80, blank=True)

    def __str__(self) -> str:
        return f"Clinician {self.user.username}"


class CareTeam(models.Model):
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="care_teams"
    )
    name = models.CharField(max_length=120)
    members = models.ManyToManyField(Clinician, related_name="care_teams", blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="care_team_name")
        ]

    def __str__(self) -> str:
        return self.name


class Auditor(models.Model):
    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="auditor")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="auditors"
    )

    def __str__(self) -> str:
        return f"Auditor {self.user.username}"


class Patient(models.Model):
    """A patient of one clinic. Identifying details are encrypted with the patient's own key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="patient")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="patients"
    )
    treating_clinician = models.ForeignKey(
        Clinician, on_delete=models.PROTECT, related_name="patients"
    )
    care_team = models.ForeignKey(CareTeam, on_delete=models.PROTECT, related_name="patients")
    pseudonym = models.CharField(max_length=32, unique=True, default=new_pseudonym)
    display_name = EncryptedTextField(owner_field="id", null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    locale = models.CharField(max_length=16, default="en-US")
    birth_year = models.PositiveSmallIntegerField(null=True, blank=True)
    legal_hold = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.pseudonym


class EmergencyContact(models.Model):
    """The person a patient designated. Usable only with the patient's emergency-contact consent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.OneToOneField(
        Patient, on_delete=models.CASCADE, related_name="emergency_contact"
    )
    name = EncryptedTextField()
    phone = EncryptedTextField(null=True, blank=True)
    email = EncryptedTextField(null=True, blank=True)
    relationship = models.CharField(max_length=40, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Emergency contact of {self.patient_id}"
