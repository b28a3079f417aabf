"""Token services (login, logout, list, revoke) and their housekeeping."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.db import transaction
from django.utils import timezone

from config.errors import NotFound, VigilError
from privacy.audit import Actor, access_record
from privacy.auth import token_issue
from privacy.choices import Role
from privacy.models import ApiToken


class LoginFailed(VigilError):
    code = "login_failed"
    status = 401
    default_message = "Wrong username or password."


class SecondFactorRequired(VigilError):
    """A clinician or auditor gave the right password but no TOTP code."""

    code = "totp_required"
    status = 401
    default_message = "This account needs a current code from its authenticator app (totp_code)."


class SecondFactorNotEnrolled(VigilError):
    """A clinician or auditor who has not yet confirmed a TOTP secret (done in the portal)."""

    code = "totp_not_enrolled"
    status = 403
    default_message = "Sign in to the portal once to set up the second factor first."


class ApiLoginNotAllowed(LoginFailed):
    """The password was right, but the account is not one the API serves: administrators (and
    every account with admin-site rights that is neither a clinician nor an auditor) work in the
    admin site, and no API endpoint answers them, so they get no bearer token at all.

    The caller gets exactly the wrong-password answer (401 ``login_failed``): a distinct answer
    would confirm an administrator's password through the API, without the admin site's second
    factor or lockout. The reason is kept for the audit log only (``audit_reason``)."""

    audit_reason = "api_login_not_allowed"


#: Roles whose bearer tokens need the second factor (the portal's roles).
STAFF_ROLES = (Role.CLINICIAN.value, Role.AUDITOR.value)
#: The one role that gets a token with the password alone.
PASSWORD_ONLY_ROLES = (Role.PATIENT.value,)


def _api_password_login_allowed(*, user: Any) -> bool:
    """A patient account without admin-site rights. ``createsuperuser`` leaves the default role
    (patient) on a superuser: the admin flags, not the role, decide that it is an administrator."""
    role = str(getattr(user, "role", ""))
    admin_site = bool(getattr(user, "is_staff", False) or getattr(user, "is_superuser", False))
    return role in PASSWORD_ONLY_ROLES and not admin_site


def _staff_user(username: str) -> Any:
    """The active-or-not clinician or auditor called ``username``, if there is one."""
    if not username:
        return None
    return get_user_model().objects.filter(username=username, role__in=STAFF_ROLES).first()


def _staff_login_check(*, username: str, password: str, totp_code: str, ip: str | None) -> Any:
    """Staff get a token only as they get into the portal: password, then a TOTP code, through
    the portal's own checks (:mod:`clinician_portal.services`), so every failure counts against
    the same lockout and is audited as ``portal.login``. A wrong password or code is the patients'
    generic :class:`LoginFailed`; a locked username stays ``locked_out`` (429)."""
    from clinician_portal import services as portal

    try:
        checked = portal.portal_password_check(username=username, password=password, ip=ip)
    except portal.LoginRefused:
        raise LoginFailed() from None
    if not checked.enrolled:
        raise SecondFactorNotEnrolled()
    if not (totp_code or "").strip():
        raise SecondFactorRequired()
    try:
        portal.portal_totp_check(user=checked.user, code=totp_code, ip=ip)
    except portal.LoginRefused:
        raise LoginFailed("Wrong username, password or code.") from None
    return checked.user


def session_token_login(
    *,
    actor: Actor,
    username: str,
    password: str,
    totp_code: str = "",
    device_name: str = "",
    request: Any = None,
) -> tuple[ApiToken, str]:
    """Check credentials and issue an expiring token. A failure is logged as a denied request by
    the error handler (action ``auth.login``, not signed in), without the username, password or
    code.

    Clinicians and auditors also need ``totp_code`` and are subject to the portal's lockout
    (:func:`_staff_login_check`); patients log in with the password alone. Every other account
    (administrators, system accounts, superusers) is refused even with the right password:
    :class:`ApiLoginNotAllowed`, which answers like a wrong password (:class:`LoginFailed`) and
    is told apart only in the audit log.
    """
    if _staff_user(username) is not None:
        user = _staff_login_check(
            username=username, password=password, totp_code=totp_code, ip=actor.ip_address
        )
    else:
        user = authenticate(request, username=username, password=password)
        if user is None or not user.is_active:
            raise LoginFailed()
        if str(getattr(user, "role", "")) in STAFF_ROLES:
            # Another spelling of a staff username got through the backend: never without TOTP.
            raise LoginFailed()
        if not _api_password_login_allowed(user=user):
            raise ApiLoginNotAllowed()
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
