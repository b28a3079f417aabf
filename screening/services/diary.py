from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import transaction

from config.errors import ValidationFailed
from privacy.audit import Actor, access_record
from screening.models import DiaryEntry, Patient
from screening.services.common import (
    check_client_timestamp,
    idempotent_create,
    local_day,
    resolve_timezone,
)


def diary_entry_create(
    *,
    actor: Actor,
    patient: Patient,
    idempotency_key: uuid.UUID,
    text: str,
    client_timestamp: dt.datetime,
    timezone: str | None = None,
    self_rated_mood: int | None = None,
) -> tuple[DiaryEntry, bool]:
    """Store a diary entry (encrypted) once per idempotency key. Returns ``(entry, created)``."""
    if len(text) > settings.VIGIL_DIARY_MAX_CHARS:
        raise ValidationFailed(
            fields={"text": [f"Is longer than {settings.VIGIL_DIARY_MAX_CHARS} characters."]}
        )
    if not text.strip():
        raise ValidationFailed(fields={"text": ["Must not be empty."]})
    tz_name = resolve_timezone(patient=patient, tz_name=timezone)

    def create() -> DiaryEntry:
        # Checked only for a new submission: a retry of an accepted one replays it, however old.
        check_client_timestamp(client_timestamp)
        return DiaryEntry.objects.create(
            patient=patient,
            idempotency_key=idempotency_key,
            text=text,
            client_timestamp=client_timestamp,
            timezone=tz_name,
            local_date=local_day(client_timestamp=client_timestamp, tz_name=tz_name),
            self_rated_mood=self_rated_mood,
        )

    def same(existing: DiaryEntry) -> bool:
        return (
            existing.text == text
            and existing.client_timestamp == client_timestamp
            and existing.self_rated_mood == self_rated_mood
        )

    with transaction.atomic():
        entry, created = idempotent_create(
            model=DiaryEntry,
            patient=patient,
            idempotency_key=idempotency_key,
            create=create,
            same=same,
        )
        access_record(
            actor=actor,
            action="diary.create" if created else "diary.create_replayed",
            patient_id=patient.pk,
            resource_type="DiaryEntry",
            resource_id=entry.pk,
        )
        if created:  # scored by a worker after the commit (never inside the request)
            from screening.services.scoring import diary_entry_committed

            diary_entry_committed(entry=entry)
    return entry, created
