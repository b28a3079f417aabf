"""Verifying the audit hash chain and its anchors (used by ``manage.py verify_audit_chain`` and the
auditor API).

The walk reads the head first, then streams the events up to the head's seq in seq order, in
batches (constant memory), and stops at the first break:

- ``deleted``: a seq is missing (a gap); reported at the first missing seq, with the id of the
  next surviving event;
- ``reordered``: an event's stored content is intact but it sits at another position than the one
  it was hashed at (its seq was changed, e.g. two events swapped);
- ``altered``: an event's content no longer matches its hash (or, when an event was re-hashed
  after a change, the next event's ``prev_hash`` no longer matches it);
- ``truncated``: the head, or an anchor, records a seq beyond the last event (the tail was
  removed);
- ``rewritten``: the head, or an anchor, records another hash for a seq than the event now there;
- ``inserted``: an event lies beyond the head, sits at seq 0 or below (the chain starts at 1:
  such a row is never walked, so it is reported on its own), or is not on the chain at all (no
  seq): it was written around :func:`privacy.audit.access_record`.

Anchors come from the database (:class:`AuditAnchor`) and from the anchor file
(``VIGIL_AUDIT_ANCHOR_FILE``), so deleting the anchor rows does not hide a truncation.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Max
from django.utils import timezone

from privacy import chain
from privacy.audit import CHAIN_HEAD_ID
from privacy.models import AccessEvent, AuditAnchor, AuditChainHead

logger = logging.getLogger("vigil.audit")

#: Where the last verification result is kept (the auditor API reads it).
LAST_RESULT_CACHE_KEY = "vigil:audit-chain:last-verification"
DEFAULT_BATCH_SIZE = 1000
_ROW_FIELDS = ("id", "prev_hash", "hash", *chain.CHAINED_FIELDS)
#: How far back a moved event's original position is looked for (through ``prev_hash`` links).
_REORDER_DEPTH = 16


@dataclass(frozen=True)
class ChainBreak:
    """The first place where the chain does not verify."""

    kind: str
    seq: int | None
    event_id: int | None
    message: str


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    verified_at: dt.datetime
    events_checked: int
    head_seq: int
    head_hash: str
    anchors_checked: int
    anchor_file: str | None
    first_break: ChainBreak | None = None
    anchor_lines_unreadable: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verified_at"] = self.verified_at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChainVerification:
        values = dict(data)
        values["verified_at"] = dt.datetime.fromisoformat(values["verified_at"])
        if values.get("first_break"):
            values["first_break"] = ChainBreak(**values["first_break"])
        return cls(**values)

    def summary(self) -> str:
        if self.ok:
            return (
                f"OK: audit chain verified: {self.events_checked} events, head seq "
                f"{self.head_seq} hash {self.head_hash}, {self.anchors_checked} anchors"
            )
        brk = self.first_break
        assert brk is not None
        where = f"seq {brk.seq}" if brk.seq is not None else "no seq"
        event = f"event id {brk.event_id}" if brk.event_id is not None else "no event"
        return f"BROKEN: {brk.kind} at {where} ({event}): {brk.message}"


@dataclass
class _Walk:
    checked: int = 0
    last_seq: int = 0
    last_hash: str = chain.GENESIS_HASH
    last_id: int | None = None
    first_break: ChainBreak | None = None
    anchors_checked: int = 0
    unreadable: int = 0


def _rows_by_seq(*, after: int, upto: int | None, batch_size: int) -> Iterator[dict[str, Any]]:
    """Chained events with ``after < seq <= upto`` in seq order, ``batch_size`` per query."""
    while True:
        query = AccessEvent.objects.filter(seq__gt=after)
        if upto is not None:
            query = query.filter(seq__lte=upto)
        batch = list(query.order_by("seq").values(*_ROW_FIELDS)[:batch_size])
        if not batch:
            return
        yield from batch
        after = batch[-1]["seq"]


def _hash_at(row: dict[str, Any], seq: int) -> str:
    return chain.event_hash({**row, "seq": seq}, row["prev_hash"])


def _intact(row: dict[str, Any]) -> bool:
    return _hash_at(row, row["seq"]) == row["hash"]


def _position_after(prev_hash: str, depth: int = 0) -> int | None:
    """The seq that the event following the one hashed ``prev_hash`` was written at, found through
    ``prev_hash`` links (None when it cannot be told)."""
    if prev_hash == chain.GENESIS_HASH:
        return 1
    if depth > _REORDER_DEPTH:
        return None
    before = AccessEvent.objects.filter(hash=prev_hash).order_by("id").values(*_ROW_FIELDS).first()
    if before is None:
        return None
    if _intact(before):
        return int(before["seq"]) + 1
    original = _position_after(before["prev_hash"], depth + 1)
    if original is not None and _hash_at(before, original) == before["hash"]:
        return original + 1
    return None


def _check_row(row: dict[str, Any], walk: _Walk) -> ChainBreak | None:
    seq, expected = int(row["seq"]), walk.last_seq + 1
    if seq > expected:
        missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
        return ChainBreak(
            "deleted",
            expected,
            row["id"],
            f"{missing} missing: the chain jumps from seq {walk.last_seq} to seq {seq} "
            f"(event id {row['id']})",
        )
    if not _intact(row):
        original = _position_after(row["prev_hash"])
        if original is not None and original != seq and _hash_at(row, original) == row["hash"]:
            return ChainBreak(
                "reordered",
                seq,
                row["id"],
                f"event id {row['id']} was written at seq {original} and now sits at seq {seq}",
            )
        return ChainBreak(
            "altered", seq, row["id"], f"event id {row['id']} no longer matches its hash"
        )
    if row["prev_hash"] != walk.last_hash:
        if walk.last_id is None:
            return ChainBreak(
                "altered",
                seq,
                row["id"],
                f"event id {row['id']} is the first event but does not start from the genesis hash",
            )
        return ChainBreak(
            "altered",
            walk.last_seq,
            walk.last_id,
            f"event id {walk.last_id} was changed and re-hashed: seq {seq} (event id {row['id']}) "
            "recorded another hash for it",
        )
    return None


def _below_the_chain() -> ChainBreak | None:
    """An event at seq 0 or below (the lowest first): the walk starts after seq 0, so such a row
    would otherwise never be looked at. The ``seq >= 1`` CHECK constraint refuses these, but a
    database without it (or with it dropped) must not hide one."""
    row = AccessEvent.objects.filter(seq__lte=0).order_by("seq", "id").values("id", "seq").first()
    if row is None:
        return None
    return ChainBreak(
        "inserted",
        row["seq"],
        row["id"],
        f"event id {row['id']} sits at seq {row['seq']}, before the start of the chain (seq 1)",
    )


def _anchors_from_database(batch_size: int) -> Iterator[list[tuple[int, str, str]]]:
    after: tuple[int, int] = (-1, 0)
    while True:
        rows = list(
            AuditAnchor.objects.filter(seq__gte=after[0])
            .exclude(seq=after[0], id__lte=after[1])
            .order_by("seq", "id")
            .values_list("seq", "id", "hash")[:batch_size]
        )
        if not rows:
            return
        yield [(seq, digest, f"database anchor #{pk}") for seq, pk, digest in rows]
        after = (rows[-1][0], rows[-1][1])


def _anchors_from_file(
    path: Path, batch_size: int, walk: _Walk
) -> Iterator[list[tuple[int, str, str]]]:
    batch: list[tuple[int, str, str]] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parsed = chain.anchor_parse(line)
            if parsed is None:
                walk.unreadable += 1
                logger.warning("unreadable audit anchor at line %d of the anchor file", number)
                continue
            batch.append((parsed[0], parsed[1], f"anchor file line {number}"))
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def _check_anchors(
    batches: Iterable[list[tuple[int, str, str]]], walk: _Walk, max_seq: int
) -> ChainBreak | None:
    """The anchor break with the lowest seq (anchors are checked against the events themselves,
    so an anchor taken while the walk ran is judged correctly)."""
    found: ChainBreak | None = None
    for batch in batches:
        walk.anchors_checked += len(batch)
        seqs = {seq for seq, _, _ in batch if seq > 0}
        events = {
            seq: (pk, digest)
            for seq, pk, digest in AccessEvent.objects.filter(seq__in=seqs).values_list(
                "seq", "id", "hash"
            )
        }
        for seq, digest, source in batch:
            if seq <= 0 or (found is not None and _break_order(found) <= seq):
                continue
            event = events.get(seq)
            if event is None and seq > max_seq:
                found = ChainBreak(
                    "truncated",
                    max_seq + 1,
                    None,
                    f"{source} records seq {seq} but the chain ends at seq {max_seq}: "
                    f"events after seq {max_seq} were removed",
                )
            elif event is None:
                found = ChainBreak("deleted", seq, None, f"{source} records seq {seq}: missing")
            elif event[1] != digest:
                found = ChainBreak(
                    "rewritten",
                    seq,
                    event[0],
                    f"{source} records another hash for seq {seq} (event id {event[0]}): the "
                    "chain was rewritten from there or before",
                )
    return found


def _break_order(brk: ChainBreak) -> int:
    return brk.seq if brk.seq is not None else 2**63


def _result(walk: _Walk, *, head: tuple[int, str], anchor_file: str | None) -> ChainVerification:
    return ChainVerification(
        ok=walk.first_break is None,
        verified_at=timezone.now(),
        events_checked=walk.checked,
        head_seq=head[0],
        head_hash=head[1],
        anchors_checked=walk.anchors_checked,
        anchor_file=anchor_file,
        first_break=walk.first_break,
        anchor_lines_unreadable=walk.unreadable,
    )


def audit_chain_verify(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    anchor_file: Path | None = None,
    store: bool = True,
) -> ChainVerification:
    """Verify the whole chain, then the anchors; the result names the first break, if any.

    ``anchor_file`` defaults to ``VIGIL_AUDIT_ANCHOR_FILE`` (skipped when it does not exist).
    With ``store`` the result is kept as the last verification (:func:`audit_chain_last`).
    """
    walk = _Walk()
    head_row = AuditChainHead.objects.filter(pk=CHAIN_HEAD_ID).values_list("seq", "hash").first()
    head: tuple[int, str] = head_row if head_row else (0, chain.GENESIS_HASH)
    upto = head_row[0] if head_row else None

    for row in _rows_by_seq(after=0, upto=upto, batch_size=batch_size):
        walk.first_break = _check_row(row, walk)
        if walk.first_break is not None:
            break
        walk.checked += 1
        walk.last_seq, walk.last_hash, walk.last_id = int(row["seq"]), row["hash"], row["id"]

    if walk.first_break is None and head_row is not None:
        if walk.last_seq < head_row[0]:
            walk.first_break = ChainBreak(
                "truncated",
                walk.last_seq + 1,
                None,
                f"the head records seq {head_row[0]} but the chain ends at seq {walk.last_seq}",
            )
        elif walk.last_hash != head_row[1]:
            walk.first_break = ChainBreak(
                "rewritten",
                walk.last_seq,
                walk.last_id,
                f"the head records another hash for seq {walk.last_seq}",
            )

    # Events beyond the head: the largest seq is read before the head, so an append that commits
    # in between moves the head past it and is not mistaken for an insertion.
    max_seq = AccessEvent.objects.aggregate(m=Max("seq"))["m"] or 0
    head_now = AuditChainHead.objects.filter(pk=CHAIN_HEAD_ID).values_list("seq", flat=True).first()
    if walk.first_break is None and head_now is not None and max_seq > head_now:
        beyond = (
            AccessEvent.objects.filter(seq__gt=head_now).order_by("seq").values("id", "seq").first()
        )
        assert beyond is not None
        walk.first_break = ChainBreak(
            "inserted",
            beyond["seq"],
            beyond["id"],
            f"event id {beyond['id']} lies beyond the head (seq {head_now})",
        )
    if walk.first_break is None:
        walk.first_break = _below_the_chain()
    if walk.first_break is None:
        stray = AccessEvent.objects.filter(seq__isnull=True).order_by("id").values("id").first()
        if stray is not None:
            walk.first_break = ChainBreak(
                "inserted",
                None,
                stray["id"],
                f"event id {stray['id']} is not on the chain (it has no seq)",
            )

    # Anchors are always all checked; the first break is the one at the lowest seq (an anchor
    # that disagrees below a break found by the walk means the chain was re-hashed from there).
    path = Path(anchor_file) if anchor_file is not None else Path(settings.VIGIL_AUDIT_ANCHOR_FILE)
    file_used = str(path) if path.is_file() else None
    candidates = [
        walk.first_break,
        _check_anchors(_anchors_from_database(batch_size), walk, max_seq),
        _check_anchors(_anchors_from_file(path, batch_size, walk), walk, max_seq)
        if file_used is not None
        else None,
    ]
    breaks = [b for b in candidates if b is not None]
    walk.first_break = min(breaks, key=_break_order) if breaks else None

    result = _result(walk, head=head, anchor_file=file_used)
    if store:
        cache.set(LAST_RESULT_CACHE_KEY, result.as_dict(), timeout=None)
    if not result.ok:
        logger.error("audit chain does not verify: %s", result.summary())
    return result


def audit_chain_last() -> ChainVerification | None:
    """The last stored verification result, if any."""
    data = cache.get(LAST_RESULT_CACHE_KEY)
    if not data:
        return None
    try:
        return ChainVerification.from_dict(data)
    except (TypeError, ValueError, KeyError):
        return None
