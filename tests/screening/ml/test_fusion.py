"""Behaviour of the pure baseline and fusion code (no Django, no models)."""

from __future__ import annotations

import ast
import datetime as dt
import math
import random
from pathlib import Path

import pytest

from screening.ml.fusion import baseline as bl
from screening.ml.fusion import fusion as fu

TODAY = dt.date(2025, 3, 20)


def history(values: list[dict[str, float]], days: int = 6) -> list[bl.Observation]:
    return [
        bl.Observation(local_date=TODAY - dt.timedelta(days=1 + i % days), features=v)
        for i, v in enumerate(values)
    ]


# --- baselines -----------------------------------------------------------------------------------
def test_robust_z_ignores_outliers() -> None:
    steady = [4.0, 4.1, 3.9, 4.0, 4.05, 3.95, 4.0]
    with_outliers = [*steady, 40.0, -30.0]
    z_clean = bl.robust_z(3.0, steady)
    z_dirty = bl.robust_z(3.0, with_outliers)
    assert z_clean is not None and z_dirty is not None
    assert z_clean < -5 and z_dirty < -5  # still far below: outliers barely moved the scale
    # a mean/SD z would be pulled to near zero by the two outliers
    mean = sum(with_outliers) / len(with_outliers)
    sd = math.sqrt(sum((v - mean) ** 2 for v in with_outliers) / len(with_outliers))
    assert abs((3.0 - mean) / sd) < 0.5


def test_robust_z_constant_history_and_empty() -> None:
    assert bl.robust_z(1.0, []) is None
    z = bl.robust_z(5.0, [4.0] * 6)
    assert z is not None and z > 0 and math.isfinite(z) and z <= bl.Z_CLIP


def test_directions_make_negative_z_worse() -> None:
    past = history(
        [
            {"speech_rate": 4.0 + 0.1 * (i % 3), "pause_ratio": 0.2 + 0.01 * (i % 3)}
            for i in range(8)
        ]
    )
    result = bl.baseline_compare(
        modality="voice",
        current={"speech_rate": 3.0, "pause_ratio": 0.4},
        history=past,
        today=TODAY,
    )
    assert result.personal
    zs = {f.feature: f for f in result.zs}
    assert zs["speech_rate"].z < 0 and zs["speech_rate"].raw_z < 0  # slower: worse
    assert zs["pause_ratio"].z < 0 and zs["pause_ratio"].raw_z > 0  # more pausing: worse


def test_too_little_history_falls_back_to_population_with_lower_confidence() -> None:
    few = history([{"speech_rate": 4.0}] * 3, days=3)
    enough = history([{"speech_rate": 4.0 + 0.2 * (i % 2)} for i in range(6)], days=3)
    one_day = history([{"speech_rate": 4.0 + 0.2 * (i % 2)} for i in range(6)], days=1)
    current = {"speech_rate": 3.5}
    r_few = bl.baseline_compare(modality="voice", current=current, history=few, today=TODAY)
    r_enough = bl.baseline_compare(modality="voice", current=current, history=enough, today=TODAY)
    r_one_day = bl.baseline_compare(modality="voice", current=current, history=one_day, today=TODAY)
    assert not r_few.personal and r_enough.personal and not r_one_day.personal
    s_few = bl.baseline_modality_score(r_few)
    s_enough = bl.baseline_modality_score(r_enough)
    assert s_few is not None and s_enough is not None
    assert s_few[1] < s_enough[1]


def test_old_history_is_ignored() -> None:
    old = [
        bl.Observation(TODAY - dt.timedelta(days=40 + i), {"speech_rate": 6.0}) for i in range(8)
    ]
    result = bl.baseline_compare(
        modality="voice", current={"speech_rate": 4.0}, history=old, today=TODAY
    )
    assert not result.personal and result.n_history == 0


def test_other_modality_features_are_skipped() -> None:
    result = bl.baseline_compare(
        modality="face",
        current={"speech_rate": 1.0, "smile": 0.1, "unknown": 3.0},
        history=[],
        today=TODAY,
    )
    assert [f.feature for f in result.zs] == ["smile"]


def test_same_features_score_worse_for_a_livelier_patient() -> None:
    """Baselines change the voice contribution: identical features, different usual voices."""
    current = {"speech_rate": 4.0, "f0_sd_st": 2.5, "intensity_mean_db": -24.0}
    rng = random.Random(1)

    def usual(rate: float, f0: float, loud: float) -> list[bl.Observation]:
        return history(
            [
                {
                    "speech_rate": rate + rng.uniform(-0.2, 0.2),
                    "f0_sd_st": f0 + rng.uniform(-0.3, 0.3),
                    "intensity_mean_db": loud + rng.uniform(-1, 1),
                }
                for _ in range(10)
            ]
        )

    lively = bl.baseline_compare(
        modality="voice", current=current, history=usual(5.5, 4.0, -18), today=TODAY
    )
    quiet = bl.baseline_compare(
        modality="voice", current=current, history=usual(3.2, 1.5, -30), today=TODAY
    )
    s_lively = bl.baseline_modality_score(lively)
    s_quiet = bl.baseline_modality_score(quiet)
    assert s_lively is not None and s_quiet is not None
    assert s_lively[0] < -3 < 3 < s_quiet[0]
    text = fu.text_modality(modality="diary_text", valence=0.0, probs=[0.5, 0.3, 0.2])
    fused_lively = fu.fuse([text, fu.ModalityInput("voice", s_lively[0], s_lively[1])])
    fused_quiet = fu.fuse([text, fu.ModalityInput("voice", s_quiet[0], s_quiet[1])])
    assert fused_lively.score is not None and fused_quiet.score is not None
    assert fused_lively.score < fused_quiet.score
    assert "usual" in bl.describe_z(lively.worst, personal=True)  # type: ignore[arg-type]


# --- baselines: flat histories and per-feature history ------------------------------------------
def flat(features: dict[str, float], n: int = 5) -> list[bl.Observation]:
    """``n`` identical recordings, one a day on the ``n`` days before TODAY."""
    return [bl.Observation(TODAY - dt.timedelta(days=1 + i), dict(features)) for i in range(n)]


def test_robust_z_floor_is_keyword_only_and_bounds_the_scale() -> None:
    with pytest.raises(TypeError):
        bl.robust_z(-2.0, [0.0] * 5, 1.0)  # type: ignore[misc]
    assert bl.robust_z(-2.0, [0.0] * 5, floor=1.0) == pytest.approx(-2.0)
    # a history that varies more than the floor keeps its own MAD scale
    varied = [-3.0, -1.0, 0.0, 1.0, 3.0]
    assert bl.robust_z(-6.0, varied, floor=0.1) == bl.robust_z(-6.0, varied, floor=1.0)


def test_one_rating_step_after_a_flat_week_is_not_a_mood_drop() -> None:
    """Self-rated 5 every day (mood exactly 0.0), then 4: not a drop for any risk threshold."""
    week = [0.0] * 6
    for today in (-2.0, -1.43):  # self-rating alone; with other modalities pulling it
        z = bl.robust_z_mood(today, week)
        assert z is not None and math.isfinite(z)
        assert -2.0 < z < 0  # above crisis corroboration (-2.0) and the drop rule (-2.5)
    # a patient rating 7 every day (mood +4.0) who rates 6 is not dropping either
    z_up = bl.robust_z_mood(2.0, [4.0] * 7)
    assert z_up is not None and abs(z_up) < 2.5
    # the floor is what the scoring service's mood baseline gets
    assert bl.robust_z_mood(-2.0, [0.0] * 5) == bl.robust_z(
        -2.0, [0.0] * 5, floor=bl.MOOD_SCALE_FLOOR
    )


def test_a_real_mood_drop_against_a_flat_history_still_is_one() -> None:
    z = bl.robust_z_mood(-6.0, [4.0] * 6)  # self-rated 7 every day, then 2
    assert z is not None and z <= -2.5
    two_steps = bl.robust_z_mood(-4.0, [0.0] * 6)  # 5 every day, then 3
    assert two_steps is not None and two_steps <= -2.5
    # an ordinary varying history is scored by its own spread, not the floor
    varied = [0.0, 2.0, -2.0, 4.0, 0.0, 2.0, -2.0]
    assert bl.robust_z_mood(-8.0, varied) == bl.robust_z(-8.0, varied)


@pytest.mark.parametrize("feature", ["gaze_down_fraction", "frown", "brow_lowering"])
def test_face_feature_flat_at_zero_then_a_hair_is_not_a_drop(feature: str) -> None:
    result = bl.baseline_compare(
        modality="face", current={feature: 0.002}, history=flat({feature: 0.0}), today=TODAY
    )
    assert result.personal
    (fz,) = result.zs
    assert math.isfinite(fz.z) and abs(fz.z) < 2.5
    assert "6.0 SD" not in bl.describe_z(fz, personal=True)
    # a real change against the same flat history still reads as a drop
    big = bl.baseline_compare(
        modality="face", current={feature: 0.3}, history=flat({feature: 0.0}), today=TODAY
    )
    assert big.worst is not None and big.worst.z <= -2.5


def test_voice_feature_flat_then_a_hair_is_not_a_drop_but_a_real_slowing_is() -> None:
    history_ = flat({"speech_rate": 4.0, "pause_ratio": 0.2}, n=6)
    tiny = bl.baseline_compare(
        modality="voice",
        current={"speech_rate": 3.9, "pause_ratio": 0.21},  # 0.1 syllables/s; 1 % more pausing
        history=history_,
        today=TODAY,
    )
    assert tiny.personal and len(tiny.zs) == 2
    assert all(math.isfinite(f.z) and abs(f.z) < 2.5 for f in tiny.zs)
    slow = bl.baseline_compare(
        modality="voice", current={"speech_rate": 3.0}, history=history_, today=TODAY
    )
    assert slow.worst is not None and slow.worst.z <= -2.5


def test_feature_floor_follows_the_population_sd_or_a_conservative_default() -> None:
    sd = bl.POPULATION_NORMS["gaze_down_fraction"][1]
    assert bl.feature_scale_floor("gaze_down_fraction", 0.0) == pytest.approx(
        bl.FEATURE_FLOOR_FRACTION * sd
    )
    # without a norm: never below the absolute default, and 15 % of the usual level
    assert bl.feature_scale_floor("gaze_down_fraction", 0.0, population={}) == pytest.approx(
        bl.UNNORMED_FLOOR_ABSOLUTE
    )
    assert bl.feature_scale_floor("speech_rate", 4.0, population={}) == pytest.approx(0.6)
    # the default is more conservative than the norm-based floor of every normed feature
    for name, (mean, _sd) in bl.POPULATION_NORMS.items():
        assert bl.feature_scale_floor(name, mean, population={}) >= bl.feature_scale_floor(
            name, mean
        ), name
    # baseline_compare uses it: a feature lacking a norm, flat at 0.0, then 0.002
    result = bl.baseline_compare(
        modality="face",
        current={"frown": 0.002},
        history=flat({"frown": 0.0}),
        today=TODAY,
        population={},
    )
    assert result.personal and result.worst is not None and abs(result.worst.z) < 2.5


def test_a_feature_recorded_on_one_day_only_has_no_personal_baseline() -> None:
    """5 recordings yesterday with speech rate, 2 on other days without it: the modality has 7
    recordings on 3 days, but speech rate's baseline would rest on one day."""
    yesterday = TODAY - dt.timedelta(days=1)
    past = [
        bl.Observation(yesterday, {"speech_rate": 4.0 + 0.05 * i, "pause_ratio": 0.2})
        for i in range(5)
    ] + [
        bl.Observation(TODAY - dt.timedelta(days=d), {"pause_ratio": 0.2 + 0.01 * d})
        for d in (3, 5)
    ]
    result = bl.baseline_compare(
        modality="voice", current={"speech_rate": 3.7}, history=past, today=TODAY
    )
    assert not result.personal  # falls back to population, like too little history overall
    (fz,) = result.zs
    mean, sd = bl.POPULATION_NORMS["speech_rate"]
    assert fz.reference == mean and fz.z == pytest.approx((3.7 - mean) / sd)
    assert fz.z > -2.5
    scored = bl.baseline_modality_score(result)
    assert scored is not None and scored[1] <= bl.BaselineConfig().population_confidence
    # pause ratio, recorded on 3 days, does have its own baseline; speech rate is left out of
    # the personal result (a personal result carries personal z-scores only)
    both = bl.baseline_compare(
        modality="voice",
        current={"speech_rate": 3.7, "pause_ratio": 0.21},
        history=past,
        today=TODAY,
    )
    assert both.personal and [f.feature for f in both.zs] == ["pause_ratio"]


# --- fusion --------------------------------------------------------------------------------------
def test_missing_modality_renormalises() -> None:
    a = fu.ModalityInput("diary_text", -6.0, 1.0)
    b = fu.ModalityInput("self_rated", -2.0, 1.0)
    both = fu.fuse([a, b])
    only_a = fu.fuse([a])
    only_a_with_abstaining_b = fu.fuse(
        [a, fu.ModalityInput("self_rated", None, 0.0, abstained=True)]
    )
    assert only_a.score == pytest.approx(-6.0)  # not pulled towards 0 by the absent modality
    assert only_a_with_abstaining_b.score == pytest.approx(-6.0)
    assert "self_rated" in only_a.dropped
    w_a, w_b = fu.DEFAULT_WEIGHTS["diary_text"], fu.DEFAULT_WEIGHTS["self_rated"]
    assert both.score == pytest.approx((w_a * -6 + w_b * -2) / (w_a + w_b), abs=0.01)
    assert sum(c.share for c in both.contributions) == pytest.approx(1.0)
    assert only_a.confidence < both.confidence


def test_abstains_without_reliable_signal() -> None:
    assert fu.fuse([]).abstained
    weak = fu.fuse([fu.ModalityInput("face", -8.0, 0.2)])  # 0.25 * 0.2 = 0.05 evidence
    assert weak.abstained and weak.score is None and weak.reason == "insufficient signal"
    nan = fu.fuse([fu.ModalityInput("diary_text", float("nan"), 1.0)])
    assert nan.abstained


def test_explanation_names_top_three_contributions() -> None:
    inputs = [
        fu.ModalityInput(
            "voice", -4.5, 1.0, phrase="speech rate 1.8 SD below this patient's usual"
        ),
        fu.text_modality(
            modality="diary_text", valence=-0.9, probs={"neg": 0.95, "neu": 0.04, "pos": 0.01}
        ),
        fu.phq9_modality(total=18, item9=2),
        fu.ModalityInput("face", -0.5, 0.3, phrase="face hardly changed"),
    ]
    fused = fu.fuse(inputs)
    top = [c.modality for c in fused.top()]
    assert set(top) == {"voice", "diary_text", "phq9"}
    assert "diary text strongly negative" in fused.explanation
    assert "PHQ-9 total 18, item 9 = 2" in fused.explanation
    assert "speech rate 1.8 SD below" in fused.explanation
    assert "face hardly changed" not in fused.explanation
    assert all(c.pull < 0 for c in fused.top())
    assert fused.top()[0].as_dict()["direction"] == "lower"


def test_more_negative_text_gives_lower_mood() -> None:
    others = [fu.self_rated_modality(5), fu.ModalityInput("voice", 1.0, 0.5)]
    scores = []
    for valence in [-1.0, -0.6, -0.2, 0.0, 0.3, 0.7, 1.0]:
        text = fu.text_modality(modality="diary_text", valence=valence, probs=[0.7, 0.2, 0.1])
        fused = fu.fuse([*others, text])
        assert fused.score is not None
        scores.append(fused.score)
    assert scores == sorted(scores) and scores[0] < scores[-1]


def test_text_confidence_follows_probability_margin() -> None:
    decided = fu.text_modality(modality="diary_text", valence=-0.5, probs=[0.9, 0.05, 0.05])
    unsure = fu.text_modality(modality="diary_text", valence=-0.5, probs=[0.4, 0.35, 0.25])
    short = fu.text_modality(
        modality="diary_text", valence=-0.5, probs=[0.9, 0.05, 0.05], n_chars=5
    )
    assert unsure.confidence < decided.confidence
    assert short.confidence < decided.confidence


def test_questionnaire_mappings() -> None:
    assert fu.phq9_to_mood(0) == 5 and fu.phq9_to_mood(27) == -10
    assert fu.phq9_to_mood(20) <= -6  # the severe band meets the risk engine's low-mood threshold
    assert fu.mood_to_phq9(fu.phq9_to_mood(12)) == pytest.approx(12)
    assert (
        fu.phq9_modality(total=10, item9=0, age_days=3).confidence
        < fu.phq9_modality(total=10, item9=0).confidence
    )
    assert fu.phq9_modality(total=10, item9=0, age_days=7).confidence == 0
    assert fu.gad7_modality(total=21).score < fu.gad7_modality(total=0).score  # type: ignore[operator]
    assert fu.self_rated_modality(0).score == -10 and fu.self_rated_modality(10).score == 10


def test_score_is_bounded() -> None:
    fused = fu.fuse(
        [fu.ModalityInput("diary_text", -50.0, 1.0), fu.ModalityInput("voice", -30, 1.0)]
    )
    assert fused.score == -10


# --- fitting -------------------------------------------------------------------------------------
def _synthetic_rows(n: int, seed: int = 0) -> list[fu.FitRow]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        truth = rng.uniform(-9, 5)
        inputs = (
            fu.ModalityInput("diary_text", truth + rng.gauss(0, 1.0), 0.9),  # good
            fu.ModalityInput("face", rng.uniform(-10, 10), 0.9),  # pure noise
            fu.ModalityInput("self_rated", truth + rng.gauss(0, 2.5), 0.8),
        )
        rows.append(fu.FitRow(inputs=inputs, label=truth))
    return rows


def test_fit_prefers_informative_modalities_and_beats_defaults() -> None:
    result = fu.fit_weights(_synthetic_rows(200), ridge=0.1)
    assert result.weights["diary_text"] > result.weights["self_rated"] > result.weights["face"]
    assert all(w >= 0 for w in result.weights.values())
    assert result.mae < result.baseline_mae
    assert result.ccc > result.baseline_ccc and result.ccc > 0.8
    assert set(result.as_dict()) >= {"weights", "mae", "ccc", "n"}


def _rows_the_defaults_explain(n: int = 200, seed: int = 0) -> list[fu.FitRow]:
    """Every non-questionnaire modality says exactly what the PHQ-9 label says."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        truth = rng.uniform(-8, 5)
        inputs = (
            fu.ModalityInput("self_rated", truth, 0.8),
            fu.ModalityInput("diary_text", truth, 0.6),
            fu.ModalityInput("voice", truth, 0.5),
            fu.ModalityInput("face", truth, 0.5),
        )
        rows.append(fu.FitRow(inputs=inputs, label=truth))
    return rows


def test_fitting_what_the_defaults_explain_keeps_the_defaults_and_phq9s_share() -> None:
    result = fu.fit_weights(_rows_the_defaults_explain(), ridge=1.0)
    for name, weight in result.weights.items():
        assert weight == pytest.approx(fu.DEFAULT_WEIGHTS[name], abs=0.02)
    # the fitted modalities together weigh what their defaults weigh: PHQ-9 is not diluted
    assert sum(result.weights.values()) == pytest.approx(
        sum(fu.DEFAULT_WEIGHTS[m] for m in result.modalities)
    )
    day = [
        fu.phq9_modality(total=20, item9=0),
        fu.self_rated_modality(5.0),
        fu.ModalityInput("diary_text", 0.0, 0.6),
    ]
    default = fu.fuse(day)
    fitted = fu.fuse(day, fu.with_weights(fu.FusionConfig(), result.weights))

    def phq9_share(fused: fu.FusedMood) -> float:
        return next(c.share for c in fused.contributions if c.modality == "phq9")

    assert phq9_share(fitted) == pytest.approx(phq9_share(default), abs=0.01)
    assert fitted.score == pytest.approx(default.score, abs=0.1)


def test_fitted_weights_keep_the_questionnaires_default_weight_share() -> None:
    # informative fits move weight among the fitted modalities only, never off the PHQ-9
    result = fu.fit_weights(_synthetic_rows(200), ridge=0.1)
    assert sum(result.weights.values()) == pytest.approx(
        sum(fu.DEFAULT_WEIGHTS[m] for m in result.modalities), rel=1e-3
    )


def test_weights_stored_on_the_old_scale_are_rescaled_to_the_defaults() -> None:
    # weights fitted before the scale was pinned summed to the number of modalities
    old = {"self_rated": 1.0, "diary_text": 1.5, "face": 0.5}
    rescaled = fu.fitted_weights_rescale(old)
    target = fu.DEFAULT_WEIGHTS["self_rated"] + fu.DEFAULT_WEIGHTS["diary_text"] + 0.25
    assert sum(rescaled.values()) == pytest.approx(target)
    assert rescaled["diary_text"] / rescaled["self_rated"] == pytest.approx(1.5)  # shares kept
    assert fu.fitted_weights_rescale(rescaled) == pytest.approx(rescaled)  # idempotent
    assert fu.fitted_weights_rescale({"voice": -1.0, "bogus": 2.0, "face": 0.0}) == {"face": 0.0}


def test_fit_refuses_too_little_data() -> None:
    with pytest.raises(fu.InsufficientData):
        fu.fit_weights(_synthetic_rows(5))
    one_modality = [fu.FitRow(inputs=(fu.ModalityInput("voice", 1.0, 1.0),), label=1.0)] * 30
    with pytest.raises(fu.InsufficientData):
        fu.fit_weights(one_modality)


def test_ccc() -> None:
    assert fu.concordance_ccc([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert fu.concordance_ccc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert fu.concordance_ccc([1, 2, 3], [11, 12, 13]) < 0.1  # correlated but not concordant


def test_fusion_package_never_imports_django() -> None:
    folder = Path(fu.__file__).parent
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(
                n.split(".")[0] in {"django", "rest_framework", "privacy", "risk"} for n in names
            ), path


@pytest.mark.parametrize(
    ("ratings", "phrase"),
    [
        ((1.0, 0.0), "self-rated mood 0-1/10 (mean 0.5 of 2 ratings)"),
        ((2.0, 2.0), "self-rated mood 2/10 (2 ratings)"),
        ((7.0,), "self-rated mood 7/10"),
    ],
    ids=["two-different", "two-same", "one"],
)
def test_the_explanation_quotes_the_ratings_given_not_a_mean_as_a_rating(ratings, phrase):
    """Rated 1 then 0: "self-rated mood 0.5/10" read as a rating the patient never gave."""
    from screening.ml.fusion.fusion import self_rated_modality

    mean = sum(ratings) / len(ratings)
    item = self_rated_modality(mean, ratings=ratings)
    assert item.phrase == phrase
    assert item.score == pytest.approx((mean - 5) * 2)  # the score still uses the mean
