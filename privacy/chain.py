"""The audit hash chain's canonical form: pure code, no Django imports.

Each access event is hashed as ``SHA-256(canonical_json(event) || prev_hash)``, where
``canonical_json`` is the sorted-key, compact JSON of every stored field of the event (the
``CHAINED_FIELDS``) in a normalised form, so that the writer (which hashes the values it is about
to insert) and the verifier (which hashes the values the database gives back) agree on every
backend: timestamps in UTC with microseconds, UUIDs in their hyphenated form, IPv6 addresses
fully expanded, integers as integers, empty text as ``""``, non-ASCII text as JSON escapes.

Changing anything here changes every hash: existing chains would no longer verify. Treat the
format as frozen (a new format would need a version field and a migration).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import struct
import uuid
from collections.abc import Mapping
from typing import Any

#: The hash of "nothing before": the ``prev_hash`` of the first event (seq 1).
GENESIS_HASH = "0" * 64

#: Every stored field of an access event that the hash covers (the primary key is not one: it is
#: the database's row number, not part of the record; ``seq`` is the chain position).
CHAINED_FIELDS: tuple[str, ...] = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_role",
    "patient_id",
    "action",
    "outcome",
    "resource_type",
    "resource_id",
    "status_code",
    "reason",
    "request_id",
    "ip_address",
    "purpose",
    "break_glass",
)


def canonical_timestamp(value: dt.datetime) -> str:
    """UTC, ISO 8601, always with microseconds: ``2026-01-02T03:04:05.000006Z``."""
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _optional_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _optional_uuid(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def _ip(value: Any) -> str | None:
    """IPv4 dotted; IPv6 as eight 4-digit lowercase hex groups (the text form Python gives IPv6
    addresses, e.g. IPv4-mapped ones, differs between versions: this one never changes)."""
    if value is None or value == "":
        return None
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return str(value)
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    return ":".join(f"{group:04x}" for group in struct.unpack("!8H", address.packed))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def canonical_event(values: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised form of an event's chained fields (a missing field is an error)."""
    missing = [name for name in CHAINED_FIELDS if name not in values]
    if missing:
        raise KeyError(f"missing chained fields: {', '.join(missing)}")
    seq = values["seq"]
    if seq is None:
        raise ValueError("an event without seq is not on the chain")
    return {
        "seq": int(seq),
        "occurred_at": canonical_timestamp(values["occurred_at"]),
        "actor_id": _optional_int(values["actor_id"]),
        "actor_role": _text(values["actor_role"]),
        "patient_id": _optional_uuid(values["patient_id"]),
        "action": _text(values["action"]),
        "outcome": _text(values["outcome"]),
        "resource_type": _text(values["resource_type"]),
        "resource_id": _text(values["resource_id"]),
        "status_code": _optional_int(values["status_code"]),
        "reason": _text(values["reason"]),
        "request_id": _text(values["request_id"]),
        "ip_address": _ip(values["ip_address"]),
        "purpose": _text(values["purpose"]),
        "break_glass": bool(values["break_glass"]),
    }


def canonical_bytes(values: Mapping[str, Any]) -> bytes:
    """Sorted-key, compact JSON of :func:`canonical_event`, non-ASCII characters escaped."""
    return json.dumps(
        canonical_event(values), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def event_hash(values: Mapping[str, Any], prev_hash: str) -> str:
    """``SHA-256(canonical_bytes(values) || prev_hash)`` as 64 lowercase hex digits."""
    if len(prev_hash) != 64:
        raise ValueError("prev_hash must be 64 hex digits")
    digest = hashlib.sha256()
    digest.update(canonical_bytes(values))
    digest.update(prev_hash.encode("ascii"))
    return digest.hexdigest()


def anchor_payload(*, seq: int, hash: str, anchored_at: dt.datetime) -> bytes:
    """The exact bytes of one anchor, as written to the anchor file and posted to the webhook."""
    body = {"seq": int(seq), "hash": hash, "anchored_at": canonical_timestamp(anchored_at)}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")


def anchor_parse(line: str | bytes) -> tuple[int, str] | None:
    """``(seq, hash)`` from one anchor line, or None when the line is not a readable anchor."""
    try:
        data = json.loads(line)
        seq, digest = int(data["seq"]), str(data["hash"])
    except (ValueError, TypeError, KeyError):
        return None
    if seq < 0 or len(digest) != 64:
        return None
    return seq, digest
