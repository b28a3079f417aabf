"""Token services (login, logout, list, revoke) and their housekeeping."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from config.errors import NotFound, VigilError
from privacy.audit import Actor, access_record
from privacy.auth import token_issue
from privacy.models import ApiToken


class LoginFailed(VigilError):
    code = "login_failed"
    status = 401
    default_message = "Wrong username or password."


def session_token_login(
    *, actor: Actor, username: str, password: str, device_name: str = "", request: Any = None
) -> tuple[ApiToken, str]:
    """Check credentials and issue an expiring token. A failure is logged as a denied request by
    the error handler (action ``auth.login``), without the username or password.
    """
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise LoginFailed()
    with transaction.atomic():
        token, raw = token_issue(user=user, name=device_name)
        access_record(
            actor=Actor(user_id=user.pk, role=user.role, ip_address=actor.ip_address),
            action="auth.login",
            resource_type="ApiToken",
            resource_id=token.pk,
        )
    return token, raw


def token_revoke(*, actor: Actor, user: Any, token_id: uuid.UUID) -> ApiToken:
    token = ApiToken.objects.filter(pk=token_id, user=user).first()
    if token is None:
        raise NotFound()
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        access_record(
            actor=actor, action="auth.token_revoke", resource_type="ApiToken", resource_id=token.pk
        )
    return token


def tokens_list(*, user: Any) -> Any:
    return ApiToken.objects.filter(
        user=user, revoked_at__isnull=True, expires_at__gt=timezone.now()
    )


def tokens_purge_expired(*, older_than_days: int = 30) -> int:
    """Delete tokens that expired or were revoked more than ``older_than_days`` ago."""
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    deleted, _ = ApiToken.objects.filter(expires_at__lt=cutoff).delete()
    deleted_revoked, _ = ApiToken.objects.filter(revoked_at__lt=cutoff).delete()
    return deleted + deleted_revoked
