"""Keys, consent, access events and API tokens."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q

from privacy.choices import AccessOutcome, ConsentScope


class AppendOnlyError(Exception):
    """An append-only record was asked to change or disappear."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only")


class AppendOnlyModel(models.Model):
    objects: ClassVar[models.Manager] = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only")


class PatientKey(models.Model):
    """A patient's data key, wrapped by a key-encryption key (never stored in the clear).

    ``patient_id`` is a plain UUID, not a foreign key: the key must exist before the patient's own
    encrypted fields are first written, and it outlives the patient row's content after erasure
    only as a destroyed tombstone.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient_id = models.UUIDField(db_index=True)
    kek_id = models.CharField(max_length=64)
    wrapped_key = models.BinaryField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)  # superseded: decrypt only
    destroyed_at = models.DateTimeField(null=True, blank=True)  # crypto-shredded

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient_id"],
                condition=Q(retired_at__isnull=True, destroyed_at__isnull=True),
                name="one_current_key_per_patient",
            )
        ]

    def __str__(self) -> str:
        return f"PatientKey {self.id} ({self.kek_id})"


class ConsentDocument(models.Model):
    """The exact text shown to a patient when they grant a scope, versioned and hashed."""

    scope = models.CharField(max_length=32, choices=ConsentScope.choices)
    version = models.CharField(max_length=32)
    text = models.TextField()
    sha256 = models.CharField(max_length=64)
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "version"], name="consent_doc_version")
        ]
        ordering = ["scope", "-published_at"]

    def __str__(self) -> str:
        return f"{self.scope} v{self.version}"


class ConsentRecord(AppendOnlyModel):
    """One grant or withdrawal. Append-only: a withdrawal is a new row, never an update."""

    id = models.BigAutoField(primary_key=True)
    patient = models.ForeignKey(
        "screening.Patient", on_delete=models.PROTECT, related_name="consent_records"
    )
    scope = models.CharField(max_length=32, choices=ConsentScope.choices)
    granted = models.BooleanField()
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, null=True, blank=True)
    document_version = models.CharField(max_length=32, blank=True)
    document_sha256 = models.CharField(max_length=64, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=16, default="api")
    #: On a withdrawal: the patient asked for the data derived under this scope to be deleted.
    delete_derived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["patient", "scope", "-created_at"])]

    def __str__(self) -> str:
        return f"{'grant' if self.granted else 'withdraw'} {self.scope}"


class AccessEvent(AppendOnlyModel):
    """Who touched which patient's data, how, and whether it was allowed. IDs only, no content.

    Events form a hash chain: ``seq`` is the position, ``prev_hash`` the previous event's hash and
    ``hash`` the SHA-256 over this event's canonical serialisation and ``prev_hash``.
    """

    id = models.BigAutoField(primary_key=True)
    seq = models.BigIntegerField(unique=True, null=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, blank=True, editable=False)
    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_role = models.CharField(max_length=16, blank=True)
    patient = models.ForeignKey(
        "screening.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=64)
    outcome = models.CharField(max_length=8, choices=AccessOutcome.choices)
    resource_type = models.CharField(max_length=48, blank=True)
    resource_id = models.CharField(max_length=64, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    #: Why (treatment, a break-glass reason, an erasure reason). Never patient content.
    purpose = models.CharField(max_length=500, blank=True)
    break_glass = models.BooleanField(default=False, db_index=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["patient", "-occurred_at"]),
            models.Index(fields=["actor", "-occurred_at"]),
        ]
        constraints = [
            # The chain starts at seq 1; a row at seq 0 or below can only be a forgery (the
            # verifier reports one as ``inserted`` too, on a database without this constraint).
            models.CheckConstraint(
                condition=models.Q(seq__isnull=True) | models.Q(seq__gte=1),
                name="privacy_accessevent_seq_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.outcome}"


class AuditChainHead(models.Model):
    """The chain's head (a single row): appends lock it, so concurrent writers cannot fork."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"audit head #{self.seq}"


class AuditAnchor(AppendOnlyModel):
    """A recorded head (seq, hash), also written outside the database, to detect tail truncation."""

    id = models.BigAutoField(primary_key=True)
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    destinations = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"anchor #{self.seq}"


class BreakGlassAccess(AppendOnlyModel):
    """A clinician outside the care team opened a record, stating a reason; flagged for review."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinician = models.ForeignKey("screening.Clinician", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey("screening.Patient", on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"break-glass {self.id}"


class BreakGlassReview(AppendOnlyModel):
    """An auditor's review of a break-glass access (append-only: a newer review supersedes)."""

    id = models.BigAutoField(primary_key=True)
    access = models.ForeignKey(BreakGlassAccess, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    appropriate = models.BooleanField()
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"review of {self.access_id}"


class ApiToken(models.Model):
    """An expiring bearer token. Only its SHA-256 is stored; the token is shown once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=80, blank=True)
    key_prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"token {self.key_prefix}…"

    @property
    def is_active(self) -> bool:
        from django.utils import timezone

        return self.revoked_at is None and self.expires_at > timezone.now()


__all__ = ["AccessOutcome", "ConsentScope"]
