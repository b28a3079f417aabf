"""Who may use the privacy API: patients (their own access log) and auditors (their clinic)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from privacy.choices import Role
from screening.api.permissions import IsPatient

__all__ = ["IsAuditor", "IsPatient"]


class IsAuditor(BasePermission):
    """Auditor endpoints: an authenticated auditor attached to a clinic."""

    message = "This endpoint is for auditors."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated or user.role != Role.AUDITOR:
            return False
        return getattr(user, "auditor", None) is not None
