"""Gated late fusion of one local day's modalities into a daily mood score (pure, no Django).

Every modality first becomes a score on the mood scale (-10 worst .. +10 best) with a confidence
(0..1), or abstains. The fused score is the weighted mean over the modalities present::

    score = sum(w_m * c_m * s_m) / sum(w_m * c_m)

so a missing or abstaining modality simply drops out and the weights of the others renormalise.
``evidence = sum(w_m * c_m)`` measures how much reliable signal arrived; below
``min_evidence`` the fusion abstains ("insufficient signal"). The fused confidence is
``min(1, evidence / full_evidence)``.

Each modality's *contribution* is its pull on the fused score, ``w_m c_m s_m / evidence``
(mood points, signed); the explanation names the three largest in plain words.

Default weights and their rationale are in ``docs/fusion.md``; ``manage.py fit_fusion`` fits a
clinic's own (see :func:`fit_weights`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

FUSION_VERSION = "fusion-1.0"

MODALITIES = ("diary_text", "transcript_text", "voice", "face", "self_rated", "phq9", "gad7")

#: Default weights (see docs/fusion.md for the rationale).
DEFAULT_WEIGHTS: dict[str, float] = {
    "phq9": 1.0,
    "self_rated": 0.8,
    "diary_text": 0.7,
    "transcript_text": 0.5,
    "gad7": 0.4,
    "voice": 0.35,
    "face": 0.25,
}

MODALITY_LABELS: dict[str, str] = {
    "diary_text": "diary text",
    "transcript_text": "video speech content",
    "voice": "voice",
    "face": "facial expression",
    "self_rated": "self-rated mood",
    "phq9": "PHQ-9",
    "gad7": "GAD-7",
}


@dataclass(frozen=True)
class FusionConfig:
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    min_evidence: float = 0.3
    full_evidence: float = 1.5
    version: str = FUSION_VERSION


@dataclass(frozen=True)
class ModalityInput:
    """One modality's opinion of the day. ``score`` None or ``abstained``: it says nothing."""

    modality: str
    score: float | None
    confidence: float
    abstained: bool = False
    reason: str = ""
    #: plain-word phrase for the explanation, e.g. "diary text strongly negative"
    phrase: str = ""
    #: ids of the submissions it came from (diary entries, videos, questionnaires)
    sources: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return (
            not self.abstained
            and self.score is not None
            and math.isfinite(self.score)
            and math.isfinite(self.confidence)
            and self.confidence > 0
        )


@dataclass(frozen=True)
class Contribution:
    modality: str
    score: float  # the modality's own score
    confidence: float
    weight: float  # the configured weight
    share: float  # w*c / evidence: its share of the fused score (0..1)
    pull: float  # share * score: mood points it contributes (signed)
    phrase: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "modality": self.modality,
            "score": round(self.score, 2),
            "confidence": round(self.confidence, 3),
            "weight": round(self.weight, 3),
            "share": round(self.share, 3),
            "pull": round(self.pull, 2),
            "direction": "lower" if self.pull < 0 else "higher",
            "phrase": self.phrase,
        }


@dataclass(frozen=True)
class FusedMood:
    score: float | None  # None when abstaining
    confidence: float
    abstained: bool
    reason: str
    evidence: float
    contributions: tuple[Contribution, ...]  # every usable modality, largest |pull| first
    dropped: tuple[str, ...]  # modalities that were missing or abstained
    explanation: str
    version: str

    def top(self, n: int = 3) -> tuple[Contribution, ...]:
        return self.contributions[:n]


def _clip(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def fuse(inputs: Sequence[ModalityInput], config: FusionConfig | None = None) -> FusedMood:
    """Fuse the day's modalities (at most one input per modality; later ones replace earlier)."""
    config = config or FusionConfig()
    by_modality: dict[str, ModalityInput] = {}
    for item in inputs:
        by_modality[item.modality] = item
    usable: list[tuple[ModalityInput, float]] = []
    dropped: list[str] = []
    for name in MODALITIES:
        found = by_modality.get(name)
        weight = float(config.weights.get(name, 0.0))
        if found is None or not found.usable or weight <= 0:
            dropped.append(name)
            continue
        usable.append((found, weight))
    evidence = sum(w * _clip(i.confidence, 0, 1) for i, w in usable)
    if not usable or evidence < config.min_evidence:
        return FusedMood(
            score=None,
            confidence=round(min(1.0, evidence / config.full_evidence), 4),
            abstained=True,
            reason="insufficient signal",
            evidence=round(evidence, 4),
            contributions=(),
            dropped=tuple(dropped),
            explanation="Not enough reliable signal today to estimate mood.",
            version=config.version,
        )
    contributions = []
    total = 0.0
    for item, weight in usable:
        assert item.score is not None
        score = _clip(item.score, -10, 10)
        share = weight * _clip(item.confidence, 0, 1) / evidence
        total += share * score
        contributions.append(
            Contribution(
                modality=item.modality,
                score=score,
                confidence=_clip(item.confidence, 0, 1),
                weight=weight,
                share=share,
                pull=share * score,
                phrase=item.phrase or f"{MODALITY_LABELS.get(item.modality, item.modality)}",
            )
        )
    contributions.sort(key=lambda c: (-abs(c.pull), c.modality))
    fused = round(_clip(total, -10, 10), 2)
    return FusedMood(
        score=fused,
        confidence=round(min(1.0, evidence / config.full_evidence), 4),
        abstained=False,
        reason="",
        evidence=round(evidence, 4),
        contributions=tuple(contributions),
        dropped=tuple(dropped),
        explanation=explain(fused, contributions),
        version=config.version,
    )


def explain(score: float, contributions: Sequence[Contribution], n: int = 3) -> str:
    """'Mood -5.2 (low): speech rate 1.8 SD below this patient's usual; diary text strongly
    negative; PHQ-9 total 18 (item 9 = 2).' Plain words, no patient text."""
    band = (
        "very low"
        if score <= -6
        else "low"
        if score <= -2
        else "neutral"
        if score < 2
        else "good"
        if score < 6
        else "very good"
    )
    parts = "; ".join(c.phrase for c in contributions[:n])
    return f"Mood {score:+.1f} ({band}): {parts}."


# --- modality mappings (each returns a ModalityInput) --------------------------------------------
def _strength(score: float) -> str:
    size = abs(score)
    word = "slightly" if size < 3 else "moderately" if size < 6 else "strongly"
    if size < 1:
        return "neutral"
    return f"{word} {'negative' if score < 0 else 'positive'}"


def prob_margin(probs: Mapping[str, float] | Sequence[float] | None) -> float | None:
    """Top probability minus the runner-up: how decided a classifier was (None without probs)."""
    if probs is None:
        return None
    values = sorted(
        (float(v) for v in (probs.values() if isinstance(probs, Mapping) else probs)),
        reverse=True,
    )
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None
    return values[0] - (values[1] if len(values) > 1 else 0.0)


def text_modality(
    *,
    modality: str,
    valence: float,
    probs: Mapping[str, float] | Sequence[float] | None = None,
    n_chars: int | None = None,
    sources: tuple[str, ...] = (),
) -> ModalityInput:
    """Text valence (-1..1) -> mood (-10..10); confidence from the classifier's probability margin
    (0.2 + 0.8 * margin), halved for very short texts (< 20 characters)."""
    if not math.isfinite(valence):
        return ModalityInput(modality, None, 0.0, abstained=True, reason="no valence")
    score = _clip(valence, -1, 1) * 10
    margin = prob_margin(probs)
    confidence = 0.6 if margin is None else 0.2 + 0.8 * _clip(margin, 0, 1)
    if n_chars is not None and n_chars < 20:
        confidence *= 0.5
    label = MODALITY_LABELS[modality]
    return ModalityInput(
        modality,
        score,
        round(confidence, 4),
        phrase=f"{label} {_strength(score)}",
        sources=sources,
    )


def self_rated_modality(
    rating: float, *, sources: tuple[str, ...] = (), ratings: tuple[float, ...] = ()
) -> ModalityInput:
    """Self-rated mood 0..10 (the diary API's range) -> (rating - 5) * 2, confidence 0.8.

    ``rating`` is the day's mean when the patient rated several times; ``ratings`` are the
    ratings themselves, so that the explanation quotes what the patient gave ("0-1/10, mean 0.5
    of 2 ratings"), never a mean they did not give as if it were a rating."""
    score = (_clip(rating, 0, 10) - 5) * 2
    given = sorted(ratings)
    if len(given) > 1 and given[0] != given[-1]:
        phrase = (
            f"self-rated mood {given[0]:g}-{given[-1]:g}/10 "
            f"(mean {rating:.2g} of {len(given)} ratings)"
        )
    elif len(given) > 1:
        phrase = f"self-rated mood {given[0]:g}/10 ({len(given)} ratings)"
    else:
        phrase = f"self-rated mood {rating:g}/10"
    return ModalityInput("self_rated", score, 0.8, phrase=phrase, sources=sources)


def phq9_to_mood(total: float) -> float:
    """PHQ-9 0..27 -> mood: 0 -> +5, 20 (severe band) -> -6.1, 27 -> -10 (linear)."""
    return 5 - 15 * _clip(total, 0, 27) / 27


def mood_to_phq9(score: float) -> float:
    return (5 - _clip(score, -10, 5)) * 27 / 15


def phq9_modality(
    *, total: int, item9: int | None, age_days: int = 0, sources: tuple[str, ...] = ()
) -> ModalityInput:
    """PHQ-9 -> mood via :func:`phq9_to_mood`; confidence 0.9 the same day, falling linearly to 0
    after 7 days (the instrument asks about the last two weeks, but the day's mood moves on)."""
    confidence = 0.9 * max(0.0, 1 - age_days / 7)
    phrase = f"PHQ-9 total {total}"
    if item9:
        phrase += f", item 9 = {item9}"
    if age_days:
        phrase += f" ({age_days} d ago)"
    return ModalityInput(
        "phq9", phq9_to_mood(total), round(confidence, 4), phrase=phrase, sources=sources
    )


def gad7_modality(*, total: int, age_days: int = 0, sources: tuple[str, ...] = ()) -> ModalityInput:
    """GAD-7 0..21 -> mood 3 - 13 * total / 21; confidence 0.6 same day, 0 after 7 days (anxiety is
    related to, not the same as, low mood)."""
    confidence = 0.6 * max(0.0, 1 - age_days / 7)
    phrase = f"GAD-7 total {total}" + (f" ({age_days} d ago)" if age_days else "")
    return ModalityInput(
        "gad7",
        3 - 13 * _clip(total, 0, 21) / 21,
        round(confidence, 4),
        phrase=phrase,
        sources=sources,
    )


# --- fitting a clinic's weights -------------------------------------------------------------------
@dataclass(frozen=True)
class FitRow:
    """One labelled example: the modalities seen around a PHQ-9 and the PHQ-9's mood label."""

    inputs: tuple[ModalityInput, ...]
    label: float  # phq9_to_mood(total)


@dataclass(frozen=True)
class FitResult:
    weights: dict[str, float]
    n: int
    mae: float
    ccc: float
    baseline_mae: float
    baseline_ccc: float
    modalities: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "weights": {k: round(v, 4) for k, v in self.weights.items()},
            "n": self.n,
            "mae": round(self.mae, 3),
            "ccc": round(self.ccc, 3),
            "default_mae": round(self.baseline_mae, 3),
            "default_ccc": round(self.baseline_ccc, 3),
            "modalities": list(self.modalities),
            "version": FUSION_VERSION,
        }


class InsufficientData(ValueError):
    """Too few labelled examples to fit weights."""


def concordance_ccc(a: Sequence[float], b: Sequence[float]) -> float:
    """Lin's concordance correlation coefficient: 2 cov / (var_a + var_b + (mean_a - mean_b)^2)."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if len(x) < 2:
        return float("nan")
    cov = float(np.mean((x - x.mean()) * (y - y.mean())))
    denominator = float(x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    return 2 * cov / denominator if denominator > 0 else float("nan")


def _predict(
    rows: Sequence[FitRow], weights: Mapping[str, float]
) -> tuple[list[float], list[float]]:
    config = FusionConfig(weights=dict(weights), min_evidence=1e-9)
    predicted, labels = [], []
    for row in rows:
        fused = fuse(row.inputs, config)
        if fused.score is not None:
            predicted.append(fused.score)
            labels.append(row.label)
    return predicted, labels


def fit_weights(rows: Sequence[FitRow], *, ridge: float = 1.0, min_rows: int = 20) -> FitResult:
    """Non-negative, ridge-regularised weights for the modalities seen in ``rows``.

    The fused score is a weighted mean, so ``fused = label`` is linear in the weights after
    multiplying out the denominator: ``sum_m w_m c_m (s_m - label) = 0``. Non-negative least
    squares on those rows, with the weights' sum pinned to the sum of the same modalities'
    default weights and a ridge pull towards those defaults, gives weights that are evaluated on
    the real fusion (MAE and Lin's CCC, against the same for the defaults). Raises
    InsufficientData.

    The labels are PHQ-9s, so PHQ-9 and GAD-7 are never among the fitted modalities: they keep
    their default weights. Pinning the sum to the defaults' sum (not to an arbitrary scale) keeps
    the fitted modalities, taken together, exactly as heavy against the questionnaires as the
    defaults make them; only how that weight is shared among them is fitted. Data that the
    defaults already explain leaves the defaults unchanged.
    """
    from scipy.optimize import nnls

    if len(rows) < min_rows:
        raise InsufficientData(f"{len(rows)} labelled examples; at least {min_rows} are needed")
    seen = tuple(
        m for m in MODALITIES if any(i.modality == m and i.usable for r in rows for i in r.inputs)
    )
    if len(seen) < 2:
        raise InsufficientData("fewer than two modalities appear in the labelled examples")
    k = len(seen)
    design, target = [], []
    for row in rows:
        line = np.zeros(k)
        for item in row.inputs:
            if item.modality in seen and item.usable:
                assert item.score is not None
                line[seen.index(item.modality)] = item.confidence * (item.score - row.label)
        design.append(line)
        target.append(0.0)
    prior = np.array([DEFAULT_WEIGHTS[m] for m in seen])
    total = float(prior.sum())
    scale = math.sqrt(ridge)
    for j in range(k):
        line = np.zeros(k)
        line[j] = scale
        design.append(line)
        target.append(scale * prior[j])
    big = 100.0 * math.sqrt(len(rows))
    design.append(np.full(k, big))
    target.append(big * total)
    solution, _ = nnls(np.vstack(design), np.asarray(target), maxiter=2000)
    weights = {m: float(w) for m, w in zip(seen, solution, strict=True)}
    predicted, labels = _predict(rows, weights)
    default_predicted, default_labels = _predict(rows, DEFAULT_WEIGHTS)
    return FitResult(
        weights=weights,
        n=len(rows),
        mae=float(np.mean(np.abs(np.subtract(predicted, labels)))) if predicted else float("nan"),
        ccc=concordance_ccc(predicted, labels),
        baseline_mae=float(np.mean(np.abs(np.subtract(default_predicted, default_labels))))
        if default_predicted
        else float("nan"),
        baseline_ccc=concordance_ccc(default_predicted, default_labels),
        modalities=seen,
    )


def fitted_weights_rescale(weights: Mapping[str, float]) -> dict[str, float]:
    """Fitted weights scaled so that their sum equals the sum of the same modalities' default
    weights (what :func:`fit_weights` produces). A fit only decides how the weight of its
    modalities is shared among them; its overall scale is arbitrary (the fused score is a weighted
    mean) but decides how heavy those modalities are against the ones it did not fit (PHQ-9 and
    GAD-7 keep their defaults). Weights stored before this scale was pinned (they summed to the
    number of modalities) are put back on it here. Unknown modalities and values that are not
    finite, non-negative numbers are dropped; all-zero weights are returned as they are."""
    clean = {
        k: float(v)
        for k, v in weights.items()
        if k in MODALITIES
        and isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(v)
        and v >= 0
    }
    total = sum(clean.values())
    if total <= 0:
        return clean
    target = sum(DEFAULT_WEIGHTS[k] for k in clean)
    return {k: v * target / total for k, v in clean.items()}


def with_weights(config: FusionConfig, weights: Mapping[str, float]) -> FusionConfig:
    """The config with ``weights`` overriding the defaults (modalities it omits keep theirs)."""
    merged = dict(config.weights)
    merged.update({k: float(v) for k, v in weights.items() if k in MODALITIES and v >= 0})
    return replace(config, weights=merged)
