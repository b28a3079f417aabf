"""Batched prosody on torch (CUDA when present, CPU otherwise): the fast path.

Same frame grid and the same feature definitions as the librosa reference; the frame contours are
computed here for a whole batch of clips at once, and so is the post-processing
(:func:`_features_batch`: :func:`screening.ml.media.prosody.features_from_contours` vectorised over
clips on the device in float64; only scipy's syllable peak picking runs per clip on the CPU). The
batched post-processing is tested equal (1e-9) to the shared per-clip one
(:func:`prosody_torch_batch_reference`).

* **Pitch**: YIN's cumulative-mean-normalised difference function (de Cheveigne & Kawahara 2002).
  Each frame is ``W + tau_max`` samples (W = 512, tau_max = ceil(16000 / 65) + 1 = 248); the
  cross-correlation of its first W samples with the whole frame, for every lag up to tau_max, is
  one complex product of two real FFTs of length :data:`FFT_SIZE` = 768: the smallest 5-smooth
  length (2^a 3^b 5^c) that is at least W + tau_max, so that no lag wraps around (the next power
  of two, 1024, would be a third more work). Energies per lag come from a cumulative sum of
  squares. The period is the first local minimum under :data:`YIN_THRESHOLD` (else the global
  minimum), refined by parabolic interpolation; a frame is voiced when that minimum is under
  :data:`VOICING_THRESHOLD`. Octave jumps against the clip's median F0 are folded back.
* **RMS**: 25 ms windows (zero-padded ends), by average pooling of squared samples.
* **Periodicity** at the chosen lag, for HNR: ``r(tau) / sqrt(e0 * e_tau)`` from the same
  correlation and energies (the reference computes the same quantity directly).

Frames are processed in chunks sized for the cache (CPU, :data:`CPU_CHUNK_FRAMES`) or for device
memory (CUDA, :data:`CUDA_CHUNK_FRAMES`), so memory stays bounded for any batch size. Agreement with
pYIN (tested on synthetic voices and espeak-ng speech): mean F0 within 1 %, median per-frame F0
difference on frames both call voiced under 20 cents, pause ratio within 0.03.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from screening.ml.artifacts import ModelInfo
from screening.ml.media.prosody import (
    ALGORITHM_VERSION,
    CLIP_LEVEL,
    FLOOR_DBFS,
    FMAX,
    FMIN,
    HOP,
    MIN_PAUSE_S,
    RMS_FRAME,
    SAMPLE_RATE,
    SILENCE_DB_BELOW_PEAK,
    SMOOTH_FRAMES,
    FrameContours,
    ProsodyFeatures,
    as_mono_16k,
    features_from_contours,
    model_info,
    n_frames,
    nuclei_from_smooth,
    quality_flags,
)

WINDOW = 512  # integration window: 32 ms, two periods of 65 Hz
TAU_MIN = math.floor(SAMPLE_RATE / FMAX)  # 32
TAU_MAX = math.ceil(SAMPLE_RATE / FMIN) + 1  # 248 (one extra lag for the parabola)
SPAN = WINDOW + TAU_MAX  # samples per analysis frame
YIN_THRESHOLD = 0.15
VOICING_THRESHOLD = 0.45
MAX_OCTAVES_FROM_MEDIAN = 1.0
MIN_VOICED_RUN = 3
CPU_CHUNK_FRAMES = 512  # ~1.5 MB per (frames x FFT) float32 array: stays in L2/L3
CUDA_CHUNK_FRAMES = 131_072  # ~400 MB per array


def smallest_5_smooth_at_least(n: int) -> int:
    """The smallest integer >= ``n`` whose only prime factors are 2, 3 and 5."""
    if n <= 1:
        return 1
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


FFT_SIZE = smallest_5_smooth_at_least(SPAN)  # 768


def resolve_device(device: str) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; ``"cpu"`` and ``"cuda"`` are taken as given
    (``"cuda"`` without a GPU raises)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in {"cpu", "cuda"} and not device.startswith("cuda:"):
        raise ValueError(f"unknown device: {device}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA requested but not available")
    return torch.device(device)


@cache
def _lag_weights(device: torch.device) -> torch.Tensor:
    """The lags 1..TAU_MAX as float32 (YIN's cumulative mean normalisation multiplies by tau)."""
    return torch.arange(1, TAU_MAX + 1, device=device, dtype=torch.float32)


def _yin_chunk(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(f0 Hz, voiced, periodicity) for a (n, SPAN) chunk of frames."""
    spectrum = torch.fft.rfft(frames, n=FFT_SIZE)
    head = torch.fft.rfft(frames[:, :WINDOW], n=FFT_SIZE)
    corr = torch.fft.irfft(spectrum * head.conj(), n=FFT_SIZE)[:, : TAU_MAX + 1]
    squares = F.pad(torch.cumsum(frames * frames, dim=1), (1, 0))
    e_tau = squares[:, WINDOW : WINDOW + TAU_MAX + 1] - squares[:, : TAU_MAX + 1]  # lags 0..max
    e0 = e_tau[:, :1]
    diff = (e0 + e_tau[:, 1:] - 2.0 * corr[:, 1:]).clamp_min(0.0)  # lags 1..TAU_MAX
    cmndf = diff * _lag_weights(frames.device) / torch.cumsum(diff, dim=1).clamp_min(1e-12)

    c = cmndf[:, TAU_MIN - 1 :]  # candidate lags TAU_MIN..TAU_MAX
    inner = c[:, 1:-1]
    local_min = (inner < c[:, :-2]) & (inner <= c[:, 2:]) & (inner < YIN_THRESHOLD)
    has_dip = local_min.any(dim=1)
    first_dip = torch.argmax(local_min.to(torch.uint8), dim=1) + 1
    global_min = torch.argmin(inner, dim=1) + 1
    pick = torch.where(has_dip, first_dip, global_min)  # index into c, 1..len-2
    around = torch.gather(c, 1, torch.stack([pick - 1, pick, pick + 1], dim=1))
    c_prev, c_here, c_next = around[:, 0], around[:, 1], around[:, 2]
    denom = c_prev - 2.0 * c_here + c_next
    shift = torch.where(
        denom.abs() > 1e-12, 0.5 * (c_prev - c_next) / denom, torch.zeros_like(denom)
    ).clamp(-0.5, 0.5)
    lag = pick + TAU_MIN
    f0 = SAMPLE_RATE / (lag.to(frames.dtype) + shift)
    voiced = (c_here < VOICING_THRESHOLD) & (e0[:, 0] > 0)

    at_lag = lag.clamp_max(TAU_MAX).unsqueeze(1)
    r = torch.gather(corr, 1, at_lag)[:, 0]
    energy = torch.sqrt((e0[:, 0] * torch.gather(e_tau, 1, at_lag)[:, 0]).clamp_min(1e-20))
    periodicity = torch.where(energy > 1e-10, r / energy, torch.zeros_like(r))
    return f0, voiced, periodicity


def _clean_voicing(f0: np.ndarray, voiced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Post-process one clip's YIN track (pYIN's HMM does the equivalent by smoothing): fold
    frames an octave away from the clip's median F0 back towards it (YIN's typical error is a
    period halving or doubling on one frame), unvoice frames still more than
    :data:`MAX_OCTAVES_FROM_MEDIAN` away (fricative noise), and unvoice voiced runs shorter than
    :data:`MIN_VOICED_RUN` frames."""
    voiced = voiced.copy()
    if voiced.sum() < 5:
        return f0, voiced
    median = float(np.median(f0[voiced]))
    out = f0.copy()
    ratio = np.log2(np.where(voiced, f0, median) / median)
    out[voiced & (np.abs(ratio - 1.0) < 0.25)] /= 2.0
    out[voiced & (np.abs(ratio + 1.0) < 0.25)] *= 2.0
    ratio = np.log2(np.where(voiced, out, median) / median)
    voiced &= np.abs(ratio) <= MAX_OCTAVES_FROM_MEDIAN
    padded = np.concatenate([[False], voiced, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if b - a < MIN_VOICED_RUN:
            voiced[a:b] = False
    return out, voiced


@dataclass(frozen=True)
class _Batch:
    """A batch's cleaned contours, on the device: (clips, frames) tensors, ``valid`` marks each
    clip's own frames (the rest is padding)."""

    f0: torch.Tensor  # float32, NaN where unvoiced
    voiced: torch.Tensor  # bool
    rms: torch.Tensor  # float32
    periodicity: torch.Tensor  # float32, NaN where unvoiced
    valid: torch.Tensor  # bool
    samples: list[int]
    frames: list[int]
    clipped: torch.Tensor  # float64 (clips,), fraction of samples at full scale


def _analyse(clips: Sequence[np.ndarray], device: torch.device, chunk_frames: int) -> _Batch:
    lengths = [c.size for c in clips]
    frames_per_clip = [n_frames(n) for n in lengths]
    max_frames = max(frames_per_clip)
    left = SPAN // 2
    padded_len = (max_frames - 1) * HOP + SPAN
    if device.type == "cpu":
        batch = torch.zeros((len(clips), padded_len), dtype=torch.float32)
        host = batch.numpy()  # a view: numpy copies read-only inputs in without a warning
        for i, clip in enumerate(clips):
            host[i, left : left + clip.size] = clip
    else:  # one transfer per clip, padded on the device (no batch-sized host copy)
        batch = torch.zeros((len(clips), padded_len), dtype=torch.float32, device=device)
        for i, clip in enumerate(clips):
            source = clip if clip.flags.writeable else clip.copy()
            batch[i, left : left + clip.size] = torch.from_numpy(source).to(device)
    batch.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    n_samples = torch.tensor(lengths, device=device, dtype=torch.float64).clamp_min(1.0)
    clipped = (batch.abs() >= CLIP_LEVEL).sum(dim=1).to(torch.float64) / n_samples

    # RMS: mean of squares over 25 ms windows centred on the grid, zero-padded ends
    rms_left = RMS_FRAME // 2
    rms_source = batch[:, left - rms_left :]
    rms = torch.sqrt(
        F.avg_pool1d((rms_source * rms_source).unsqueeze(1), kernel_size=RMS_FRAME, stride=HOP)
    ).squeeze(1)[:, :max_frames]

    views = batch.unfold(1, SPAN, HOP)  # (clips, max_frames, SPAN), no copy
    f0 = torch.empty((len(clips), max_frames), dtype=torch.float32, device=device)
    voiced = torch.empty((len(clips), max_frames), dtype=torch.bool, device=device)
    periodicity = torch.empty((len(clips), max_frames), dtype=torch.float32, device=device)
    clips_per_chunk = max(1, chunk_frames // max_frames)
    frames_per_chunk = min(max_frames, chunk_frames)
    with torch.inference_mode():
        for c0 in range(0, len(clips), clips_per_chunk):
            c1 = min(len(clips), c0 + clips_per_chunk)
            for f_start in range(0, max_frames, frames_per_chunk):
                f_end = min(max_frames, f_start + frames_per_chunk)
                chunk = views[c0:c1, f_start:f_end].reshape(-1, SPAN)
                cf0, cvoiced, cper = _yin_chunk(chunk)
                shape = (c1 - c0, f_end - f_start)
                f0[c0:c1, f_start:f_end] = cf0.reshape(shape)
                voiced[c0:c1, f_start:f_end] = cvoiced.reshape(shape)
                periodicity[c0:c1, f_start:f_end] = cper.reshape(shape)
    frame_index = torch.arange(max_frames, device=device)
    valid = frame_index.unsqueeze(0) < torch.tensor(frames_per_clip, device=device).unsqueeze(1)
    clean_f0, clean_voiced = _clean_voicing_batch(f0.to(torch.float64), voiced & valid)
    nan = torch.tensor(math.nan, device=device)
    return _Batch(
        f0=torch.where(clean_voiced, clean_f0.to(torch.float32), nan),
        voiced=clean_voiced,
        rms=rms,
        periodicity=torch.where(clean_voiced, periodicity, nan),
        valid=valid,
        samples=lengths,
        frames=frames_per_clip,
        clipped=clipped,
    )


# --- batched helpers (rows = clips) ----------------------------------------------------------


def _masked_percentiles(
    values: torch.Tensor, mask: torch.Tensor, qs: Sequence[float]
) -> torch.Tensor:
    """numpy's ``percentile(values[row][mask[row]], q)`` (method "linear") for every row and q:
    (rows, len(qs)), NaN for rows with no masked value."""
    count = mask.sum(dim=1)
    ordered, _ = torch.sort(torch.where(mask, values, torch.inf), dim=1)
    q = torch.tensor(qs, dtype=values.dtype, device=values.device) / 100.0
    pos = q.unsqueeze(0) * (count - 1).clamp_min(0).unsqueeze(1).to(values.dtype)
    lo = pos.floor().long()
    hi = pos.ceil().long()
    t = pos - lo.to(values.dtype)
    a = torch.gather(ordered, 1, lo)
    b = torch.gather(ordered, 1, hi)
    diff = b - a
    out = torch.where(t >= 0.5, b - diff * (1.0 - t), a + diff * t)
    out = torch.where(a == b, a, out)
    return torch.where((count > 0).unsqueeze(1), out, torch.nan)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    count = mask.sum(dim=1)
    total = torch.where(mask, values, 0.0).sum(dim=1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.nan)


def _masked_std(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mean = _masked_mean(values, mask)
    dev = torch.where(mask, values - mean.unsqueeze(1), 0.0)
    count = mask.sum(dim=1)
    return torch.where(
        count > 0, torch.sqrt((dev * dev).sum(dim=1) / count.clamp_min(1)), torch.nan
    )


def _run_lengths(mask: torch.Tensor) -> torch.Tensor:
    """For every true element, the length of the run of trues it belongs to (0 elsewhere)."""
    n = mask.shape[1]
    index = torch.arange(n, device=mask.device).expand_as(mask)
    prev_false = torch.cummax(torch.where(mask, -1, index), dim=1).values
    next_false = torch.flip(
        torch.cummin(torch.flip(torch.where(mask, n, index), dims=[1]), dim=1).values, dims=[1]
    )
    return torch.where(mask, next_false - prev_false - 1, 0)


def _clean_voicing_batch(
    f0: torch.Tensor, voiced: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_clean_voicing` for every row at once (float64 ``f0``)."""
    enough = voiced.sum(dim=1) >= 5
    median = _masked_percentiles(f0, voiced, [50.0])  # (rows, 1)
    ratio = torch.log2(torch.where(voiced, f0, median) / median)
    out = torch.where(voiced & ((ratio - 1.0).abs() < 0.25), f0 / 2.0, f0)
    out = torch.where(voiced & ((ratio + 1.0).abs() < 0.25), f0 * 2.0, out)
    ratio = torch.log2(torch.where(voiced, out, median) / median)
    kept = voiced & (ratio.abs() <= MAX_OCTAVES_FROM_MEDIAN)
    kept &= _run_lengths(kept) >= MIN_VOICED_RUN
    rows = enough.unsqueeze(1)
    return torch.where(rows, out, f0), torch.where(rows, kept, voiced)


def _contours_batch(
    clips: Sequence[np.ndarray], device: torch.device, chunk_frames: int
) -> list[FrameContours]:
    """Each clip's cleaned contours on the CPU (for tests, diagnostics and the bench)."""
    batch = _analyse(clips, device, chunk_frames)
    f0 = batch.f0.cpu().numpy().astype(np.float64)
    voiced = batch.voiced.cpu().numpy()
    rms = batch.rms.cpu().numpy().astype(np.float64)
    per = batch.periodicity.cpu().numpy().astype(np.float64)
    clipped = batch.clipped.cpu().numpy()
    return [
        FrameContours(
            f0=f0[i, :n],
            voiced=voiced[i, :n],
            rms=rms[i, :n],
            periodicity=per[i, :n],
            clipped_fraction=float(clipped[i]),
        )
        for i, n in enumerate(batch.frames)
    ]


_COLUMNS = (
    "speech_s",
    "f0_mean_hz",
    "f0_median_hz",
    "f0_sd_hz",
    "f0_range_hz",
    "f0_mean_st",
    "f0_median_st",
    "f0_sd_st",
    "f0_range_st",
    "voiced_fraction",
    "intensity_mean_db",
    "intensity_sd_db",
    "pause_ratio",
    "pause_count",
    "pause_mean_s",
    "pause_longest_s",
    "jitter_local",
    "shimmer_local",
    "hnr_db",
    "snr_db",
    "clipped_fraction",
    "top_db",
    "region_s",
    "voiced_frames",
)


def _features_batch(batch: _Batch, *, backend: str, model: ModelInfo) -> list[ProsodyFeatures]:
    """:func:`features_from_contours` for every clip at once, on the device (float64); only the
    syllable peak picking runs per clip on the CPU (scipy's ``find_peaks``)."""
    frame_s = HOP / SAMPLE_RATE
    valid = batch.valid
    n = valid.shape[1]
    index = torch.arange(n, device=valid.device).unsqueeze(0)
    level = 20.0 * torch.log10(batch.rms.to(torch.float64).clamp_min(10.0 ** (FLOOR_DBFS / 20.0)))
    top = _masked_percentiles(level, valid, [95.0])[:, 0]
    sound = valid & (level > (top - SILENCE_DB_BELOW_PEAK).unsqueeze(1))
    has_sound = sound.any(dim=1)
    first = torch.where(has_sound, torch.argmax(sound.to(torch.uint8), dim=1), 0)
    last_rev = torch.argmax(torch.flip(sound, dims=[1]).to(torch.uint8), dim=1)
    last = torch.where(has_sound, n - last_rev, 0)
    region = (index >= first.unsqueeze(1)) & (index < last.unsqueeze(1))
    region_frames = (last - first).to(torch.float64)
    region_s = region_frames * frame_s

    silent = region & ~sound
    run = _run_lengths(silent)
    min_run = round(MIN_PAUSE_S / frame_s)
    pause = silent & (run >= min_run)
    starts = pause & ~F.pad(pause[:, :-1], (1, 0), value=False)
    pause_count = starts.sum(dim=1).to(torch.float64)
    pause_frames = pause.sum(dim=1).to(torch.float64)
    longest = torch.where(pause, run, 0).max(dim=1).values.to(torch.float64) * frame_s
    speaking = region & ~pause
    speech_s = speaking.sum(dim=1).to(torch.float64) * frame_s

    f0 = batch.f0.to(torch.float64)
    voiced = batch.voiced & speaking & torch.isfinite(f0)
    voiced_frames = voiced.sum(dim=1).to(torch.float64)
    st = 12.0 * torch.log2(f0 / 100.0)
    f0_q = _masked_percentiles(f0, voiced, [5.0, 50.0, 95.0])
    st_q = _masked_percentiles(st, voiced, [5.0, 50.0, 95.0])

    pairs = voiced[:, 1:] & voiced[:, :-1]
    n_pairs = pairs.sum(dim=1)
    period = 1.0 / torch.where(voiced, f0, 1.0)
    dp = torch.where(pairs, (period[:, 1:] - period[:, :-1]).abs(), 0.0).sum(dim=1)
    amp = batch.rms.to(torch.float64)
    da = torch.where(pairs, (amp[:, 1:] - amp[:, :-1]).abs(), 0.0).sum(dim=1)
    enough_pairs = n_pairs >= 2
    jitter = torch.where(
        enough_pairs, dp / n_pairs.clamp_min(1) / _masked_mean(period, voiced), torch.nan
    )
    shimmer = torch.where(
        enough_pairs,
        da / n_pairs.clamp_min(1) / _masked_mean(amp, voiced).clamp_min(1e-10),
        torch.nan,
    )
    per = batch.periodicity.to(torch.float64).clamp(1e-4, 1 - 1e-4)
    hnr = _masked_mean(10.0 * torch.log10(per / (1.0 - per)), voiced)

    noise_floor = _masked_percentiles(level, valid, [10.0])[:, 0]
    speech_top = _masked_percentiles(level, speaking, [90.0])[:, 0]
    speech_top = torch.where(speaking.any(dim=1), speech_top, FLOOR_DBFS)

    has_region = region_frames > 0
    table = torch.stack(
        [
            speech_s,
            _masked_mean(f0, voiced),
            f0_q[:, 1],
            _masked_std(f0, voiced),
            f0_q[:, 2] - f0_q[:, 0],
            _masked_mean(st, voiced),
            st_q[:, 1],
            _masked_std(st, voiced),
            st_q[:, 2] - st_q[:, 0],
            voiced_frames / region_frames.clamp_min(1),
            _masked_mean(level, speaking),
            _masked_std(level, speaking),
            torch.where(has_region, pause_frames * frame_s / region_s.clamp_min(1e-12), torch.nan),
            pause_count,
            torch.where(pause_count > 0, pause_frames * frame_s / pause_count.clamp_min(1), 0.0),
            longest,
            jitter,
            shimmer,
            hnr,
            speech_top - noise_floor,
            batch.clipped,
            top,
            region_s,
            voiced_frames,
        ],
        dim=1,
    )
    # syllable nuclei: smoothed level (zero beyond each clip's frames) and scipy peak picking
    kernel = torch.full((1, 1, SMOOTH_FRAMES), 1.0 / SMOOTH_FRAMES, dtype=torch.float64)
    smooth = F.conv1d(
        torch.where(valid, level, 0.0).unsqueeze(1),
        kernel.to(level.device),
        padding=SMOOTH_FRAMES // 2,
    ).squeeze(1)
    nucleus_voicing = batch.voiced & speaking
    table_np = table.cpu().numpy()
    smooth_np = smooth.cpu().numpy()
    voicing_np = nucleus_voicing.cpu().numpy()

    out: list[ProsodyFeatures] = []
    for i, frames in enumerate(batch.frames):
        row = dict(zip(_COLUMNS, (float(v) for v in table_np[i]), strict=True))
        if frames < SMOOTH_FRAMES:
            nuclei = 0
        else:
            nuclei = int(
                nuclei_from_smooth(
                    smooth_np[i, :frames], voiced=voicing_np[i, :frames], floor=row["top_db"]
                ).size
            )
        duration = batch.samples[i] / SAMPLE_RATE
        flags = quality_flags(
            duration_s=duration,
            top_db=row["top_db"],
            clipped_fraction=row["clipped_fraction"],
            snr_db=row["snr_db"],
            voiced_fraction=row["voiced_fraction"],
            voiced_frames=int(row["voiced_frames"]),
        )
        region_seconds, speech_seconds = row.pop("region_s"), row["speech_s"]
        del row["top_db"], row["voiced_frames"]
        out.append(
            ProsodyFeatures(
                duration_s=duration,
                syllable_count=float(nuclei),
                speech_rate=nuclei / region_seconds if region_seconds > 0 else math.nan,
                articulation_rate=nuclei / speech_seconds if speech_seconds > 0 else math.nan,
                abstain=bool(flags),
                quality_flags=flags,
                backend=backend,
                algorithm_version=ALGORITHM_VERSION,
                model=model,
                **row,
            )
        )
    return out


def prosody_torch_batch(
    clips: Sequence[np.ndarray],
    sr: int,
    *,
    device: str = "auto",
    chunk_frames: int | None = None,
) -> list[ProsodyFeatures]:
    """Prosody for each clip (any lengths; mono or channels-first arrays at ``sr`` Hz)."""
    if not clips:
        return []
    dev = resolve_device(device)
    mono = [as_mono_16k(c, sr, sanitize=False) for c in clips]
    if chunk_frames is None:
        chunk_frames = CUDA_CHUNK_FRAMES if dev.type == "cuda" else CPU_CHUNK_FRAMES
    info = model_info("torch", f"torch-{torch.__version__.split('+')[0]}-{dev.type}")
    with torch.inference_mode():
        batch = _analyse(mono, dev, chunk_frames)
        return _features_batch(batch, backend=f"torch-{dev.type}", model=info)


def prosody_torch_batch_reference(
    clips: Sequence[np.ndarray], sr: int, *, device: str = "cpu"
) -> list[ProsodyFeatures]:
    """The same through the per-clip numpy post-processing shared with the librosa backend
    (:func:`features_from_contours`): what the batched device version is tested against."""
    dev = resolve_device(device)
    mono = [as_mono_16k(c, sr, sanitize=False) for c in clips]
    contours = _contours_batch(mono, dev, CPU_CHUNK_FRAMES)
    info = model_info("torch", f"torch-{torch.__version__.split('+')[0]}-{dev.type}")
    return [
        features_from_contours(audio, contour, backend=f"torch-{dev.type}", model=info)
        for audio, contour in zip(mono, contours, strict=True)
    ]


def torch_contours(audio: np.ndarray, *, device: str = "cpu") -> FrameContours:
    """The frame contours of one 16 kHz clip (for tests and diagnostics)."""
    return _contours_batch([as_mono_16k(audio, SAMPLE_RATE)], resolve_device(device), 4096)[0]
