"""Training helpers that need no ../shared data: parsing, folds, thresholds, reproducible heads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from screening.ml.artifacts import sha256_file
from screening.ml.text import datasets as ds
from screening.ml.text.heads import head_paths, load_head, save_head
from screening.ml.text.training import (
    TrainConfig,
    _stratified_folds,
    best_threshold,
    binary_metrics,
    recall_threshold,
)


def test_truncated_post_cells_are_recovered() -> None:
    assert ds._parse_posts("['one', 'two']") == ["one", "two"]
    assert ds._parse_posts("['one', 'two is cut") == ["one", "two is cut"]
    assert ds._parse_posts('["one", "two is cut') == ["one", "two is cut"]
    with pytest.raises(ValueError):
        ds._parse_posts("not a list at all (")


def test_missing_data_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ds.DatasetMissing, match="fresh clone"):
        ds.require(tmp_path)


def test_recall_threshold_reaches_the_target() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 400), 0, 1)
    forced = np.zeros(400, dtype=bool)
    t = recall_threshold(y, p, forced, 0.95)
    m = binary_metrics(y, p >= t)
    assert m["recall"] >= 0.95
    # the highest such threshold: one step up loses the target
    higher = np.unique(p[y == 1])
    higher = higher[higher > t]
    assert binary_metrics(y, p >= higher.min())["recall"] < 0.95
    # forced positives count as found
    assert recall_threshold(y, p, y == 1, 0.95) == 1.0  # all positives forced: flag nothing else
    half = (y == 1) & (np.arange(400) % 2 == 0)
    t_half = recall_threshold(y, p, half, 0.95)
    assert t_half >= t
    assert binary_metrics(y, (p >= t_half) | half)["recall"] >= 0.95


def test_best_threshold_separates_separable_data() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert binary_metrics(y, p >= best_threshold(y, p))["f1"] == 1.0


def test_folds_are_stratified_and_seeded() -> None:
    y = np.array([0] * 50 + [1] * 20 + [2] * 10)
    f1 = _stratified_folds(y, 5, 1)
    assert np.array_equal(f1, _stratified_folds(y, 5, 1))
    for k in range(5):
        assert np.bincount(y[f1 == k], minlength=3).tolist() == [10, 4, 2]


def test_config_hash_tracks_the_recipe() -> None:
    assert TrainConfig().config_hash() == TrainConfig().config_hash()
    assert TrainConfig().config_hash() != TrainConfig(lr_c_risk=0.3).config_hash()


def test_saved_heads_are_byte_reproducible(tmp_path: Path) -> None:
    arrays = {"W": np.arange(6.0).reshape(2, 3), "b": np.zeros(2)}
    save_head("valence", arrays=arrays, meta={"labels": ["a", "b"]}, heads_dir=tmp_path)
    first = sha256_file(head_paths("valence", tmp_path)[0])
    save_head("valence", arrays=arrays, meta={"labels": ["a", "b"]}, heads_dir=tmp_path)
    assert sha256_file(head_paths("valence", tmp_path)[0]) == first
    head = load_head("valence", tmp_path)
    assert np.allclose(head.linear(np.ones((1, 3))), [[3.0, 12.0]])


def test_short_views_cut_long_passages_into_sentences_with_their_users_label() -> None:
    """The adapters' short views (recipe key chunk_tokens): every passage longer than the budget
    is cut again at sentence ends, each piece carries the passage's user and an equal share of its
    weight; short passages and a budget of 0 add nothing."""
    from screening.ml.text.encoder import MiniLMEncoder
    from screening.ml.text.training import _short_views

    tokenizer = MiniLMEncoder(device="cpu").tokenizer
    long = " ".join(f"On day {i} I walked to the shop and back again." for i in range(30))
    texts = ["Short and sweet.", long]
    views, users, weights = _short_views(
        texts, np.array([3, 7]), np.array([1.0, 2.0]), tokenizer=tokenizer, max_tokens=64
    )
    assert len(views) >= 4 and set(users.tolist()) == {7}
    assert weights.sum() == pytest.approx(2.0) and np.allclose(weights, weights[0])
    assert all(len(tokenizer(v, add_special_tokens=True)["input_ids"]) <= 64 for v in views)
    assert " ".join(views).split() == long.split()  # whole sentences, nothing lost
    none = _short_views(
        texts, np.array([3, 7]), np.array([1.0, 2.0]), tokenizer=tokenizer, max_tokens=0
    )
    assert none[0] == [] and len(none[1]) == len(none[2]) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"treatment_weight": -0.1}, "treatment_weight must be 0 or more"),
        ({"treatment_weight": float("nan")}, "treatment_weight must be 0 or more"),
        ({"background_rows": -1}, "background_rows must be 0 or more"),
        ({"chunk_tokens": 5}, "chunk_tokens must be 0 or 10-256"),
        ({"chunk_tokens": 1000}, "chunk_tokens must be 0 or 10-256"),
        ({"rank": 0}, "rank, batch_size and epochs must be positive"),
        ({"no_such_key": 1}, "adapter recipe: .*no_such_key"),
    ],
)
def test_a_bad_adapter_recipe_is_refused_when_the_config_is_made(
    change: dict[str, object], message: str
) -> None:
    """Checked once, in TrainConfig: before embeddings and hours of adapter training."""
    from screening.ml.text.training import ADAPTER_RECIPE

    with pytest.raises(ValueError, match=message):
        TrainConfig(adapter={**ADAPTER_RECIPE, **change})
    TrainConfig(adapter={**ADAPTER_RECIPE, "chunk_tokens": 64, "treatment_weight": 0.3})
