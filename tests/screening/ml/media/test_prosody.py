"""The librosa (pYIN) reference prosody: known answers on synthetic voices, directional behaviour on
espeak-ng speech, and quality flags that make it abstain. Each clip is analysed once per session."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from screening.ml.media import prosody as p
from tests.screening.ml.media import media_gen
from tests.screening.ml.media.media_gen import HAS_ESPEAK, librosa_reference

needs_espeak = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")


def ref(name: str) -> p.ProsodyFeatures:
    return librosa_reference(name)[0]


@pytest.fixture(scope="session", autouse=True)
def _warm() -> None:
    p.warm_up()  # numba compiles pYIN once


@pytest.mark.parametrize("f0", [70, 120, 220, 400])
def test_known_f0_within_one_percent(f0: int) -> None:
    features = ref(f"tone:{f0}")
    assert features.f0_mean_hz == pytest.approx(f0, rel=0.01)
    assert features.f0_median_hz == pytest.approx(f0, rel=0.01)
    assert features.f0_mean_st == pytest.approx(12 * math.log2(f0 / 100), abs=0.2)
    assert features.f0_sd_st < 0.3
    assert features.voiced_fraction > 0.95
    assert features.quality_flags == ()
    assert not features.abstain
    assert features.backend == "librosa"


def test_pitch_spread_follows_vibrato() -> None:
    plain, wobbly = ref("tone:120"), ref("vibrato")
    assert wobbly.f0_mean_hz == pytest.approx(150, rel=0.01)
    # +-60 cents of vibrato: a 5-95 % range of roughly 1.1 semitones, against almost none
    assert 0.7 < wobbly.f0_range_st < 1.4
    assert plain.f0_range_st < 0.3
    assert wobbly.f0_sd_hz > 3 * plain.f0_sd_hz
    assert wobbly.f0_range_hz == pytest.approx(
        150 * (2 ** (wobbly.f0_range_st / 24) - 2 ** (-wobbly.f0_range_st / 24)), rel=0.15
    )


def test_inserted_silences_are_pauses() -> None:
    continuous, paused = ref("tone:220"), ref("pauses")
    assert continuous.pause_ratio == 0.0 and continuous.pause_count == 0
    assert paused.pause_count == 2
    assert paused.pause_ratio == pytest.approx(1.4 / 6.0, abs=0.03)
    assert paused.pause_longest_s == pytest.approx(0.8, abs=0.05)
    assert paused.pause_mean_s == pytest.approx(0.7, abs=0.05)
    assert paused.speech_s == pytest.approx(6.0 - 1.4, abs=0.1)
    # speech rate counts the pauses, articulation rate does not
    assert paused.articulation_rate > paused.speech_rate
    assert paused.intensity_mean_db == pytest.approx(continuous.intensity_mean_db, abs=1.0)


def test_speech_rate_counts_syllable_pulses() -> None:
    slow, normal = ref("rate:3"), ref("tone:220")
    assert slow.speech_rate == pytest.approx(3.0, rel=0.1)
    assert normal.speech_rate == pytest.approx(4.0, rel=0.1)
    assert slow.syllable_count == pytest.approx(15, abs=1)


def test_clean_voice_has_low_perturbation_and_high_hnr() -> None:
    features = ref("tone:220")
    assert features.jitter_local < 0.01
    assert features.hnr_db > 20
    assert features.snr_db > 20


def test_added_noise_lowers_hnr() -> None:
    clean, noisy = ref("tone:220"), ref("noisy:0.1")
    assert noisy.hnr_db < clean.hnr_db - 6
    assert noisy.f0_mean_hz == pytest.approx(220, rel=0.02)


@pytest.mark.parametrize(
    ("name", "flag"),
    [
        ("silence", "too_quiet"),
        ("quiet", "too_quiet"),
        ("short", "too_short"),
        ("clipped", "clipped"),
    ],
)
def test_quality_flags_make_it_abstain(name: str, flag: str) -> None:
    features = ref(name)
    assert flag in features.quality_flags
    assert features.abstain
    assert set(features.quality_flags) <= set(p.QUALITY_FLAGS)


def test_clipped_voice_keeps_its_pitch_but_is_flagged() -> None:
    features = ref("clipped")
    assert features.clipped_fraction > 0.001
    assert features.f0_mean_hz == pytest.approx(220, rel=0.01)
    assert ref("tone:220").clipped_fraction == 0.0


def test_silence_has_no_pitch() -> None:
    features = ref("silence")
    assert math.isnan(features.f0_mean_hz)
    assert "no_voice" in features.quality_flags
    assert features.as_dict()["f0_mean_hz"] is None


def test_as_dict_is_json_and_carries_the_provenance() -> None:
    out = ref("pauses").as_dict()
    json.dumps(out, allow_nan=False)
    assert out["algorithm_version"] == p.ALGORITHM_VERSION
    assert out["model"]["name"] == "vigil-prosody-librosa"
    assert len(out["model"]["sha256"]) == 64
    assert out["model"]["version"].startswith(p.ALGORITHM_VERSION + "/librosa-")
    assert set(out) >= {"f0_mean_hz", "pause_ratio", "speech_rate", "jitter_local", "hnr_db"}
    assert out["abstain"] is False and out["quality_flags"] == []


def test_unknown_backend() -> None:
    with pytest.raises(ValueError):
        p.prosody(np.zeros(16_000, dtype=np.float32), 16_000, backend="praat")


def test_input_checks() -> None:
    with pytest.raises(ValueError):
        p.as_mono_16k(np.zeros((2, 3, 4), dtype=np.float32), 16_000)
    with pytest.raises(ValueError):
        p.as_mono_16k(np.zeros(10, dtype=np.float32), 0)
    stereo = np.stack([np.ones(441), np.ones(441)]).astype(np.float32)
    assert p.as_mono_16k(stereo, 44_100).shape == (160,)


# --- espeak-ng speech: directional -----------------------------------------------------------


@needs_espeak
def test_higher_espeak_pitch_gives_higher_f0() -> None:
    low, mid, high = (ref(f"espeak_p:{v}").f0_mean_hz for v in (20, 50, 80))
    assert low * 1.1 < mid and mid * 1.1 < high


@needs_espeak
def test_faster_espeak_gives_higher_speech_rate() -> None:
    slow, normal, fast = (ref(n) for n in ("espeak_s:120", "espeak_p:50", "espeak_s:250"))
    assert slow.speech_rate < normal.speech_rate < fast.speech_rate
    assert fast.speech_rate > 1.3 * slow.speech_rate
    # same words: about the same number of syllable nuclei whatever the speed
    assert fast.syllable_count == pytest.approx(slow.syllable_count, rel=0.25)


@needs_espeak
def test_silences_between_sentences_raise_pause_ratio() -> None:
    joined, gapped = ref("espeak_gaps:0.0"), ref("espeak_gaps:1.0")
    assert gapped.pause_ratio > joined.pause_ratio + 0.2
    assert gapped.pause_count >= 2
    # 1 s of inserted silence plus the silence espeak-ng leaves around each sentence
    assert 0.95 <= gapped.pause_longest_s < 1.6
    assert gapped.speech_rate < joined.speech_rate
    assert gapped.articulation_rate == pytest.approx(joined.articulation_rate, rel=0.2)


@needs_espeak
def test_espeak_speech_is_usable() -> None:
    features = ref("espeak_p:50")
    assert not features.abstain, features.quality_flags
    assert 60 < features.f0_mean_hz < 200
    assert 0.3 < features.voiced_fraction < 0.95
    assert 2.0 < features.speech_rate < 7.0


def test_clip_registry_is_read_only() -> None:
    audio = media_gen.clip("tone:220")
    with pytest.raises(ValueError):
        audio[0] = 1.0
