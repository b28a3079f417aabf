"""Prosody deferred to the gpu queue (VIGIL_PROSODY_QUEUE=gpu): the media worker stores the
decoded voice encrypted and sends ids; the gpu worker's batch computes every clip's prosody in one
call and finishes each job on its own, exactly as the in-line path would have.

Services are called directly (no broker); the batch task's wiring is checked at the end. One test
runs the real pipeline twice (in-line and deferred) and compares what was stored.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from privacy.audit import Actor
from privacy.choices import ConsentScope
from privacy.consent import consent_change
from privacy.erasure import patient_erase
from privacy.models import AccessEvent
from screening import tasks
from screening.batching import BatchRequest, GpuBatches
from screening.ml.media import prosody as prosody_module
from screening.models import MediaAnalysis, VideoSubmission
from screening.services import media_analysis, voice_jobs
from screening.services import videos as video_services
from screening.services.media_analysis import MediaOutcome
from screening.services.videos import media_jobs_reap, video_process, video_voice_batch_run
from tests.media import MediaSet, shared_media
from tests.screening.ml.media import media_gen
from tests.screening.test_video_processing import make_video


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaSet:
    return shared_media(tmp_path_factory)


@pytest.fixture(autouse=True)
def gpu_prosody(settings: Any, tmp_path: Path) -> Any:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    settings.VIGIL_PROSODY_QUEUE = "gpu"
    return settings


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """What would have been published, per task (nothing really is)."""
    calls: dict[str, list[Any]] = {"video": [], "voice": [], "text": []}
    for task, key in (
        (tasks.video_process, "video"),
        (tasks.media_prosody_batch, "voice"),
        (tasks.text_scoring_batch, "text"),
    ):
        monkeypatch.setattr(task, "apply_async", lambda _k=key, **kw: calls[_k].append(kw))
    return calls


SPEECH = [
    media_gen.voiced(f0, 2.5, pauses=[(1.0, 0.3)], syllable_rate=rate, seed=i)
    for i, (f0, rate) in enumerate(((110.0, 3.0), (180.0, 4.5), (240.0, 5.0)))
]
FACE = {"smile": 0.3, "frown": 0.05, "brow_lowering": 0.05, "gaze_down_fraction": 0.1}
FACE_DISTRESS = {"face_low_smile": 0.4, "face_frown": 1 / 6, "face_brow_lowering": 0.125}


class DeferringPipeline:
    """Stands in for media_analysis.media_analyse with prosody deferred: face and transcript now,
    the voice as pending audio (a different synthetic voice per call, in turn)."""

    def __init__(self) -> None:
        self.calls = 0
        self.deferred: list[bool | None] = []

    def __call__(
        self,
        *,
        path: Path,
        voice: bool,
        face: bool,
        text: bool,
        on_progress: Any,
        defer_prosody: bool | None = None,
    ) -> MediaOutcome:
        audio = SPEECH[self.calls % len(SPEECH)]
        self.calls += 1
        self.deferred.append(defer_prosody)
        on_progress(1.0)
        if not defer_prosody:  # in-line: a stand-in prosody computed now
            return MediaOutcome(
                prosody={"f0_median_hz": 150.0, "abstain": False} if voice else None,
                face={**FACE, "abstain": False} if face else None,
                distress=0.2,
                distress_confidence=0.8,
                model_version="fake-1",
            )
        return MediaOutcome(
            face={**FACE, "abstain": False} if face else None,
            abstentions={} if face else {"face": "not_consented"},
            distress=sum(FACE_DISTRESS.values()) / 3 if face else None,
            distress_confidence=0.5 if face else 0.0,
            distress_components=dict(FACE_DISTRESS) if face else {},
            transcript="I went for a walk today." if voice and text else None,
            models_info=[{"name": "fake-face", "version": "1", "sha256": "0" * 64}],
            timings_ms={"face": 10.0, "total": 20.0},
            model_version="fake-1",
            pending_audio=audio if voice else None,
        )


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> DeferringPipeline:
    fake = DeferringPipeline()
    monkeypatch.setattr(media_analysis, "media_analyse", fake)
    return fake


@pytest.fixture
def batch_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of clips in each prosody call."""
    sizes: list[int] = []
    real = prosody_module.prosody_batch

    def spy(clips: list[np.ndarray], sr: int, **kwargs: Any) -> Any:
        sizes.append(len(clips))
        return real(clips, sr, **kwargs)

    monkeypatch.setattr(prosody_module, "prosody_batch", spy)
    return sizes


def deferred(world: Any, media: MediaSet) -> VideoSubmission:
    """A video whose media job ran and handed its voice to the gpu queue."""
    video = make_video(world, media.good_mp4)
    video_process(video_id=video.pk)
    return video


def job_file(settings: Any, video: VideoSubmission) -> Path:
    name = voice_jobs.voice_job_name(patient_id=video.patient_id, video_id=video.pk)
    return Path(settings.VIGIL_MEDIA_ROOT) / name


def withdraw(patient: Any, scope: str) -> None:
    consent_change(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        scope=scope,
        granted=False,
    )


def state(video: VideoSubmission) -> tuple[str, str, int, str]:
    video.refresh_from_db()
    return video.status, video.stage, video.percent, video.failure_reason


# --- stage 1: the media worker hands the voice on ---------------------------------------------
def test_media_worker_stores_the_voice_encrypted_and_sends_ids_only(
    world: Any, media: MediaSet, pipeline: DeferringPipeline, sent: dict, settings: Any
) -> None:
    video = deferred(world, media)
    assert state(video) == ("processing", "analysing", 90, "")
    assert not MediaAnalysis.objects.filter(video=video).exists()  # nothing recorded half-way
    assert sent["voice"] == [{"args": ["video", str(video.pk)], "queue": "gpu"}]
    stored = job_file(settings, video).read_bytes()
    assert stored.startswith(b"VGLVID1\n")  # the storage's encrypted format
    assert SPEECH[0][4000:4016].tobytes() not in stored  # no plaintext samples ...
    assert b"walk" not in stored and b"VGLVOICE" not in stored  # ... words or payload header
    assert list(Path(settings.VIGIL_WORK_DIR).glob("*")) == []  # no decrypted file left


def test_in_line_default_stores_no_voice_job(
    world: Any, media: MediaSet, sent: dict, settings: Any
) -> None:
    settings.VIGIL_PROSODY_QUEUE = "media"
    video = make_video(world, media.good_mp4)
    video_process(video_id=video.pk)
    assert state(video)[0] == "done" and sent["voice"] == []
    assert not job_file(settings, video).exists()


@pytest.mark.parametrize("value, expected", [("gpu", "gpu"), ("GPU ", "gpu"), ("other", "media")])
def test_prosody_queue_setting(settings: Any, value: str, expected: str) -> None:
    settings.VIGIL_PROSODY_QUEUE = value
    assert media_analysis.prosody_queue() == expected
    # only video_process defers: manage.py analyze_media always computes the voice itself
    assert media_analysis.media_config_from_settings().defer_prosody is False


def test_a_rerun_computes_the_prosody_itself(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    settings: Any,
) -> None:
    """The gpu queue never served the first attempt (lost message, no gpu worker): once the job is
    stuck, the reaper's rerun finishes it on the media worker."""
    video = deferred(world, media)
    assert state(video)[:3] == ("processing", "analysing", 90)
    VideoSubmission.objects.filter(pk=video.pk).update(
        processing_started_at=timezone.now() - timezone.timedelta(hours=2)
    )
    assert media_jobs_reap()["requeued"] == 1
    video_process(video_id=video.pk)  # what the re-sent message runs
    assert pipeline.deferred == [True, False]
    assert state(video) == ("done", "complete", 100, "")
    assert MediaAnalysis.objects.get(video=video).prosody["f0_median_hz"] == 150.0
    assert not job_file(settings, video).exists()  # the first attempt's voice job is gone
    assert video_voice_batch_run(video_ids=[video.pk])["skipped"] == 1  # a late first message


def test_a_voice_job_that_cannot_be_stored_is_computed_in_line(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(**kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(voice_jobs, "voice_job_store", full)
    video = deferred(world, media)
    assert state(video) == ("done", "complete", 100, "")
    analysis = MediaAnalysis.objects.get(video=video)
    assert analysis.prosody is not None and analysis.prosody["f0_median_hz"] == pytest.approx(
        110, rel=0.05
    )
    assert sent["voice"] == [] and not job_file(settings, video).exists()


def test_a_broker_outage_leaves_the_job_to_the_reaper(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    def down(**kw: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.media_prosody_batch, "apply_async", down)
    video = make_video(world, media.good_mp4)
    video_process(video_id=video.pk)  # does not raise
    assert state(video)[:3] == ("processing", "analysing", 90)
    VideoSubmission.objects.filter(pk=video.pk).update(
        processing_started_at=timezone.now() - timezone.timedelta(hours=2)
    )
    assert media_jobs_reap()["requeued"] == 1  # run again from the start, once stuck
    assert state(video)[0] == "queued" and len(sent["video"]) == 1


@pytest.fixture(scope="session")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s face video with speech (espeak-ng when installed, else a synthetic voice)."""
    if media_gen.HAS_ESPEAK:
        voice = media_gen.espeak("the quick brown fox jumps over the lazy dog", speed=140)
    else:
        voice = media_gen.voiced(140.0, 3.0, pauses=[(1.2, 0.4)], vibrato_cents=80)
    speech = media_gen.with_pauses([media_gen.silence(0.3), voice, media_gen.silence(0.3)], 0.0)
    folder = tmp_path_factory.mktemp("voice-jobs")
    return media_gen.make_video(
        folder / "talk.mp4", seconds=speech.size / 16_000, width=320, height=320, audio=speech
    )


def _stored(video: VideoSubmission) -> dict[str, Any]:
    row = MediaAnalysis.objects.get(video=video)
    values = {
        name: getattr(row, name)
        for name in (
            "prosody",
            "face",
            "baseline",
            "quality_flags",
            "abstentions",
            "distress",
            "distress_confidence",
            "transcript",
        )
    }
    values["models"] = [m["name"] for m in row.models_info]
    return json.loads(json.dumps(values, sort_keys=True))  # NaN-safe comparison


def test_the_real_pipeline_stores_the_same_analysis_either_way(
    world: Any, talk: Path, sent: dict, settings: Any, batch_calls: list[int]
) -> None:
    settings.VIGIL_PROSODY_QUEUE = "media"
    in_line = make_video(world, talk, patient=world.patient_a)
    video_process(video_id=in_line.pk)
    settings.VIGIL_PROSODY_QUEUE = "gpu"
    deferred = make_video(world, talk, patient=world.patient_b)  # a patient with no history too
    video_process(video_id=deferred.pk)
    assert state(deferred)[0] == "processing" and batch_calls == []
    video_voice_batch_run(video_ids=[deferred.pk])
    assert batch_calls == [1]
    assert state(in_line)[0] == state(deferred)[0] == "done"
    expected, got = _stored(in_line), _stored(deferred)
    assert expected["prosody"] is not None and expected["prosody"]["abstain"] is False
    assert got == expected
    timings = MediaAnalysis.objects.get(video=deferred).timings_ms
    assert {"prosody", "prosody_queue_wait", "face", "transcript", "total"} <= set(timings)


# --- stage 2: the gpu worker's batch -------------------------------------------------------------
def test_a_batch_computes_every_clip_in_one_call_and_finishes_each_job(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    batch_calls: list[int],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    videos = [make_video(world, media.good_mp4) for _ in range(3)]
    for video in videos:
        video_process(video_id=video.pk)
    with django_capture_on_commit_callbacks(execute=True):
        counts = video_voice_batch_run(video_ids=[v.pk for v in videos])
    assert counts == {"jobs": 3, "completed": 3, "skipped": 0, "failed": 0}
    assert batch_calls == [3]  # one prosody call for the batch
    rates = []
    for video in videos:
        assert state(video) == ("done", "complete", 100, "")
        assert not job_file(settings, video).exists()  # the voice job is gone
        analysis = MediaAnalysis.objects.get(video=video)
        assert analysis.prosody is not None and analysis.prosody["abstain"] is False
        assert analysis.face["smile"] == 0.3 and analysis.transcript == "I went for a walk today."
        assert analysis.models_info[0]["name"].startswith("vigil-prosody-torch")
        assert analysis.timings_ms["prosody"] > 0 and analysis.timings_ms["prosody_queue_wait"] >= 0
        rates.append(analysis.prosody["f0_median_hz"])
        assert ("transcript", str(video.pk)) in [tuple(c["args"]) for c in sent["text"]]
    # each job got its own clip's features back (110, 180, 240 Hz voices)
    assert rates == sorted(rates) and rates[0] == pytest.approx(110, rel=0.05)
    decrypts = AccessEvent.objects.filter(action="video.voice_decrypt")
    assert decrypts.count() == 3 and {e.actor_role for e in decrypts} == {"system"}


def test_distress_is_completed_with_the_voice(
    world: Any, media: MediaSet, pipeline: DeferringPipeline, sent: dict
) -> None:
    from screening.ml.media.pipeline import distress_estimate

    video = deferred(world, media)
    video_voice_batch_run(video_ids=[video.pk])
    analysis = MediaAnalysis.objects.get(video=video)
    voice_only = distress_estimate(face=None, voice=analysis.prosody)  # the in-line function
    assert voice_only.score is not None  # the voice contributed
    face_mean = sum(FACE_DISTRESS.values()) / 3
    assert analysis.distress == pytest.approx((face_mean + voice_only.score) / 2, abs=1e-12)
    assert analysis.distress_confidence == pytest.approx(min(1.0, 0.5 + voice_only.confidence))


def test_running_a_batch_twice_is_harmless(
    world: Any, media: MediaSet, pipeline: DeferringPipeline, sent: dict
) -> None:
    video = deferred(world, media)
    video_voice_batch_run(video_ids=[video.pk, video.pk])  # a duplicate message in the batch
    first = MediaAnalysis.objects.get(video=video)
    again = video_voice_batch_run(video_ids=[video.pk])  # a redelivered message
    assert again == {"jobs": 1, "completed": 0, "skipped": 1, "failed": 0}
    assert MediaAnalysis.objects.filter(video=video).count() == 1
    assert MediaAnalysis.objects.get(video=video).updated_at == first.updated_at
    assert AccessEvent.objects.filter(action="video.voice_decrypt").count() == 1


def test_unknown_and_undeferred_videos_are_skipped(
    world: Any, media: MediaSet, sent: dict, settings: Any
) -> None:
    settings.VIGIL_PROSODY_QUEUE = "media"
    done = make_video(world, media.good_mp4)
    video_process(video_id=done.pk)
    counts = video_voice_batch_run(video_ids=[uuid.uuid4(), done.pk])
    assert counts == {"jobs": 2, "completed": 0, "skipped": 2, "failed": 0}
    assert state(done)[0] == "done"


def test_a_leftover_of_an_earlier_attempt_is_not_used(
    world: Any, media: MediaSet, pipeline: DeferringPipeline, sent: dict, settings: Any
) -> None:
    video = deferred(world, media)
    VideoSubmission.objects.filter(pk=video.pk).update(attempts=2)  # taken over meanwhile
    counts = video_voice_batch_run(video_ids=[video.pk])
    assert counts["skipped"] == 1 and state(video)[0] == "processing"
    assert not MediaAnalysis.objects.filter(video=video).exists()


def test_an_unreadable_voice_job_fails_alone(
    world: Any, media: MediaSet, pipeline: DeferringPipeline, sent: dict, settings: Any
) -> None:
    bad, good = make_video(world, media.good_mp4), make_video(world, media.good_mp4)
    for video in (bad, good):
        video_process(video_id=video.pk)
    path = job_file(settings, bad)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # one flipped bit in the last chunk
    path.write_bytes(bytes(data))
    counts = video_voice_batch_run(video_ids=[bad.pk, good.pk])
    assert counts == {"jobs": 2, "completed": 1, "skipped": 0, "failed": 1}
    assert state(bad)[0] == "failed" and state(bad)[3] == "storage_unreadable"
    assert not path.exists()
    assert state(good)[0] == "done"


def test_a_clip_the_prosody_code_cannot_handle_costs_only_itself(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = prosody_module.prosody_batch
    poison = SPEECH[1]

    def fragile(clips: list[np.ndarray], sr: int, **kwargs: Any) -> Any:
        if any(np.array_equal(c, poison) for c in clips):
            raise RuntimeError("cannot handle this clip")
        return real(clips, sr, **kwargs)

    monkeypatch.setattr(prosody_module, "prosody_batch", fragile)
    videos = [make_video(world, media.good_mp4) for _ in range(3)]
    for video in videos:
        video_process(video_id=video.pk)
    counts = video_voice_batch_run(video_ids=[v.pk for v in videos])
    assert counts["completed"] == 3
    analyses = [MediaAnalysis.objects.get(video=v) for v in videos]
    assert [a.prosody is not None for a in analyses] == [True, False, True]
    assert analyses[1].abstentions["voice"] == "stage_failed"
    assert analyses[1].face["smile"] == 0.3  # the rest of that job is kept


def test_an_error_recording_one_job_leaves_the_others(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    first, second = make_video(world, media.good_mp4), make_video(world, media.good_mp4)
    for video in (first, second):
        video_process(video_id=video.pk)
    real = video_services._record

    def flaky(video: VideoSubmission, outcome: MediaOutcome, **kwargs: Any) -> bool:
        if video.pk == first.pk:
            raise RuntimeError("database blip")
        return real(video, outcome, **kwargs)

    monkeypatch.setattr(video_services, "_record", flaky)
    counts = video_voice_batch_run(video_ids=[first.pk, second.pk])
    assert counts == {"jobs": 2, "completed": 1, "skipped": 0, "failed": 1}
    assert state(first)[0] == "processing"  # the reaper runs it again once stuck
    assert not job_file(settings, first).exists()
    assert state(second)[0] == "done"


# --- consent while the job waits ----------------------------------------------------------------
def test_withdrawing_voice_deletes_the_voice_job_and_reruns_without_the_voice(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    video = deferred(world, media)
    path = job_file(settings, video)
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(world.patient_a, ConsentScope.VOICE_ANALYSIS)
    assert not path.exists()  # the decoded speech is gone at once
    assert state(video)[:3] == ("queued", "received", 0)
    assert [c["args"] for c in sent["video"]] == [[str(video.pk)]]
    assert video_voice_batch_run(video_ids=[video.pk])["skipped"] == 1  # the old message
    video_process(video_id=video.pk)  # the rerun reads no voice
    analysis = MediaAnalysis.objects.get(video=video)
    assert state(video)[0] == "done"
    assert analysis.prosody is None and analysis.transcript is None
    assert analysis.face is not None and sent["voice"][1:] == []
    event = AccessEvent.objects.filter(action="consent.withdraw_effects").latest("id")
    assert "cancelled 1 pending voice jobs" in event.purpose


def test_voice_withdrawn_while_the_batch_computes_is_not_recorded(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The withdrawal lands during the prosody call: the canceller requeues the video and the
    rerun (attempt 2) claims it before the batch records; the batch records nothing."""
    video = deferred(world, media)
    real = prosody_module.prosody_batch

    def withdraw_meanwhile(clips: list[np.ndarray], sr: int, **kwargs: Any) -> Any:
        result = real(clips, sr, **kwargs)
        with django_capture_on_commit_callbacks(execute=True):
            withdraw(world.patient_a, ConsentScope.VOICE_ANALYSIS)
        video_services._claim(video.pk)  # the media worker takes attempt 2 at once
        return result

    monkeypatch.setattr(prosody_module, "prosody_batch", withdraw_meanwhile)
    counts = video_voice_batch_run(video_ids=[video.pk])
    assert counts["completed"] == 0
    assert not MediaAnalysis.objects.filter(video=video).exists()
    assert state(video)[0] == "processing"  # attempt 2's, untouched
    assert VideoSubmission.objects.get(pk=video.pk).attempts == 2
    assert sent["text"] == []  # no transcript sent for scoring


def test_voice_withdrawn_just_before_recording_drops_the_voice(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Consent read when the batch began said yes; the read before recording says no."""
    video = deferred(world, media)
    answers = iter([True])  # the batch's first read (which clips to compute)

    def voice_then_not(*, patient: Any, scope: str) -> bool:
        if scope == ConsentScope.VOICE_ANALYSIS:
            return next(answers, False)
        return True

    monkeypatch.setattr(video_services, "consent_has", voice_then_not)
    assert video_voice_batch_run(video_ids=[video.pk])["completed"] == 1
    analysis = MediaAnalysis.objects.get(video=video)
    assert analysis.prosody is None and analysis.transcript is None
    assert analysis.abstentions["voice"] == "not_consented"
    assert "prosody" not in analysis.timings_ms


def test_text_withdrawn_while_waiting_drops_the_transcript(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    django_capture_on_commit_callbacks: Any,
) -> None:
    video = deferred(world, media)
    withdraw(world.patient_a, ConsentScope.TEXT_ANALYSIS)
    with django_capture_on_commit_callbacks(execute=True):
        video_voice_batch_run(video_ids=[video.pk])
    analysis = MediaAnalysis.objects.get(video=video)
    assert analysis.transcript is None and analysis.abstentions["transcript"] == "not_consented"
    assert analysis.prosody is not None and sent["text"] == []


def test_only_a_first_attempt_is_finished_by_the_batch(
    world: Any, media: MediaSet, pipeline: DeferringPipeline, sent: dict, settings: Any
) -> None:
    """A leftover voice job, even a damaged one, never fails or touches a newer attempt."""
    video = deferred(world, media)
    path = job_file(settings, video)
    path.write_bytes(path.read_bytes()[:-30])  # damaged as well
    VideoSubmission.objects.filter(pk=video.pk).update(attempts=2)  # a rerun is running
    assert video_voice_batch_run(video_ids=[video.pk])["skipped"] == 1
    assert state(video)[0] == "processing" and state(video)[3] == ""
    assert not AccessEvent.objects.filter(action="video.voice_decrypt").exists()  # not read


def test_a_face_that_could_not_be_read_fails_the_job_without_the_voice(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As in-line: with the voice withdrawn, nothing consented could read the recording."""
    real_call = pipeline.__call__

    def no_picture(**kwargs: Any) -> MediaOutcome:
        outcome = real_call(**kwargs)
        outcome.face = None
        outcome.abstentions = {"face": "no_video"}
        outcome.distress_components = {}
        return outcome

    monkeypatch.setattr(media_analysis, "media_analyse", no_picture)
    video = deferred(world, media)
    monkeypatch.setattr(
        video_services,
        "consent_has",
        lambda *, patient, scope: scope != ConsentScope.VOICE_ANALYSIS,
    )
    assert video_voice_batch_run(video_ids=[video.pk])["failed"] == 1
    assert state(video)[0] == "failed" and state(video)[3] == "no_video"


def test_consent_is_read_again_when_the_batch_runs(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A withdrawal racing the batch (after the job was taken): the parts withdrawn are dropped."""
    video = deferred(world, media)
    allowed = {ConsentScope.VOICE_ANALYSIS: False, ConsentScope.FACE_ANALYSIS: True}
    monkeypatch.setattr(
        video_services,
        "consent_has",
        lambda *, patient, scope: allowed.get(scope, True),
    )
    video_voice_batch_run(video_ids=[video.pk])
    analysis = MediaAnalysis.objects.get(video=video)
    assert analysis.prosody is None and analysis.transcript is None
    assert analysis.abstentions["voice"] == "not_consented"
    assert analysis.face is not None

    other = make_video(world, media.good_mp4)
    monkeypatch.setattr(video_services, "consent_has", lambda *, patient, scope: True)
    video_process(video_id=other.pk)
    allowed = {ConsentScope.VOICE_ANALYSIS: True, ConsentScope.FACE_ANALYSIS: False}
    monkeypatch.setattr(
        video_services, "consent_has", lambda *, patient, scope: allowed.get(scope, True)
    )
    video_voice_batch_run(video_ids=[other.pk])
    analysis = MediaAnalysis.objects.get(video=other)
    assert analysis.face is None and analysis.abstentions["face"] == "not_consented"
    assert analysis.prosody is not None
    voice_only = [k for k in json.loads(json.dumps(analysis.prosody)) if k == "f0_mean_hz"]
    assert voice_only and analysis.distress_confidence < 0.5  # distress from the voice alone


def test_withdrawing_everything_fails_the_waiting_job(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    video = deferred(world, media)
    with django_capture_on_commit_callbacks(execute=True):
        for scope in (
            ConsentScope.VOICE_ANALYSIS,
            ConsentScope.FACE_ANALYSIS,
            ConsentScope.TEXT_ANALYSIS,
        ):
            withdraw(world.patient_a, scope)
    video_process(video_id=video.pk)
    assert state(video)[0] == "failed" and state(video)[3] == "consent_withdrawn"
    assert not job_file(settings, video).exists()


# --- every other end of the job removes the voice job -------------------------------------------
def test_a_job_failed_by_the_reaper_loses_its_voice_job(
    world: Any, media: MediaSet, pipeline: DeferringPipeline, sent: dict, settings: Any
) -> None:
    video = deferred(world, media)
    VideoSubmission.objects.filter(pk=video.pk).update(
        attempts=settings.VIGIL_MEDIA_JOB_MAX_ATTEMPTS,
        processing_started_at=timezone.now() - timezone.timedelta(hours=2),
    )
    assert media_jobs_reap()["failed"] == 1
    assert state(video)[3] == "timed_out" and not job_file(settings, video).exists()


def test_erasure_removes_waiting_voice_jobs(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    video = deferred(world, media)
    path = job_file(settings, video)
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        patient_erase(actor=Actor.system(), patient=world.patient_a, reason="ticket 7")
    assert not path.exists()


def test_key_rotation_re_encrypts_a_waiting_voice_job(
    world: Any, media: MediaSet, pipeline: DeferringPipeline, sent: dict, settings: Any
) -> None:
    from privacy.rotation import patient_data_key_rotate

    video = deferred(world, media)
    before = job_file(settings, video).read_bytes()
    patient_data_key_rotate(actor=Actor.system(), patient=world.patient_a)
    assert job_file(settings, video).read_bytes()[8:24] != before[8:24]  # a new data key id
    assert video_voice_batch_run(video_ids=[video.pk])["completed"] == 1


# --- the task -----------------------------------------------------------------------------------
def test_the_batch_task_is_routed_to_the_gpu_queue_and_batched() -> None:
    from config.celery import app

    assert isinstance(tasks.media_prosody_batch, GpuBatches)
    route = app.amqp.router.route({}, "screening.tasks.media_prosody_batch")
    assert route["queue"].name == "gpu"


def test_the_task_takes_ids_and_drops_malformed_messages(
    world: Any, media: MediaSet, pipeline: DeferringPipeline, sent: dict
) -> None:
    video = deferred(world, media)

    def request(*args: Any) -> BatchRequest:
        return BatchRequest(
            id=str(uuid.uuid4()),
            name="x",
            args=list(args),
            kwargs={},
            delivery_info={},
            hostname="test",
        )

    result = tasks.media_prosody_batch.run(
        [
            request("video", str(video.pk)),
            request("diary", str(video.pk)),
            request("video", "not-a-uuid"),
            request("video"),
        ]
    )
    assert result["jobs"] == 1 and result["completed"] == 1
    assert state(video)[0] == "done"


def test_a_passing_database_error_is_retried_within_the_batch(
    world: Any,
    media: MediaSet,
    pipeline: DeferringPipeline,
    sent: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import OperationalError

    from screening.services import scoring

    monkeypatch.setattr(scoring, "DB_RETRY_DELAYS", (0.0, 0.0, 0.0))
    video = deferred(world, media)
    real = video_services._record
    failures = [OperationalError("database is locked")]

    def locked_once(video: VideoSubmission, outcome: MediaOutcome, **kwargs: Any) -> bool:
        if failures:
            raise failures.pop()
        return real(video, outcome, **kwargs)

    monkeypatch.setattr(video_services, "_record", locked_once)
    counts = video_voice_batch_run(video_ids=[video.pk])
    assert counts == {"jobs": 1, "completed": 1, "skipped": 0, "failed": 0}
    assert state(video)[0] == "done"
