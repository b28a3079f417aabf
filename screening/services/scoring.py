"""Scoring: text analyses, media analyses' scores, per-patient baselines and the daily mood.

Producers only: scores and evidence are stored here and handed to the risk engine
(:func:`risk.intake.signal_received`) inside the transaction that stores them. Only ``risk/``
turns them into tiers and alerts.

Consent is checked when the work runs (never only when it was queued): no TEXT_ANALYSIS consent,
no text score; the day's mood uses only the modalities whose consent is held at that moment.
Consent is prospective: a text (a diary entry, a video's transcript) is scored only when it was
sent within the current consent period of every scope it needs (at or after the latest grant,
``privacy.consent.consent_covers``): what was sent while a scope was withdrawn, or before the
grant that is now current, is never scored, even after a re-grant.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import statistics
import time
import uuid
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.db.models import DateTimeField, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from privacy.audit import Actor, access_record
from privacy.choices import ConsentScope
from privacy.consent import (
    consent_covers,
    consent_has,
    consent_period_start_subquery,
    derived_deleter_register,
)
from privacy.erasure import erasure_hook_register
from risk.intake import (
    daily_mood_retracted,
    derived_signals_retracted,
    signal_received,
    text_risk_assessed,
)
from risk.rules.engine import (
    TEXT_MODALITIES,
    BaselineDrop,
    CrisisLanguage,
    DailyMood,
)
from screening.batching import lost_handler_register
from screening.choices import VideoStatus
from screening.ml.fusion import baseline as bl
from screening.ml.fusion import fusion as fu
from screening.models import (
    DailyMoodScore,
    DiaryEntry,
    FusionWeights,
    MediaAnalysis,
    Patient,
    QuestionnaireResponse,
    TextAnalysis,
    TextSource,
    VideoSubmission,
)
from screening.services.common import local_day

logger = logging.getLogger("vigil.scoring")

TEXT_MODEL_NAME = "text_scorer"
MAX_SPAN_IDS = 50
#: A mood baseline drop is sent only from this z down (smaller moves are everyday noise).
MOOD_DROP_SEND_AT_OR_BELOW = -1.0
#: PHQ-9 / GAD-7 answered up to this many days before a day still inform its mood.
QUESTIONNAIRE_LOOKBACK_DAYS = 6


# --- settings (read with defaults; see the report for the .env.example lines) --------------------
def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def reap_days() -> int:
    """How far back (in days) the scoring reaper looks for lost work."""
    return max(1, int(_setting("VIGIL_SCORING_REAP_DAYS", 7)))


def reap_cooldown_seconds() -> int:
    """Work sent this recently (by the request path or the reaper) is not sent again."""
    return max(60, int(_setting("VIGIL_SCORING_REAP_COOLDOWN_SECONDS", 600)))


def baseline_config() -> bl.BaselineConfig:
    return bl.BaselineConfig(
        days=int(_setting("VIGIL_MOOD_BASELINE_DAYS", 28)),
        min_recordings=int(_setting("VIGIL_MOOD_BASELINE_MIN", 5)),
    )


def text_scorer() -> Any:
    """The process's text scorer (loaded once per process, one thread at a time, by the
    scorer's own cache: the warm-up thread and the first job may both ask)."""
    from screening.ml.text.scorer import get_text_scorer

    return get_text_scorer(
        device=str(_setting("VIGIL_TEXT_DEVICE", "auto")),
        quantized=bool(_setting("VIGIL_TEXT_QUANTIZED", False)),
    )


# --- enqueueing (after commit, ids only) ---------------------------------------------------------
# Each successful publish leaves a short-lived mark in the cache (``scoring-sent:<kind>:<ids>``) so
# that the reaper does not send work again that is merely waiting in a busy queue. A publish that
# fails leaves no mark: the reaper sends it on its next tick.
def _sent_key(kind: str, ref: str) -> str:
    return f"scoring-sent:{kind}:{ref}"


def _sent_mark(kind: str, ref: str) -> None:
    try:
        cache.set(_sent_key(kind, ref), 1, timeout=reap_cooldown_seconds())
    except Exception:  # a cache outage only costs a possible duplicate (the tasks are idempotent)
        logger.warning("could not mark %s %s as sent", kind, ref)


def _sent_recently(kind: str, ref: str) -> bool:
    try:
        return cache.get(_sent_key(kind, ref)) is not None
    except Exception:
        return False


@lost_handler_register("screening.tasks.text_scoring_batch")
def text_jobs_lost(jobs: list[list[Any]]) -> None:
    """Jobs of a text batch that lost its process for the first time: forget that they were
    sent, so the reaper sends what is still unscored on its next tick (about a minute) instead
    of after its cooldown (``VIGIL_SCORING_REAP_COOLDOWN_SECONDS``). They then run apart from
    their batch-mates (``batching.batches_isolating_lost``)."""
    kinds = {TextSource.DIARY.value: "text", TextSource.TRANSCRIPT.value: "transcript"}
    keys = [
        _sent_key(kinds[str(job[0])], str(job[1]))
        for job in jobs
        if len(job) == 2 and str(job[0]) in kinds
    ]
    cache.delete_many(keys)


def _text_scoring_send(*, source: str, ref: uuid.UUID) -> None:
    """One job for the gpu queue's batch task (``screening.tasks.text_scoring_batch``)."""
    from screening.tasks import text_scoring_batch as task

    task.apply_async(args=[str(source), str(ref)], queue="gpu")


def text_analysis_enqueue(*, entry_id: uuid.UUID) -> None:
    _text_scoring_send(source=TextSource.DIARY.value, ref=entry_id)
    _sent_mark("text", str(entry_id))


def transcript_analysis_enqueue(*, video_id: uuid.UUID) -> None:
    _text_scoring_send(source=TextSource.TRANSCRIPT.value, ref=video_id)
    _sent_mark("transcript", str(video_id))


def daily_mood_enqueue(*, patient_id: uuid.UUID, local_date: dt.date) -> None:
    from screening.tasks import daily_mood_recompute as task

    task.apply_async(args=[str(patient_id), local_date.isoformat()], queue="default")
    _sent_mark("mood", f"{patient_id}:{local_date.isoformat()}")


def _on_commit(func: Any) -> None:
    """Enqueue after the surrounding transaction commits; a broker outage must not undo it."""

    def send() -> None:
        try:
            func()
        except Exception:  # the reaper / next input recomputes; never fail the request
            logger.warning("could not enqueue scoring work", exc_info=False)

    transaction.on_commit(send, robust=True)


def diary_entry_committed(*, entry: DiaryEntry) -> None:
    """Call inside the transaction that stored a new diary entry: scores it after the commit
    (which recomputes its day). Without TEXT_ANALYSIS consent there is no text to score, but a
    self-rating still informs the day: the day's mood is recomputed instead."""
    entry_id = entry.pk
    if entry.self_rated_mood is not None and not consent_has(
        patient=entry.patient, scope=ConsentScope.TEXT_ANALYSIS
    ):
        patient_id, day = entry.patient_id, entry.local_date
        _on_commit(lambda: daily_mood_enqueue(patient_id=patient_id, local_date=day))
        return
    _on_commit(lambda: text_analysis_enqueue(entry_id=entry_id))


def _local_today(tz_names: Iterable[str]) -> dt.date:
    """The latest calendar day now in any of ``tz_names`` (unknown names are skipped; UTC
    when none is known)."""
    now = timezone.now()
    days = []
    for name in tz_names:
        try:
            days.append(local_day(client_timestamp=now, tz_name=name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return max(days) if days else now.astimezone(dt.UTC).date()


def questionnaire_mood_days(*, response: QuestionnaireResponse) -> list[dt.date]:
    """The days whose mood a questionnaire informs and that need recomputing now: its own day,
    and, for PHQ-9 and GAD-7 (which count towards the ``QUESTIONNAIRE_LOOKBACK_DAYS`` following
    days too), each following day up to the patient's today that already has a mood (a
    backdated, offline submission). At most ``QUESTIONNAIRE_LOOKBACK_DAYS + 1`` days."""
    day = response.local_date
    if response.instrument not in ("phq9", "gad7"):
        return [day]
    patient = response.patient
    today = _local_today([response.timezone, patient.timezone])
    last = min(day + dt.timedelta(days=QUESTIONNAIRE_LOOKBACK_DAYS), today)
    later = DailyMoodScore.objects.filter(
        patient_id=response.patient_id, local_date__gt=day, local_date__lte=last
    ).values_list("local_date", flat=True)
    return [day, *sorted(later)]


def questionnaire_committed(*, response: QuestionnaireResponse) -> None:
    """Call inside the transaction that stored a questionnaire: recomputes, after the commit, its
    day and the following days it informs that already have a mood
    (:func:`questionnaire_mood_days`)."""
    patient_id = response.patient_id
    for day in questionnaire_mood_days(response=response):
        _on_commit(lambda d=day: daily_mood_enqueue(patient_id=patient_id, local_date=d))


# --- text ----------------------------------------------------------------------------------------
def _models_json(models: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for info in models:
        as_dict = getattr(info, "as_dict", None)
        out.append(as_dict() if callable(as_dict) else dict(vars(info)))
    return out


def _models_version(models: Iterable[Any]) -> str:
    parts = [f"{getattr(m, 'name', '?')}@{str(getattr(m, 'sha256', '') or '')[:8]}" for m in models]
    version = "+".join(parts) or "unknown"
    # an id for the risk engine: letters, digits and _ . : - only, at most 64 characters
    cleaned = "".join(ch if ch.isalnum() or ch in "_.:-" else "-" for ch in version)
    return cleaned[:64]


def _scores_json(result: Any) -> dict[str, Any]:
    """The numbers and labels of a text score (never the text, never the spans' excerpts)."""
    out: dict[str, Any] = {
        "valence": float(result.valence),
        "valence_probs": _plain(getattr(result, "valence_probs", None)),
        "emotions": _plain(getattr(result, "emotions", None)),
        "risk_level": _plain(getattr(result, "risk_level", None)),
        "risk_probs": _plain(getattr(result, "risk_probs", None)),
        "at_risk": bool(getattr(result, "at_risk", False)),
        "at_risk_probability": float(getattr(result, "at_risk_probability", 0.0) or 0.0),
        "vader_compound": _plain(getattr(result, "vader_compound", None)),
        "worst_passage": _plain(getattr(result, "worst_passage", None)),
        "crisis_category": str(result.crisis.category),
        "crisis_flags": _plain(getattr(result.crisis, "flags", None)),
    }
    return out


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return _plain(as_dict())
    return str(value)


def _span_fields(span: Any) -> tuple[int, int, str, str]:
    if isinstance(span, dict):
        return int(span["start"]), int(span["end"]), str(span["category"]), str(span["rule_id"])
    return int(span.start), int(span.end), str(span.category), str(span.rule_id)


def text_analysis_record(
    *,
    patient: Patient,
    source: str,
    source_obj: DiaryEntry | VideoSubmission,
    local_date: dt.date,
    text: str,
    result: Any,
) -> TextAnalysis:
    """Store one text score (replacing an earlier one of the same source) and hand it to risk.

    Runs in one transaction: the TextAnalysis row, the CrisisLanguage / ModelAssessment events,
    the day's mood and its events commit together, or not at all.
    """
    with transaction.atomic():
        Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk").first()
        lookup: dict[str, Any] = (
            {"diary_entry": source_obj} if source == TextSource.DIARY else {"video": source_obj}
        )
        analysis = TextAnalysis.objects.filter(**lookup).first() or TextAnalysis(
            patient=patient, source=source, **lookup
        )
        probs = getattr(result, "valence_probs", None)
        modality = fu.text_modality(
            modality="diary_text" if source == TextSource.DIARY else "transcript_text",
            valence=float(result.valence),
            probs=probs if isinstance(probs, (dict, list, tuple)) else None,
            n_chars=len(text),
        )
        spans = [_span_fields(s) for s in result.crisis.spans]
        analysis.local_date = local_date
        analysis.scores = _scores_json(result)
        analysis.valence = float(result.valence)
        analysis.confidence = modality.confidence
        analysis.crisis_category = str(result.crisis.category)
        analysis.at_risk = bool(getattr(result, "at_risk", False))
        analysis.at_risk_probability = float(getattr(result, "at_risk_probability", 0.0) or 0.0)
        analysis.models_info = _models_json(result.models)
        analysis.evidence = [
            {
                "id": f"{analysis.pk}:{n}",
                "start": start,
                "end": end,
                "category": category,
                "rule_id": rule_id,
                "excerpt": text[start:end],
            }
            for n, (start, end, category, rule_id) in enumerate(spans)
        ]
        analysis.save()
        version = _models_version(result.models)
        source_ref = str(source_obj.pk)
        risk_source = "text" if source == TextSource.DIARY else "transcript"
        if analysis.crisis_category != "none":
            signal_received(
                patient=patient,
                event=CrisisLanguage(
                    local_date=local_date,
                    category=analysis.crisis_category,
                    source=risk_source,
                    source_ref=source_ref,
                    span_ids=tuple(f"{analysis.pk}:{n}" for n in range(len(spans)))[:MAX_SPAN_IDS],
                    model_version=version,
                ),
            )
        text_risk_assessed(
            patient=patient,
            local_date=local_date,
            model=TEXT_MODEL_NAME if source == TextSource.DIARY else "transcript_scorer",
            model_version=version,
            source_ref=source_ref,
            at_risk=analysis.at_risk,
            probability=analysis.at_risk_probability,
        )
        daily_mood_recompute(patient=patient, local_date=local_date)
    return analysis


@dataclass(frozen=True)
class TextJob:
    """A text ready to score: fetched, allowed (consent held, patient not erased), access
    recorded. ``media_id``: the transcript's MediaAnalysis row (re-checked after scoring)."""

    source: str
    ref: uuid.UUID
    patient: Patient
    source_obj: DiaryEntry | VideoSubmission
    local_date: dt.date
    text: str = field(repr=False)  # patient text: never in a repr, a log or an error report
    media_id: uuid.UUID | None = None


#: A diary text needs TEXT_ANALYSIS consent.
DIARY_SCOPES = (ConsentScope.TEXT_ANALYSIS,)
#: A transcript is speech turned into text: scoring it needs both scopes (as its daily mood does).
TRANSCRIPT_SCOPES = (ConsentScope.TEXT_ANALYSIS, ConsentScope.VOICE_ANALYSIS)


def _source_scopes(source: str) -> tuple[str, ...]:
    return TRANSCRIPT_SCOPES if source == TextSource.TRANSCRIPT else DIARY_SCOPES


def _text_allowed(*, patient: Patient, scopes: Iterable[str], created_at: dt.datetime) -> bool:
    """Not erased, and each of ``scopes`` held now and since before the input was created (the
    current consent period: consent is prospective)."""
    return patient.erased_at is None and all(
        consent_covers(patient=patient, scope=scope, created_at=created_at) for scope in scopes
    )


def _diary_job(entry_id: uuid.UUID) -> TextJob | None:
    entry = DiaryEntry.objects.select_related("patient").filter(pk=entry_id).first()
    if entry is None or not _text_allowed(
        patient=entry.patient, scopes=DIARY_SCOPES, created_at=entry.created_at
    ):
        return None
    access_record(
        actor=Actor.system(),
        action="diary.analyse",
        patient_id=entry.patient.pk,
        resource_type="DiaryEntry",
        resource_id=entry.pk,
    )
    return TextJob(
        source=TextSource.DIARY,
        ref=entry.pk,
        patient=entry.patient,
        source_obj=entry,
        local_date=entry.local_date,
        text=entry.text,
    )


def _transcript_job(video_id: uuid.UUID) -> TextJob | None:
    media = (
        MediaAnalysis.objects.select_related("patient", "video").filter(video_id=video_id).first()
    )
    if media is None or not _text_allowed(
        patient=media.patient, scopes=TRANSCRIPT_SCOPES, created_at=media.video.created_at
    ):
        return None
    transcript = media.transcript
    if not transcript or not transcript.strip():
        return None
    access_record(
        actor=Actor.system(),
        action="video.transcript_analyse",
        patient_id=media.patient.pk,
        resource_type="VideoSubmission",
        resource_id=video_id,
    )
    return TextJob(
        source=TextSource.TRANSCRIPT,
        ref=video_id,
        patient=media.patient,
        source_obj=media.video,
        local_date=media.local_date,
        text=transcript,
        media_id=media.pk,
    )


def text_job_prepare(*, source: str, ref: uuid.UUID) -> TextJob | None:
    """Fetch one text to score and record the access; None: nothing to do (gone, erased, no
    TEXT_ANALYSIS consent, for a transcript no VOICE_ANALYSIS consent either, the entry or video
    sent before the current consent period began, empty transcript)."""
    if source == TextSource.DIARY:
        return _diary_job(ref)
    if source == TextSource.TRANSCRIPT:
        return _transcript_job(ref)
    raise ValueError(f"unknown text source {source!r}")


def _text_job_still_wanted(job: TextJob) -> bool:
    """After scoring: consent withdrawn (even if granted again since), the patient erased or the
    source gone meanwhile wins."""
    if not all(
        consent_covers(patient=job.patient, scope=scope, created_at=job.source_obj.created_at)
        for scope in _source_scopes(job.source)
    ):
        return False
    if not Patient.objects.filter(pk=job.patient.pk, erased_at__isnull=True).exists():
        return False
    if job.source == TextSource.DIARY:
        return DiaryEntry.objects.filter(pk=job.ref).exists()
    # voice consent withdrawn meanwhile with deletion: the transcript is gone
    return (
        job.media_id is not None
        and MediaAnalysis.objects.filter(pk=job.media_id, transcript__isnull=False).exists()
    )


def text_job_record(*, job: TextJob, result: Any) -> TextAnalysis | None:
    """Store a scored text (one transaction) unless it is no longer wanted.

    The check runs under the patient's row lock, which erasure and consent changes take first
    too: a withdrawal (with its deletion of derived data) or an erasure that commits while the
    text was being scored is seen here, and one that starts now waits for this store to commit
    and then deletes what it stored. Either way no analysis outlives them.
    """
    with transaction.atomic():
        Patient.objects.select_for_update().filter(pk=job.patient.pk).values_list("pk").first()
        if not _text_job_still_wanted(job):
            return None
        return text_analysis_record(
            patient=job.patient,
            source=job.source,
            source_obj=job.source_obj,
            local_date=job.local_date,
            text=job.text,
            result=result,
        )


def _text_job_run(*, source: str, ref: uuid.UUID) -> TextAnalysis | None:
    job = text_job_prepare(source=source, ref=ref)
    if job is None:
        return None
    result = text_scorer().score([job.text])[0]
    return text_job_record(job=job, result=result)


def text_analysis_run(*, entry_id: uuid.UUID) -> TextAnalysis | None:
    """Score one diary entry (the task's body). Idempotent: a re-run replaces the analysis and
    the risk engine counts each signal once. None: nothing to do (gone, or no consent)."""
    return _text_job_run(source=TextSource.DIARY, ref=entry_id)


def transcript_analysis_run(*, video_id: uuid.UUID) -> TextAnalysis | None:
    """Score a video's transcript with the text scorer. Needs TEXT_ANALYSIS and VOICE_ANALYSIS
    consent now (the transcript is the patient's speech: it exists only under VOICE_ANALYSIS
    consent, and a withdrawal of either stops its scoring, even without deletion)."""
    return _text_job_run(source=TextSource.TRANSCRIPT, ref=video_id)


#: A batch retries a job's database work after these pauses (seconds) when the error may pass:
#: SQLite's "database is locked" between two workers, a dropped connection. The single tasks get
#: the same from Celery's autoretry; a batch cannot be retried as a whole.
DB_RETRY_DELAYS: tuple[float, ...] = (0.25, 1.0, 3.0)
#: At most this many such retries per batch: with the database down, the batch ends quickly and
#: the reaper sends its jobs again.
DB_RETRY_BUDGET = 10


class DbRetryBudget:
    """Runs a batch's per-job database work, retrying errors that may pass (``DB_RETRY_DELAYS``)
    until the batch's budget of retries is spent."""

    def __init__(self, retries: int | None = None) -> None:
        self.left = DB_RETRY_BUDGET if retries is None else retries

    def run(self, func: Callable[[], Any]) -> Any:
        for delay in (*DB_RETRY_DELAYS, None):
            try:
                return func()
            except (OperationalError, InterfaceError):
                if delay is None or self.left <= 0:
                    raise
                self.left -= 1
                if not connection.in_atomic_block:  # the caller's transaction is not ours
                    close_old_connections()  # a broken connection is replaced on the next query
                time.sleep(delay)
        return None  # not reached: the last try returns or raises


def text_analyses_run_batch(*, jobs: Iterable[tuple[str, uuid.UUID]]) -> dict[str, int]:
    """Score many texts (the gpu queue's batch task body): diary entries and transcripts, given
    as ``(source, id)`` with source ``diary`` or ``transcript``.

    Each job is fetched and checked exactly as :func:`text_analysis_run` /
    :func:`transcript_analysis_run` do it; all the allowed texts are scored in ONE call of the
    scorer; then each is stored in its own transaction (:func:`text_analysis_record`), so one that
    fails loses only itself: a database error that may pass is retried (``DB_RETRY_DELAYS``, at
    most ``DB_RETRY_BUDGET`` retries per batch); a job that still fails is logged by id and left
    to :func:`scoring_jobs_reap`, which re-sends work whose analysis is missing. A job given
    twice is scored once. Idempotent like
    the single runs. Returns counts: ``jobs``, ``scored``, ``skipped`` (nothing to do),
    ``failed``. A text the scorer cannot handle fails alone (the others of the batch are stored).
    """
    unique = list(dict.fromkeys((str(source), ref) for source, ref in jobs))
    counts = {"jobs": len(unique), "scored": 0, "skipped": 0, "failed": 0}
    ready: list[TextJob] = []
    budget = DbRetryBudget(DB_RETRY_BUDGET)
    for source, ref in unique:
        try:
            job = budget.run(functools.partial(text_job_prepare, source=source, ref=ref))
        except SoftTimeLimitExceeded:
            raise  # out of time: the batch's messages are rejected, the reaper re-sends
        except Exception as exc:  # one unreadable row (key gone, database blip) costs only itself
            counts["failed"] += 1
            logger.warning(
                "text scoring: could not load %s %s (%s)", source, ref, type(exc).__name__
            )
            continue
        if job is None:
            counts["skipped"] += 1
        else:
            ready.append(job)
    if ready:
        # one call for the batch; a text the scorer cannot handle fails alone, not its batch-mates
        from screening.ml.text.scorer import score_each

        results = score_each(
            text_scorer(), [job.text for job in ready], reraise=(SoftTimeLimitExceeded,)
        )
        for job, result in zip(ready, results, strict=True):
            if isinstance(result, Exception):
                counts["failed"] += 1
                logger.warning(
                    "text scoring: could not score %s %s (%s); left to the scoring reaper",
                    job.source,
                    job.ref,
                    type(result).__name__,
                )
                continue
            try:
                stored = budget.run(functools.partial(text_job_record, job=job, result=result))
            except SoftTimeLimitExceeded:
                raise
            except Exception as exc:  # rolled back alone; the reaper sends it again
                counts["failed"] += 1
                logger.warning(
                    "text scoring: could not store %s %s (%s); left to the scoring reaper",
                    job.source,
                    job.ref,
                    type(exc).__name__,
                )
                continue
            counts["scored" if stored is not None else "skipped"] += 1
    logger.info(
        "text scoring batch: jobs=%d scored=%d skipped=%d failed=%d",
        counts["jobs"],
        counts["scored"],
        counts["skipped"],
        counts["failed"],
    )
    return counts


# --- media ---------------------------------------------------------------------------------------
def media_history(
    *, patient: Patient, before: dt.date, exclude_video: uuid.UUID | None = None
) -> dict[str, list[bl.Observation]]:
    """The patient's earlier voice and face features in the baseline window (for baselines)."""
    config = baseline_config()
    rows = (
        MediaAnalysis.objects.filter(
            patient=patient,
            local_date__gte=before - dt.timedelta(days=config.days),
            local_date__lte=before,
        )
        .exclude(video_id=exclude_video)
        .values_list("local_date", "prosody", "face")
    )
    out: dict[str, list[bl.Observation]] = {"voice": [], "face": []}
    for local_date, prosody, face in rows:
        for modality, features in (("voice", prosody), ("face", face)):
            numeric = _numeric_features(features)
            if numeric:
                out[modality].append(bl.Observation(local_date=local_date, features=numeric))
    return out


def _numeric_features(features: Any) -> dict[str, float]:
    if not isinstance(features, dict) or features.get("abstain"):
        return {}  # an abstaining extractor's numbers must not be used for scoring
    source = features.get("features", features)
    if not isinstance(source, dict):
        return {}
    return {
        k: float(v)
        for k, v in source.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def baseline_json(result: bl.BaselineResult) -> dict[str, Any]:
    return {
        "personal": result.personal,
        "n_history": result.n_history,
        "n_days": result.n_days,
        "z": {f.feature: round(f.z, 3) for f in result.zs},
        "raw_z": {f.feature: round(f.raw_z, 3) for f in result.zs},
    }


def media_analysis_record(
    *,
    video: VideoSubmission,
    prosody: dict[str, Any] | None,
    face: dict[str, Any] | None,
    quality_flags: list[str],
    abstentions: dict[str, str],
    distress: float | None,
    distress_confidence: float,
    transcript: str | None,
    models_info: list[dict[str, Any]],
    timings_ms: dict[str, Any],
    model_version: str,
) -> MediaAnalysis:
    """Store a video's analysis (replacing an earlier one) with its baseline z-scores, send
    MediaDistress and voice/face BaselineDrop events, and recompute the day's mood. Call inside
    a transaction (the video's DONE update belongs to it)."""
    from risk.rules.engine import MediaDistress

    patient = video.patient
    history = media_history(patient=patient, before=video.local_date, exclude_video=video.pk)
    config = baseline_config()
    baselines: dict[str, Any] = {}
    results: dict[str, bl.BaselineResult] = {}
    for modality, features in (("voice", prosody), ("face", face)):
        numeric = _numeric_features(features)
        if not numeric:
            continue
        result = bl.baseline_compare(
            modality=modality,
            current=numeric,
            history=history[modality],
            today=video.local_date,
            config=config,
        )
        results[modality] = result
        baselines[modality] = baseline_json(result)
    analysis, _ = MediaAnalysis.objects.update_or_create(
        video=video,
        defaults={
            "patient": patient,
            "local_date": video.local_date,
            "prosody": prosody,
            "face": face,
            "baseline": baselines,
            "quality_flags": quality_flags,
            "abstentions": abstentions,
            "distress": distress,
            "distress_confidence": distress_confidence,
            "transcript": transcript,
            "models_info": models_info,
            "timings_ms": timings_ms,
        },
    )
    if distress is not None:
        signal_received(
            patient=patient,
            event=MediaDistress(
                local_date=video.local_date,
                video_id=str(video.pk),
                score=max(0.0, min(1.0, float(distress))),
                model_version=model_version,
            ),
        )
    for modality, result in results.items():
        worst = result.worst
        if worst is None or not result.personal:
            continue  # a population comparison is not a drop against the patient's own baseline
        signal_received(
            patient=patient,
            event=BaselineDrop(
                local_date=video.local_date,
                signal=modality,
                z=round(worst.z, 3),
                source_ref=str(video.pk),
                model_version=f"{fu.FUSION_VERSION}:{worst.feature}"[:64],
            ),
        )
    daily_mood_recompute(patient=patient, local_date=video.local_date)
    return analysis


# --- the day's mood ------------------------------------------------------------------------------
def _weighted_text(rows: list[TextAnalysis], modality: str) -> fu.ModalityInput | None:
    if not rows:
        return None
    inputs = []
    for row in rows:
        probs = (row.scores or {}).get("valence_probs")
        item = fu.text_modality(
            modality=modality,
            valence=row.valence,
            probs=probs if isinstance(probs, (dict, list)) else None,
        )
        # The confidence stored with the analysis was computed from the text itself (halved for
        # a text under 20 characters, ``fu.text_modality``); the text is not read again here.
        stored = row.confidence
        if stored is not None and math.isfinite(stored):
            item = replace(item, confidence=round(max(0.0, min(1.0, float(stored))), 4))
        inputs.append(item)
    total = sum(i.confidence for i in inputs)
    score = (
        sum((i.score or 0.0) * i.confidence for i in inputs) / total
        if total > 0
        else statistics.fmean(i.score or 0.0 for i in inputs)
    )
    label = fu.MODALITY_LABELS[modality]
    phrase = f"{label} {fu._strength(score)}"
    if len(inputs) > 1:
        phrase += f" ({len(inputs)} entries)"
    return fu.ModalityInput(
        modality,
        score,
        max(i.confidence for i in inputs),
        phrase=phrase,
        sources=tuple(str(r.source_ref) for r in rows),
    )


def _media_modality(
    rows: list[MediaAnalysis], modality: str, config: bl.BaselineConfig
) -> fu.ModalityInput | None:
    scored: list[tuple[float, float, str, str]] = []
    for row in rows:
        data = (row.baseline or {}).get(modality)
        if not data or not data.get("z"):
            continue
        zs = tuple(
            bl.FeatureZ(
                feature=name,
                value=0.0,
                z=float(z),
                raw_z=float(data.get("raw_z", {}).get(name, z)),
                reference=0.0,
            )
            for name, z in data["z"].items()
        )
        result = bl.BaselineResult(
            modality=modality,
            personal=bool(data.get("personal")),
            n_history=int(data.get("n_history", 0)),
            n_days=int(data.get("n_days", 0)),
            zs=zs,
        )
        quality = 0.6 if row.quality_flags else 1.0
        pair = bl.baseline_modality_score(result, config=config, feature_quality=quality)
        worst = result.worst
        if pair is None or worst is None:
            continue
        scored.append(
            (pair[0], pair[1], bl.describe_z(worst, personal=result.personal), str(row.video_id))
        )
    if not scored:
        return None
    best = max(scored, key=lambda s: s[1])
    total = sum(s[1] for s in scored)
    score = sum(s[0] * s[1] for s in scored) / total if total > 0 else best[0]
    worst_phrase = min(scored, key=lambda s: s[0])[2]
    return fu.ModalityInput(
        modality, score, best[1], phrase=worst_phrase, sources=tuple(s[3] for s in scored)
    )


def daily_mood_inputs(*, patient: Patient, local_date: dt.date) -> list[fu.ModalityInput]:
    """Every modality's opinion of the patient's day, as held now (consent checked now)."""
    inputs: list[fu.ModalityInput] = []
    text_ok = consent_has(patient=patient, scope=ConsentScope.TEXT_ANALYSIS)
    voice_ok = consent_has(patient=patient, scope=ConsentScope.VOICE_ANALYSIS)
    face_ok = consent_has(patient=patient, scope=ConsentScope.FACE_ANALYSIS)
    if text_ok:
        texts = list(TextAnalysis.objects.filter(patient=patient, local_date=local_date))
        for source, modality in (
            (TextSource.DIARY, "diary_text"),
            (TextSource.TRANSCRIPT, "transcript_text"),
        ):
            item = _weighted_text([t for t in texts if t.source == source], modality)
            if item is not None and (source == TextSource.DIARY or voice_ok):
                inputs.append(item)
    media = list(MediaAnalysis.objects.filter(patient=patient, local_date=local_date))
    config = baseline_config()
    for modality, allowed in (("voice", voice_ok), ("face", face_ok)):
        item = _media_modality(media, modality, config) if allowed else None
        if item is not None:
            inputs.append(item)
    ratings = list(
        DiaryEntry.objects.filter(
            patient=patient, local_date=local_date, self_rated_mood__isnull=False
        ).values_list("pk", "self_rated_mood")
    )
    if ratings:
        inputs.append(
            fu.self_rated_modality(
                statistics.fmean(float(r or 0) for _, r in ratings),
                sources=tuple(str(pk) for pk, _ in ratings),
                ratings=tuple(float(r or 0) for _, r in ratings),
            )
        )
    since = local_date - dt.timedelta(days=QUESTIONNAIRE_LOOKBACK_DAYS)
    for instrument in ("phq9", "gad7"):
        latest = (
            QuestionnaireResponse.objects.filter(
                patient=patient,
                instrument=instrument,
                local_date__gte=since,
                local_date__lte=local_date,
            )
            .order_by("-local_date", "-created_at")
            .first()
        )
        if latest is None:
            continue
        age = (local_date - latest.local_date).days
        if instrument == "phq9":
            inputs.append(
                fu.phq9_modality(
                    total=latest.total, item9=latest.item9, age_days=age, sources=(str(latest.pk),)
                )
            )
        else:
            inputs.append(
                fu.gad7_modality(total=latest.total, age_days=age, sources=(str(latest.pk),))
            )
    return inputs


def fusion_config_for(*, patient: Patient) -> tuple[fu.FusionConfig, FusionWeights | None]:
    fitted = (
        FusionWeights.objects.filter(organisation_id=patient.organisation_id)
        .order_by("-created_at")
        .first()
    )
    config = fu.FusionConfig()
    if fitted is not None:
        # on the defaults' scale (weights fitted before it was pinned summed to their count)
        config = fu.with_weights(config, fu.fitted_weights_rescale(fitted.weights))
    return config, fitted


def daily_mood_recompute(*, patient: Patient, local_date: dt.date) -> DailyMoodScore:
    """Fuse the day's modalities, store the day's score (one row per patient and day) and send
    DailyMood and a mood BaselineDrop to risk, in the caller's transaction (or its own)."""
    with transaction.atomic():
        Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk").first()
        inputs = daily_mood_inputs(patient=patient, local_date=local_date)
        config, fitted = fusion_config_for(patient=patient)
        fused = fu.fuse(inputs, config)
        row, _ = DailyMoodScore.objects.update_or_create(
            patient=patient,
            local_date=local_date,
            defaults={
                "score": fused.score,
                "confidence": fused.confidence,
                "abstained": fused.abstained,
                "reason": fused.reason,
                "contributions": [c.as_dict() for c in fused.top()],
                "explanation": fused.explanation[:400],
                "inputs": {i.modality: list(i.sources) for i in inputs if i.usable and i.sources},
                "fusion_version": fused.version,
                "weights_id": fitted.pk if fitted is not None else None,
            },
        )
        if fused.score is None:
            # no DailyMood to send: a mood sent for this day before must not stay with risk
            daily_mood_retracted(patient=patient, local_dates=[local_date])
            return row
        # Crisis language is confirmed only by what the text did not say: the day fused from
        # the other modalities alone (None when text was all there was, or too little else).
        independent = fu.fuse([i for i in inputs if i.modality not in TEXT_MODALITIES], config)
        modalities = tuple(c.modality for c in fused.contributions)
        # the engine refuses a text-free score without a text-free contribution to the day
        independent_score = (
            independent.score if any(m not in TEXT_MODALITIES for m in modalities) else None
        )
        signal_received(
            patient=patient,
            event=DailyMood(
                local_date=local_date,
                score=fused.score,
                confidence=fused.confidence,
                model_version=fused.version,
                modalities=modalities,
                independent_score=independent_score,
            ),
        )
        z = mood_baseline_z(patient=patient, local_date=local_date, score=fused.score)
        if z is not None and z <= MOOD_DROP_SEND_AT_OR_BELOW:
            signal_received(
                patient=patient,
                event=BaselineDrop(
                    local_date=local_date,
                    signal="mood",
                    z=round(z, 3),
                    source_ref=local_date.isoformat(),
                    model_version=fused.version,
                ),
            )
        else:  # a drop sent for an earlier version of the day no longer stands
            daily_mood_retracted(patient=patient, local_dates=[local_date], baseline_drop_only=True)
    return row


def mood_baseline_z(*, patient: Patient, local_date: dt.date, score: float) -> float | None:
    """The day's mood against the patient's earlier daily moods (robust z; None: too little)."""
    config = baseline_config()
    past = list(
        DailyMoodScore.objects.filter(
            patient=patient,
            local_date__gte=local_date - dt.timedelta(days=config.days),
            local_date__lt=local_date,
            score__isnull=False,
        ).values_list("score", flat=True)
    )
    if len(past) < config.min_recordings:
        return None
    return bl.robust_z_mood(score, [float(s) for s in past if s is not None])


def daily_mood_run(*, patient_id: uuid.UUID, local_date: dt.date) -> DailyMoodScore | None:
    """The task's body: recompute a day for a patient who still exists and is not erased."""
    patient = Patient.objects.filter(pk=patient_id, erased_at__isnull=True).first()
    if patient is None:
        return None
    return daily_mood_recompute(patient=patient, local_date=local_date)


# --- the reaper: scoring work lost to a broker outage --------------------------------------------
#: Work younger than this is presumably in flight (committed, being published or queued).
REAP_GRACE = dt.timedelta(minutes=1)


def _mood_updated_at() -> Subquery:
    return Subquery(
        DailyMoodScore.objects.filter(
            patient_id=OuterRef("patient_id"), local_date=OuterRef("local_date")
        ).values("updated_at")[:1],
        output_field=DateTimeField(),
    )


def _stale_days(
    rows: QuerySet[Any], *, stamp: str, settled: dt.datetime, window: Q, limit: int
) -> list[tuple[uuid.UUID, dt.date]]:
    """(patient, day) pairs of inputs in ``window`` newer than their day's mood (or with no mood
    at all)."""
    return list(
        rows.filter(
            window,
            patient__erased_at__isnull=True,
            **{f"{stamp}__lt": settled},
        )
        .annotate(mood_at=_mood_updated_at())
        .filter(Q(mood_at__isnull=True) | Q(mood_at__lt=F(stamp)))
        .values_list("patient_id", "local_date")
        .distinct()
        .order_by("local_date", "patient_id")[:limit]
    )


def _questionnaire_stale_days(
    *, settled: dt.datetime, since: dt.datetime, limit: int
) -> list[tuple[uuid.UUID, dt.date]]:
    """(patient, day) pairs a PHQ-9 / GAD-7 submitted in the reaper's window informs, whose mood
    is older than it: its own day (also when missing, however far it was backdated) and each of
    the ``QUESTIONNAIRE_LOOKBACK_DAYS`` following days that has a mood (see
    :func:`questionnaire_mood_days`). Two queries, at most ``limit`` submissions."""
    responses = list(
        QuestionnaireResponse.objects.filter(
            instrument__in=("phq9", "gad7"),
            created_at__gte=since,
            created_at__lt=settled,
            patient__erased_at__isnull=True,
        )
        .order_by("created_at")
        .values_list("patient_id", "local_date", "created_at")[:limit]
    )
    if not responses:
        return []
    window = dt.timedelta(days=QUESTIONNAIRE_LOOKBACK_DAYS)
    moods: dict[tuple[uuid.UUID, dt.date], dt.datetime] = {
        (patient_id, day): updated_at
        for patient_id, day, updated_at in DailyMoodScore.objects.filter(
            patient_id__in={patient_id for patient_id, _, _ in responses},
            local_date__gte=min(day for _, day, _ in responses),
            local_date__lte=max(day for _, day, _ in responses) + window,
        ).values_list("patient_id", "local_date", "updated_at")
    }
    stale: set[tuple[uuid.UUID, dt.date]] = set()
    for patient_id, day, created_at in responses:
        if (patient_id, day) not in moods:
            stale.add((patient_id, day))
        for offset in range(QUESTIONNAIRE_LOOKBACK_DAYS + 1):
            key = (patient_id, day + dt.timedelta(days=offset))
            if key in moods and moods[key] < created_at:
                stale.add(key)
    return sorted(stale, key=lambda d: (d[1], str(d[0])))[:limit]


def _in_consent_period(rows: QuerySet[Any], *, scopes: Iterable[str]) -> QuerySet[Any]:
    """The rows (diary entries, videos) created in their patient's current consent period of
    every scope in ``scopes`` (:func:`privacy.consent.consent_covers`, in SQL)."""
    for scope in scopes:
        rows = rows.filter(created_at__gte=consent_period_start_subquery(scope=scope))
    return rows


def scoring_jobs_reap(*, now: dt.datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Send again the scoring work that a broker outage lost; safe on any number of beat ticks.

    Looks only at the last ``VIGIL_SCORING_REAP_DAYS`` days and at work older than a minute:
    diary entries with no text analysis, sent within the current TEXT_ANALYSIS consent period;
    finished videos with a transcript and no transcript analysis, sent within the current
    TEXT_ANALYSIS and VOICE_ANALYSIS consent periods (consent and erasure are filtered in the
    query, before the limit: texts that may not be scored never crowd out those that may); days
    whose mood is older than one of the day's inputs (a diary self-rating or a questionnaire
    sent in the window, however far it was backdated; a text or media analysis of a day in the
    window) or missing, and the following days a PHQ-9 / GAD-7 informs whose
    mood is older than it (a backdated submission). Work sent within
    ``VIGIL_SCORING_REAP_COOLDOWN_SECONDS`` is left to its queue. At most ``limit`` jobs are
    sent. The tasks are idempotent, so a duplicate is harmless; the first failed publish (broker
    still down) ends the run, and the next tick tries again.
    """
    now = now or timezone.now()
    settled = now - REAP_GRACE
    since = now - dt.timedelta(days=reap_days())
    first_day = since.date() - dt.timedelta(days=1)  # local days may lag UTC by up to a day
    counts = {"text": 0, "transcript": 0, "mood": 0, "skipped": 0, "failed": 0}
    jobs: list[tuple[str, str, Any]] = []
    covered: set[tuple[uuid.UUID, dt.date]] = set()  # days a text job recomputes anyway
    entries = _in_consent_period(
        DiaryEntry.objects.filter(
            created_at__lt=settled,
            created_at__gte=since,
            text_analysis__isnull=True,
            patient__erased_at__isnull=True,
        ),
        scopes=DIARY_SCOPES,
    )
    for pk, patient_id, day in entries.order_by("created_at").values_list(
        "pk", "patient_id", "local_date"
    )[:limit]:
        jobs.append(("text", str(pk), lambda pk=pk: text_analysis_enqueue(entry_id=pk)))
        covered.add((patient_id, day))
    videos = _in_consent_period(
        VideoSubmission.objects.filter(
            status=VideoStatus.DONE,
            finished_at__lt=settled,
            finished_at__gte=since,
            media_analysis__transcript__isnull=False,
            transcript_analysis__isnull=True,
            patient__erased_at__isnull=True,
        ),
        scopes=TRANSCRIPT_SCOPES,
    )
    for pk, patient_id, day in videos.order_by("finished_at").values_list(
        "pk", "patient_id", "local_date"
    )[:limit]:
        jobs.append(("transcript", str(pk), lambda pk=pk: transcript_analysis_enqueue(video_id=pk)))
        covered.add((patient_id, day))
    days: set[tuple[uuid.UUID, dt.date]] = set()
    # Inputs the patient sends are found by when they arrived (a self-rating may be backdated
    # up to VIGIL_CLIENT_BACKDATE_DAYS: its day lies outside the window, its arrival does not);
    # analyses by their day (they recompute it in their own transaction).
    sent_in_window = Q(created_at__gte=since)
    day_in_window = Q(local_date__gte=first_day)
    sources: list[tuple[QuerySet[Any], str, Q]] = [
        (DiaryEntry.objects.filter(self_rated_mood__isnull=False), "created_at", sent_in_window),
        (QuestionnaireResponse.objects.all(), "created_at", sent_in_window),
        (TextAnalysis.objects.all(), "updated_at", day_in_window),
        (MediaAnalysis.objects.all(), "updated_at", day_in_window),
    ]
    for rows, stamp, window in sources:
        days.update(_stale_days(rows, stamp=stamp, settled=settled, window=window, limit=limit))
    # a PHQ-9 / GAD-7 also informs the following days (a backdated one: days already scored)
    days.update(_questionnaire_stale_days(settled=settled, since=since, limit=limit))
    for patient_id, day in sorted(days - covered, key=lambda d: (d[1], str(d[0]))):
        jobs.append(
            (
                "mood",
                f"{patient_id}:{day.isoformat()}",
                lambda p=patient_id, d=day: daily_mood_enqueue(patient_id=p, local_date=d),
            )
        )

    for kind, ref, send in jobs:
        if counts["text"] + counts["transcript"] + counts["mood"] >= limit:
            break
        if _sent_recently(kind, ref):
            counts["skipped"] += 1
            continue
        try:
            send()
        except Exception:  # broker still down: stop here, the next tick tries again
            counts["failed"] += 1
            logger.warning("scoring reaper could not enqueue %s %s; retrying next tick", kind, ref)
            break
        counts[kind] += 1
    if counts["text"] or counts["transcript"] or counts["mood"]:
        logger.info(
            "scoring reaper re-sent text=%d transcript=%d mood=%d",
            counts["text"],
            counts["transcript"],
            counts["mood"],
        )
    return counts


# --- consent withdrawal and erasure --------------------------------------------------------------
def _moods_using_delete(*, patient: Patient, modalities: Iterable[str]) -> int:
    """Delete the daily moods that used ``modalities``, make risk forget them now (no new alert
    may count them), and recompute each of those days from what remains after the commit."""
    query = Q()
    for modality in modalities:
        query |= Q(inputs__has_key=modality)
    rows = DailyMoodScore.objects.filter(patient=patient).filter(query)
    days = sorted(set(rows.values_list("local_date", flat=True)))
    deleted, _ = rows.delete()
    if days:
        daily_mood_retracted(patient=patient, local_dates=days)
        _moods_recompute_after_commit(patient_id=patient.pk, days=days)
    return deleted


def _moods_recompute_after_commit(*, patient_id: uuid.UUID, days: list[dt.date]) -> None:
    """Recompute ``days`` after the commit (tasks, ids only), unless the patient was erased
    meanwhile (an erasure runs the same deleters: nothing is left to recompute). A failed
    publish stops the rest; the reaper recomputes recent days that have inputs and no mood."""

    def send() -> None:
        if not Patient.objects.filter(pk=patient_id, erased_at__isnull=True).exists():
            return
        for day in days:
            daily_mood_enqueue(patient_id=patient_id, local_date=day)

    _on_commit(send)


@derived_deleter_register(ConsentScope.TEXT_ANALYSIS, name="text scores")
def text_scores_delete(*, patient: Patient, remaining: frozenset[str]) -> int:
    """Text analyses of diary entries and transcripts, and the daily moods that used them."""
    deleted, _ = TextAnalysis.objects.filter(patient=patient).delete()
    # risk's own copy of the crisis language found in them confirms nothing any more
    derived_signals_retracted(patient=patient, signals=("text", "transcript"))
    return deleted + _moods_using_delete(
        patient=patient, modalities=("diary_text", "transcript_text")
    )


@derived_deleter_register(ConsentScope.VOICE_ANALYSIS, name="voice scores and transcripts")
def voice_scores_delete(*, patient: Patient, remaining: frozenset[str]) -> int:
    """Prosody features, voice baselines, transcripts (and their text analyses) and distress."""
    rows = [
        row
        for row in MediaAnalysis.objects.filter(patient=patient)
        if row.prosody is not None or row.transcript is not None or "voice" in (row.baseline or {})
    ]
    for row in rows:
        row.prosody = None
        row.transcript = None
        row.distress = None
        row.distress_confidence = 0.0
        row.baseline = {k: v for k, v in (row.baseline or {}).items() if k != "voice"}
        row.save(
            update_fields=[
                "prosody",
                "transcript",
                "distress",
                "distress_confidence",
                "baseline",
                "updated_at",
            ]
        )
    transcripts, _ = TextAnalysis.objects.filter(
        patient=patient, source=TextSource.TRANSCRIPT
    ).delete()
    # deleted distress, voice drops and transcript crisis language confirm nothing any more
    derived_signals_retracted(patient=patient, signals=("voice", "media_distress", "transcript"))
    return (
        len(rows)
        + transcripts
        + _moods_using_delete(patient=patient, modalities=("voice", "transcript_text"))
    )


@derived_deleter_register(ConsentScope.FACE_ANALYSIS, name="face scores")
def face_scores_delete(*, patient: Patient, remaining: frozenset[str]) -> int:
    """Face features, face baselines and distress (which used the face)."""
    rows = [
        row
        for row in MediaAnalysis.objects.filter(patient=patient)
        if row.face is not None or "face" in (row.baseline or {})
    ]
    for row in rows:
        row.face = None
        row.distress = None
        row.distress_confidence = 0.0
        row.baseline = {k: v for k, v in (row.baseline or {}).items() if k != "face"}
        row.save(
            update_fields=["face", "distress", "distress_confidence", "baseline", "updated_at"]
        )
    derived_signals_retracted(patient=patient, signals=("face", "media_distress"))
    return len(rows) + _moods_using_delete(patient=patient, modalities=("face",))


@erasure_hook_register("scores")
def scores_erase(*, patient: Patient) -> int:
    """An erased patient's text and media analyses and daily moods all go."""
    total = 0
    for model in (TextAnalysis, MediaAnalysis, DailyMoodScore):
        deleted, _ = model._default_manager.filter(patient=patient).delete()
        total += deleted
    return total


# --- fitting a clinic's weights (manage.py fit_fusion) -------------------------------------------
def _combine(items: list[fu.ModalityInput]) -> fu.ModalityInput:
    """One modality seen on several days: the confidence-weighted mean score."""
    usable = [i for i in items if i.usable and i.score is not None]
    total = sum(i.confidence for i in usable)
    score = sum((i.score or 0.0) * i.confidence for i in usable) / total
    return fu.ModalityInput(usable[0].modality, score, total / len(usable), phrase=usable[0].phrase)


def fusion_fit_rows(*, organisation_id: int, window_days: int = 3) -> list[fu.FitRow]:
    """Labelled examples of a clinic: every PHQ-9 of its (non-erased) patients with the other
    modalities seen within ``window_days`` local days of it; the label is the PHQ-9's mood."""
    rows: list[fu.FitRow] = []
    responses = QuestionnaireResponse.objects.filter(
        instrument="phq9",
        patient__organisation_id=organisation_id,
        patient__erased_at__isnull=True,
    ).select_related("patient")
    for response in responses.iterator():
        seen: dict[str, list[fu.ModalityInput]] = {}
        for offset in range(-window_days, window_days + 1):
            day = response.local_date + dt.timedelta(days=offset)
            for item in daily_mood_inputs(patient=response.patient, local_date=day):
                if item.modality not in ("phq9", "gad7") and item.usable:
                    seen.setdefault(item.modality, []).append(item)
        if seen:
            rows.append(
                fu.FitRow(
                    inputs=tuple(_combine(items) for items in seen.values()),
                    label=fu.phq9_to_mood(response.total),
                )
            )
    return rows


def fusion_weights_store(
    *, organisation_id: int, result: fu.FitResult, ridge: float, window_days: int
) -> FusionWeights:
    """Record fitted weights for a clinic; its daily moods use them from now on."""
    report = {**result.as_dict(), "ridge": ridge, "window_days": window_days}
    return FusionWeights.objects.create(
        organisation_id=organisation_id,
        weights=report["weights"],
        fusion_version=fu.FUSION_VERSION,
        n_examples=result.n,
        mae=result.mae,
        ccc=result.ccc if result.ccc == result.ccc else None,
        report=report,
    )
