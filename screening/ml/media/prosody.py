"""Voice prosody features from mono audio: pitch, loudness, pauses, speech rate, voice quality.

Two backends compute the same frame-level contours and share every step after them
(:func:`features_from_contours`), so they can only differ where their pitch trackers differ:

* ``librosa`` (this module, the reference): pYIN (``librosa.pyin``, fmin 65 Hz, fmax 500 Hz) for
  F0 and voicing, ``librosa.feature.rms`` for intensity.
* ``torch`` (:mod:`screening.ml.media.prosody_torch`, the fast path): a batched YIN-style
  cumulative-mean-normalised difference function via FFT, on CUDA or CPU.

Frame grid (both backends): 16 kHz, hop 10 ms (160 samples), frames centred on ``i * hop``.

Features (all floats; NaN where undefined, ``None`` in :meth:`ProsodyFeatures.as_dict`):

* F0 over voiced frames: mean, median, SD and 5th-95th percentile range in Hz; the same in
  semitones (mean and median re 100 Hz; SD and range are reference-free); voiced fraction (voiced
  frames / frames inside the speech region).
* Intensity: mean and SD of frame RMS level in dBFS over speech frames (not pauses).
* Pauses: an energy detector (frames more than 25 dB below the 95th-percentile level are silent;
  silent runs of at least 0.25 s inside the speech region are pauses; leading and trailing silence
  is not counted). Ratio (pause time / speech-region time), count, mean and longest length.
  pYIN's voiced flag is not used for pauses: at its hop it yields about one voiced run per second
  whatever the speaking rate.
* Speech rate after de Jong & Wempe (2009): syllable nuclei are peaks of the smoothed intensity
  contour that stand out by at least 2 dB from the dips around them, lie above the silence
  threshold and fall on a voiced frame. ``speech_rate`` = nuclei per second of the speech region
  (pauses included), ``articulation_rate`` = nuclei per second of phonation (pauses excluded).
* Voice quality, frame-level approximations (10 ms frames, not Praat's cycle-by-cycle values, so
  their absolute values are lower than Praat's and only comparable within Vigil):
  jitter (local) = mean absolute difference of consecutive voiced frames' periods / mean period;
  shimmer (local) = the same on consecutive voiced frames' RMS amplitude;
  HNR (dB) = mean over voiced frames of ``10 log10(r / (1 - r))`` where ``r`` is the normalised
  autocorrelation at the pitch period (Boersma 1993).

Quality flags (any flag means ``abstain``): ``too_short`` (under 1 s), ``too_quiet`` (95th
percentile frame level under -50 dBFS), ``clipped`` (over 0.1 % of samples at full scale),
``low_snr`` (speech level less than 12 dB over the noise floor), ``no_voice`` (under 5 % voiced
frames or fewer than 10 voiced frames).

No Django here. Audio only ever arrives as arrays; nothing about the patient is logged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import find_peaks

from screening.ml.artifacts import ModelInfo, sha256_file

ALGORITHM_VERSION = "vigil-prosody-1"
SAMPLE_RATE = 16_000
HOP = 160  # 10 ms
FMIN = 65.0
FMAX = 500.0
PYIN_FRAME = 1024  # 64 ms: pYIN's window (first half) holds 4 periods of 65 Hz
RMS_FRAME = 400  # 25 ms
SILENCE_DB_BELOW_PEAK = 25.0
MIN_PAUSE_S = 0.25
NUCLEUS_DIP_DB = 2.0
NUCLEUS_MIN_GAP_S = 0.08
SMOOTH_FRAMES = 5  # 50 ms moving average of the intensity contour for nuclei
MIN_DURATION_S = 1.0
QUIET_DBFS = -50.0
CLIP_LEVEL = 0.999
CLIP_FRACTION = 0.001
LOW_SNR_DB = 12.0
MIN_VOICED_FRACTION = 0.05
MIN_VOICED_FRAMES = 10
FLOOR_DBFS = -100.0
_EPS = 1e-10

QUALITY_FLAGS = ("too_short", "too_quiet", "clipped", "low_snr", "no_voice")


@dataclass(frozen=True)
class ProsodyFeatures:
    """One recording's prosody. ``abstain`` is true when any quality flag is raised; the numbers are
    still filled where they can be computed, but must not be used for scoring then."""

    duration_s: float
    speech_s: float
    f0_mean_hz: float
    f0_median_hz: float
    f0_sd_hz: float
    f0_range_hz: float
    f0_mean_st: float
    f0_median_st: float
    f0_sd_st: float
    f0_range_st: float
    voiced_fraction: float
    intensity_mean_db: float
    intensity_sd_db: float
    pause_ratio: float
    pause_count: float
    pause_mean_s: float
    pause_longest_s: float
    syllable_count: float
    speech_rate: float
    articulation_rate: float
    jitter_local: float
    shimmer_local: float
    hnr_db: float
    snr_db: float
    clipped_fraction: float
    abstain: bool
    quality_flags: tuple[str, ...]
    backend: str
    algorithm_version: str
    model: ModelInfo

    def numbers(self) -> dict[str, float]:
        """The numeric features only, by name."""
        return {
            f.name: float(getattr(self, f.name))
            for f in fields(self)
            if f.name not in {"abstain", "quality_flags", "backend", "algorithm_version", "model"}
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes ``None``; floats rounded to 6 significant places."""
        out: dict[str, Any] = {}
        for name, value in self.numbers().items():
            out[name] = None if not math.isfinite(value) else float(f"{value:.6g}")
        out["abstain"] = self.abstain
        out["quality_flags"] = list(self.quality_flags)
        out["backend"] = self.backend
        out["algorithm_version"] = self.algorithm_version
        out["model"] = self.model.as_dict()
        return out


@dataclass(frozen=True)
class FrameContours:
    """Per-frame analysis on the shared 10 ms grid (``n`` frames, frame ``i`` centred at
    ``i * HOP``): F0 in Hz (NaN when unvoiced), voicing, linear RMS, and the normalised
    autocorrelation at the pitch period (NaN when unvoiced)."""

    f0: np.ndarray
    voiced: np.ndarray
    rms: np.ndarray
    periodicity: np.ndarray
    clipped_fraction: float | None = None  # when the backend measured it on its device

    def __post_init__(self) -> None:
        n = self.rms.shape[0]
        if not (self.f0.shape[0] == self.voiced.shape[0] == self.periodicity.shape[0] == n):
            raise ValueError("contours must have the same number of frames")


@cache
def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


@cache
def _source_hash(path: str) -> str:
    return sha256_file(Path(path))


def model_info(backend: str, implementation: str) -> ModelInfo:
    """What computed a feature set: backend, algorithm version + library version, and the SHA-256
    of the code (this module, and the backend's module) since there are no weights."""
    sources = [__file__]
    if backend.startswith("torch"):
        from screening.ml.media import prosody_torch

        sources.append(prosody_torch.__file__)
    digest = "".join(_source_hash(s) for s in sources)
    combined = digest if len(sources) == 1 else _hash_text(digest)
    return ModelInfo(
        name=f"vigil-prosody-{backend}",
        version=f"{ALGORITHM_VERSION}/{implementation}",
        sha256=combined,
    )


def _hash_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


# --- input -----------------------------------------------------------------------------------


def as_mono_16k(audio: np.ndarray, sr: int, *, sanitize: bool = True) -> np.ndarray:
    """Float32 mono at 16 kHz (averages channels, resamples with a polyphase filter). NaN and
    infinities become 0 unless ``sanitize`` is false (a caller that does it on its device)."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0) if x.shape[0] <= 8 else x.mean(axis=1)
    if x.ndim != 1:
        raise ValueError("audio must be 1-D (mono) or 2-D (channels)")
    if sr <= 0:
        raise ValueError("sample rate must be positive")
    if sr != SAMPLE_RATE:
        from scipy.signal import resample_poly

        g = math.gcd(SAMPLE_RATE, int(sr))
        x = resample_poly(x, SAMPLE_RATE // g, int(sr) // g).astype(np.float32)
    if sanitize:
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(x)


def n_frames(n_samples: int) -> int:
    return 1 + n_samples // HOP


# --- shared post-processing ------------------------------------------------------------------


def _db(x: np.ndarray) -> np.ndarray:
    """Level in dBFS, floored at :data:`FLOOR_DBFS` (digital silence would be minus infinity)."""
    return 20.0 * np.log10(np.maximum(x, 10.0 ** (FLOOR_DBFS / 20.0)))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges [start, end) where ``mask`` is true."""
    if mask.size == 0:
        return []
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _stats_or_nan(values: np.ndarray, fn: Callable[[np.ndarray], Any]) -> float:
    return float(fn(values)) if values.size else math.nan


def features_from_contours(
    audio: np.ndarray, contours: FrameContours, *, backend: str, model: ModelInfo
) -> ProsodyFeatures:
    """The feature set from frame contours of 16 kHz ``audio`` (shared by both backends)."""
    duration = audio.size / SAMPLE_RATE
    frame_s = HOP / SAMPLE_RATE
    level = _db(contours.rms)
    top = float(np.percentile(level, 95)) if level.size else FLOOR_DBFS
    sound = level > top - SILENCE_DB_BELOW_PEAK
    sound_idx = np.flatnonzero(sound)
    first, last = (int(sound_idx[0]), int(sound_idx[-1]) + 1) if sound_idx.size else (0, 0)

    # pauses: silent runs of >= MIN_PAUSE_S strictly inside [first, last)
    min_run = round(MIN_PAUSE_S / frame_s)
    pauses = [(a, b) for a, b in _runs(~sound[first:last]) if b - a >= min_run]
    pause_frames = np.zeros(level.size, dtype=bool)
    for a, b in pauses:
        pause_frames[first + a : first + b] = True
    region_frames = last - first
    region_s = region_frames * frame_s
    pause_lengths = np.array([(b - a) * frame_s for a, b in pauses])
    speaking = np.zeros(level.size, dtype=bool)
    speaking[first:last] = True
    speaking &= ~pause_frames
    speech_s = float(speaking.sum()) * frame_s

    # pitch
    voiced = contours.voiced.astype(bool) & speaking & np.isfinite(contours.f0)
    f0 = contours.f0[voiced]
    st = 12.0 * np.log2(f0 / 100.0) if f0.size else f0
    voiced_fraction = float(voiced.sum()) / max(1, region_frames)

    # intensity over speaking frames
    speech_level = level[speaking]

    # syllable nuclei
    nuclei = _syllable_nuclei(level, voiced=contours.voiced.astype(bool) & speaking, floor=top)
    phonation_s = speech_s

    jitter, shimmer = _perturbation(contours, voiced)
    periodicity = np.clip(contours.periodicity[voiced], 1e-4, 1 - 1e-4)
    hnr = 10.0 * np.log10(periodicity / (1.0 - periodicity)) if periodicity.size else periodicity

    if contours.clipped_fraction is not None:
        clipped_fraction = contours.clipped_fraction
    else:
        clipped_fraction = float(np.mean(np.abs(audio) >= CLIP_LEVEL)) if audio.size else 0.0
    noise_floor = float(np.percentile(level, 10)) if level.size else FLOOR_DBFS
    speech_top = float(np.percentile(speech_level, 90)) if speech_level.size else FLOOR_DBFS
    snr = speech_top - noise_floor

    flags = quality_flags(
        duration_s=duration,
        top_db=top,
        clipped_fraction=clipped_fraction,
        snr_db=snr,
        voiced_fraction=voiced_fraction,
        voiced_frames=int(voiced.sum()),
    )

    return ProsodyFeatures(
        duration_s=duration,
        speech_s=speech_s,
        f0_mean_hz=_stats_or_nan(f0, np.mean),
        f0_median_hz=_stats_or_nan(f0, np.median),
        f0_sd_hz=_stats_or_nan(f0, np.std),
        f0_range_hz=_stats_or_nan(f0, lambda v: np.percentile(v, 95) - np.percentile(v, 5)),
        f0_mean_st=_stats_or_nan(st, np.mean),
        f0_median_st=_stats_or_nan(st, np.median),
        f0_sd_st=_stats_or_nan(st, np.std),
        f0_range_st=_stats_or_nan(st, lambda v: np.percentile(v, 95) - np.percentile(v, 5)),
        voiced_fraction=voiced_fraction,
        intensity_mean_db=_stats_or_nan(speech_level, np.mean),
        intensity_sd_db=_stats_or_nan(speech_level, np.std),
        pause_ratio=float(pause_lengths.sum() / region_s) if region_s > 0 else math.nan,
        pause_count=float(len(pauses)),
        pause_mean_s=_stats_or_nan(pause_lengths, np.mean) if pauses else 0.0,
        pause_longest_s=_stats_or_nan(pause_lengths, np.max) if pauses else 0.0,
        syllable_count=float(nuclei.size),
        speech_rate=nuclei.size / region_s if region_s > 0 else math.nan,
        articulation_rate=nuclei.size / phonation_s if phonation_s > 0 else math.nan,
        jitter_local=jitter,
        shimmer_local=shimmer,
        hnr_db=_stats_or_nan(hnr, np.mean),
        snr_db=snr,
        clipped_fraction=clipped_fraction,
        abstain=bool(flags),
        quality_flags=flags,
        backend=backend,
        algorithm_version=ALGORITHM_VERSION,
        model=model,
    )


def quality_flags(
    *,
    duration_s: float,
    top_db: float,
    clipped_fraction: float,
    snr_db: float,
    voiced_fraction: float,
    voiced_frames: int,
) -> tuple[str, ...]:
    """The quality flags (see the module docstring); any flag means abstain."""
    flags: list[str] = []
    if duration_s < MIN_DURATION_S:
        flags.append("too_short")
    if top_db < QUIET_DBFS:
        flags.append("too_quiet")
    if clipped_fraction > CLIP_FRACTION:
        flags.append("clipped")
    if "too_quiet" not in flags and snr_db < LOW_SNR_DB:
        flags.append("low_snr")
    if voiced_fraction < MIN_VOICED_FRACTION or voiced_frames < MIN_VOICED_FRAMES:
        flags.append("no_voice")
    return tuple(flags)


def _syllable_nuclei(level: np.ndarray, *, voiced: np.ndarray, floor: float) -> np.ndarray:
    if level.size < SMOOTH_FRAMES:
        return np.zeros(0, dtype=np.int64)
    kernel = np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES
    return nuclei_from_smooth(np.convolve(level, kernel, mode="same"), voiced=voiced, floor=floor)


def nuclei_from_smooth(smooth: np.ndarray, *, voiced: np.ndarray, floor: float) -> np.ndarray:
    """Syllable nuclei (frame indices) from the smoothed level contour; ``floor`` is the 95th
    percentile level (peaks must be above the silence threshold under it)."""
    peaks, _ = find_peaks(
        smooth,
        height=floor - SILENCE_DB_BELOW_PEAK,
        prominence=NUCLEUS_DIP_DB,
        distance=max(1, round(NUCLEUS_MIN_GAP_S * SAMPLE_RATE / HOP)),
    )
    # voiced at the peak or a frame next to it (pitch trackers lag a frame at onsets)
    near = voiced.copy()
    near[1:] |= voiced[:-1]
    near[:-1] |= voiced[1:]
    return np.asarray(peaks[near[peaks]], dtype=np.int64)


def _perturbation(contours: FrameContours, voiced: np.ndarray) -> tuple[float, float]:
    pairs = voiced[1:] & voiced[:-1]
    if pairs.sum() < 2:
        return math.nan, math.nan
    period = 1.0 / np.where(voiced, contours.f0, np.nan)
    dp = np.abs(np.diff(period))[pairs]
    jitter = float(dp.mean() / np.nanmean(period[voiced]))
    amp = contours.rms
    da = np.abs(np.diff(amp))[pairs]
    shimmer = float(da.mean() / max(float(amp[voiced].mean()), _EPS))
    return jitter, shimmer


def rms_contour(audio: np.ndarray) -> np.ndarray:
    """Frame RMS (25 ms frames, zero-padded at the ends, centred on the 10 ms grid)."""
    import librosa

    return np.asarray(
        librosa.feature.rms(
            y=audio, frame_length=RMS_FRAME, hop_length=HOP, center=True, pad_mode="constant"
        )[0],
        dtype=np.float64,
    )[: n_frames(audio.size)]


def periodicity_at(audio: np.ndarray, f0: np.ndarray, *, window: int = 512) -> np.ndarray:
    """Normalised autocorrelation of each frame's ``window`` samples with the same samples one
    period later (NaN where ``f0`` is NaN). Frames centred on the 10 ms grid, zero-padded."""
    out = np.full(f0.shape[0], np.nan)
    max_lag = math.ceil(SAMPLE_RATE / FMIN) + 1
    pad = (window + max_lag) // 2 + 1
    x = np.concatenate([np.zeros(pad), audio.astype(np.float64), np.zeros(pad + window + max_lag)])
    span = window + max_lag
    for i in np.flatnonzero(np.isfinite(f0)):
        start = i * HOP + pad - span // 2
        lag = round(SAMPLE_RATE / float(f0[i]))
        a = x[start : start + window]
        b = x[start + lag : start + lag + window]
        denom = math.sqrt(float(a @ a) * float(b @ b))
        out[i] = float(a @ b) / denom if denom > _EPS else 0.0
    return out


# --- librosa reference -----------------------------------------------------------------------


def librosa_contours(audio: np.ndarray) -> FrameContours:
    import librosa

    f0, voiced, _prob = librosa.pyin(
        audio,
        fmin=FMIN,
        fmax=FMAX,
        sr=SAMPLE_RATE,
        frame_length=PYIN_FRAME,
        hop_length=HOP,
        center=True,
        pad_mode="constant",
    )
    frames = n_frames(audio.size)
    f0 = np.asarray(f0, dtype=np.float64)[:frames]
    voiced = np.asarray(voiced, dtype=bool)[:frames]
    f0 = np.where(voiced, f0, np.nan)
    rms = rms_contour(audio)
    return FrameContours(f0=f0, voiced=voiced, rms=rms, periodicity=periodicity_at(audio, f0))


def prosody_librosa(audio: np.ndarray, sr: int) -> ProsodyFeatures:
    """The reference feature set (pYIN). Seconds per minute of audio; see :func:`warm_up`."""
    return librosa_analysis(audio, sr)[0]


def librosa_analysis(audio: np.ndarray, sr: int) -> tuple[ProsodyFeatures, FrameContours]:
    """The reference feature set and the frame contours it came from."""
    x = as_mono_16k(audio, sr)
    frames = n_frames(x.size)
    if x.size < PYIN_FRAME:  # pYIN needs one whole frame: analyse zero-padded, keep own frames
        padded = np.concatenate([x, np.zeros(PYIN_FRAME - x.size, dtype=np.float32)])
        full = librosa_contours(padded)
        contours = FrameContours(
            f0=full.f0[:frames],
            voiced=full.voiced[:frames],
            rms=full.rms[:frames],
            periodicity=full.periodicity[:frames],
        )
    else:
        contours = librosa_contours(x)
    features = features_from_contours(
        x,
        contours,
        backend="librosa",
        model=model_info("librosa", f"librosa-{_version('librosa')}"),
    )
    return features, contours


@cache
def warm_up() -> None:
    """Run pYIN once on a short tone so numba compiles its kernels now (several seconds on the
    first call in a process) rather than during the first real recording."""
    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    prosody_librosa((0.3 * np.sin(2 * np.pi * 150.0 * t)).astype(np.float32), SAMPLE_RATE)


def prosody(
    audio: np.ndarray, sr: int, *, backend: str = "torch", device: str = "auto"
) -> ProsodyFeatures:
    """Convenience: one recording through ``backend`` ("torch", the fast path, or "librosa");
    ``device`` ("auto", "cpu", "cuda") applies to the torch backend."""
    if backend == "librosa":
        return prosody_librosa(audio, sr)
    if backend == "torch":
        from screening.ml.media.prosody_torch import prosody_torch_batch

        return prosody_torch_batch([audio], sr, device=device)[0]
    raise ValueError(f"unknown prosody backend: {backend}")


def prosody_batch(
    clips: list[np.ndarray], sr: int, *, backend: str = "torch", device: str = "auto"
) -> list[ProsodyFeatures]:
    """Several recordings at once: one batched call on the torch backend (the gpu queue's path),
    one clip after another on librosa. Same features as :func:`prosody`, clip by clip."""
    if backend == "librosa":
        return [prosody_librosa(clip, sr) for clip in clips]
    if backend == "torch":
        from screening.ml.media.prosody_torch import prosody_torch_batch

        return prosody_torch_batch(clips, sr, device=device)
    raise ValueError(f"unknown prosody backend: {backend}")
