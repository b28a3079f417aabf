"""Robust per-patient baselines of voice and face features (pure, no Django).

A feature is compared with the patient's own recent recordings by a robust z-score::

    z = (value - median(history)) / (MAD(history) * 1.4826)

(1.4826 makes the MAD a consistent estimate of the standard deviation for normal data, and the
median/MAD pair ignores the odd outlier recording that a mean/SD pair would chase). The z is then
*signed by direction* so that a negative z always means "worse than usual" (the convention of the
risk engine's ``BaselineDrop``).

The scale never goes below a per-signal **absolute floor**: a very steady (or constant) history
has a MAD near 0, and without a floor any difference at all would read as a +-6 SD "drop" (a
patient who rates the same number every day, a face feature stuck at 0.0). A voice/face feature's
floor is ``FEATURE_FLOOR_FRACTION`` (0.25; ``BaselineConfig.feature_floor_fraction``) of its
population SD (``feature_scale_floor``); the daily mood's is ``MOOD_SCALE_FLOOR`` (1.25 points,
``robust_z_mood``).

A personal baseline is trusted only with enough history (default: at least 5 earlier recordings on
at least 3 different local days in the last 28 days), for the modality **and for each feature**
(the recordings that have that feature). A feature without its own personal baseline is left out
of a personal result; when no feature has one, the whole modality is compared with population
norms instead, and the result carries a lower confidence (and is never a drop).

Direction table (``FEATURE_DIRECTIONS``): +1 = higher is better, -1 = higher is worse.

========================  ========  =====================================================
feature (pipeline name)   modality  worse when
========================  ========  =====================================================
speech_rate               voice     slower (lower)
articulation_rate         voice     slower (lower)
f0_sd_st                  voice     less pitch variability (flatter voice)
f0_range_st               voice     narrower pitch range
intensity_mean_db         voice     quieter
intensity_sd_db           voice     less loudness variability
pause_ratio               voice     more time in pauses
pause_mean_s              voice     longer pauses
smile                     face      less smiling
frown                     face      more frowning
brow_lowering             face      more brow lowering
gaze_down_fraction        face      more gaze down
expressivity              face      less facial movement overall
========================  ========  =====================================================

Features a recording's extractor marked as abstaining (quality flags) never reach this module.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

MAD_TO_SD = 1.4826
#: z-scores are clipped to this magnitude: one absurd value must not swamp the fusion.
Z_CLIP = 6.0
#: Numerical guard only (no division by zero); it carries no meaning. Callers pass a real floor.
MIN_SCALE = 1e-6
#: Smallest SD (mood points, scale -10..+10) a patient's daily-mood baseline is given. A one-step
#: change of the 0..10 self-rating moves a self-rating-only day by 2 points; a day-to-day wobble of
#: about one point is within what a single-item daily rating repeats with, so a week of identical
#: ratings is not evidence of a near-zero SD. At 1.25, one rating step against a flat history is
#: z -1.6: neither the ``baseline_drop`` rule (z <= -2.5) nor crisis corroboration (z <= -2.0);
#: two steps (4 points) are z -3.2, a drop. With a history that does vary, its own MAD rules.
MOOD_SCALE_FLOOR = 1.25
#: Floor for a feature without a population norm: the larger of this and
#: ``UNNORMED_FLOOR_RELATIVE`` x |median| (conservative: at a normed feature's population mean, at
#: least its norm-based floor, tested).
UNNORMED_FLOOR_ABSOLUTE = 0.05
UNNORMED_FLOOR_RELATIVE = 0.15
#: A feature's personal scale is at least this fraction of its population SD: within-person
#: day-to-day SDs of prosody/face features are typically about half the between-person SD, so
#: 0.25 binds only for an unusually steady (or constant) history, where it stops a tiny
#: difference (gaze-down 0.0 every day, then 0.002) from reading as a large drop.
FEATURE_FLOOR_FRACTION = 0.25

#: feature -> (modality, direction): +1 higher is better, -1 higher is worse.
FEATURE_DIRECTIONS: dict[str, tuple[str, int]] = {
    "speech_rate": ("voice", +1),
    "articulation_rate": ("voice", +1),
    "f0_sd_st": ("voice", +1),
    "f0_range_st": ("voice", +1),
    "intensity_mean_db": ("voice", +1),
    "intensity_sd_db": ("voice", +1),
    "pause_ratio": ("voice", -1),
    "pause_mean_s": ("voice", -1),
    "smile": ("face", +1),
    "frown": ("face", -1),
    "brow_lowering": ("face", -1),
    "gaze_down_fraction": ("face", -1),
    "expressivity": ("face", +1),
}

#: Plain-word names used in explanations.
FEATURE_LABELS: dict[str, str] = {
    "speech_rate": "speech rate",
    "articulation_rate": "articulation rate",
    "f0_sd_st": "pitch variability",
    "f0_range_st": "pitch range",
    "intensity_mean_db": "loudness",
    "intensity_sd_db": "loudness variability",
    "pause_ratio": "time spent pausing",
    "pause_mean_s": "pause length",
    "smile": "smiling",
    "frown": "frowning",
    "brow_lowering": "brow lowering",
    "gaze_down_fraction": "downward gaze",
    "expressivity": "facial expressivity",
}

#: Population norms (mean, SD) for adults reading or speaking freely, used until a personal
#: baseline exists. Rough literature values; they only set the scale of a low-confidence z.
POPULATION_NORMS: dict[str, tuple[float, float]] = {
    "speech_rate": (4.0, 0.9),  # syllables (voiced segments) per second
    "articulation_rate": (5.0, 0.9),
    "f0_sd_st": (2.5, 1.0),
    "f0_range_st": (8.0, 3.0),
    "intensity_mean_db": (-24.0, 6.0),  # dBFS-like RMS level
    "intensity_sd_db": (6.0, 2.5),
    "pause_ratio": (0.25, 0.1),
    "pause_mean_s": (0.5, 0.25),
    "smile": (0.25, 0.2),
    "frown": (0.1, 0.1),
    "brow_lowering": (0.1, 0.1),
    "gaze_down_fraction": (0.2, 0.15),
    "expressivity": (0.3, 0.15),
}


@dataclass(frozen=True)
class BaselineConfig:
    days: int = 28
    min_recordings: int = 5
    min_days: int = 3
    #: a feature's personal scale is at least this fraction of its population SD
    #: (``FEATURE_FLOOR_FRACTION``, ``feature_scale_floor``)
    feature_floor_fraction: float = FEATURE_FLOOR_FRACTION
    #: confidence multiplier when comparing with population norms instead of a personal baseline
    population_confidence: float = 0.35


@dataclass(frozen=True)
class Observation:
    """One earlier analysis of the patient: its local day and its features."""

    local_date: dt.date
    features: Mapping[str, float]


@dataclass(frozen=True)
class FeatureZ:
    feature: str
    value: float
    z: float  # signed: negative = worse than usual
    raw_z: float  # unsigned: below / above the reference
    reference: float  # the median (personal) or population mean

    @property
    def label(self) -> str:
        return FEATURE_LABELS.get(self.feature, self.feature.replace("_", " "))


@dataclass(frozen=True)
class BaselineResult:
    modality: str
    personal: bool  # True: against the patient's own history; False: population norms
    n_history: int
    n_days: int
    zs: tuple[FeatureZ, ...] = field(default_factory=tuple)

    @property
    def mean_z(self) -> float | None:
        return statistics.fmean(f.z for f in self.zs) if self.zs else None

    @property
    def worst(self) -> FeatureZ | None:
        return min(self.zs, key=lambda f: f.z) if self.zs else None


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def robust_z(value: float, history: Sequence[float], *, floor: float = MIN_SCALE) -> float | None:
    """Robust z of ``value`` against ``history`` (median / MAD*1.4826), clipped to +-Z_CLIP.

    None when history is empty. A zero MAD (identical history) falls back to the mean absolute
    deviation. The scale is never below ``floor``, the smallest SD that is meaningful for this
    signal (in its own units): pass the signal's floor (``feature_scale_floor``,
    ``MOOD_SCALE_FLOOR`` / ``robust_z_mood``); the default is only a guard against dividing by 0,
    with which a constant history turns any difference into +-Z_CLIP.
    """
    clean = [float(v) for v in history if _finite(v)]
    if not clean or not _finite(value):
        return None
    median = statistics.median(clean)
    mad = statistics.median(abs(v - median) for v in clean) * MAD_TO_SD
    if mad <= MIN_SCALE:
        mad = statistics.fmean(abs(v - median) for v in clean) * 1.2533  # mean-abs-dev -> SD
    scale = max(mad, floor if _finite(floor) else MIN_SCALE, MIN_SCALE, abs(median) * 0.01)
    z = (float(value) - median) / scale
    return max(-Z_CLIP, min(Z_CLIP, z))


def robust_z_mood(value: float, history: Sequence[float]) -> float | None:
    """Robust z of a daily mood (-10..+10) against the patient's earlier daily moods, with the
    mood scale's floor (``MOOD_SCALE_FLOOR``)."""
    return robust_z(value, history, floor=MOOD_SCALE_FLOOR)


def feature_scale_floor(
    name: str,
    history_median: float,
    *,
    fraction: float = FEATURE_FLOOR_FRACTION,
    population: Mapping[str, tuple[float, float]] | None = None,
) -> float:
    """The smallest personal SD for a voice/face feature: ``fraction`` of its population SD, or,
    without a norm, max(UNNORMED_FLOOR_ABSOLUTE, UNNORMED_FLOOR_RELATIVE x |median|)."""
    population = POPULATION_NORMS if population is None else population
    norm = population.get(name)
    if norm is not None and _finite(norm[1]) and norm[1] > 0 and fraction > 0:
        return fraction * float(norm[1])
    return max(UNNORMED_FLOOR_ABSOLUTE, UNNORMED_FLOOR_RELATIVE * abs(history_median))


def baseline_compare(
    *,
    modality: str,
    current: Mapping[str, float],
    history: Sequence[Observation],
    today: dt.date,
    config: BaselineConfig | None = None,
    population: Mapping[str, tuple[float, float]] | None = None,
) -> BaselineResult:
    """Compare ``current`` features of one modality with the patient's recent history.

    Only history within ``config.days`` before ``today`` (inclusive of today) counts. Features not
    in the direction table, or not finite, are skipped.
    """
    config = config or BaselineConfig()
    population = POPULATION_NORMS if population is None else population
    start = today - dt.timedelta(days=config.days)
    recent = [o for o in history if start <= o.local_date <= today]
    n_days = len({o.local_date for o in recent})
    modality_ok = len(recent) >= config.min_recordings and n_days >= config.min_days
    candidates: list[tuple[str, float, int]] = []
    for name, value in sorted(current.items()):
        entry = FEATURE_DIRECTIONS.get(name)
        if entry is None or entry[0] != modality or not _finite(value):
            continue
        candidates.append((name, float(value), entry[1]))
    # Each feature needs its own history: the recordings that have it, on enough different days
    # (a feature missing from most recordings must not rest on one day's recordings).
    own: dict[str, list[float]] = {}
    if modality_ok:
        for name, _, _ in candidates:
            seen = [
                (o.local_date, o.features[name]) for o in recent if _finite(o.features.get(name))
            ]
            days = {d for d, _ in seen}
            if len(seen) >= config.min_recordings and len(days) >= config.min_days:
                own[name] = [float(v) for _, v in seen]
    # A personal result holds personal z-scores only (its worst one may be sent as a drop); when
    # no feature has its own baseline, the whole modality is compared with population norms.
    personal = modality_ok and (bool(own) or not candidates)
    zs: list[FeatureZ] = []
    for name, value, direction in candidates:
        raw: float | None
        if personal:
            past = own.get(name)
            if past is None:
                continue  # no personal baseline of its own: left out of a personal result
            reference = statistics.median(past)
            floor = feature_scale_floor(
                name, reference, fraction=config.feature_floor_fraction, population=population
            )
            raw = robust_z(value, past, floor=floor)
        else:
            if name not in population:
                continue
            mean, sd = population[name]
            raw = max(-Z_CLIP, min(Z_CLIP, (value - mean) / sd)) if sd > 0 else None
            reference = mean
        if raw is None:
            continue
        zs.append(
            FeatureZ(feature=name, value=value, z=direction * raw, raw_z=raw, reference=reference)
        )
    return BaselineResult(
        modality=modality,
        personal=personal,
        n_history=len(recent),
        n_days=n_days,
        zs=tuple(zs),
    )


def baseline_modality_score(
    result: BaselineResult, *, config: BaselineConfig | None = None, feature_quality: float = 1.0
) -> tuple[float, float] | None:
    """(score -10..10, confidence 0..1) of a modality from its signed z-scores, or None.

    The score is 2.5 points per SD of the mean signed z (so -2 SD on average reads as -5), clipped.
    Confidence grows with the number of features (saturating at 4) and is scaled down for the
    population fallback and by the media's quality (0..1).
    """
    config = config or BaselineConfig()
    mean_z = result.mean_z
    if mean_z is None:
        return None
    score = max(-10.0, min(10.0, 2.5 * mean_z))
    confidence = min(1.0, len(result.zs) / 4) * max(0.0, min(1.0, feature_quality))
    if not result.personal:
        confidence *= config.population_confidence
    return score, round(confidence, 4)


def describe_z(feature: FeatureZ, *, personal: bool) -> str:
    """'speech rate 1.8 SD below this patient's usual' (or '... below typical adults')."""
    side = "below" if feature.raw_z < 0 else "above"
    whom = "this patient's usual" if personal else "typical adults (no personal baseline yet)"
    return f"{feature.label} {abs(feature.raw_z):.1f} SD {side} {whom}"
