"""Celery application: four queues, reliability settings declared once.

- ``alerts``: what a patient's safety waits on, and nothing else: the escalation sweep, the
  outbox relay (notifications) and the help-requests sweep. Short tasks on their own worker, so
  a backlog of media, scoring or hour-long sweeps on the other queues never delays an
  escalation (a sweep message expires unrun when every slot is busy for longer than it waits).
- ``default``: light bookkeeping (token purge, reapers, upload temp-file sweep, adherence).
- ``media``: CPU-heavy media work (decode, prosody, face, transcript). Prefetch 1.
- ``gpu``: batched model inference; served by CPU workers when no GPU exists. Its worker
  gathers text-scoring jobs into batches (``screening/batching.py``, ``docs/batching.md``):
  ``VIGIL_GPU_BATCH_SIZE`` jobs or ``VIGIL_GPU_BATCH_WAIT_SECONDS``, whichever comes first. It
  must run with ``--prefetch-multiplier`` >= the batch size (``-Q gpu --concurrency 1
  --prefetch-multiplier 32``), or it only ever holds one message and every batch has one job.

Reliability (why each setting; proved by ``tests/reliability/``, see ``docs/reliability.md``):
- ``task_acks_late`` + ``task_reject_on_worker_lost``: a job whose worker dies is redelivered, not
  lost. Tasks are idempotent (they claim the row and skip finished work), so redelivery is safe.
- Redelivery is bounded by the database, not the broker: each claim of a video counts an attempt
  (``VIGIL_MEDIA_JOB_MAX_ATTEMPTS``); past the limit the job is failed with the reason
  ``too_many_attempts`` (or ``timed_out`` by the reaper). That failed row, with its reason, is the
  dead-letter record the patient and the clinic see; a poison video cannot loop forever.
- ``worker_prefetch_multiplier = 1``: a worker holds one job at a time, so a slow video does not
  hold others hostage and a crash redelivers at most one job. The gpu worker overrides it on its
  command line (batches); its batch messages are acknowledged when the batch returns and rejected
  without requeue when it fails or its process is lost (the scoring reaper re-sends the work).
- ``worker_cancel_long_running_tasks_on_connection_loss``: a worker that loses the broker can no
  longer acknowledge what it runs, and the broker will hand those jobs out again; stop them rather
  than run two copies.
- ``visibility_timeout`` (Redis) is set in settings longer than the longest hard time limit.
- ``task_time_limit`` is a default hard limit (15 min); there is deliberately no global soft limit:
  Celery refuses to publish a task whose soft limit exceeds its hard limit, so a global soft
  limit of 14 min made every task declared with a shorter hard limit (the stuck-job reaper, the
  token purge) unpublishable, and beat silently never ran them. Tasks declare their own soft limit.
- ``broker_connection_timeout`` / ``task_publish_retry_policy``: publishing happens on request paths
  (an upload enqueues after commit). With the broker down or unreachable a publish gives up within
  a few seconds instead of holding the request; the row is already committed and the reaper sends
  it when the broker is back.
- Results are not stored: tasks write their outcome to the database, where the API reads it.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("vigil")
app.config_from_object("django.conf:settings", namespace="CELERY")

app.conf.update(
    task_queues=(Queue("default"), Queue("media"), Queue("gpu"), Queue("alerts")),
    task_default_queue="default",
    task_routes={
        "risk.tasks.escalation_sweep": {"queue": "alerts"},
        "risk.tasks.outbox_relay": {"queue": "alerts"},
        "screening.tasks.help_requests_sweep": {"queue": "alerts"},
        "screening.tasks.video_process": {"queue": "media"},
        "screening.tasks.text_scoring_batch": {"queue": "gpu"},
        "screening.tasks.media_prosody_batch": {"queue": "gpu"},
        "screening.tasks.text_analysis_run": {"queue": "gpu"},
        "screening.tasks.transcript_analysis_run": {"queue": "gpu"},
    },
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_track_started=False,
    task_serializer="json",
    accept_content=["json"],
    task_time_limit=15 * 60,
    worker_cancel_long_running_tasks_on_connection_loss=True,
    broker_connection_timeout=2.0,
    task_publish_retry_policy={
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.25,
        "interval_max": 0.5,
    },
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    beat_schedule={
        "reap-stuck-media-jobs": {
            "task": "screening.tasks.media_jobs_reap",
            "schedule": 60.0,
        },
        # Plaintext upload temporary files a killed web process left (older than
        # VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS) are removed; also at worker start (screening.worker).
        "sweep-upload-tempfiles": {
            "task": "screening.tasks.upload_tempfiles_sweep",
            "schedule": 10 * 60.0,
            "options": {"expires": 5 * 60},
        },
        # Scoring work (text, transcript, daily mood) a broker outage lost is sent again.
        "reap-lost-scoring-jobs": {
            "task": "screening.tasks.scoring_jobs_reap",
            "schedule": 60.0,
            "options": {"expires": 55},
        },
        # FHIR bulk-export jobs past their TTL are crypto-shredded (key, files, row).
        "fhir-exports-expire": {
            "task": "clinician_portal.fhir.tasks.fhir_exports_expire",
            "schedule": 60.0 * 60,
            "options": {"expires": 30 * 60},
        },
        "purge-expired-tokens": {
            "task": "privacy.tasks.tokens_purge_expired",
            "schedule": 60.0 * 60,
        },
        "anchor-audit-chain": {
            "task": "privacy.tasks.audit_anchor_record",
            "schedule": 5 * 60.0,
        },
        # Alerts past their acknowledgement deadline escalate one level per sweep (idempotent).
        "risk-escalation-sweep": {
            "task": "risk.tasks.escalation_sweep",
            "schedule": 30.0,
            "options": {"expires": 25},
        },
        # Notifications in the outbox go out at least once, with backoff, keyed per recipient.
        "risk-outbox-relay": {
            "task": "risk.tasks.outbox_relay",
            "schedule": 10.0,
            "options": {"expires": 10},
        },
        # A help press whose risk intake failed (stored without its red alert) gets it here:
        # presses of the last 24 h with no alert evidence; idempotent.
        "help-requests-sweep": {
            "task": "screening.tasks.help_requests_sweep",
            "schedule": 60.0,
            "options": {"expires": 55},
        },
        "risk-adherence-sweep": {
            "task": "risk.tasks.adherence_sweep",
            "schedule": 60.0 * 60,
            "options": {"expires": 30 * 60},
        },
    },
)
app.autodiscover_tasks(["screening", "privacy", "risk", "clinician_portal.fhir"])
