"""FHIR API state: integration clients, SMART scopes on tokens, and bulk-export jobs."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class FhirClient(models.Model):
    """A clinic's integration client (client-credentials). Only the secret's SHA-256 is stored.

    Each client has its own service ``user`` (role ``system``): the tokens it gets are ordinary
    :class:`privacy.models.ApiToken` rows, and the access log names that user.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "screening.Organisation", on_delete=models.PROTECT, related_name="fhir_clients"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="fhir_client"
    )
    name = models.CharField(max_length=80)
    client_id = models.CharField(max_length=64, unique=True)
    secret_hash = models.CharField(max_length=64)
    #: Space-separated SMART scopes the client may ask for (e.g. ``system/*.rs``).
    scopes = models.CharField(max_length=500, default="system/*.rs")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"FHIR client {self.client_id}"


class FhirTokenGrant(models.Model):
    """The SMART scopes granted to one API token (absent: the role's default scopes)."""

    token = models.OneToOneField(
        "privacy.ApiToken", on_delete=models.CASCADE, related_name="fhir_grant"
    )
    client = models.ForeignKey(
        FhirClient, on_delete=models.CASCADE, null=True, blank=True, related_name="grants"
    )
    scopes = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"grant {self.scopes}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"


class FhirExportJob(models.Model):
    """One ``$export`` request: who asked, what for, and the files it produced."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    token = models.ForeignKey(
        "privacy.ApiToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    #: system | patient | group
    level = models.CharField(max_length=8)
    group_id = models.CharField(max_length=64, blank=True)
    types = models.CharField(max_length=500, blank=True)
    since = models.DateTimeField(null=True, blank=True)
    request_url = models.CharField(max_length=500)
    status = models.CharField(
        max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    #: [{"type": "Observation", "name": "Observation-1.ndjson", "count": 12, "sha256": ...}]
    output = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=200, blank=True)
    #: The job's files are encrypted at rest under a per-job data key, stored here wrapped by the
    #: key-encryption key ``kek_id`` (``clinician_portal.fhir.services``). Deleting the job sets it
    #: to null first: the files can then never be read again (crypto-shredding).
    kek_id = models.CharField(max_length=64, blank=True)
    wrapped_key = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"export {self.id} ({self.status})"


class FhirExportPatient(models.Model):
    """A patient whose records are in an export job's files: erasing the patient deletes the job
    (``clinician_portal.fhir.services.export_jobs_erase``, an erasure hook)."""

    job = models.ForeignKey(FhirExportJob, on_delete=models.CASCADE, related_name="patients")
    patient = models.ForeignKey("screening.Patient", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "patient"], name="fhir_export_patient_once"),
        ]

    def __str__(self) -> str:
        return f"export {self.job_id} includes {self.patient_id}"
