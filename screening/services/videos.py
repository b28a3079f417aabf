"""Video submissions: probe, store encrypted, enqueue after commit; process; reap stuck jobs."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from config.errors import (
    DecryptionFailed,
    IdempotencyConflict,
    KeyNotFound,
    MediaRejected,
    PayloadTooLarge,
)
from privacy.audit import Actor, access_record
from privacy.choices import ConsentScope
from privacy.consent import (
    consent_granted_scopes,
    consent_has,
    consent_require_any,
    derived_deleter_register,
    work_canceller_register,
)
from privacy.storage import (
    decrypted_tempfile,
    decrypted_tempfiles_sweep,
    encrypted_file_delete,
    encrypted_file_exists,
    encrypted_file_write,
    storage_name_for,
)
from screening.choices import VideoStage, VideoStatus
from screening.ml.media.probe import MediaProbe, ProbeRejected, probe_media
from screening.models import Patient, VideoSubmission
from screening.services import media_analysis, voice_jobs
from screening.services.common import check_client_timestamp, local_day, resolve_timezone
from screening.services.media_analysis import MediaOutcome, outcome_complete_voice
from screening.services.scoring import (
    DbRetryBudget,
    media_analysis_record,
    transcript_analysis_enqueue,
)

logger = logging.getLogger("vigil.media")
#: What recording a video outcome did: the count it goes to in a voice batch.
RecordResult = Literal["completed", "failed", "skipped"]

ANALYSIS_SCOPES = [
    ConsentScope.VOICE_ANALYSIS,
    ConsentScope.FACE_ANALYSIS,
    ConsentScope.TEXT_ANALYSIS,
]
CONSENT_WITHDRAWN_MESSAGE = "Analysis was stopped because consent was withdrawn."


def video_enqueue(*, video_id: uuid.UUID) -> None:
    from screening.tasks import video_process as task

    task.apply_async(args=[str(video_id)], queue="media")
    VideoSubmission.objects.filter(pk=video_id).update(enqueued_at=timezone.now())


def video_submission_create(
    *,
    actor: Actor,
    patient: Patient,
    idempotency_key: uuid.UUID,
    upload_path: Path,
    client_timestamp: dt.datetime,
    timezone_name: str | None = None,
) -> tuple[VideoSubmission, bool]:
    """Check the upload by probing it, store it encrypted, and enqueue analysis after commit.

    Nothing is stored half-way: a failure after the encrypted file was written removes it.
    """
    size = upload_path.stat().st_size
    existing = VideoSubmission.objects.filter(
        patient=patient, idempotency_key=idempotency_key
    ).first()
    if existing is not None:
        return _replayed(
            actor=actor, video=existing, size=size, client_timestamp=client_timestamp
        ), False
    consent_require_any(patient=patient, scopes=list(ANALYSIS_SCOPES))
    check_client_timestamp(client_timestamp)
    tz_name = resolve_timezone(patient=patient, tz_name=timezone_name)
    if size > settings.VIGIL_VIDEO_MAX_BYTES:
        raise PayloadTooLarge(f"Videos are limited to {settings.VIGIL_VIDEO_MAX_BYTES} bytes.")
    try:
        probe = probe_media(upload_path, max_seconds=settings.VIGIL_VIDEO_MAX_SECONDS)
    except ProbeRejected as exc:
        raise MediaRejected(exc.reason, limit=exc.limit) from None

    video_id = uuid.uuid4()
    name = storage_name_for(patient_id=patient.pk, object_id=video_id)
    encrypted_file_write(source=upload_path, name=name, patient_id=patient.pk, object_id=video_id)
    try:
        with transaction.atomic():
            video = _video_row_create(
                video_id=video_id,
                name=name,
                size=size,
                probe=probe,
                patient=patient,
                idempotency_key=idempotency_key,
                client_timestamp=client_timestamp,
                tz_name=tz_name,
            )
            access_record(
                actor=actor,
                action="video.create",
                patient_id=patient.pk,
                resource_type="VideoSubmission",
                resource_id=video.pk,
            )
            transaction.on_commit(lambda: video_enqueue(video_id=video_id), robust=True)
    except IntegrityError:
        encrypted_file_delete(name=name)
        first = VideoSubmission.objects.filter(
            patient=patient, idempotency_key=idempotency_key
        ).first()
        if first is None:
            raise
        return _replayed(
            actor=actor, video=first, size=size, client_timestamp=client_timestamp
        ), False
    except BaseException:
        encrypted_file_delete(name=name)
        raise
    return video, True


def _replayed(
    *, actor: Actor, video: VideoSubmission, size: int, client_timestamp: dt.datetime
) -> VideoSubmission:
    """A retry with a known idempotency key creates nothing, but is recorded like the diary's and
    questionnaires' replays (``video.create_replayed``). A different recording under the same key
    (another size or time) is a conflict, as for diary entries: answering "replayed" would drop
    the second recording while telling the app it was stored."""
    if video.size_bytes != size or video.client_timestamp != client_timestamp:
        raise IdempotencyConflict()
    access_record(
        actor=actor,
        action="video.create_replayed",
        patient_id=video.patient_id,
        resource_type="VideoSubmission",
        resource_id=video.pk,
    )
    return video


def _video_row_create(
    *,
    video_id: uuid.UUID,
    name: str,
    size: int,
    probe: MediaProbe,
    patient: Patient,
    idempotency_key: uuid.UUID,
    client_timestamp: dt.datetime,
    tz_name: str,
) -> VideoSubmission:
    return VideoSubmission.objects.create(
        id=video_id,
        patient=patient,
        idempotency_key=idempotency_key,
        client_timestamp=client_timestamp,
        timezone=tz_name,
        local_date=local_day(client_timestamp=client_timestamp, tz_name=tz_name),
        storage_name=name,
        size_bytes=size,
        duration_seconds=probe.duration_seconds,
        container=probe.container,
        video_codec=probe.video_codec,
        audio_codec=probe.audio_codec or "",
        width=probe.width,
        height=probe.height,
    )


def _claim(video_id: uuid.UUID) -> VideoSubmission | None:
    """Take the job if it is waiting (or stuck past its limit). None: nothing to do."""
    stuck_before = timezone.now() - dt.timedelta(seconds=settings.VIGIL_MEDIA_JOB_STUCK_SECONDS)
    with transaction.atomic():
        video = VideoSubmission.objects.select_for_update().filter(pk=video_id).first()
        if video is None:
            return None
        claimable = video.status == VideoStatus.QUEUED or (
            video.status == VideoStatus.PROCESSING
            and video.processing_started_at is not None
            and video.processing_started_at < stuck_before
        )
        if not claimable:
            return None
        if video.attempts >= settings.VIGIL_MEDIA_JOB_MAX_ATTEMPTS:
            _fail(
                video,
                "too_many_attempts",
                "We could not process this video. Please record it again.",
            )
            return None
        video.status = VideoStatus.PROCESSING
        video.stage = VideoStage.VERIFYING
        video.percent = 5
        video.attempts += 1
        video.processing_started_at = timezone.now()
        video.save(
            update_fields=[
                "status",
                "stage",
                "percent",
                "attempts",
                "processing_started_at",
                "updated_at",
            ]
        )
        return video


def _fail(video: VideoSubmission, reason: str, message: str, *, attempt: int | None = None) -> None:
    """Record a failure. A row that vanished meanwhile (the patient was erased) is left alone.
    With ``attempt``, only that attempt while it is still processing is failed (the gpu queue's
    voice batch must not fail a newer attempt, a requeued job or a finished one)."""
    video.status = VideoStatus.FAILED
    video.failure_reason = reason
    video.failure_message = message[:200]
    video.finished_at = timezone.now()
    rows = VideoSubmission.objects.filter(pk=video.pk)
    if attempt is not None:
        rows = rows.filter(status=VideoStatus.PROCESSING, attempts=attempt)
    updated = rows.update(
        status=video.status,
        failure_reason=video.failure_reason,
        failure_message=video.failure_message,
        finished_at=video.finished_at,
        updated_at=video.finished_at,
    )
    logger.info("video %s failed: %s%s", video.pk, reason, "" if updated else " (not failed)")
    _voice_job_forget(video)


def _analysis_allowed(patient: Patient) -> bool:
    return any(consent_has(patient=patient, scope=s) for s in ANALYSIS_SCOPES)


ANALYSIS_FAILED_MESSAGE = "We could not analyse this video. Please record it again."
STORED_UNREADABLE_MESSAGE = "We could not read your stored video. Please record it again."


def _progress(video: VideoSubmission, percent: int) -> None:
    VideoSubmission.objects.filter(pk=video.pk, status=VideoStatus.PROCESSING).update(
        stage=VideoStage.ANALYSING, percent=max(10, min(90, percent)), updated_at=timezone.now()
    )


def _analyse(video: VideoSubmission, path: Path) -> MediaOutcome | None:
    """The analysis stage (10 -> 90 %). None: the job failed and says why."""
    patient = video.patient
    voice = consent_has(patient=patient, scope=ConsentScope.VOICE_ANALYSIS)
    face = consent_has(patient=patient, scope=ConsentScope.FACE_ANALYSIS)
    text = consent_has(patient=patient, scope=ConsentScope.TEXT_ANALYSIS)
    _progress(video, 10)
    # A rerun computes the prosody itself: a gpu queue that lost or never served the first
    # attempt's voice costs one stuck interval, not the video.
    defer = media_analysis.prosody_queue() == "gpu" and video.attempts <= 1
    try:
        return media_analysis.media_analyse(
            path=path,
            voice=voice,
            face=face,
            text=text,
            on_progress=lambda fraction: _progress(video, 10 + round(80 * fraction)),
            defer_prosody=defer,
        )
    except media_analysis.MediaAnalysisRejected as exc:
        _fail(video, exc.reason, exc.message)
    except Exception as exc:  # a bad video must never kill the worker: record and move on
        logger.error("video %s analysis failed: %s", video.pk, type(exc).__name__)
        _fail(video, "analysis_failed", ANALYSIS_FAILED_MESSAGE)
    return None


def _record(
    video: VideoSubmission, outcome: MediaOutcome, *, attempt: int | None = None
) -> RecordResult:
    """Store the analysis, send its signals to risk and finish the job, in one transaction.
    ``completed``; ``failed``: the consents read under the lock leave no analysis, or nothing
    consented could read the recording (the job fails with that reason); ``skipped``: the row
    vanished or is no longer ours (erased, or, with ``attempt``, requeued or taken by a newer
    attempt). A voice job the video may still
    have is deleted either way: only a first attempt writes one, and nothing else reads it."""
    try:
        return _record_locked(video, outcome, attempt=attempt)
    finally:
        _voice_job_forget(video)


def _voice_job_forget(video: VideoSubmission) -> None:
    try:
        voice_jobs.voice_job_delete(patient_id=video.patient_id, video_id=video.pk)
    except OSError as exc:  # the media reaper's rerun or failure deletes it again
        logger.warning("video %s voice job not deleted: %s", video.pk, type(exc).__name__)


def _record_locked(
    video: VideoSubmission, outcome: MediaOutcome, *, attempt: int | None
) -> RecordResult:
    with transaction.atomic():
        # The patient's row first, as erasure and consent changes lock it (same order, no
        # deadlock): one that committed while the video was analysed is seen below, one that
        # starts now waits for this transaction and then deletes or stops what it stored.
        Patient.objects.select_for_update().filter(pk=video.patient_id).values_list("pk").first()
        rows = VideoSubmission.objects.select_for_update().select_related("patient")
        rows = rows.filter(pk=video.pk, status=VideoStatus.PROCESSING)
        if attempt is not None:
            rows = rows.filter(attempts=attempt)
        current = rows.first()
        if current is None:
            return "skipped"
        granted = consent_granted_scopes(patient=current.patient)
        if not granted & set(ANALYSIS_SCOPES):
            _fail(current, "consent_withdrawn", CONSENT_WITHDRAWN_MESSAGE, attempt=attempt)
            return "failed"
        outcome = media_analysis.outcome_restrict(
            outcome,
            voice=ConsentScope.VOICE_ANALYSIS in granted,
            face=ConsentScope.FACE_ANALYSIS in granted,
            text=ConsentScope.TEXT_ANALYSIS in granted,
        )
        unreadable = media_analysis.outcome_unreadable_reason(outcome)
        if unreadable is not None:
            from screening.ml.media.pipeline import PATIENT_MESSAGES

            _fail(current, unreadable, PATIENT_MESSAGES[unreadable], attempt=attempt)
            return "failed"
        if not outcome.empty:
            media_analysis_record(
                video=current,
                prosody=outcome.prosody,
                face=outcome.face,
                quality_flags=outcome.quality_flags,
                abstentions=outcome.abstentions,
                distress=outcome.distress,
                distress_confidence=outcome.distress_confidence,
                transcript=outcome.transcript,
                models_info=outcome.models_info,
                timings_ms=outcome.timings_ms,
                model_version=outcome.model_version,
            )
            if outcome.transcript and consent_has(
                patient=current.patient, scope=ConsentScope.TEXT_ANALYSIS
            ):
                video_id = current.pk
                transaction.on_commit(
                    lambda: transcript_analysis_enqueue(video_id=video_id), robust=True
                )
        now = timezone.now()
        VideoSubmission.objects.filter(pk=video.pk).update(
            status=VideoStatus.DONE,
            stage=VideoStage.COMPLETE,
            percent=100,
            finished_at=now,
            updated_at=now,
        )
    return "completed"


def video_process(*, video_id: uuid.UUID) -> None:
    """Run a video's processing stages. Idempotent: finished or running jobs are left alone.

    Stages: consent re-check at processing time, decrypt to a private temporary file, verify
    every chunk's authentication and re-probe the decrypted media, then analyse (prosody and
    transcript under voice consent, face under face consent; stage ``analysing``, 10 -> 90 %),
    and a last consent check before the result is recorded (a withdrawal while the job ran wins).
    The analysis, its risk signals, the day's mood and the job's completion commit together; the
    transcript is then scored on the ``gpu`` queue. A pipeline rejection fails the job with a
    patient-actionable reason; any other analysis error fails it as ``analysis_failed``. The
    decrypted temporary file is removed whatever happens.

    A row that no longer exists (the patient was erased) is nothing to do, whenever it vanishes.
    """
    video = _claim(video_id)
    if video is None:
        return
    patient = video.patient
    if not _analysis_allowed(patient):
        _fail(video, "consent_withdrawn", CONSENT_WITHDRAWN_MESSAGE)
        return
    access_record(
        actor=Actor.system(),
        action="video.decrypt",
        patient_id=patient.pk,
        resource_type="VideoSubmission",
        resource_id=video.pk,
    )
    try:
        with decrypted_tempfile(
            name=video.storage_name, patient_id=patient.pk, object_id=video.pk
        ) as path:
            probe_media(path, max_seconds=settings.VIGIL_VIDEO_MAX_SECONDS)
            if not _analysis_allowed(patient):
                _fail(video, "consent_withdrawn", CONSENT_WITHDRAWN_MESSAGE)
                return
            outcome = _analyse(video, path)
    except (DecryptionFailed, KeyNotFound):
        _fail(video, "storage_unreadable", STORED_UNREADABLE_MESSAGE)
        return
    except ProbeRejected as exc:
        _fail(video, exc.reason, MediaRejected(exc.reason).message)
        return
    if outcome is None:
        return
    if not _analysis_allowed(patient):
        _fail(video, "consent_withdrawn", CONSENT_WITHDRAWN_MESSAGE)
        return
    if outcome.pending_audio is not None:
        _voice_defer(video, outcome)
        return
    _record(video, outcome)


# --- prosody deferred to the gpu queue (VIGIL_PROSODY_QUEUE=gpu; voice_jobs, docs/batching.md) ---
def _voice_defer(video: VideoSubmission, outcome: MediaOutcome) -> None:
    """Store the voice job and send it to the gpu queue; the job stays ``processing`` at 90 %.

    Voice consent withdrawn while the job ran: finish now without the voice. A voice job that
    cannot be stored: compute the prosody here and finish. A broker that is down leaves the job
    to the reaper, whose rerun computes the prosody itself once the job is stuck.
    """
    patient = video.patient
    face = consent_has(patient=patient, scope=ConsentScope.FACE_ANALYSIS)
    text = consent_has(patient=patient, scope=ConsentScope.TEXT_ANALYSIS)
    if not consent_has(patient=patient, scope=ConsentScope.VOICE_ANALYSIS):
        _record(
            video,
            outcome_complete_voice(outcome, voice=False, face=face, text=text, features=None),
        )
        return
    try:
        voice_jobs.voice_job_store(video=video, outcome=outcome)
    except Exception as exc:  # storage full or unwritable: compute the voice here instead
        logger.warning("video %s voice job not stored (%s); prosody in-line", video.pk, type(exc))
        [features], per_clip_ms = _prosody_batch([outcome.pending_audio])
        completed = outcome_complete_voice(
            outcome, voice=True, face=face, text=text, features=features, prosody_ms=per_clip_ms
        )
        _record(video, completed)
        return
    updated = VideoSubmission.objects.filter(pk=video.pk, status=VideoStatus.PROCESSING).update(
        percent=90, updated_at=timezone.now()
    )
    if not updated:  # failed or erased meanwhile: nothing will complete it
        voice_jobs.voice_job_delete(patient_id=video.patient_id, video_id=video.pk)
        return
    try:
        voice_jobs.voice_job_enqueue(video_id=video.pk)
    except Exception:
        logger.warning("could not send video %s to the gpu queue; the reaper retries", video.pk)


def _prosody_batch(clips: list[Any]) -> tuple[list[Any], float]:
    """Prosody of every clip in one call; when the batch fails, clip by clip, so that one clip
    the code cannot handle costs only itself (``None``). Returns the features and the time per
    clip in ms."""
    from screening.ml.media.prosody import SAMPLE_RATE, prosody_batch

    if not clips:
        return [], 0.0
    backend = media_analysis.media_config_from_settings().prosody_backend
    start = time.perf_counter()
    results: list[Any]
    try:
        results = list(prosody_batch(clips, SAMPLE_RATE, backend=backend))
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # isolate the clip at fault
        logger.warning("prosody batch of %d failed (%s); clip by clip", len(clips), type(exc))
        results = []
        for clip in clips:
            try:
                results.append(prosody_batch([clip], SAMPLE_RATE, backend=backend)[0])
            except SoftTimeLimitExceeded:
                raise
            except Exception as clip_exc:
                logger.warning("prosody failed on one clip: %s", type(clip_exc).__name__)
                results.append(None)
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    return results, elapsed_ms / len(clips)


_TakenVoiceJob = tuple[VideoSubmission, voice_jobs.VoiceJob]


def _voice_job_take(video_id: uuid.UUID) -> _TakenVoiceJob | str:
    """The waiting job and its stored voice, or why not: ``skipped`` (nothing to do) or
    ``failed`` (its voice job is unreadable: the job is failed here)."""
    video = (
        VideoSubmission.objects.select_related("patient")
        .filter(pk=video_id, status=VideoStatus.PROCESSING)
        .first()
    )
    if video is None:
        return "skipped"  # done, failed, requeued or erased: not this message's to finish
    if video.attempts != 1:
        return "skipped"  # only a first attempt defers: a rerun computes the voice itself
    if not voice_jobs.voice_job_exists(video=video):
        return "skipped"  # not deferred yet (a duplicate message), or withdrawn
    access_record(
        actor=Actor.system(),
        action="video.voice_decrypt",
        patient_id=video.patient_id,
        resource_type="VideoSubmission",
        resource_id=video.pk,
    )
    try:
        job = voice_jobs.voice_job_load(video=video)
    except voice_jobs.VoiceJobMissing:
        return "skipped"  # removed meanwhile
    except (DecryptionFailed, KeyNotFound, ValueError):
        _fail(video, "storage_unreadable", STORED_UNREADABLE_MESSAGE, attempt=video.attempts)
        return "failed"
    if job.attempt != video.attempts:
        return "skipped"  # an earlier attempt's leftover: the running attempt sends its own
    return video, job


def _voice_job_finish(
    video: VideoSubmission, job: voice_jobs.VoiceJob, *, voice: bool, features: Any, **times: float
) -> str:
    """Complete and record one job with the consents read now; returns the count it goes to.
    ``voice``: whether its prosody was computed (voice consent held when the batch began)."""
    patient = video.patient
    if not _analysis_allowed(patient):
        _fail(video, "consent_withdrawn", CONSENT_WITHDRAWN_MESSAGE, attempt=job.attempt)
        return "failed"
    voice = voice and consent_has(patient=patient, scope=ConsentScope.VOICE_ANALYSIS)
    # a recording nothing consented could read fails in the recorder (outcome_unreadable_reason)
    outcome = outcome_complete_voice(
        job.outcome,
        voice=voice,
        face=consent_has(patient=patient, scope=ConsentScope.FACE_ANALYSIS),
        text=consent_has(patient=patient, scope=ConsentScope.TEXT_ANALYSIS),
        features=features,
        failed=voice and features is None,
        prosody_ms=times["prosody_ms"],
        waited_ms=times["waited_ms"],
    )
    return _record(video, outcome, attempt=job.attempt)


def _voice_consented(video: VideoSubmission) -> bool:
    """Whether to compute this clip's prosody. Read again before the job is recorded; a read that
    fails (a database blip) computes it, and the later read decides."""
    try:
        return consent_has(patient=video.patient, scope=ConsentScope.VOICE_ANALYSIS)
    except Exception as exc:
        logger.warning("video %s voice consent not read: %s", video.pk, type(exc).__name__)
        return True


def video_voice_batch_run(*, video_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Finish a batch of voice jobs: their prosody in one call, then each job on its own.

    For each video still ``processing`` with a voice job of its current attempt: consents are
    read now (a part withdrawn while the job waited is dropped, and no analysis consent at all
    fails the job); the outcome is completed with the clip's prosody
    (:func:`~screening.services.media_analysis.outcome_complete_voice`, equal to the in-line
    path's) and recorded in its own transaction (:func:`_record`: analysis, risk signals, the
    day's mood, the job's completion, the transcript's scoring). The voice job is deleted
    whatever happens. Idempotent: a finished job or a missing voice job is skipped. A database
    error that may pass is retried per job (the text batch's ``DbRetryBudget``); a job that
    still fails is left to the reaper's rerun and does not touch the others.
    """
    counts = {"jobs": 0, "completed": 0, "skipped": 0, "failed": 0}
    budget = DbRetryBudget()
    taken: list[_TakenVoiceJob] = []
    for video_id in dict.fromkeys(video_ids):
        counts["jobs"] += 1
        try:
            got = budget.run(functools.partial(_voice_job_take, video_id))
        except Exception as exc:  # the database is down: this job only, the reaper reruns it
            logger.error("video %s voice job not loaded: %s", video_id, type(exc).__name__)
            counts["failed"] += 1
            continue
        if isinstance(got, str):
            counts[got] += 1
        else:
            taken.append(got)
    started = time.time()
    voice_ok = {video.pk: _voice_consented(video) for video, _ in taken}
    consented = [(video, job) for video, job in taken if voice_ok[video.pk]]
    features, per_clip_ms = _prosody_batch([job.samples for _, job in consented])
    by_video = {video.pk: f for (video, _), f in zip(consented, features, strict=True)}
    for video, job in taken:
        finish = functools.partial(
            _voice_job_finish,
            video,
            job,
            voice=voice_ok[video.pk],
            features=by_video.get(video.pk),
            prosody_ms=per_clip_ms,
            waited_ms=max(0.0, (started - job.deferred_at) * 1000.0),
        )
        try:
            counts[budget.run(finish)] += 1
        except SoftTimeLimitExceeded:
            raise  # the batch is out of time: its messages are rejected, the reaper reruns
        except Exception as exc:  # this job only: the reaper runs it again once it is stuck
            logger.error("video %s voice completion failed: %s", video.pk, type(exc).__name__)
            counts["failed"] += 1
        finally:
            _voice_job_forget(video)
    logger.info("voice batch: %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


#: How long past the media job's hard time limit a decrypted file may live whatever its lock says.
DECRYPTED_FILE_MARGIN_SECONDS = 5 * 60
_DEFAULT_MEDIA_TIME_LIMIT_SECONDS = 15 * 60


def decrypted_files_max_age_seconds() -> float:
    """The media job's hard time limit plus a margin: no live job holds a decrypted file longer."""
    from screening.tasks import video_process as task

    limit = getattr(task, "time_limit", None) or _DEFAULT_MEDIA_TIME_LIMIT_SECONDS
    return float(limit) + DECRYPTED_FILE_MARGIN_SECONDS


def decrypted_files_sweep() -> int:
    """Remove decrypted video files that killed workers left in the work directory.

    Called by the reaper on every tick and once when a worker starts. Never raises: a failure is
    logged (exception class only) and the next tick tries again. Returns how many were removed.
    """
    try:
        removed = decrypted_tempfiles_sweep(older_than_seconds=decrypted_files_max_age_seconds())
    except OSError as exc:
        logger.warning("could not sweep the work directory: %s", type(exc).__name__)
        return 0
    if removed:
        logger.warning("removed %d decrypted file(s) left by killed workers", removed)
    return removed


def _stuck_job_requeue(*, video_id: uuid.UUID, stuck_before: dt.datetime) -> bool:
    """Put a job stuck in ``processing`` back to ``queued`` (attempts kept) before it is re-sent,
    so the next ticks wait a whole stuck interval for it instead of re-sending it every tick.
    False: it was claimed or finished meanwhile (nothing to re-send)."""
    now = timezone.now()
    updated = VideoSubmission.objects.filter(
        pk=video_id, status=VideoStatus.PROCESSING, processing_started_at__lt=stuck_before
    ).update(
        status=VideoStatus.QUEUED,
        stage=VideoStage.RECEIVED,
        percent=0,
        enqueued_at=now,
        updated_at=now,
    )
    return bool(updated)


def media_jobs_reap() -> dict[str, int]:
    """Find jobs that were never sent (broker down at upload) or got stuck, and send them again.

    A job stuck in ``processing`` (its worker died) is put back to ``queued`` with
    ``enqueued_at = now`` and re-sent once; it is sent again only if it stays queued for another
    stuck interval. Jobs past their attempt limit fail with a reason. Safe to run on any number
    of beat ticks: the processing claim makes a duplicate delivery a no-op. Each tick also removes
    decrypted files that killed workers left behind (:func:`decrypted_files_sweep`).
    """
    decrypted_files_sweep()
    now = timezone.now()
    stuck_before = now - dt.timedelta(seconds=settings.VIGIL_MEDIA_JOB_STUCK_SECONDS)
    unsent_before = now - dt.timedelta(minutes=1)
    candidates = VideoSubmission.objects.filter(
        Q(status=VideoStatus.QUEUED, enqueued_at__isnull=True, created_at__lt=unsent_before)
        | Q(status=VideoStatus.QUEUED, enqueued_at__lt=stuck_before)
        | Q(status=VideoStatus.PROCESSING, processing_started_at__lt=stuck_before)
    ).values_list("pk", "status", "attempts")[:500]
    counts = {"requeued": 0, "failed": 0}
    for pk, status, attempts in candidates:
        if attempts >= settings.VIGIL_MEDIA_JOB_MAX_ATTEMPTS:
            with transaction.atomic():
                video = VideoSubmission.objects.select_for_update().filter(pk=pk).first()
                if video is not None and video.status in (
                    VideoStatus.QUEUED,
                    VideoStatus.PROCESSING,
                ):
                    _fail(
                        video,
                        "timed_out",
                        "Processing took too long. Please record the video again.",
                    )
                    counts["failed"] += 1
            continue
        if status == VideoStatus.PROCESSING and not _stuck_job_requeue(
            video_id=pk, stuck_before=stuck_before
        ):
            continue
        try:
            video_enqueue(video_id=pk)
            counts["requeued"] += 1
        except Exception:  # broker still down: the next tick tries again
            logger.warning("could not requeue video %s", pk)
            if status == VideoStatus.PROCESSING:  # requeued above: mark it unsent again
                VideoSubmission.objects.filter(pk=pk, status=VideoStatus.QUEUED).update(
                    enqueued_at=None
                )
    return counts


# --- consent effects (registered in privacy.consent) ---------------------------------------------
@work_canceller_register("queued video jobs")
def videos_cancel_without_consent(*, patient: Patient, remaining: frozenset[str]) -> int:
    """When no analysis scope is left, fail the patient's queued videos (``consent_withdrawn``).

    Jobs a worker already runs are stopped by ``video_process``'s own consent checks.
    """
    if remaining & set(ANALYSIS_SCOPES):
        return 0
    with transaction.atomic():
        queued = list(
            VideoSubmission.objects.select_for_update().filter(
                patient=patient, status=VideoStatus.QUEUED
            )
        )
        for video in queued:
            _fail(video, "consent_withdrawn", CONSENT_WITHDRAWN_MESSAGE)
    return len(queued)


@derived_deleter_register(
    ConsentScope.VOICE_ANALYSIS,
    ConsentScope.FACE_ANALYSIS,
    ConsentScope.TEXT_ANALYSIS,
    name="video files",
)
def video_files_delete_without_consent(*, patient: Patient, remaining: frozenset[str]) -> int:
    """Delete the stored video files once no remaining scope needs them.

    Voice and face analysis read the video, and text analysis its transcript: while any of them is
    still granted the files stay. Registered for all three, so whichever of them is withdrawn
    last (with ``delete_derived``) deletes the files: withdrawing voice and face first, while text
    still needs the files, must not leave them behind for ever. The encrypted files are deleted
    after the withdrawal commits (a rolled-back withdrawal deletes nothing); the rows stay as
    metadata. Returns how many files are deleted.
    """
    if remaining & set(ANALYSIS_SCOPES):
        return 0
    names = [
        name
        for name in VideoSubmission.objects.filter(patient=patient).values_list(
            "storage_name", flat=True
        )
        if encrypted_file_exists(name=name)
    ]

    def delete_files() -> None:
        for name in names:
            encrypted_file_delete(name=name)

    transaction.on_commit(delete_files)
    return len(names)


@work_canceller_register("pending voice jobs")
def voice_jobs_cancel_without_consent(*, patient: Patient, remaining: frozenset[str]) -> int:
    """Without voice consent, delete the patient's voice jobs (decoded speech waiting for the gpu
    queue) after the withdrawal commits, and send their videos back to the media queue: the rerun
    reads what the remaining consents allow (no voice; with no scope left it fails the job as
    ``consent_withdrawn``). Returns how many voice jobs are deleted."""
    if ConsentScope.VOICE_ANALYSIS in remaining:
        return 0
    waiting = [
        video_id
        for video_id in VideoSubmission.objects.filter(patient=patient).values_list("pk", flat=True)
        if encrypted_file_exists(
            name=voice_jobs.voice_job_name(patient_id=patient.pk, video_id=video_id)
        )
    ]
    if not waiting:
        return 0
    now = timezone.now()
    requeue = list(
        VideoSubmission.objects.filter(pk__in=waiting, status=VideoStatus.PROCESSING).values_list(
            "pk", flat=True
        )
    )
    VideoSubmission.objects.filter(pk__in=requeue, status=VideoStatus.PROCESSING).update(
        status=VideoStatus.QUEUED,
        stage=VideoStage.RECEIVED,
        percent=0,
        enqueued_at=now,
        updated_at=now,
    )

    def after_commit() -> None:
        for video_id in waiting:
            voice_jobs.voice_job_delete(patient_id=patient.pk, video_id=video_id)
        for video_id in requeue:
            try:
                video_enqueue(video_id=video_id)
            except Exception:  # the reaper re-sends a job that stays queued
                logger.warning("could not requeue video %s", video_id)

    transaction.on_commit(after_commit, robust=True)
    return len(waiting)
