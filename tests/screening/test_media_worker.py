"""The media analysis stage of video_process: storage, consent per modality, failures, baselines
and the hand-over to risk. Services are called directly (no broker, no live worker).

One test runs the real media pipeline on a generated clip; the others replace the pipeline with
``media_analysis.media_analyse`` fakes so each behaviour is checked in isolation.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from privacy.audit import Actor
from privacy.choices import ConsentScope
from privacy.consent import consent_change
from privacy.erasure import patient_erase
from risk.models import Alert, AlertEvidence, PatientDaySignals
from screening import tasks
from screening.models import DailyMoodScore, MediaAnalysis, VideoSubmission
from screening.services import media_analysis, scoring
from screening.services import videos as video_services
from screening.services.media_analysis import MediaAnalysisRejected, MediaOutcome
from screening.services.videos import video_process
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
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(tasks.video_process, "apply_async", lambda **kw: None)
    monkeypatch.setattr(
        tasks.text_scoring_batch,
        "apply_async",
        lambda **kw: calls.append((kw["args"][0], kw["args"][1:])),
    )
    return calls


def make_video(
    world: Any, source: Path, *, patient: Any = None, when: dt.datetime | None = None
) -> VideoSubmission:
    patient = patient or world.patient_a
    video, created = video_services.video_submission_create(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        idempotency_key=uuid.uuid4(),
        upload_path=source,
        client_timestamp=when or timezone.now(),
    )
    assert created
    return video


def work_files(settings: Any) -> list[Path]:
    work = Path(settings.VIGIL_WORK_DIR)
    return sorted(work.iterdir()) if work.exists() else []


def withdraw(patient: Any, scope: str, *, delete_derived: bool = False) -> None:
    consent_change(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        scope=scope,
        granted=False,
        delete_derived=delete_derived,
    )


VOICE = {
    "speech_rate": 4.0,
    "articulation_rate": 5.0,
    "f0_sd_st": 3.0,
    "intensity_mean_db": -22.0,
    "pause_ratio": 0.2,
    "abstain": False,
    "quality_flags": [],
}
FACE = {
    "smile": 0.3,
    "frown": 0.05,
    "brow_lowering": 0.05,
    "gaze_down_fraction": 0.1,
    "abstain": False,
}


class FakePipeline:
    """Stands in for media_analysis.media_analyse; records what consent it was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, bool]] = []
        self.outcome = MediaOutcome(
            prosody=dict(VOICE),
            face=dict(FACE),
            distress=0.2,
            distress_confidence=0.8,
            transcript="I went for a walk today.",
            models_info=[{"name": "fake", "version": "1", "sha256": "0" * 64}],
            model_version="fake-1",
        )
        self.error: BaseException | None = None
        self.seen_paths: list[Path] = []

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
        assert path.exists()
        assert not defer_prosody  # the default VIGIL_PROSODY_QUEUE: media
        self.seen_paths.append(path)
        self.calls.append({"voice": voice, "face": face, "text": text})
        on_progress(0.5)
        if self.error is not None:
            raise self.error
        out = self.outcome
        return MediaOutcome(
            prosody=dict(out.prosody) if voice and out.prosody else None,
            face=dict(out.face) if face and out.face else None,
            distress=out.distress,
            distress_confidence=out.distress_confidence,
            transcript=out.transcript if voice else None,
            models_info=out.models_info,
            model_version=out.model_version,
        )


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> FakePipeline:
    fake = FakePipeline()
    monkeypatch.setattr(media_analysis, "media_analyse", fake)
    return fake


# --- the real pipeline, once ---------------------------------------------------------------------
def test_real_pipeline_stores_an_analysis(
    world: Any, media: MediaSet, settings: Any, sent: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    percents: list[int] = []
    real_progress = video_services._progress
    monkeypatch.setattr(
        video_services, "_progress", lambda v, p: (percents.append(p), real_progress(v, p))
    )
    video = make_video(world, media.good_mp4)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.stage, video.percent, video.failure_reason) == (
        "done",
        "complete",
        100,
        "",
    )
    analysis = MediaAnalysis.objects.get(video=video)
    assert analysis.models_info and analysis.timings_ms.get("total", 0) > 0
    assert analysis.prosody is not None or "voice" in analysis.abstentions
    assert analysis.face is not None and analysis.face.get("face_presence") is not None
    assert percents[0] == 10 and max(percents) == 90 and percents == sorted(percents)
    assert work_files(settings) == []  # the decrypted file is gone
    assert DailyMoodScore.objects.filter(
        patient=world.patient_a, local_date=video.local_date
    ).exists()


# --- stored results, consent per modality ---------------------------------------------------------
def test_analysis_is_stored_and_transcript_scored_after_commit(
    world: Any,
    media: MediaSet,
    pipeline: FakePipeline,
    sent: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    video = make_video(world, media.good_mp4)
    with django_capture_on_commit_callbacks(execute=True):
        video_process(video_id=video.pk)
    analysis = MediaAnalysis.objects.get(video=video)
    assert analysis.prosody["speech_rate"] == 4.0 and analysis.face["smile"] == 0.3
    assert analysis.transcript == "I went for a walk today."
    sealed = MediaAnalysis.objects.values_list("transcript", flat=True).get()
    assert b"walk" not in sealed.blob  # encrypted at rest
    assert ("transcript", [str(video.pk)]) in sent
    assert pipeline.calls == [{"voice": True, "face": True, "text": True}]
    assert AlertEvidence.objects.count() == 0  # distress 0.2 alone raises nothing
    day = PatientDaySignals.objects.get(patient=world.patient_a, local_date=video.local_date)
    assert any(s["kind"] == "media_distress" for s in day.corroboration)


def test_no_face_consent_means_no_face(
    world: Any, media: MediaSet, pipeline: FakePipeline, sent: list
) -> None:
    withdraw(world.patient_a, ConsentScope.FACE_ANALYSIS)
    video = make_video(world, media.good_mp4)
    video_process(video_id=video.pk)
    analysis = MediaAnalysis.objects.get(video=video)
    assert pipeline.calls == [{"voice": True, "face": False, "text": True}]
    assert analysis.face is None and analysis.prosody is not None


def test_no_voice_consent_means_no_prosody_or_transcript(
    world: Any, media: MediaSet, pipeline: FakePipeline, sent: list
) -> None:
    withdraw(world.patient_a, ConsentScope.VOICE_ANALYSIS)
    video = make_video(world, media.good_mp4)
    video_process(video_id=video.pk)
    analysis = MediaAnalysis.objects.get(video=video)
    assert pipeline.calls[0]["voice"] is False
    assert analysis.prosody is None and analysis.transcript is None and analysis.face is not None
    assert sent == []


def test_voice_withdrawal_with_delete_derived_removes_prosody_and_transcript(
    world: Any, media: MediaSet, pipeline: FakePipeline, sent: list
) -> None:
    video = make_video(world, media.good_mp4)
    video_process(video_id=video.pk)
    withdraw(world.patient_a, ConsentScope.VOICE_ANALYSIS, delete_derived=True)
    analysis = MediaAnalysis.objects.get(video=video)
    assert analysis.prosody is None and analysis.transcript is None
    assert analysis.face is not None and "voice" not in analysis.baseline
    withdraw(world.patient_a, ConsentScope.FACE_ANALYSIS, delete_derived=True)
    assert MediaAnalysis.objects.get(video=video).face is None


# --- failures ------------------------------------------------------------------------------------
def test_rejection_is_a_named_failure_and_the_next_job_runs(
    world: Any, media: MediaSet, pipeline: FakePipeline, settings: Any, sent: list
) -> None:
    bad = make_video(world, media.good_mp4)
    good = make_video(world, media.good_mp4)
    pipeline.error = MediaAnalysisRejected(
        "too_quiet", "We could not hear you: please record somewhere quieter."
    )
    tasks.video_process(str(bad.pk))  # the task body, as the worker runs it
    bad.refresh_from_db()
    assert (bad.status, bad.failure_reason) == ("failed", "too_quiet")
    assert bad.failure_message.startswith("We could not hear you")
    assert not MediaAnalysis.objects.filter(video=bad).exists()
    assert work_files(settings) == []
    pipeline.error = None
    tasks.video_process(str(good.pk))
    good.refresh_from_db()
    assert good.status == "done" and MediaAnalysis.objects.filter(video=good).exists()


def test_unexpected_error_fails_as_analysis_failed(
    world: Any, media: MediaSet, pipeline: FakePipeline, settings: Any, sent: list
) -> None:
    video = make_video(world, media.good_mp4)
    pipeline.error = RuntimeError("boom with patient words")
    tasks.video_process(str(video.pk))  # must not raise
    video.refresh_from_db()
    assert (video.status, video.failure_reason) == ("failed", "analysis_failed")
    assert "boom" not in video.failure_message
    assert pipeline.seen_paths and not pipeline.seen_paths[0].exists()
    assert work_files(settings) == []


def test_consent_withdrawn_during_analysis_wins(
    world: Any, media: MediaSet, pipeline: FakePipeline, sent: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = make_video(world, media.good_mp4)

    def withdraw_all(**kwargs: Any) -> MediaOutcome:
        for scope in (
            ConsentScope.VOICE_ANALYSIS,
            ConsentScope.FACE_ANALYSIS,
            ConsentScope.TEXT_ANALYSIS,
        ):
            withdraw(world.patient_a, scope)
        return pipeline(**kwargs)

    monkeypatch.setattr(media_analysis, "media_analyse", withdraw_all)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.failure_reason) == ("failed", "consent_withdrawn")
    assert not MediaAnalysis.objects.exists()


# --- idempotency, baselines, risk ----------------------------------------------------------------
def test_recording_twice_keeps_one_row_and_one_evidence(
    world: Any, media: MediaSet, pipeline: FakePipeline, sent: list
) -> None:
    pipeline.outcome.distress = 0.9
    video = make_video(world, media.good_mp4)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    outcome = pipeline(
        path=Path(__file__), voice=True, face=True, text=True, on_progress=lambda f: None
    )
    for _ in range(2):
        scoring.media_analysis_record(
            video=video,
            prosody=outcome.prosody,
            face=outcome.face,
            quality_flags=[],
            abstentions={},
            distress=0.9,
            distress_confidence=0.8,
            transcript=None,
            models_info=[],
            timings_ms={},
            model_version="fake-1",
        )
    assert MediaAnalysis.objects.filter(video=video).count() == 1
    day = PatientDaySignals.objects.get(patient=world.patient_a, local_date=video.local_date)
    assert [s["kind"] for s in day.corroboration].count("media_distress") == 1


def _history(world: Any, media: MediaSet, pipeline: FakePipeline, n: int = 6) -> None:
    now = timezone.now()
    for i in range(n):
        pipeline.outcome.prosody = {
            **VOICE,
            "speech_rate": 4.0 + 0.1 * (i % 3),
            "f0_sd_st": 3.0 + 0.1 * (i % 2),
        }
        video_process(
            video_id=make_video(world, media.good_mp4, when=now - dt.timedelta(days=1 + i % 4)).pk
        )


def test_baseline_drop_reaches_risk(
    world: Any, media: MediaSet, pipeline: FakePipeline, sent: list
) -> None:
    _history(world, media, pipeline)
    pipeline.outcome.prosody = {
        **VOICE,
        "speech_rate": 2.5,
        "f0_sd_st": 1.2,
        "articulation_rate": 3.5,
    }
    video = make_video(world, media.good_mp4)
    video_process(video_id=video.pk)
    analysis = MediaAnalysis.objects.get(video=video)
    assert analysis.baseline["voice"]["personal"] is True
    assert analysis.baseline["voice"]["z"]["speech_rate"] < -2.5
    alert = Alert.objects.get(patient=world.patient_a, rule_id="baseline_drop")
    assert alert.tier == "yellow"
    mood = DailyMoodScore.objects.get(patient=world.patient_a, local_date=video.local_date)
    assert "usual" in mood.explanation and "SD below" in mood.explanation


def test_first_videos_use_population_norms_and_send_no_drop(
    world: Any, media: MediaSet, pipeline: FakePipeline, sent: list
) -> None:
    pipeline.outcome.prosody = {**VOICE, "speech_rate": 1.0}
    video = make_video(world, media.good_mp4)
    video_process(video_id=video.pk)
    assert MediaAnalysis.objects.get(video=video).baseline["voice"]["personal"] is False
    assert not AlertEvidence.objects.filter(event_kind="baseline_drop").exists()


def test_crisis_text_and_distressed_video_same_day_is_orange(
    world: Any, media: MediaSet, pipeline: FakePipeline, sent: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Double verification with both producers faked (the real-producer version is in
    test_scoring_integration.py)."""
    from tests.screening.test_scoring import CRISIS, FakeScorer, write

    monkeypatch.setattr(scoring, "text_scorer", lambda: FakeScorer())
    entry = write(world, CRISIS)
    scoring.text_analysis_run(entry_id=entry.pk)
    pipeline.outcome.distress = 0.85
    video_process(video_id=make_video(world, media.good_mp4).pk)
    tiers = set(
        Alert.objects.filter(
            patient=world.patient_a, state__in=["open", "acknowledged"]
        ).values_list("tier", flat=True)
    )
    assert "orange" in tiers


def test_erasure_removes_media_analyses(
    world: Any, media: MediaSet, pipeline: FakePipeline, sent: list
) -> None:
    video_process(video_id=make_video(world, media.good_mp4).pk)
    assert MediaAnalysis.objects.filter(patient=world.patient_a).exists()
    patient_erase(actor=Actor.system(), patient=world.patient_a, reason="ticket 2")
    assert not MediaAnalysis.objects.filter(patient=world.patient_a).exists()
    assert not DailyMoodScore.objects.filter(patient=world.patient_a).exists()
