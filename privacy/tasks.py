from __future__ import annotations

from typing import Any

from celery import shared_task

from privacy.audit import audit_anchor_record as anchor_record
from privacy.services import tokens_purge_expired as purge


@shared_task(name="privacy.tasks.tokens_purge_expired", time_limit=120)
def tokens_purge_expired() -> int:
    return purge()


@shared_task(name="privacy.tasks.audit_anchor_record", time_limit=60, soft_time_limit=50)
def audit_anchor_record() -> dict[str, Any] | None:
    """Anchor the audit chain's head (database row, anchor file, optional signed webhook)."""
    anchor = anchor_record()
    if anchor is None:
        return None
    return {"seq": anchor.seq, "hash": anchor.hash, "destinations": anchor.destinations}
