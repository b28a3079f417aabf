"""Portal sign-in: password, then a TOTP second factor; enrolment; lockout; all audited.

Flow: :func:`portal_password_check` (step 1) -> :func:`portal_totp_check` (step 2). Every failure
of either step counts against the username; ``VIGIL_PORTAL_LOCKOUT_ATTEMPTS`` failures lock it for
``VIGIL_PORTAL_LOCKOUT_SECONDS`` (even a right password is then refused). Every outcome is an
access event (``portal.login``) with a reason code, never the username or a code.

The TOTP secret is sealed with AES-256-GCM under the keyring's active key-encryption key with
``vigil:totp:v1|<user id>|<kek id>`` as associated data: a sealed secret copied onto another user
fails to open. ``manage.py rotate_keys --to KID`` re-seals every secret under the new KEK
(:func:`totp_reseal_batch`, driven by :func:`privacy.rotation.kek_rotate`), so the old KEK can be
retired without locking staff out.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from dataclasses import dataclass, field

import pyotp
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from clinician_portal.models import LoginThrottle, StaffTotp
from config.errors import DecryptionFailed, KeyNotFound, VigilError
from privacy import crypto
from privacy.audit import Actor, access_record
from privacy.choices import AccessOutcome, Role
from privacy.keys import keyring
from screening.models import User

logger = logging.getLogger("vigil.portal")

#: Roles that may sign in to the portal.
PORTAL_ROLES = (Role.CLINICIAN, Role.AUDITOR)
TOTP_ISSUER = "Vigil"
TOTP_INTERVAL = 30


def idle_timeout_seconds() -> int:
    return int(getattr(settings, "VIGIL_PORTAL_IDLE_TIMEOUT_SECONDS", 15 * 60))


def queue_refresh_seconds() -> int:
    """How often an open alert queue fetches its rows again (the page's script)."""
    return max(2, int(getattr(settings, "VIGIL_PORTAL_QUEUE_REFRESH_SECONDS", 15)))


def lockout_attempts() -> int:
    return int(getattr(settings, "VIGIL_PORTAL_LOCKOUT_ATTEMPTS", 5))


def lockout_seconds() -> int:
    return int(getattr(settings, "VIGIL_PORTAL_LOCKOUT_SECONDS", 15 * 60))


class LoginRefused(VigilError):
    """One generic answer for every sign-in failure (never says which part was wrong)."""

    code = "login_refused"
    status = 400
    default_message = "Those details are not right. Check them and try again."


class LockedOut(VigilError):
    code = "locked_out"
    status = 429
    default_message = "Too many failed attempts: this account is locked for a while."


# --- the secret ----------------------------------------------------------------------------------
def _aad(user_id: int, kek_id: str) -> bytes:
    return f"vigil:totp:v1|{user_id}|{kek_id}".encode()


def _seal(*, user_id: int, secret: str) -> tuple[str, bytes]:
    ring = keyring()
    kek_id = ring.active_id
    return kek_id, crypto.seal(ring.get(kek_id), secret.encode("ascii"), _aad(user_id, kek_id))


def totp_secret(*, record: StaffTotp) -> str:
    """Open a sealed secret (raises ``DecryptionFailed`` if it was tampered with or moved)."""
    ring = keyring()
    opened = crypto.unseal(
        ring.get(record.kek_id), bytes(record.sealed_secret), _aad(record.user_id, record.kek_id)
    )
    return opened.decode("ascii")


# --- re-sealing under a new key-encryption key (``manage.py rotate_keys``) -----------------------
@dataclass
class TotpResealBatch:
    """What one re-seal batch did. ``failed`` maps user ids to a reason (never the secret)."""

    seen: int = 0
    resealed: int = 0
    changed_meanwhile: int = 0
    failed: dict[int, str] = field(default_factory=dict)


def totp_kek_usage() -> dict[str, int]:
    """KEK id -> number of staff TOTP secrets sealed under it."""
    rows = StaffTotp.objects.values("kek_id").annotate(n=models.Count("id")).order_by("kek_id")
    return {row["kek_id"]: row["n"] for row in rows}


def _reseal_candidates(to: str) -> models.QuerySet[StaffTotp]:
    return StaffTotp.objects.exclude(kek_id=to)


def totp_reseal_pending(*, to: str) -> int:
    return _reseal_candidates(to).count()


def _resealed(record: StaffTotp, *, to: str) -> bytes:
    """The record's secret sealed under KEK ``to`` (raises ``DecryptionFailed``/``KeyNotFound``)."""
    ring = keyring()
    target = ring.get(to)
    opened = crypto.unseal(
        ring.get(record.kek_id), bytes(record.sealed_secret), _aad(record.user_id, record.kek_id)
    )
    return crypto.seal(target, opened, _aad(record.user_id, to))


def totp_reseal_batch(*, to: str, batch_size: int, exclude: set[int]) -> TotpResealBatch:
    """Re-seal up to ``batch_size`` secrets not yet under ``to``, in one transaction that locks its
    rows (``SKIP LOCKED``: a sign-in holding a row is left for the next run). Rows that fail to
    open are added to ``exclude`` and reported by user id. ``seen == 0`` means nothing is left."""
    batch = TotpResealBatch()
    with transaction.atomic():
        rows = list(
            _reseal_candidates(to)
            .exclude(pk__in=exclude)
            .select_for_update(skip_locked=True)
            .order_by("pk")[:batch_size]
        )
        batch.seen = len(rows)
        for row in rows:
            try:
                sealed = _resealed(row, to=to)
            except (DecryptionFailed, KeyNotFound) as exc:
                exclude.add(row.pk)
                batch.failed[row.user_id] = f"{row.kek_id}: {exc.message}"
                continue
            # Compare-and-swap: only if nobody re-sealed or replaced it since it was read.
            updated = StaffTotp.objects.filter(pk=row.pk, kek_id=row.kek_id).update(
                kek_id=to, sealed_secret=sealed
            )
            if updated:
                batch.resealed += 1
            else:
                exclude.add(row.pk)
                batch.changed_meanwhile += 1
    return batch


def totp_reseal_check(*, to: str) -> tuple[int, dict[int, str]]:
    """Dry run: how many secrets would be re-sealed, and which (user ids) would fail to open."""
    ok, failed = 0, {}
    for row in _reseal_candidates(to).order_by("pk").iterator():
        try:
            _resealed(row, to=to)
        except (DecryptionFailed, KeyNotFound) as exc:
            failed[row.user_id] = f"{row.kek_id}: {exc.message}"
        else:
            ok += 1
    return ok, failed


def totp_secret_set(*, user: User, secret: str, confirmed: bool = False) -> StaffTotp:
    """Store ``secret`` as the user's (replacing any), sealed."""
    kek_id, sealed = _seal(user_id=user.pk, secret=secret)
    record, _ = StaffTotp.objects.update_or_create(
        user=user,
        defaults={
            "kek_id": kek_id,
            "sealed_secret": sealed,
            "confirmed_at": timezone.now() if confirmed else None,
            "last_used_step": 0,
        },
    )
    return record


def totp_provisioning_uri(*, user: User, secret: str) -> str:
    return pyotp.TOTP(secret, interval=TOTP_INTERVAL).provisioning_uri(
        name=user.username, issuer_name=TOTP_ISSUER
    )


def totp_enrolment_start(*, user: User) -> tuple[str, str]:
    """A fresh secret for a user who has not confirmed one: stored (unconfirmed) and returned with
    its provisioning URI, to be shown once. A confirmed secret is never replaced here."""
    existing = StaffTotp.objects.filter(user=user).first()
    if existing is not None and existing.confirmed_at is not None:
        raise LoginRefused()
    secret = pyotp.random_base32()
    totp_secret_set(user=user, secret=secret)
    access_record(
        actor=Actor(user_id=user.pk, role=user.role),
        action="portal.totp_enrol",
        resource_type="StaffTotp",
        resource_id=user.pk,
        reason="secret_issued",
    )
    return secret, totp_provisioning_uri(user=user, secret=secret)


def totp_is_enrolled(*, user: User) -> bool:
    return StaffTotp.objects.filter(user=user, confirmed_at__isnull=False).exists()


def _code_step(*, secret: str, code: str, last_used_step: int, now: dt.datetime) -> int | None:
    """The time step ``code`` is valid for (this step or one either side), if it is later than
    the last accepted one. Constant-time comparison."""
    code = (code or "").strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_INTERVAL)
    current = int(now.timestamp()) // TOTP_INTERVAL
    for step in (current - 1, current, current + 1):
        if step > last_used_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


# --- lockout -------------------------------------------------------------------------------------
def _throttle_key(username: str) -> str:
    return (username or "").strip().lower()[:150]


def login_locked_until(*, username: str) -> dt.datetime | None:
    row = LoginThrottle.objects.filter(username=_throttle_key(username)).first()
    if row is not None and row.locked_until is not None and row.locked_until > timezone.now():
        return row.locked_until
    return None


def _failure_count(username: str) -> int:
    """Count one failure; lock the username when the limit is reached. Returns the count."""
    now = timezone.now()
    with transaction.atomic():
        row, _ = LoginThrottle.objects.select_for_update().get_or_create(
            username=_throttle_key(username)
        )
        if row.locked_until is not None and row.locked_until <= now:
            row.failures = 0  # a lock that ran out starts the count afresh
            row.locked_until = None
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= lockout_attempts():
            row.locked_until = now + dt.timedelta(seconds=lockout_seconds())
        row.save()
    return row.failures


def _failures_clear(username: str) -> None:
    LoginThrottle.objects.filter(username=_throttle_key(username)).delete()


# --- the two steps -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PasswordOk:
    user: User
    enrolled: bool


def _audit_login(
    *, user: User | None, ip: str | None, outcome: str, reason: str, action: str = "portal.login"
) -> None:
    actor = Actor(
        user_id=user.pk if user is not None else None,
        role=user.role if user is not None else "anonymous",
        ip_address=ip,
    )
    access_record(
        actor=actor,
        action=action,
        outcome=outcome,
        resource_type="PortalSession",
        status_code=None if outcome == AccessOutcome.ALLOWED else 403,
        reason=reason,
    )


def _refuse(*, username: str, user: User | None, ip: str | None, reason: str) -> VigilError:
    failures = _failure_count(username)
    locked = failures >= lockout_attempts()
    _audit_login(
        user=user,
        ip=ip,
        outcome=AccessOutcome.DENIED,
        reason=f"{reason};locked" if locked else reason,
    )
    return LockedOut() if locked else LoginRefused()


def portal_password_check(*, username: str, password: str, ip: str | None) -> PasswordOk:
    """Step 1: the password of an active clinician or auditor. Raises :class:`LoginRefused` or
    :class:`LockedOut` (and counts the failure)."""
    user = User.objects.filter(username=username).first() if username else None
    if login_locked_until(username=username) is not None:
        _audit_login(user=user, ip=ip, outcome=AccessOutcome.DENIED, reason="locked_out")
        raise LockedOut()
    if user is None or not user.is_active or not user.check_password(password or ""):
        raise _refuse(username=username, user=user, ip=ip, reason="bad_password")
    if user.role not in PORTAL_ROLES:
        raise _refuse(username=username, user=user, ip=ip, reason="role_not_allowed")
    _audit_login(
        user=user, ip=ip, outcome=AccessOutcome.ALLOWED, reason="password_ok", action="portal.login"
    )
    return PasswordOk(user=user, enrolled=totp_is_enrolled(user=user))


def portal_totp_check(
    *, user: User, code: str, ip: str | None, now: dt.datetime | None = None
) -> None:
    """Step 2: a current TOTP code, accepted once. Confirms an enrolment. Raises like step 1."""
    now = now or timezone.now()
    if login_locked_until(username=user.username) is not None:
        _audit_login(user=user, ip=ip, outcome=AccessOutcome.DENIED, reason="locked_out")
        raise LockedOut()
    with transaction.atomic():
        record = StaffTotp.objects.select_for_update().filter(user=user).first()
        step = (
            _code_step(
                secret=totp_secret(record=record),
                code=code,
                last_used_step=record.last_used_step,
                now=now,
            )
            if record is not None
            else None
        )
        if record is not None and step is not None:
            record.last_used_step = step
            first = record.confirmed_at is None
            if first:
                record.confirmed_at = now
            record.save(update_fields=["last_used_step", "confirmed_at", "updated_at"])
    if record is None or step is None:
        raise _refuse(username=user.username, user=user, ip=ip, reason="bad_totp")
    _failures_clear(user.username)
    _audit_login(
        user=user,
        ip=ip,
        outcome=AccessOutcome.ALLOWED,
        reason="totp_enrolled" if first else "totp_ok",
    )


def portal_logout_record(*, user: User, ip: str | None, reason: str) -> None:
    """``reason``: ``user`` (signed out) or ``idle`` (automatic logoff after inactivity)."""
    _audit_login(
        user=user, ip=ip, outcome=AccessOutcome.ALLOWED, reason=reason, action="portal.logout"
    )


def portal_demo_totp_ensure(user: User) -> str:
    """For ``seed_demo``: the demo user's TOTP secret (created, confirmed, on first call; kept
    after). The caller records it in ``var/demo-credentials.json``. Refuses in production."""
    if getattr(settings, "IS_PRODUCTION", False):
        raise VigilError("Demo second factors are not created in production.")
    record = StaffTotp.objects.filter(user=user).first()
    if record is not None and record.confirmed_at is not None:
        return totp_secret(record=record)
    secret = pyotp.random_base32()
    totp_secret_set(user=user, secret=secret, confirmed=True)
    return secret
