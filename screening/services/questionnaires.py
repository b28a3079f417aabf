from __future__ import annotations

import datetime as dt
import uuid

from django.db import transaction

from config.errors import ValidationFailed
from privacy.audit import Actor, access_record
from risk.intake import questionnaire_scored
from screening.instruments import InvalidAnswers, score
from screening.models import Patient, QuestionnaireResponse
from screening.services.common import (
    check_client_timestamp,
    idempotent_create,
    local_day,
    resolve_timezone,
)


def questionnaire_submit(
    *,
    actor: Actor,
    patient: Patient,
    idempotency_key: uuid.UUID,
    instrument: str,
    answers: list[int],
    client_timestamp: dt.datetime,
    timezone: str | None = None,
) -> tuple[QuestionnaireResponse, bool]:
    """Score server-side and store. PHQ-9 item 9 is kept in its own column."""
    try:
        result = score(instrument, answers)
    except InvalidAnswers as exc:
        raise ValidationFailed(fields={"answers": [str(exc)]}) from None
    tz_name = resolve_timezone(patient=patient, tz_name=timezone)

    def create() -> QuestionnaireResponse:
        # Checked only for a new submission: a retry of an accepted one replays it, however old.
        check_client_timestamp(client_timestamp)
        return QuestionnaireResponse.objects.create(
            patient=patient,
            idempotency_key=idempotency_key,
            instrument=instrument,
            answers=list(answers),
            total=result.total,
            severity=result.severity,
            item9=result.item9,
            client_timestamp=client_timestamp,
            timezone=tz_name,
            local_date=local_day(client_timestamp=client_timestamp, tz_name=tz_name),
        )

    def same(existing: QuestionnaireResponse) -> bool:
        return existing.instrument == instrument and existing.answers == list(answers)

    with transaction.atomic():
        response, created = idempotent_create(
            model=QuestionnaireResponse,
            patient=patient,
            idempotency_key=idempotency_key,
            create=create,
            same=same,
        )
        if created:  # PHQ-9 item 9 / total alerts commit with the submission, or neither does
            questionnaire_scored(response=response)
        # Recorded last, still in the transaction: the audit chain's head lock is then held only
        # for the append, not across rule evaluation and the alert's outbox writes (as help.py).
        access_record(
            actor=actor,
            action="questionnaire.create" if created else "questionnaire.create_replayed",
            patient_id=patient.pk,
            resource_type="QuestionnaireResponse",
            resource_id=response.pk,
        )
    return response, created
