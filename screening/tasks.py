"""Celery tasks: thin. They take ids, call one service, and declare retries and limits here."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Sequence

from celery import shared_task
from django.db import InterfaceError, OperationalError

from screening.batching import BatchRequest, GpuBatches, batches_isolating_lost
from screening.models import TextSource
from screening.services import help as help_presses
from screening.services import scoring, uploads, videos
from screening.services.voice_jobs import VOICE_JOB_SOURCE

logger = logging.getLogger("vigil.tasks")

# A database blip retries with backoff; anything else is the service's to record as a failure.
_DB_RETRY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 120,
    "max_retries": 5,
}


@shared_task(
    name="screening.tasks.video_process",
    acks_late=True,
    time_limit=15 * 60,
    soft_time_limit=14 * 60,
    **_DB_RETRY,
)
def video_process(video_id: str) -> None:
    videos.video_process(video_id=uuid.UUID(video_id))


@shared_task(name="screening.tasks.media_jobs_reap", time_limit=120, **_DB_RETRY)
def media_jobs_reap() -> dict[str, int]:
    return videos.media_jobs_reap()


# Beat, every 10 minutes (default queue), and once when a worker starts (screening.worker):
# plaintext upload files a killed web process left. No database, so no retry: the next tick is
# the retry. Idempotent (a second run finds nothing older than the bound).
@shared_task(name="screening.tasks.upload_tempfiles_sweep", time_limit=60, soft_time_limit=50)
def upload_tempfiles_sweep() -> dict[str, int]:
    return uploads.upload_tempfiles_sweep()


# --- scoring (gpu queue: served by CPU workers where there is no GPU) ----------------------------
# Idempotent: a re-run replaces the stored analysis and the risk engine counts each signal once,
# so a redelivered message (acks_late) is harmless.
def _batch_jobs(
    requests: Sequence[BatchRequest], *, sources: Sequence[str], task: str
) -> list[tuple[str, uuid.UUID]]:
    """A batch's ``(source, id)`` jobs from messages ``[source, id]``; a malformed message is
    logged (task id only) and dropped."""
    jobs: list[tuple[str, uuid.UUID]] = []
    for request in requests:
        try:
            source, ref = request.args
            if source not in sources:
                raise ValueError("unknown source")
            jobs.append((str(source), uuid.UUID(str(ref))))
        except (TypeError, ValueError):
            logger.warning("%s: malformed message %s dropped", task, request.id)
    return jobs


# The enqueue functions publish this one: messages ["diary" | "transcript", id], gathered by the
# gpu worker into batches (screening/batching.py, docs/batching.md). No autoretry: a batch that
# fails is rejected and the scoring reaper re-sends what is still missing.
@shared_task(
    base=GpuBatches,
    name="screening.tasks.text_scoring_batch",
    acks_late=True,
    time_limit=10 * 60,
    soft_time_limit=9 * 60,
)
def text_scoring_batch(requests: list[BatchRequest]) -> dict[str, int]:
    # jobs of an earlier lost batch run alone, after the others (batching.batches_isolating_lost)
    counts: Counter[str] = Counter()
    for group in batches_isolating_lost(requests):
        jobs = _batch_jobs(group, sources=TextSource.values, task="text_scoring_batch")
        counts.update(scoring.text_analyses_run_batch(jobs=jobs))
    return dict(counts)


# Voice prosody deferred by the media worker (VIGIL_PROSODY_QUEUE=gpu): one prosody call per
# batch. No autoretry: a batch that fails is rejected, and the media reaper runs a job that stays
# unfinished again once it is stuck.
@shared_task(
    base=GpuBatches,
    name="screening.tasks.media_prosody_batch",
    acks_late=True,
    time_limit=10 * 60,
    soft_time_limit=9 * 60,
)
def media_prosody_batch(requests: list[BatchRequest]) -> dict[str, int]:
    jobs = _batch_jobs(requests, sources=[VOICE_JOB_SOURCE], task="media_prosody_batch")
    return videos.video_voice_batch_run(video_ids=[ref for _, ref in jobs])


# The single-job tasks stay registered: messages already queued when a worker is upgraded still
# run. Nothing publishes them any more.
@shared_task(
    name="screening.tasks.text_analysis_run",
    acks_late=True,
    time_limit=5 * 60,
    soft_time_limit=4 * 60,
    **_DB_RETRY,
)
def text_analysis_run(entry_id: str) -> None:
    scoring.text_analysis_run(entry_id=uuid.UUID(entry_id))


@shared_task(
    name="screening.tasks.transcript_analysis_run",
    acks_late=True,
    time_limit=5 * 60,
    soft_time_limit=4 * 60,
    **_DB_RETRY,
)
def transcript_analysis_run(video_id: str) -> None:
    scoring.transcript_analysis_run(video_id=uuid.UUID(video_id))


@shared_task(
    name="screening.tasks.daily_mood_recompute",
    acks_late=True,
    time_limit=120,
    soft_time_limit=100,
    **_DB_RETRY,
)
def daily_mood_recompute(patient_id: str, local_date: str) -> None:
    scoring.daily_mood_run(
        patient_id=uuid.UUID(patient_id), local_date=dt.date.fromisoformat(local_date)
    )


@shared_task(
    name="screening.tasks.scoring_jobs_reap", time_limit=120, soft_time_limit=100, **_DB_RETRY
)
def scoring_jobs_reap() -> dict[str, int]:
    """Beat, every minute (default queue): re-send scoring work a broker outage lost."""
    return scoring.scoring_jobs_reap()


@shared_task(
    name="screening.tasks.help_requests_sweep", time_limit=120, soft_time_limit=100, **_DB_RETRY
)
def help_requests_sweep() -> dict[str, int]:
    """Beat, every minute (default queue): a help press whose risk intake failed gets its red
    alert (recent presses without alert evidence; idempotent)."""
    return help_presses.help_requests_sweep()


# Connects the worker_process_init handler that warms the models in each worker process (in a
# background thread; VIGIL_WORKER_WARMUP turns it off). Imported here so that every worker that
# registers these tasks gets it.
from screening import worker as _worker  # noqa: E402, F401
