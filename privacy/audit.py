"""The one place that writes access events.

Every read or write of a patient's data through the API records who, in which role, which patient,
what action and the outcome. Events hold ids and codes only, never content. (The privacy issue
chains these events by hash; callers do not change.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError

from config.middleware import current_request_id
from privacy.choices import AccessOutcome, Role
from privacy.models import AccessEvent

logger = logging.getLogger("vigil.audit")


@dataclass(frozen=True)
class Actor:
    """Who is acting, as the services see it."""

    user_id: int | None
    role: str
    ip_address: str | None = None

    @classmethod
    def from_request(cls, request: Any) -> Actor:
        user = getattr(request, "user", None)
        authenticated = bool(user is not None and getattr(user, "is_authenticated", False))
        return cls(
            user_id=user.pk if (authenticated and user is not None) else None,
            role=getattr(user, "role", "") if authenticated else "anonymous",
            ip_address=client_ip(request),
        )

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, role=Role.SYSTEM)


def client_ip(request: Any) -> str | None:
    meta = getattr(request, "META", {})
    return meta.get("REMOTE_ADDR") or None


def access_record(
    *,
    actor: Actor,
    action: str,
    patient_id: Any = None,
    outcome: str = AccessOutcome.ALLOWED,
    resource_type: str = "",
    resource_id: Any = "",
    status_code: int | None = None,
    reason: str = "",
    purpose: str = "",
    break_glass: bool = False,
) -> AccessEvent:
    """Append one event. ``purpose`` says why (a break-glass or erasure reason), never content."""
    return AccessEvent.objects.create(
        actor_id=actor.user_id,
        actor_role=actor.role,
        patient_id=patient_id,
        action=action,
        outcome=outcome,
        resource_type=resource_type,
        resource_id=str(resource_id or ""),
        status_code=status_code,
        reason=reason,
        request_id=current_request_id(),
        ip_address=actor.ip_address,
        purpose=purpose[:500],
        break_glass=break_glass,
    )


def access_denied_record(*, request: Any, view: Any, code: str, status: int) -> None:
    """Log a refused request (401/403). Never lets a logging failure change the response."""
    action = getattr(view, "audit_action", None) or (
        f"{type(view).__name__}.{getattr(request, 'method', '?')}".lower() if view else "unknown"
    )
    try:
        access_record(
            actor=Actor.from_request(request),
            action=action,
            outcome=AccessOutcome.DENIED,
            resource_type=getattr(view, "audit_resource", "") if view else "",
            status_code=status,
            reason=code,
        )
    except DatabaseError:
        logger.exception("could not record a denied request")
