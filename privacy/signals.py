"""Session logins (admin, portal) as access events. API logins are recorded by the login view."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from privacy.audit import Actor, access_record, client_ip
from privacy.choices import ANONYMOUS_ROLE, AccessOutcome


def _is_api(request: Any) -> bool:
    return bool(request is not None and getattr(request, "path", "").startswith("/api/"))


@receiver(user_logged_in, dispatch_uid="vigil-session-login")
def session_login_recorded(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if _is_api(request):
        return
    actor = Actor(user_id=user.pk, role=getattr(user, "role", ""), ip_address=client_ip(request))
    access_record(actor=actor, action="auth.session_login", resource_type="Session")


@receiver(user_login_failed, dispatch_uid="vigil-session-login-failed")
def session_login_failed_recorded(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    """Recorded without the username or password that were tried."""
    if _is_api(request):
        return
    actor = Actor(user_id=None, role=ANONYMOUS_ROLE, ip_address=client_ip(request))
    access_record(
        actor=actor,
        action="auth.session_login",
        outcome=AccessOutcome.DENIED,
        resource_type="Session",
        reason="bad_credentials",
        status_code=401,
    )
