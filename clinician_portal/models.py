"""Portal sign-in state: each staff member's second factor, and the per-username lockout."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StaffTotp(models.Model):
    """A clinician's or auditor's TOTP secret, sealed with AES-256-GCM under a key-encryption key.

    Staff have no patient data key (the patient-owned ``EncryptedTextField`` does not apply), so
    the secret is sealed directly under the keyring's active KEK with the user id and the KEK id
    bound in as associated data (:mod:`clinician_portal.totp`). ``kek_id`` says which KEK to use
    to open it, so older KEKs keep working while they stay loaded.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portal_totp"
    )
    kek_id = models.CharField(max_length=64)
    sealed_secret = models.BinaryField()
    #: Set once the user proved they hold the secret (a first valid code); before that the
    #: enrolment page may show a fresh secret (it never shows a confirmed one again).
    confirmed_at = models.DateTimeField(null=True, blank=True)
    #: The 30-second time step of the last accepted code: a code is accepted once.
    last_used_step = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"TOTP of user {self.user_id}"


class LoginThrottle(models.Model):
    """Failed sign-ins per username (known or not): too many locks the username for a while."""

    username = models.CharField(max_length=150, unique=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"login throttle {self.pk}"
