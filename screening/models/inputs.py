"""What patients send: diary entries, videos, questionnaires and help-button presses.

Every input carries the client's timestamp and time zone, and the patient's local calendar day
(``local_date``) derived from them: "a day" is always the patient's own day.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from privacy.fields import EncryptedJSONField, EncryptedTextField
from screening.choices import EmergencyStatus, Instrument, VideoStage, VideoStatus
from screening.models.people import Patient, validate_timezone


class PatientInput(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.UUIDField()
    client_timestamp = models.DateTimeField()
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    local_date = models.DateField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "idempotency_key"], name="%(class)s_idempotency"
            ),
        ]
        indexes = [models.Index(fields=["patient", "-created_at"], name="%(class)s_recent")]


class DiaryEntry(PatientInput):
    text = EncryptedTextField()
    self_rated_mood = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta(PatientInput.Meta):
        verbose_name_plural = "diary entries"

    def __str__(self) -> str:
        return f"DiaryEntry {self.id}"


class VideoSubmission(PatientInput):
    status = models.CharField(
        max_length=16, choices=VideoStatus.choices, default=VideoStatus.QUEUED
    )
    stage = models.CharField(max_length=16, choices=VideoStage.choices, default=VideoStage.RECEIVED)
    percent = models.PositiveSmallIntegerField(default=0)
    failure_reason = models.CharField(max_length=32, blank=True)
    failure_message = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    storage_name = models.CharField(max_length=200)
    size_bytes = models.BigIntegerField()
    duration_seconds = models.FloatField()
    container = models.CharField(max_length=40)
    video_codec = models.CharField(max_length=40)
    audio_codec = models.CharField(max_length=40, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    enqueued_at = models.DateTimeField(null=True, blank=True)  # last handed to the broker
    processing_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(PatientInput.Meta):
        indexes = [
            *PatientInput.Meta.indexes,
            models.Index(fields=["status", "processing_started_at"], name="video_status"),
        ]

    def __str__(self) -> str:
        return f"VideoSubmission {self.id} ({self.status})"


class QuestionnaireResponse(PatientInput):
    instrument = models.CharField(max_length=8, choices=Instrument.choices)
    answers = EncryptedJSONField()
    total = models.PositiveSmallIntegerField()
    severity = models.CharField(max_length=24)
    #: PHQ-9 item 9 ("thoughts that you would be better off dead or of hurting yourself"), kept on
    #: its own: any value above 0 is a clinical trigger whatever the total.
    item9 = models.PositiveSmallIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.instrument} {self.id}"


class Emergency(models.Model):
    """One open emergency per patient: repeated help presses collapse into it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="emergencies")
    status = models.CharField(
        max_length=8, choices=EmergencyStatus.choices, default=EmergencyStatus.OPEN
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    last_press_at = models.DateTimeField()
    press_count = models.PositiveIntegerField(default=1)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(status="open"),
                name="one_open_emergency_per_patient",
            )
        ]

    def __str__(self) -> str:
        return f"Emergency {self.id} ({self.status})"


class HelpRequest(models.Model):
    """One press of the help button. Every press is recorded, none is refused."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    emergency = models.ForeignKey(Emergency, on_delete=models.PROTECT, related_name="presses")
    idempotency_key = models.UUIDField(null=True, blank=True)
    client_timestamp = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    locale = models.CharField(max_length=16)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="helprequest_idempotency",
            ),
        ]

    def __str__(self) -> str:
        return f"HelpRequest {self.id}"
