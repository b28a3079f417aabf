"""The batched torch fast path: agreement with the librosa (pYIN) reference within the stated
tolerance, batch/chunk/gain invariance, the right-sized FFT, and device selection. Runs on CPU; the
CUDA comparison runs only where a GPU is present.

Stated tolerance (per clip, on synthetic voices and espeak-ng speech): mean F0 within 1 %; median
per-frame F0 difference, on frames both backends call voiced, under 20 cents; pause ratio within
0.03.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import resample_poly

from screening.ml.media import prosody as p
from screening.ml.media import prosody_torch as pt
from tests.screening.ml.media import media_gen
from tests.screening.ml.media.media_gen import (
    ESPEAK_CLIPS,
    HAS_ESPEAK,
    SYNTHETIC_CLIPS,
    clip,
    librosa_reference,
)

needs_espeak = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")
F0_MEAN_REL = 0.01
F0_MEDIAN_CENTS = 20.0
PAUSE_RATIO_ABS = 0.03

_FAST: dict[str, tuple[p.ProsodyFeatures, p.FrameContours]] = {}


def fast(name: str) -> tuple[p.ProsodyFeatures, p.FrameContours]:
    if name not in _FAST:
        audio = clip(name)
        _FAST[name] = (
            pt.prosody_torch_batch([audio], 16_000, device="cpu")[0],
            pt.torch_contours(audio, device="cpu"),
        )
    return _FAST[name]


@pytest.fixture(scope="session", autouse=True)
def _warm() -> None:
    p.warm_up()


def _check_agreement(name: str) -> None:
    reference, ref_frames = librosa_reference(name)
    features, frames = fast(name)
    assert features.f0_mean_hz == pytest.approx(reference.f0_mean_hz, rel=F0_MEAN_REL)
    both = ref_frames.voiced & frames.voiced
    assert both.sum() > 0.5 * ref_frames.voiced.sum()
    cents = 1200 * np.abs(np.log2(frames.f0[both] / ref_frames.f0[both]))
    assert float(np.median(cents)) < F0_MEDIAN_CENTS
    assert features.pause_ratio == pytest.approx(reference.pause_ratio, abs=PAUSE_RATIO_ABS)
    # the shared post-processing sees the same loudness: identical intensity and pauses
    assert features.intensity_mean_db == pytest.approx(reference.intensity_mean_db, abs=0.05)
    assert features.pause_count == reference.pause_count
    assert features.quality_flags == reference.quality_flags


@pytest.mark.parametrize("name", SYNTHETIC_CLIPS)
def test_agrees_with_librosa_on_synthetic_voices(name: str) -> None:
    _check_agreement(name)


@needs_espeak
@pytest.mark.parametrize("name", ESPEAK_CLIPS)
def test_agrees_with_librosa_on_espeak_speech(name: str) -> None:
    _check_agreement(name)


@pytest.mark.parametrize("f0", [70, 120, 220, 400])
def test_known_f0_within_one_percent(f0: int) -> None:
    features, _ = fast(f"tone:{f0}")
    assert features.f0_mean_hz == pytest.approx(f0, rel=0.01)
    assert features.voiced_fraction > 0.95
    assert features.backend == "torch-cpu"
    assert not features.abstain


def test_pauses_and_rate_on_synthetic_voices() -> None:
    paused, _ = fast("pauses")
    assert paused.pause_count == 2
    assert paused.pause_ratio == pytest.approx(1.4 / 6.0, abs=0.03)
    slow, _ = fast("rate:3")
    normal, _ = fast("tone:220")
    assert slow.speech_rate == pytest.approx(3.0, rel=0.1)
    assert normal.speech_rate == pytest.approx(4.0, rel=0.1)


@pytest.mark.parametrize(
    ("name", "flag"),
    [
        ("silence", "too_quiet"),
        ("quiet", "too_quiet"),
        ("short", "too_short"),
        ("clipped", "clipped"),
    ],
)
def test_quality_flags(name: str, flag: str) -> None:
    features, _ = fast(name)
    assert flag in features.quality_flags and features.abstain


@needs_espeak
def test_directional_on_espeak() -> None:
    low, mid, high = (fast(f"espeak_p:{v}")[0].f0_mean_hz for v in (20, 50, 80))
    assert low * 1.1 < mid and mid * 1.1 < high
    rates = [fast(n)[0].speech_rate for n in ("espeak_s:120", "espeak_p:50", "espeak_s:250")]
    assert rates[0] < rates[1] < rates[2]
    assert fast("espeak_gaps:1.0")[0].pause_ratio > fast("espeak_gaps:0.0")[0].pause_ratio + 0.2


# --- invariances -----------------------------------------------------------------------------


def _close(a: p.ProsodyFeatures, b: p.ProsodyFeatures, *, rel: float = 1e-4) -> None:
    for key, value in a.numbers().items():
        other = b.numbers()[key]
        if math.isnan(value):
            assert math.isnan(other), key
        else:
            assert other == pytest.approx(value, rel=rel, abs=1e-6), key
    assert a.quality_flags == b.quality_flags


def test_batch_results_do_not_depend_on_the_batch() -> None:
    """Clips of different lengths padded into one batch give what each gives alone."""
    names = ["pauses", "tone:120", "short", "vibrato"]
    batch = pt.prosody_torch_batch([clip(n) for n in names], 16_000, device="cpu")
    for name, features in zip(names, batch, strict=True):
        _close(fast(name)[0], features)


def test_chunk_size_does_not_change_results() -> None:
    audio = clip("pauses")
    small = pt.prosody_torch_batch([audio, audio], 16_000, device="cpu", chunk_frames=37)[0]
    _close(fast("pauses")[0], small)


def test_gain_changes_loudness_only() -> None:
    audio = clip("pauses")
    base = fast("pauses")[0]
    half = pt.prosody_torch_batch([audio * 0.5], 16_000, device="cpu")[0]
    assert half.intensity_mean_db == pytest.approx(
        base.intensity_mean_db - 20 * math.log10(2), abs=0.01
    )
    assert half.f0_mean_hz == pytest.approx(base.f0_mean_hz, rel=1e-3)
    assert half.pause_ratio == base.pause_ratio
    assert half.speech_rate == base.speech_rate


def test_other_sample_rates_and_stereo_are_converted() -> None:
    audio = clip("tone:220")
    stereo_44k = np.stack([resample_poly(audio, 441, 160)] * 2).astype(np.float32)
    features = pt.prosody_torch_batch([stereo_44k], 44_100, device="cpu")[0]
    assert features.f0_mean_hz == pytest.approx(220, rel=0.01)
    assert features.duration_s == pytest.approx(4.0, abs=0.01)


def test_convenience_defaults_to_torch() -> None:
    features = p.prosody(clip("tone:120"), 16_000)
    assert features.backend.startswith("torch-")
    assert features.model.name == "vigil-prosody-torch"
    assert features.model.version.startswith(p.ALGORITHM_VERSION + "/torch-")
    assert features.model.sha256 != librosa_reference("tone:120")[0].model.sha256
    assert p.prosody(clip("tone:120"), 16_000, backend="librosa").backend == "librosa"


def test_empty_batch() -> None:
    assert pt.prosody_torch_batch([], 16_000) == []


# --- FFT length and devices ------------------------------------------------------------------


def _is_5_smooth(n: int) -> bool:
    for f in (2, 3, 5):
        while n % f == 0:
            n //= f
    return n == 1


def test_fft_length_is_right_sized() -> None:
    assert pt.SPAN == pt.WINDOW + pt.TAU_MAX
    assert pt.TAU_MAX >= 16_000 / 65
    assert pt.FFT_SIZE >= pt.SPAN
    assert _is_5_smooth(pt.FFT_SIZE)
    assert 1 << (pt.SPAN - 1).bit_length() > pt.FFT_SIZE  # not the next power of two
    assert pt.FFT_SIZE == 768


@pytest.mark.parametrize("n", [1, 2, 7, 11, 97, 257, 760, 1000, 1025, 4097])
def test_smallest_5_smooth(n: int) -> None:
    expected = next(k for k in range(n, 4 * n + 2) if _is_5_smooth(k))
    assert pt.smallest_5_smooth_at_least(n) == expected


def test_device_selection() -> None:
    assert pt.resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pt.resolve_device("auto").type == expected
    with pytest.raises(ValueError):
        pt.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):
            pt.resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_agrees_with_cpu() -> None:
    names = ["pauses", "vibrato", "tone:70"]
    gpu = pt.prosody_torch_batch([clip(n) for n in names], 16_000, device="cuda")
    for name, features in zip(names, gpu, strict=True):
        cpu = fast(name)[0]
        assert features.f0_mean_hz == pytest.approx(cpu.f0_mean_hz, rel=1e-3)
        assert features.pause_ratio == pytest.approx(cpu.pause_ratio, abs=0.01)


def test_gen_clip_names_cover_the_test_lists() -> None:
    for name in (*SYNTHETIC_CLIPS, "silence", "short", "clipped", "quiet"):
        assert media_gen.clip(name).dtype == np.float32


def test_non_finite_samples_are_silenced_on_the_device() -> None:
    audio = clip("tone:220").copy()
    audio[1000:1010] = np.nan
    audio[5000] = np.inf
    features = pt.prosody_torch_batch([audio], 16_000, device="cpu")[0]
    assert features.f0_mean_hz == pytest.approx(220, rel=0.01)
    assert features.clipped_fraction == 0.0
    assert math.isfinite(features.intensity_mean_db)


def test_clipped_fraction_matches_the_reference() -> None:
    assert fast("clipped")[0].clipped_fraction == pytest.approx(
        librosa_reference("clipped")[0].clipped_fraction, rel=1e-6
    )


@pytest.mark.parametrize("n", [0, 1, 100, 2_000])
def test_empty_and_tiny_clips_abstain_on_both_backends(n: int) -> None:
    audio = np.zeros(n, dtype=np.float32)
    fast_features = pt.prosody_torch_batch([clip("tone:220"), audio], 16_000, device="cpu")[1]
    reference = p.prosody_librosa(audio, 16_000)
    for features in (fast_features, reference):
        assert features.abstain
        assert "too_short" in features.quality_flags
        assert features.duration_s == pytest.approx(n / 16_000)


# --- the batched post-processing is the shared one, vectorised --------------------------------


def test_batched_features_equal_the_shared_post_processing() -> None:
    names = [*SYNTHETIC_CLIPS, "silence", "short", "clipped", "quiet"]
    if HAS_ESPEAK:
        names += ["espeak_p:50", "espeak_gaps:1.0"]
    clips = [clip(n) for n in names] + [np.zeros(100, dtype=np.float32)]
    batched = pt.prosody_torch_batch(clips, 16_000, device="cpu")
    shared = pt.prosody_torch_batch_reference(clips, 16_000, device="cpu")
    for one, other in zip(batched, shared, strict=True):
        _close(other, one, rel=1e-9)
        assert one.syllable_count == other.syllable_count


def test_masked_percentiles_match_numpy() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(6, 50))
    mask = rng.random((6, 50)) < 0.6
    mask[0] = False  # empty row
    mask[1] = False
    mask[1, 7] = True  # single value
    qs = [5.0, 10.0, 50.0, 90.0, 95.0]
    got = pt._masked_percentiles(torch.from_numpy(values), torch.from_numpy(mask), qs).numpy()
    assert np.isnan(got[0]).all()
    for row in range(1, 6):
        expected = np.percentile(values[row][mask[row]], qs)
        np.testing.assert_allclose(got[row], expected, rtol=1e-12)


def test_run_lengths() -> None:
    mask = torch.tensor([[True, True, False, True, False, False, True, True, True]])
    expected = [[2, 2, 0, 1, 0, 0, 3, 3, 3]]
    assert pt._run_lengths(mask).tolist() == expected


def test_batched_voicing_cleanup_equals_the_per_clip_one() -> None:
    rng = np.random.default_rng(5)
    rows_f0, rows_voiced = [], []
    for _ in range(8):
        f0 = 150 * 2 ** (rng.normal(0, 0.1, 300))
        f0[rng.random(300) < 0.05] *= 2  # octave errors up
        f0[rng.random(300) < 0.05] /= 2  # and down
        f0[rng.random(300) < 0.03] *= 5  # noise far away
        rows_f0.append(f0)
        rows_voiced.append(rng.random(300) < 0.8)
    rows_voiced[0][:] = False
    rows_voiced[0][:4] = True  # under 5 voiced frames: left alone
    f0_t = torch.from_numpy(np.stack(rows_f0))
    voiced_t = torch.from_numpy(np.stack(rows_voiced))
    got_f0, got_voiced = pt._clean_voicing_batch(f0_t, voiced_t)
    for i in range(8):
        want_f0, want_voiced = pt._clean_voicing(rows_f0[i], rows_voiced[i])
        np.testing.assert_array_equal(got_voiced[i].numpy(), want_voiced)
        np.testing.assert_allclose(got_f0[i].numpy()[want_voiced], want_f0[want_voiced], rtol=1e-12)
