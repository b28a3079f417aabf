from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from privacy.choices import Role


class IsPatient(BasePermission):
    """Patient endpoints: only an authenticated patient with a live (not erased) record."""

    message = "This endpoint is for patients."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated or user.role != Role.PATIENT:
            return False
        patient = getattr(user, "patient", None)
        return patient is not None and patient.erased_at is None
