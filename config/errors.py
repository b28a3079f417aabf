"""Named domain errors. Each maps to one JSON error shape with a stable ``code``.

This module imports nothing from Django, so services and pure code can raise these freely.
Messages never contain patient data: they are shown to API clients and written to logs.
"""

from __future__ import annotations

from typing import Any


class VigilError(Exception):
    code = "error"
    status = 400
    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.default_message
        self.extra = extra
        super().__init__(self.message)


class ValidationFailed(VigilError):
    code = "validation_failed"
    status = 400
    default_message = "Some fields are invalid."

    def __init__(self, message: str | None = None, *, fields: dict[str, list[str]]) -> None:
        super().__init__(message, fields=fields)


class NotFound(VigilError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class PermissionDenied(VigilError):
    code = "permission_denied"
    status = 403
    default_message = "You do not have permission to do this."


class ConsentMissing(VigilError):
    code = "consent_missing"
    status = 403
    default_message = "This needs a consent the patient has not given."

    def __init__(self, *scopes: str) -> None:
        super().__init__(f"This needs consent for: {', '.join(scopes)}.", scopes=list(scopes))
        self.scopes = scopes


class IdempotencyConflict(VigilError):
    code = "idempotency_conflict"
    status = 409
    default_message = "This idempotency key was already used for a different submission."


class PayloadTooLarge(VigilError):
    code = "payload_too_large"
    status = 413
    default_message = "The request body is too large."


class MediaRejected(VigilError):
    """An upload that is not a video Vigil can use; ``reason`` is a stable machine-readable word."""

    code = "media_rejected"
    status = 415
    #: reason -> (HTTP status, message a patient can act on)
    REASONS: dict[str, tuple[int, str]] = {
        "empty": (400, "The file is empty. Please record the video again."),
        "not_a_video": (415, "This file is not a video we can read."),
        "corrupt": (415, "The video file is damaged. Please record it again."),
        "unsupported_codec": (415, "This video format is not supported. Please use the app."),
        "no_video": (415, "The file has no picture. Please record a video, not only sound."),
        "too_long": (413, "The video is too long. Please keep it under the time limit."),
        "too_large": (413, "The video file is too large."),
        "too_large_frames": (415, "The video's picture size is too large."),
    }

    def __init__(self, reason: str, *, limit: int | float | None = None) -> None:
        status, message = self.REASONS.get(reason, (415, "This video cannot be used."))
        extra: dict[str, Any] = {"reason": reason}
        if limit is not None:
            extra["limit"] = limit
        super().__init__(message, **extra)
        self.status = status
        self.reason = reason


class DecryptionFailed(VigilError):
    code = "decryption_failed"
    status = 500
    default_message = "Stored data could not be decrypted."


class KeyNotFound(VigilError):
    code = "key_not_found"
    status = 500
    default_message = "An encryption key is missing."


class LegalHold(VigilError):
    """An erasure was refused: the patient's record is under legal hold (``Patient.legal_hold``)."""

    code = "legal_hold"
    status = 409
    default_message = (
        "This patient's record is under legal hold and cannot be erased until the hold is lifted."
    )


class ServiceUnavailable(VigilError):
    code = "service_unavailable"
    status = 503
    default_message = "The service is briefly unavailable. Please retry."
