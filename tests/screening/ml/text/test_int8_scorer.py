"""The int8 mode scores with heads fitted on the int8 encoder's embeddings, and behaves."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from screening.ml.text.heads import HEADS_DIR, head_name
from screening.ml.text.scorer import TextScorer


@pytest.fixture(scope="module")
def int8_scorer() -> TextScorer:
    return TextScorer(device="cpu", quantized=True)


def test_int8_mode_loads_the_int8_heads(int8_scorer: TextScorer, scorer: TextScorer) -> None:
    names8 = {m.name for m in int8_scorer.models}
    names32 = {m.name for m in scorer.models}
    assert {"vigil-text-valence-int8", "vigil-text-emotions-int8", "vigil-text-risk-int8"} <= names8
    assert not any(n.endswith("-int8") for n in names32)
    assert any("int8" in n and "MiniLM" in n for n in names8)


def test_int8_heads_stay_within_001_of_fp32_on_dev() -> None:
    """The recorded dev metrics of each int8 head are within 0.01 of its fp32 twin (issue #5)."""
    pairs = {
        "valence": ["macro_f1_single_label_rows"],
        "emotions": ["macro_f1_dev_thresholds", "macro_f1_crossfit_thresholds"],
    }
    for name, keys in pairs.items():
        m32 = json.loads((HEADS_DIR / f"{name}.json").read_text())["metrics"]
        m8 = json.loads((HEADS_DIR / f"{head_name(name, quantized=True)}.json").read_text())[
            "metrics"
        ]
        for key in keys:
            assert abs(m8[key] - m32[key]) <= 0.01, (name, key, m8[key], m32[key])


_RISK_KEYS = ("at_risk_oof_at_chosen_threshold", "at_risk_oof_threshold_from_other_folds")


def _risk_metrics() -> tuple[dict, dict]:
    r32 = json.loads((HEADS_DIR / "risk.json").read_text())["metrics"]
    r8 = json.loads((HEADS_DIR / "risk-int8.json").read_text())["metrics"]
    return r32, r8


def test_int8_risk_head_keeps_the_recall_goal() -> None:
    """Both heads reach recall 0.95 at their chosen thresholds and with each fold's threshold
    taken from the other folds (the honest estimate). The per-sequence int8 head reached
    0.945 in the honest estimate (one user short) before per-token scales."""
    r32, r8 = _risk_metrics()
    for key in _RISK_KEYS:
        assert r32[key]["recall"] >= 0.95, key
        assert r8[key]["recall"] >= 0.95, key


def test_int8_risk_head_stays_within_001_of_fp32_on_dev() -> None:
    """Per-token int8: 0.651 against 0.657 at the chosen threshold (per-sequence: 0.645)."""
    r32, r8 = _risk_metrics()
    for key in _RISK_KEYS:
        assert abs(r8[key]["precision"] - r32[key]["precision"]) <= 0.01, key
    assert abs(r8["at_risk_oof_auc"] - r32["at_risk_oof_auc"]) <= 0.01


def test_int8_mode_reads_happy_and_sad_and_keeps_the_crisis_override(
    int8_scorer: TextScorer,
) -> None:
    happy, sad, crisis = int8_scorer.score(
        [
            "What a wonderful day, I laughed with my friends and feel so grateful.",
            "I feel awful and hopeless, everything went wrong and I cried all night.",
            "I want to kill myself tonight.",
        ]
    )
    assert happy.valence > 0.3 > -0.3 > sad.valence
    assert not happy.at_risk
    assert crisis.at_risk and crisis.crisis.category != "none"


def test_int8_and_fp32_agree_on_the_decision(int8_scorer: TextScorer, scorer: TextScorer) -> None:
    texts = [
        "Had a calm evening reading a book with tea.",
        "I don't really want to live anymore, I feel like a burden to everyone.",
        "So angry at my landlord, he ignored the broken heater again.",
    ]
    for a, b in zip(int8_scorer.score(texts), scorer.score(texts), strict=True):
        assert a.at_risk == b.at_risk
        assert abs(a.valence - b.valence) < 0.25


def test_int8_mode_keeps_ordinary_diary_lines_clear_and_flags_ideation(
    int8_scorer: TextScorer,
) -> None:
    from tests.screening.ml.text.test_diary_risk import IDEATION, ORDINARY

    ordinary = int8_scorer.score(ORDINARY)
    assert [t for t, s in zip(ORDINARY, ordinary, strict=True) if s.at_risk] == []
    ideation = int8_scorer.score(IDEATION)
    assert [t for t, s in zip(IDEATION, ideation, strict=True) if not s.at_risk] == []


# --- a text's int8 score does not depend on what it is scored with ------------------------------
# Dynamic quantisation scales each Linear layer's input by the largest value of the whole batch:
# before each sequence (now each token) got its own scale (encoder.quantize_linear_int8), one
# diary line's P(at risk) ranged 0.26-0.30 with its batch-mates, on both sides of the
# threshold, and embeddings of the same text in and out of a batch differed down to cosine 0.81.
# Batches still never mix lengths: padding changes fp32 attention in the last bits, and int8
# rounding turns that into differences up to 0.013 in an embedding.
def test_an_int8_embedding_does_not_depend_on_its_batch_mates(int8_encoder: Any) -> None:
    from tests.screening.ml.text.test_diary_risk import IDEATION, ORDINARY

    texts = [*ORDINARY, *IDEATION, "ok", "A much longer entry. " * 20]
    together = int8_encoder.encode(texts)
    alone = np.vstack([int8_encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)  # bit-equal here (0.0)


def test_an_int8_decision_does_not_depend_on_the_batch(int8_scorer: TextScorer) -> None:
    from tests.screening.ml.text.test_diary_risk import IDEATION, ORDINARY

    line = ORDINARY[4]  # "I'm a bit tired today ...": flipped with its batch-mates before
    alone = int8_scorer.score([line])[0]
    for batch in ([*ORDINARY], [*ORDINARY, *IDEATION], [*IDEATION, line], [line, line, line]):
        scored = int8_scorer.score(batch)[batch.index(line)]
        assert scored.at_risk_probability == alone.at_risk_probability
        assert scored.at_risk == alone.at_risk


@pytest.mark.parametrize(
    ("quantized", "expected"),
    [(False, [[0, 1, 2], [3, 4, 5], [6]]), (True, [[0, 1], [2, 3, 4], [5], [6]])],
)
def test_int8_batches_never_mix_lengths(
    int8_encoder: Any, quantized: bool, expected: list[list[int]]
) -> None:
    lengths = [5, 5, 7, 7, 7, 9, 12]
    saved = (int8_encoder.quantized, int8_encoder.batch_size)
    int8_encoder.quantized, int8_encoder.batch_size = quantized, 3
    try:
        assert int8_encoder._batches(list(range(7)), lengths) == expected
    finally:
        int8_encoder.quantized, int8_encoder.batch_size = saved


def test_a_per_token_int8_linear_is_exact_integer_arithmetic() -> None:
    """Each row is rounded to int8 on its own scale and multiplied in integers: the layer equals
    that arithmetic done in float64, whatever else is in the batch. 25.5 - 2**-17 is the case
    fbgemm rounds up when it quantises (it adds the zero point in float32 first)."""
    import torch

    from screening.ml.text.encoder import _per_token_class

    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    layer = _per_token_class()(linear)
    x = torch.randn(40, 64) * torch.logspace(-2, 2, 40)[:, None]
    x[0, :2] = torch.tensor([127.0, 25.5 - 2**-17])

    w = linear.weight.detach().double()
    w_scale = w.abs().amax(dim=1) / 64
    wq = torch.round(w / w_scale[:, None])
    assert wq.abs().max() <= 64  # no int16 saturation in fbgemm without VNNI
    scale = x.abs().amax(dim=1, keepdim=True) / 127.0  # float32, as the layer
    xq = torch.round(x / scale).double()
    expected = (xq @ wq.T) * scale.double() * w_scale + linear.bias.detach().double()
    with torch.inference_mode():
        got = layer(x).double()
        alone = torch.cat([layer(x[i : i + 1]) for i in range(len(x))]).double()
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-5)
    assert torch.equal(got, alone)
