"""Reads of patient data. Every read records an access event (IDs only)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from config.errors import NotFound
from privacy.audit import Actor, access_record
from privacy.choices import AccessOutcome
from screening.models import (
    DailyMoodScore,
    DiaryEntry,
    MediaAnalysis,
    Patient,
    QuestionnaireResponse,
    TextAnalysis,
    VideoSubmission,
)

_RESOURCES: dict[str, type[models.Model]] = {
    "diary": DiaryEntry,
    "video": VideoSubmission,
    "questionnaire": QuestionnaireResponse,
}


def patient_profile_get(*, actor: Actor, patient: Patient) -> dict[str, str]:
    access_record(
        actor=actor,
        action="profile.read",
        patient_id=patient.pk,
        resource_type="Patient",
        resource_id=patient.pk,
    )
    return {
        "pseudonym": patient.pseudonym,
        "timezone": patient.timezone,
        "locale": patient.locale,
        "clinic": patient.organisation.name,
        "care_team": patient.care_team.name,
    }


def patient_inputs_list(*, actor: Actor, patient: Patient, kind: str) -> models.QuerySet:
    """The patient's own inputs of one kind, newest first (the caller pages them)."""
    model = _RESOURCES[kind]
    access_record(
        actor=actor, action=f"{kind}.list", patient_id=patient.pk, resource_type=model.__name__
    )
    return model._default_manager.filter(patient=patient).order_by("-created_at", "-id")


def patient_input_get(
    *, actor: Actor, patient: Patient, kind: str, input_id: uuid.UUID
) -> models.Model:
    """One of the patient's own inputs. Another patient's id answers exactly like a missing one
    (404), and the attempt is logged as denied against the owner.
    """
    model = _RESOURCES[kind]
    row = model._default_manager.filter(pk=input_id).first()
    if row is None or row.patient_id != patient.pk:  # type: ignore[attr-defined]
        access_record(
            actor=actor,
            action=f"{kind}.read",
            outcome=AccessOutcome.DENIED,
            patient_id=row.patient_id if row is not None else None,  # type: ignore[attr-defined]
            resource_type=model.__name__,
            resource_id=input_id,
            status_code=404,
            reason="not_owner" if row is not None else "not_found",
        )
        raise NotFound()
    access_record(
        actor=actor,
        action=f"{kind}.read",
        patient_id=patient.pk,
        resource_type=model.__name__,
        resource_id=row.pk,
    )
    return row


# --- scores (portal / FHIR) ----------------------------------------------------------------------
def daily_mood_for(
    *, actor: Actor, patient: Patient, days: int = 90, until: dt.date | None = None
) -> models.QuerySet[DailyMoodScore]:
    """The patient's daily mood scores of the last ``days`` local days, newest first."""
    until = until or timezone.localdate()
    access_record(
        actor=actor, action="mood.list", patient_id=patient.pk, resource_type="DailyMoodScore"
    )
    return DailyMoodScore.objects.filter(
        patient=patient, local_date__gt=until - dt.timedelta(days=days), local_date__lte=until
    ).order_by("-local_date")


def text_analysis_for_entry(*, actor: Actor, entry_id: uuid.UUID) -> TextAnalysis | None:
    """The text analysis of one diary entry (None: not scored, or no consent)."""
    analysis = TextAnalysis.objects.filter(diary_entry_id=entry_id).first()
    if analysis is not None:
        access_record(
            actor=actor,
            action="text_analysis.read",
            patient_id=analysis.patient_id,
            resource_type="TextAnalysis",
            resource_id=analysis.pk,
        )
    return analysis


def media_analysis_for_video(*, actor: Actor, video_id: uuid.UUID) -> MediaAnalysis | None:
    """The media analysis of one video (None: not analysed yet, failed, or no consent)."""
    analysis = MediaAnalysis.objects.filter(video_id=video_id).first()
    if analysis is not None:
        access_record(
            actor=actor,
            action="media_analysis.read",
            patient_id=analysis.patient_id,
            resource_type="MediaAnalysis",
            resource_id=analysis.pk,
        )
    return analysis


def patient_scores_recent(
    *, actor: Actor, patient: Patient, days: int = 14, until: dt.date | None = None
) -> dict[str, list[Any]]:
    """The patient's recent moods, text analyses and media analyses (newest first)."""
    until = until or timezone.localdate()
    since = until - dt.timedelta(days=days)
    access_record(
        actor=actor, action="scores.recent", patient_id=patient.pk, resource_type="Scores"
    )
    window = {"patient": patient, "local_date__gt": since, "local_date__lte": until}
    return {
        "moods": list(DailyMoodScore.objects.filter(**window).order_by("-local_date")),
        "texts": list(TextAnalysis.objects.filter(**window).order_by("-local_date", "-created_at")),
        "media": list(
            MediaAnalysis.objects.filter(**window).order_by("-local_date", "-created_at")
        ),
    }
