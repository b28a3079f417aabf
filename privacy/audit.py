"""The one place that writes access events, chained by hash, and that anchors the chain.

Every read or write of a patient's data through the API records who, in which role, which patient,
what action and the outcome. Events hold ids and codes only, never content.

Tamper evidence: every event carries its position ``seq``, the previous event's hash
``prev_hash`` and its own ``hash`` = SHA-256 over its canonical serialisation and ``prev_hash``
(:mod:`privacy.chain`). An append first UPDATEs the single :class:`AuditChainHead` row, which takes
its row lock on PostgreSQL (and the database's write lock on SQLite), so concurrent writers
serialise on the head and the chain cannot fork; the event and the new head commit together.
Anchors (:func:`audit_anchor_record`) copy the head's (seq, hash) out of the database, so that
removing the tail of the chain (and rewinding the head) is still detected by
:mod:`privacy.chain_verify`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from config.middleware import current_request_id
from privacy import chain
from privacy.choices import ANONYMOUS_ROLE, AccessOutcome, Role
from privacy.models import AccessEvent, AuditAnchor, AuditChainHead

logger = logging.getLogger("vigil.audit")

#: The primary key of the single chain-head row.
CHAIN_HEAD_ID = 1


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
            role=getattr(user, "role", "") if authenticated else ANONYMOUS_ROLE,
            ip_address=client_ip(request),
        )

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, role=Role.SYSTEM)


def client_ip(request: Any) -> str | None:
    meta = getattr(request, "META", {})
    return meta.get("REMOTE_ADDR") or None


def _clip(value: Any, field: str) -> str:
    """Text as stored: never longer than the column (PostgreSQL would refuse the event)."""
    limit = getattr(AccessEvent._meta.get_field(field), "max_length", None) or 0
    return str(value or "")[:limit]


def chain_event_values(event: AccessEvent) -> dict[str, Any]:
    """The chained fields of an event, as :func:`privacy.chain.event_hash` reads them."""
    return {name: getattr(event, name) for name in chain.CHAINED_FIELDS}


def _chain_head_create() -> None:
    """Create the head row (normally made by migration 0004; a flushed test database has none),
    continuing from the last chained event if there is one."""
    last = (
        AccessEvent.objects.filter(seq__isnull=False)
        .order_by("-seq")
        .values_list("seq", "hash")
        .first()
    )
    defaults: dict[str, Any] = {"seq": 0, "hash": chain.GENESIS_HASH}
    if last is not None:
        defaults = {"seq": last[0], "hash": last[1]}
    AuditChainHead.objects.get_or_create(pk=CHAIN_HEAD_ID, defaults=defaults)


def _chain_advance(count: int = 1) -> tuple[int, str]:
    """Lock the head by moving it ``count`` positions on (an UPDATE first: it is what takes the
    lock), and return the new (last) position and the hash of the event before the first new
    one. Call inside a transaction."""
    heads = AuditChainHead.objects.filter(pk=CHAIN_HEAD_ID)
    if not heads.update(seq=F("seq") + count):
        _chain_head_create()
        heads.update(seq=F("seq") + count)
    seq, prev_hash = heads.values_list("seq", "hash").get()
    return seq, prev_hash


#: The action of the one event that marks a flood of anonymous refusals from one address.
REFUSALS_SUPPRESSED_ACTION = "audit.refusals_suppressed"


def _anonymous_refusal_admitted(*, actor: Actor, outcome: str) -> bool:
    """Whether a refusal of a caller that is not signed in is written one by one.

    Anyone can send requests with bad tokens or passwords, and each refusal is a row in the
    append-only chain, so they are counted per address in fixed windows
    (``VIGIL_RATE_ANON_REFUSALS``, in the cache, like the API's throttles). The first refusal past
    the limit writes one ``audit.refusals_suppressed`` event instead (auditors see the flood and
    its address); the rest of that window is not written. Everything else (signed-in actors,
    allowed events, the system) is always written. If the cache fails, the event is written."""
    if actor.user_id is not None or actor.role != ANONYMOUS_ROLE:
        return True
    if outcome != AccessOutcome.DENIED:
        return True
    from django.core.cache import cache

    limit, window = settings.VIGIL_RATE_ANON_REFUSALS
    address = hashlib.sha256((actor.ip_address or "-").encode()).hexdigest()[:24]
    key = f"audit-anon-refusals:{address}:{int(time.time() // window)}"
    try:
        cache.add(key, 0, timeout=window + 5)
        count = cache.incr(key)
    except Exception:  # a cache fault must never cost an audit event
        logger.warning("refusal counter unavailable; the refusal is recorded")
        return True
    if count <= limit:
        return True
    if count == limit + 1:
        logger.warning("anonymous refusals from one address over the limit: recording suppressed")
        _access_append(
            AccessEvent(
                actor_id=None,
                actor_role=ANONYMOUS_ROLE,
                action=REFUSALS_SUPPRESSED_ACTION,
                outcome=AccessOutcome.DENIED,
                reason=_clip(f"over {limit} per {window}s", "reason"),
                request_id=_clip(current_request_id(), "request_id"),
                ip_address=actor.ip_address,
            )
        )
    return False


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
) -> AccessEvent | None:
    """Append one event to the chain. ``purpose`` says why (a break-glass or erasure reason),
    never content. Runs in its own savepoint: a failure leaves the caller's transaction usable.

    Returns None only for a refusal of a caller that is not signed in beyond
    ``VIGIL_RATE_ANON_REFUSALS`` from one address (:func:`_anonymous_refusal_admitted`)."""
    if not _anonymous_refusal_admitted(actor=actor, outcome=outcome):
        return None
    return _access_append(
        AccessEvent(
            actor_id=actor.user_id,
            actor_role=_clip(actor.role, "actor_role"),
            patient_id=patient_id,
            action=_clip(action, "action"),
            outcome=outcome,
            resource_type=_clip(resource_type, "resource_type"),
            resource_id=_clip(resource_id, "resource_id"),
            status_code=status_code,
            reason=_clip(reason, "reason"),
            request_id=_clip(current_request_id(), "request_id"),
            ip_address=actor.ip_address,
            purpose=_clip(purpose, "purpose"),
            break_glass=bool(break_glass),
        )
    )


def _access_append(event: AccessEvent) -> AccessEvent:
    with transaction.atomic():
        seq, prev_hash = _chain_advance()
        event.seq = seq
        event.prev_hash = prev_hash
        # Set here, under the head's lock, so that time order follows chain order; the raw save
        # below keeps it (auto_now_add would otherwise replace the value that was hashed).
        event.occurred_at = timezone.now()
        event.hash = chain.event_hash(chain_event_values(event), prev_hash)
        event.save_base(raw=True, force_insert=True)
        AuditChainHead.objects.filter(pk=CHAIN_HEAD_ID).update(
            hash=event.hash, updated_at=event.occurred_at
        )
    return event


def access_record_patients(
    *,
    actor: Actor,
    action: str,
    patient_ids: Iterable[Any],
    resource_type: str = "Patient",
) -> int:
    """Append one allowed event per patient (resource ``resource_type`` = the patient's id), in
    the order given, as one batch: the head is locked and moved once and the events are inserted
    together, so a page listing 50 patients costs a handful of queries instead of 50 appends.
    The chain is the same as 50 :func:`access_record` calls would make (same values, same hashes
    in sequence). Returns how many events were appended."""
    ids = list(patient_ids)
    if not ids:
        return 0
    common = {
        "actor_id": actor.user_id,
        "actor_role": _clip(actor.role, "actor_role"),
        "action": _clip(action, "action"),
        "outcome": AccessOutcome.ALLOWED,
        "resource_type": _clip(resource_type, "resource_type"),
        "request_id": _clip(current_request_id(), "request_id"),
        "ip_address": actor.ip_address,
    }
    with transaction.atomic():
        last_seq, prev_hash = _chain_advance(len(ids))
        occurred_at = timezone.now()
        events = []
        for offset, patient_id in enumerate(ids):
            event = AccessEvent(
                **common,
                patient_id=patient_id,
                resource_id=_clip(patient_id, "resource_id"),
                status_code=None,
                reason="",
                purpose="",
                break_glass=False,
            )
            event.seq = last_seq - len(ids) + 1 + offset
            event.prev_hash = prev_hash
            event.occurred_at = occurred_at
            event.hash = chain.event_hash(chain_event_values(event), prev_hash)
            prev_hash = event.hash
            events.append(event)
        # A raw insert, like access_record's save_base(raw=True): bulk_create would let
        # auto_now_add replace the occurred_at that was hashed.
        fields = [f for f in AccessEvent._meta.concrete_fields if not f.primary_key]
        for start in range(0, len(events), 50):
            AccessEvent._base_manager._insert(  # type: ignore[attr-defined]
                events[start : start + 50], fields=fields, raw=True
            )
        AuditChainHead.objects.filter(pk=CHAIN_HEAD_ID).update(
            hash=prev_hash, updated_at=occurred_at
        )
    return len(events)


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


# --- anchors -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str


def audit_chain_head() -> ChainHead:
    """The chain's current head (seq 0 and the genesis hash when nothing was recorded)."""
    row = AuditChainHead.objects.filter(pk=CHAIN_HEAD_ID).values_list("seq", "hash").first()
    return ChainHead(seq=row[0], hash=row[1]) if row else ChainHead(0, chain.GENESIS_HASH)


def _anchor_file_append(payload: bytes) -> bool:
    path = Path(settings.VIGIL_AUDIT_ANCHOR_FILE)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as handle:
            handle.write(payload + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        logger.error("could not append the audit anchor to its file: %s", exc.__class__.__name__)
        return False
    return True


def anchor_signature(payload: bytes, secret: str) -> str:
    """The ``X-Vigil-Signature`` header value: ``sha256=`` HMAC-SHA256 of the exact body."""
    digest = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _anchor_webhook_post(payload: bytes) -> bool:
    """POST the anchor to the configured webhook. Logs and returns False on any failure."""
    url = settings.VIGIL_AUDIT_ANCHOR_WEBHOOK
    if not url:
        return False
    secret = settings.VIGIL_AUDIT_ANCHOR_SECRET
    if not secret:
        logger.error(
            "VIGIL_AUDIT_ANCHOR_WEBHOOK is set without VIGIL_AUDIT_ANCHOR_SECRET: not sent"
        )
        return False
    if urlsplit(url).scheme not in {"http", "https"}:
        logger.error("VIGIL_AUDIT_ANCHOR_WEBHOOK must be an http(s) URL: not sent")
        return False
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        url,
        data=payload,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "vigil-audit-anchor/1",
            "X-Vigil-Signature": anchor_signature(payload, secret),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            status = int(getattr(response, "status", 200))
    except Exception as exc:  # never raise: the anchor is also in the database and the file
        logger.warning("audit anchor webhook failed: %s", exc.__class__.__name__)
        return False
    if not 200 <= status < 300:
        logger.warning("audit anchor webhook answered %s", status)
        return False
    return True


def audit_anchor_record() -> AuditAnchor | None:
    """Record the chain's head as an anchor: a database row, a line in the anchor file and, when
    configured, a signed POST to the webhook. Returns None when there is nothing new to anchor
    (an empty chain, or a head already anchored)."""
    head = audit_chain_head()
    if head.seq == 0:
        return None
    latest = AuditAnchor.objects.order_by("-seq", "-id").values_list("seq", "hash").first()
    if latest == (head.seq, head.hash):
        return None
    payload = chain.anchor_payload(seq=head.seq, hash=head.hash, anchored_at=timezone.now())
    destinations = ["database"]
    if _anchor_file_append(payload):
        destinations.append("file")
    if _anchor_webhook_post(payload):
        destinations.append("webhook")
    return AuditAnchor.objects.create(
        seq=head.seq, hash=head.hash, destinations=",".join(destinations)
    )
