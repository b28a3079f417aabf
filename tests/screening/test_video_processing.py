"""screening.services.videos.video_process and media_jobs_reap, called directly (no broker).

The worker-facing code records every outcome on the row and never raises for a bad video; the
decrypted temporary file is gone whatever happened.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone

from privacy import datakeys
from privacy.audit import Actor
from privacy.choices import ConsentScope
from privacy.consent import consent_change
from privacy.models import AccessEvent, PatientKey
from privacy.storage import encrypted_file_write
from screening import tasks
from screening.models import VideoSubmission
from screening.services import videos as video_services
from screening.services.videos import media_jobs_reap, video_process
from tests.media import MediaSet, shared_media


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaSet:
    return shared_media(tmp_path_factory)


@pytest.fixture(autouse=True)
def folders(settings: Any, tmp_path: Path) -> Any:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    return settings


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What would have been published to the broker (nothing really is)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.video_process, "apply_async", lambda **kw: calls.append(kw))
    return calls


@pytest.fixture
def probe_spy(monkeypatch: pytest.MonkeyPatch, settings: Any) -> list[Path]:
    """Records the decrypted file the worker probes, checking it exists while in use."""
    real = video_services.probe_media
    seen: list[Path] = []

    def spy(path: Path, **kwargs: Any) -> Any:
        assert path.exists()
        assert path.parent == Path(settings.VIGIL_WORK_DIR)
        seen.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(video_services, "probe_media", spy)
    return seen


def make_video(world: Any, source: Path, patient: Any = None) -> VideoSubmission:
    patient = patient or world.patient_a
    video, created = video_services.video_submission_create(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        idempotency_key=uuid.uuid4(),
        upload_path=source,
        client_timestamp=timezone.now(),
    )
    assert created
    return video


@pytest.fixture
def video(world: Any, media: MediaSet) -> VideoSubmission:
    return make_video(world, media.good_mp4)


def work_files(settings: Any) -> list[Path]:
    work = Path(settings.VIGIL_WORK_DIR)
    return sorted(work.iterdir()) if work.exists() else []


def stored_file(settings: Any, video: VideoSubmission) -> Path:
    return Path(settings.VIGIL_MEDIA_ROOT) / video.storage_name


def withdraw(patient: Any, *scopes: str) -> None:
    for scope in scopes:
        consent_change(
            actor=Actor(user_id=patient.user_id, role="patient"),
            patient=patient,
            scope=scope,
            granted=False,
        )


ALL_ANALYSIS = (ConsentScope.VOICE_ANALYSIS, ConsentScope.FACE_ANALYSIS, ConsentScope.TEXT_ANALYSIS)


# --- success and idempotency ---------------------------------------------------------------------
def test_queued_video_is_processed(
    video: VideoSubmission, settings: Any, probe_spy: list[Path]
) -> None:
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.stage, video.percent) == ("done", "complete", 100)
    assert video.attempts == 1
    assert video.failure_reason == ""
    assert video.processing_started_at is not None and video.finished_at is not None
    assert len(probe_spy) == 1  # it really decrypted to the work folder ...
    assert not probe_spy[0].exists()  # ... and removed the plaintext afterwards
    assert work_files(settings) == []
    assert stored_file(settings, video).exists()  # the encrypted original is kept
    decrypt = AccessEvent.objects.get(action="video.decrypt", resource_id=str(video.pk))
    assert decrypt.actor_id is None and decrypt.actor_role == "system"


def test_processing_twice_is_harmless(
    video: VideoSubmission, settings: Any, probe_spy: list[Path]
) -> None:
    video_process(video_id=video.pk)
    first = VideoSubmission.objects.get(pk=video.pk)
    video_process(video_id=video.pk)  # e.g. a redelivered message
    again = VideoSubmission.objects.get(pk=video.pk)
    assert (again.status, again.attempts) == ("done", 1)
    assert again.finished_at == first.finished_at
    assert len(probe_spy) == 1  # the second run did not decrypt again
    assert AccessEvent.objects.filter(action="video.decrypt").count() == 1
    assert work_files(settings) == []


def test_task_wrapper_runs_the_service(video: VideoSubmission, settings: Any) -> None:
    result = tasks.video_process.apply(args=[str(video.pk)])  # in-process, no broker
    assert result.successful(), result.traceback
    video.refresh_from_db()
    assert video.status == "done"
    assert work_files(settings) == []


def test_unknown_video_id_is_a_no_op(db: Any) -> None:
    video_process(video_id=uuid.uuid4())  # must not raise (a message for a deleted row)


def test_running_job_is_left_alone(video: VideoSubmission, probe_spy: list[Path]) -> None:
    VideoSubmission.objects.filter(pk=video.pk).update(
        status="processing", attempts=1, processing_started_at=timezone.now()
    )
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.attempts) == ("processing", 1)
    assert probe_spy == []


def test_stuck_job_is_taken_over(video: VideoSubmission, settings: Any) -> None:
    long_ago = timezone.now() - dt.timedelta(seconds=settings.VIGIL_MEDIA_JOB_STUCK_SECONDS + 60)
    VideoSubmission.objects.filter(pk=video.pk).update(
        status="processing", attempts=1, processing_started_at=long_ago
    )
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.attempts) == ("done", 2)


def test_job_out_of_attempts_fails(video: VideoSubmission, settings: Any) -> None:
    VideoSubmission.objects.filter(pk=video.pk).update(
        attempts=settings.VIGIL_MEDIA_JOB_MAX_ATTEMPTS
    )
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.failure_reason) == ("failed", "too_many_attempts")
    assert work_files(settings) == []


# --- failures are recorded, not raised -----------------------------------------------------------
def test_corrupted_stored_file_fails_cleanly(video: VideoSubmission, settings: Any) -> None:
    path = stored_file(settings, video)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the ciphertext
    path.write_bytes(bytes(data))

    tasks.video_process(str(video.pk))  # the task body, as the worker runs it: must not raise
    video.refresh_from_db()
    assert (video.status, video.failure_reason) == ("failed", "storage_unreadable")
    assert video.failure_message
    assert video.finished_at is not None
    assert work_files(settings) == []  # the partial plaintext is gone too


def test_missing_stored_file_fails_cleanly(video: VideoSubmission, settings: Any) -> None:
    stored_file(settings, video).unlink()
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.failure_reason) == ("failed", "storage_unreadable")
    assert work_files(settings) == []


def test_erased_patient_key_fails_cleanly(
    video: VideoSubmission, world: Any, settings: Any
) -> None:
    PatientKey.objects.filter(patient_id=world.patient_a.pk).update(
        destroyed_at=timezone.now(), wrapped_key=None
    )
    datakeys.cache_clear()
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.failure_reason) == ("failed", "storage_unreadable")
    assert work_files(settings) == []


def test_consent_withdrawn_after_upload(
    video: VideoSubmission, world: Any, settings: Any, probe_spy: list[Path]
) -> None:
    withdraw(world.patient_a, *ALL_ANALYSIS)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.failure_reason) == ("failed", "consent_withdrawn")
    assert probe_spy == []  # never decrypted
    assert not AccessEvent.objects.filter(action="video.decrypt").exists()
    assert work_files(settings) == []


def test_partial_withdrawal_still_processes(
    video: VideoSubmission, world: Any, settings: Any
) -> None:
    withdraw(world.patient_a, ConsentScope.FACE_ANALYSIS, ConsentScope.TEXT_ANALYSIS)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert video.status == "done"


def test_stored_file_that_is_not_a_video_fails_with_the_probe_reason(
    video: VideoSubmission, world: Any, media: MediaSet, settings: Any, probe_spy: list[Path]
) -> None:
    # Replace the stored (valid) encryption with a valid encryption of a text file.
    encrypted_file_write(
        source=media.text_mp4,
        name=video.storage_name,
        patient_id=world.patient_a.pk,
        object_id=video.pk,
    )
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.failure_reason) == ("failed", "not_a_video")
    assert len(probe_spy) == 1 and not probe_spy[0].exists()
    assert work_files(settings) == []


def test_stored_video_over_a_lowered_time_limit_fails(
    world: Any, media: MediaSet, settings: Any
) -> None:
    video = make_video(world, media.long_mp4)
    settings.VIGIL_VIDEO_MAX_SECONDS = 1
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.failure_reason) == ("failed", "too_long")
    assert work_files(settings) == []


def test_unexpected_error_still_removes_the_plaintext(
    video: VideoSubmission, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(path: Path, **kwargs: Any) -> None:
        assert path.exists()
        raise MemoryError("decoder ran out of memory")

    monkeypatch.setattr(video_services, "probe_media", boom)
    with pytest.raises(MemoryError):
        video_process(video_id=video.pk)
    assert work_files(settings) == []


# --- the reaper ----------------------------------------------------------------------------------
def _age(video: VideoSubmission, **fields: Any) -> None:
    VideoSubmission.objects.filter(pk=video.pk).update(**fields)


def test_reaper_resends_a_job_that_was_never_sent(
    video: VideoSubmission, sent: list[dict[str, Any]]
) -> None:
    assert video.enqueued_at is None
    assert media_jobs_reap() == {"requeued": 0, "failed": 0}  # too fresh: commit may be running
    _age(video, created_at=timezone.now() - dt.timedelta(minutes=2))
    assert media_jobs_reap() == {"requeued": 1, "failed": 0}
    assert sent == [{"args": [str(video.pk)], "queue": "media"}]
    video.refresh_from_db()
    assert video.enqueued_at is not None
    assert video.status == "queued"
    assert media_jobs_reap() == {"requeued": 0, "failed": 0}  # sent now: not again


def test_reaper_with_freezegun(video: VideoSubmission, sent: list[dict[str, Any]]) -> None:
    from freezegun import freeze_time

    with freeze_time(timezone.now() + dt.timedelta(minutes=5)):
        assert media_jobs_reap() == {"requeued": 1, "failed": 0}
    assert len(sent) == 1


def test_reaper_resends_a_stuck_job(
    video: VideoSubmission, settings: Any, sent: list[dict[str, Any]]
) -> None:
    long_ago = timezone.now() - dt.timedelta(seconds=settings.VIGIL_MEDIA_JOB_STUCK_SECONDS + 60)
    _age(video, status="processing", attempts=1, processing_started_at=long_ago)
    assert media_jobs_reap() == {"requeued": 1, "failed": 0}
    assert len(sent) == 1
    video_process(video_id=video.pk)  # what the worker then does
    video.refresh_from_db()
    assert (video.status, video.attempts) == ("done", 2)


def test_reaper_sends_a_stuck_job_once_per_stuck_interval(
    video: VideoSubmission, settings: Any, sent: list[dict[str, Any]]
) -> None:
    from freezegun import freeze_time

    stuck = settings.VIGIL_MEDIA_JOB_STUCK_SECONDS
    long_ago = timezone.now() - dt.timedelta(seconds=stuck + 60)
    _age(video, status="processing", attempts=1, processing_started_at=long_ago, percent=40)
    assert media_jobs_reap() == {"requeued": 1, "failed": 0}
    assert media_jobs_reap() == {"requeued": 0, "failed": 0}  # the next tick: not again
    assert len(sent) == 1
    video.refresh_from_db()
    assert (video.status, video.stage, video.percent) == ("queued", "received", 0)
    assert video.attempts == 1  # the claim that died still counts
    assert video.enqueued_at is not None and video.enqueued_at > long_ago
    # Still not claimed a whole stuck interval later (the message was lost too): sent again.
    with freeze_time(timezone.now() + dt.timedelta(seconds=stuck + 1)):
        assert media_jobs_reap() == {"requeued": 1, "failed": 0}
    assert len(sent) == 2
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.attempts) == ("done", 2)


def test_reaper_resends_a_stuck_job_next_tick_when_the_broker_was_down(
    video: VideoSubmission, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_ago = timezone.now() - dt.timedelta(seconds=settings.VIGIL_MEDIA_JOB_STUCK_SECONDS + 60)
    _age(video, status="processing", attempts=1, processing_started_at=long_ago)
    _age(video, created_at=long_ago)
    failing = mock.Mock(side_effect=ConnectionError("broker down"))
    monkeypatch.setattr(tasks.video_process, "apply_async", failing)
    assert media_jobs_reap() == {"requeued": 0, "failed": 0}
    video.refresh_from_db()
    assert (video.status, video.enqueued_at) == ("queued", None)  # unsent: retried next tick
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.video_process, "apply_async", lambda **kw: calls.append(kw))
    assert media_jobs_reap() == {"requeued": 1, "failed": 0}
    assert calls == [{"args": [str(video.pk)], "queue": "media"}]


def test_reaper_leaves_a_job_claimed_meanwhile_alone(
    video: VideoSubmission, settings: Any, sent: list[dict[str, Any]], monkeypatch: Any
) -> None:
    long_ago = timezone.now() - dt.timedelta(seconds=settings.VIGIL_MEDIA_JOB_STUCK_SECONDS + 60)
    _age(video, status="processing", attempts=1, processing_started_at=long_ago)
    real = video_services._stuck_job_requeue

    def claimed_first(**kwargs: Any) -> bool:
        _age(video, attempts=2, processing_started_at=timezone.now())  # a worker claimed it
        return real(**kwargs)

    monkeypatch.setattr(video_services, "_stuck_job_requeue", claimed_first)
    assert media_jobs_reap() == {"requeued": 0, "failed": 0}
    assert sent == []
    video.refresh_from_db()
    assert (video.status, video.attempts) == ("processing", 2)


# --- decrypted files left by killed workers ------------------------------------------------------
def _plant(settings: Any, name: str, *, age_seconds: float) -> Path:
    work = Path(settings.VIGIL_WORK_DIR)
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = work / name
    path.write_bytes(b"decrypted video")
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def test_decrypted_files_outlive_no_job_past_the_hard_time_limit() -> None:
    limit = tasks.video_process.time_limit
    assert limit
    assert video_services.decrypted_files_max_age_seconds() == limit + 5 * 60


@pytest.mark.django_db
def test_every_reaper_tick_sweeps_files_left_by_killed_workers(
    settings: Any, sent: list[dict[str, Any]]
) -> None:
    abandoned = _plant(settings, "dec-killed.media", age_seconds=3)  # nobody holds its lock
    unrelated = _plant(settings, "notes.txt", age_seconds=10**6)
    assert media_jobs_reap() == {"requeued": 0, "failed": 0}
    assert not abandoned.exists()
    assert unrelated.exists()
    assert sent == []


def test_a_sweep_failure_never_stops_the_reaper(
    video: VideoSubmission, monkeypatch: pytest.MonkeyPatch, sent: list[dict[str, Any]]
) -> None:
    monkeypatch.setattr(
        video_services, "decrypted_tempfiles_sweep", mock.Mock(side_effect=PermissionError())
    )
    _age(video, created_at=timezone.now() - dt.timedelta(minutes=2))
    assert media_jobs_reap() == {"requeued": 1, "failed": 0}


def test_worker_start_sweeps_the_work_dir(settings: Any) -> None:
    from celery.signals import worker_ready

    abandoned = _plant(settings, "dec-killed.media", age_seconds=3)
    worker_ready.send(sender=None)
    assert not abandoned.exists()


@pytest.mark.parametrize("status", ["queued", "processing"])
def test_reaper_fails_a_job_past_its_attempts(
    video: VideoSubmission, settings: Any, sent: list[dict[str, Any]], status: str
) -> None:
    long_ago = timezone.now() - dt.timedelta(seconds=settings.VIGIL_MEDIA_JOB_STUCK_SECONDS + 60)
    _age(
        video,
        status=status,
        attempts=settings.VIGIL_MEDIA_JOB_MAX_ATTEMPTS,
        processing_started_at=long_ago,
        enqueued_at=long_ago,
    )
    assert media_jobs_reap() == {"requeued": 0, "failed": 1}
    assert sent == []
    video.refresh_from_db()
    assert (video.status, video.failure_reason) == ("failed", "timed_out")
    assert video.finished_at is not None
    assert media_jobs_reap() == {"requeued": 0, "failed": 0}


def test_reaper_leaves_finished_and_fresh_jobs_alone(
    world: Any, media: MediaSet, settings: Any, sent: list[dict[str, Any]]
) -> None:
    done = make_video(world, media.good_mp4)
    video_process(video_id=done.pk)
    running = make_video(world, media.good_mp4)
    _age(running, status="processing", attempts=1, processing_started_at=timezone.now())
    old = timezone.now() - dt.timedelta(minutes=10)
    _age(done, created_at=old)
    _age(running, created_at=old)
    assert media_jobs_reap() == {"requeued": 0, "failed": 0}
    assert sent == []


def test_reaper_survives_a_broker_outage(
    video: VideoSubmission, monkeypatch: pytest.MonkeyPatch
) -> None:
    _age(video, created_at=timezone.now() - dt.timedelta(minutes=2))
    failing = mock.Mock(side_effect=ConnectionError("broker down"))
    monkeypatch.setattr(tasks.video_process, "apply_async", failing)
    assert media_jobs_reap() == {"requeued": 0, "failed": 0}
    assert failing.call_count == 1
    video.refresh_from_db()
    assert video.enqueued_at is None  # the next tick tries again


def test_reap_task_wrapper(video: VideoSubmission, sent: list[dict[str, Any]]) -> None:
    _age(video, created_at=timezone.now() - dt.timedelta(minutes=2))
    result = tasks.media_jobs_reap.apply()
    assert result.successful(), result.traceback
    assert result.get() == {"requeued": 1, "failed": 0}


# --- consent read again under the patient's lock, just before storing ---------------------------
VOICE = {"f0_sd_st": 1.5, "speech_rate": 3.0, "pause_ratio": 0.3, "pause_mean_s": 0.8}
VOICE_FULL = {**VOICE, "speech_s": 12.0, "voiced_fraction": 0.4, "abstain": False}
FACE_FULL = {"smile": 0.2, "frown": 0.1, "face_presence": 0.9, "abstain": False}
FACE_COMPONENTS = {"face_low_smile": 0.6, "face_frown": 1 / 3}


def full_outcome() -> Any:
    """What a video with voice, face and transcript consent gives (stand-in values)."""
    from screening.ml.media.pipeline import DistressPart, distress_combine, distress_voice_part
    from screening.services.media_analysis import MediaOutcome, _distress_fields

    distress = distress_combine(
        DistressPart(components=dict(FACE_COMPONENTS), confidence=0.5),
        distress_voice_part(VOICE_FULL),
    )
    return MediaOutcome(
        prosody=dict(VOICE_FULL),
        face=dict(FACE_FULL),
        transcript="I slept badly again.",
        quality_flags=["face:dim", "transcript:short", "voice:noisy"],
        models_info=[{"name": "fake", "version": "1", "sha256": "0" * 64}],
        model_version="fake-1",
        **_distress_fields(distress),
    )


def test_restricting_drops_the_withdrawn_parts_and_recombines_the_distress() -> None:
    from screening.ml.media.pipeline import DistressPart, distress_combine, distress_voice_part
    from screening.services.media_analysis import outcome_restrict

    full = full_outcome()
    assert outcome_restrict(full, voice=True, face=True) is full
    no_voice = outcome_restrict(full, voice=False, face=True)
    face_only = distress_combine(DistressPart(components=dict(FACE_COMPONENTS), confidence=0.5))
    assert (no_voice.prosody, no_voice.transcript) == (None, None)
    assert no_voice.face == full.face
    assert no_voice.distress == pytest.approx(face_only.score)
    assert no_voice.distress_confidence == pytest.approx(face_only.confidence)
    assert set(no_voice.distress_components) == set(FACE_COMPONENTS)
    assert no_voice.abstentions == {"voice": "not_consented", "transcript": "not_consented"}
    assert no_voice.quality_flags == ["face:dim"]
    no_face = outcome_restrict(full, voice=True, face=False)
    voice_only = distress_combine(distress_voice_part(VOICE_FULL))
    assert no_face.face is None and no_face.prosody == full.prosody
    assert no_face.transcript == full.transcript
    assert no_face.distress == pytest.approx(voice_only.score)
    assert no_face.distress_confidence == pytest.approx(voice_only.confidence)
    assert no_face.quality_flags == ["transcript:short", "voice:noisy"]
    no_text = outcome_restrict(full, voice=True, face=True, text=False)
    assert no_text.transcript is None and no_text.prosody == full.prosody
    assert no_text.abstentions == {"transcript": "not_consented"}
    assert no_text.quality_flags == ["face:dim", "voice:noisy"]
    assert no_text.distress == full.distress  # the transcript is not part of it
    neither = outcome_restrict(full, voice=False, face=False)
    assert neither.empty and neither.distress is None and neither.distress_confidence == 0.0


def test_voice_withdrawn_while_the_video_is_analysed_is_not_stored(
    video: VideoSubmission, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The withdrawal commits after the worker's last consent read: the read under the lock,
    just before storing, still drops the voice (face consent stays, so the job completes)."""
    from screening.models import MediaAnalysis
    from screening.services import media_analysis

    def analyse_then_withdraw(**kwargs: Any) -> Any:
        withdraw(world.patient_a, ConsentScope.VOICE_ANALYSIS)
        return full_outcome()

    monkeypatch.setattr(media_analysis, "media_analyse", analyse_then_withdraw)
    monkeypatch.setattr(video_services, "_analysis_allowed", lambda patient: True)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert video.status == "done"
    analysis = MediaAnalysis.objects.get(video=video)
    assert analysis.prosody is None and analysis.transcript is None
    assert analysis.face == FACE_FULL
    assert analysis.abstentions["voice"] == "not_consented"
    assert set(analysis.baseline) == {"face"}


def test_voice_withdrawn_while_a_video_without_picture_is_analysed_fails_with_the_reason(
    video: VideoSubmission, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The voice went during the analysis and the face part could not read the recording: the
    patient is told why (``no_video``), as when voice was never consented, not a finished job
    with nothing in it."""
    from screening.ml.media.pipeline import PATIENT_MESSAGES
    from screening.models import MediaAnalysis
    from screening.services import media_analysis

    def analyse_then_withdraw(**kwargs: Any) -> Any:
        withdraw(world.patient_a, ConsentScope.VOICE_ANALYSIS)
        outcome = full_outcome()
        outcome.face = None
        outcome.abstentions = {"face": "no_video"}
        outcome.distress_components = {
            k: v for k, v in outcome.distress_components.items() if not k.startswith("face_")
        }
        return outcome

    monkeypatch.setattr(media_analysis, "media_analyse", analyse_then_withdraw)
    monkeypatch.setattr(video_services, "_analysis_allowed", lambda patient: True)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.failure_reason) == ("failed", "no_video")
    assert video.failure_message == PATIENT_MESSAGES["no_video"]
    assert not MediaAnalysis.objects.filter(video=video).exists()


@pytest.mark.parametrize(
    ("prosody", "face", "abstentions", "expected"),
    [
        (None, None, {"voice": "not_consented", "face": "no_video"}, "no_video"),
        (None, None, {"voice": "no_audio", "face": "corrupt"}, "corrupt"),
        (None, None, {"voice": "not_consented", "face": "face_not_present"}, None),
        (VOICE_FULL, None, {"face": "no_video"}, None),
        (None, FACE_FULL, {"voice": "not_consented"}, None),
        (None, None, {"voice": "not_consented", "face": "not_consented"}, None),
    ],
)
def test_an_outcome_is_unreadable_only_when_every_consented_part_could_not_read_it(
    prosody: Any, face: Any, abstentions: dict[str, str], expected: str | None
) -> None:
    from screening.services.media_analysis import MediaOutcome, outcome_unreadable_reason

    outcome = MediaOutcome(prosody=prosody, face=face, abstentions=abstentions)
    assert outcome_unreadable_reason(outcome) == expected


def test_every_analysis_withdrawn_while_the_video_is_analysed_fails_the_job(
    video: VideoSubmission, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from screening.models import MediaAnalysis
    from screening.services import media_analysis

    def analyse_then_withdraw(**kwargs: Any) -> Any:
        withdraw(world.patient_a, *ALL_ANALYSIS)
        return full_outcome()

    monkeypatch.setattr(media_analysis, "media_analyse", analyse_then_withdraw)
    monkeypatch.setattr(video_services, "_analysis_allowed", lambda patient: True)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.failure_reason) == ("failed", "consent_withdrawn")
    assert not MediaAnalysis.objects.filter(video=video).exists()
