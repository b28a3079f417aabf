"""Voice jobs: a video's prosody deferred to the gpu queue (``VIGIL_PROSODY_QUEUE=gpu``).

With the setting on, the media worker's ``video_process`` decodes the video, runs the face and the
transcript, and hands the voice to the gpu queue instead of computing prosody itself. The gpu
queue's worker gathers such jobs into batches and computes the prosody of a whole batch in one
call (``videos.video_voice_batch_run``); see ``docs/batching.md``.

Between the two stages the job lives in one stored file, the *voice job*: the decoded 16 kHz mono
audio and the rest of the outcome (face features, transcript, timings), serialised without
pickle (:mod:`screening.ml.media.voice_payload`) and encrypted like an upload (chunked AES-GCM
under the patient's data key). It sits in the patient's storage folder under an object id derived
from the video's id, which its chunks' associated data is bound to, so

- key rotation re-encrypts it and erasure deletes it with the patient's other files;
- a withdrawal of voice consent deletes it and sends the video back to the media queue
  (``videos.voice_jobs_cancel_without_consent``);
- every end of the job deletes it: completion (``videos._record``, whichever attempt records)
  and failure (``videos._fail``). Only a job's first attempt writes one: the reaper's rerun
  computes the voice itself.

The message carries ids only: ``["video", "<video id>"]``.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from django.conf import settings

from privacy.storage import (
    encrypted_bytes_read,
    encrypted_bytes_write,
    encrypted_file_delete,
    encrypted_file_exists,
    storage_name_for,
)
from screening.ml.media.voice_payload import (
    MAX_HEADER_BYTES,
    voice_payload_pack,
    voice_payload_unpack,
)
from screening.models import VideoSubmission
from screening.services.media_analysis import MediaOutcome

logger = logging.getLogger("vigil.media")

#: Namespace of the voice jobs' object ids (uuid5 of the video id): fixed forever, since stored
#: files' associated data is bound to the ids derived from it.
VOICE_JOB_NAMESPACE = uuid.UUID("6f0d7c52-3b8e-4a5e-9d4c-1f7a2b9e0c31")
#: The message source of a voice job (``["video", id]``).
VOICE_JOB_SOURCE = "video"


class VoiceJobMissing(Exception):
    """No voice job is stored for the video (never deferred, finished, or withdrawn)."""


@dataclass(frozen=True, kw_only=True)
class VoiceJob:
    outcome: MediaOutcome
    samples: npt.NDArray[np.float32]
    sample_rate: int
    attempt: int
    deferred_at: float


def voice_job_object_id(*, video_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(VOICE_JOB_NAMESPACE, f"{video_id}:audio-16k")


def voice_job_name(*, patient_id: uuid.UUID, video_id: uuid.UUID) -> str:
    return storage_name_for(patient_id=patient_id, object_id=voice_job_object_id(video_id=video_id))


def _max_plaintext_bytes() -> int:
    seconds = float(getattr(settings, "VIGIL_VIDEO_MAX_SECONDS", 300))
    return int(seconds * 16_000 * 4 * 1.05) + MAX_HEADER_BYTES + 64


def voice_job_store(*, video: VideoSubmission, outcome: MediaOutcome) -> None:
    """Write the video's voice job (encrypted; replaces an earlier attempt's)."""
    if outcome.pending_audio is None:
        raise ValueError("the outcome has no pending audio")
    data = voice_payload_pack(
        samples=np.asarray(outcome.pending_audio, dtype=np.float32),
        sample_rate=16_000,
        meta={
            "outcome": outcome.plain(),
            "attempt": int(video.attempts),
            "deferred_at": time.time(),
        },
    )
    encrypted_bytes_write(
        data=data,
        name=voice_job_name(patient_id=video.patient_id, video_id=video.pk),
        patient_id=video.patient_id,
        object_id=voice_job_object_id(video_id=video.pk),
    )


def voice_job_exists(*, video: VideoSubmission) -> bool:
    return encrypted_file_exists(
        name=voice_job_name(patient_id=video.patient_id, video_id=video.pk)
    )


def voice_job_load(*, video: VideoSubmission) -> VoiceJob:
    """Decrypt and parse the video's voice job, in memory.

    Raises :class:`VoiceJobMissing`, ``DecryptionFailed`` / ``KeyNotFound`` (unreadable) or
    :class:`ValueError` (decrypted but malformed).
    """
    name = voice_job_name(patient_id=video.patient_id, video_id=video.pk)
    if not encrypted_file_exists(name=name):
        raise VoiceJobMissing(str(video.pk))
    data = encrypted_bytes_read(
        name=name,
        patient_id=video.patient_id,
        object_id=voice_job_object_id(video_id=video.pk),
        max_bytes=_max_plaintext_bytes(),
    )
    payload = voice_payload_unpack(data)
    if payload.sample_rate != 16_000:
        raise ValueError("voice job: unexpected sample rate")
    meta = payload.meta
    values = meta.get("outcome")
    attempt = meta.get("attempt")
    if not isinstance(values, dict) or not isinstance(attempt, int):
        raise ValueError("voice job: bad header")
    try:
        outcome = MediaOutcome.from_plain(values)
    except TypeError:
        raise ValueError("voice job: bad outcome") from None
    return VoiceJob(
        outcome=outcome,
        samples=payload.samples,
        sample_rate=payload.sample_rate,
        attempt=attempt,
        deferred_at=float(meta.get("deferred_at") or 0.0),
    )


def voice_job_delete(*, patient_id: uuid.UUID, video_id: uuid.UUID) -> None:
    encrypted_file_delete(name=voice_job_name(patient_id=patient_id, video_id=video_id))


def voice_job_enqueue(*, video_id: uuid.UUID) -> None:
    from screening.tasks import media_prosody_batch as task

    task.apply_async(args=[VOICE_JOB_SOURCE, str(video_id)], queue="gpu")
