"""``train_text_heads --adapter`` end to end on a tiny dataset: adapters per fold for the risk
metrics, a final adapter shipped next to the heads with its hash in every card, and a scorer that
serves the heads only through that verified adapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from screening.ml.artifacts import ModelIntegrityError, sha256_file
from screening.ml.text.heads import HEADS_DIR, head_paths, heads_adapter, load_head
from screening.ml.text.scorer import TextScorer
from screening.ml.text.training import (
    ADAPTER_FILE,
    ADAPTER_RECIPE,
    TrainConfig,
    evaluate_all,
    train_all,
)
from tests.screening.ml.text.tiny_datasets import make_tiny_datasets

# Two adapted weights in one layer, one epoch: seconds on CPU, the same code path as the recipe.
TINY_ADAPTER = {
    **ADAPTER_RECIPE,
    "layers": [5],
    "targets": "qv",
    "epochs": 1.0,
    "batch_size": 8,
    "background_rows": 8,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("adapted")
    data = make_tiny_datasets(root / "data")
    cfg = TrainConfig(adapter=TINY_ADAPTER)
    heads = root / "heads"
    results = train_all(
        cfg=cfg, data_dir=data, cache_dir=root / "cache", heads_dir=heads, log=lambda _: None
    )
    return {"root": root, "data": data, "heads": heads, "cfg": cfg, "results": results}


def test_the_adapter_ships_next_to_the_heads_and_every_card_names_it(trained):
    heads: Path = trained["heads"]
    sha = sha256_file(heads / ADAPTER_FILE)
    for name in ("valence", "emotions", "risk"):
        meta = json.loads(head_paths(name, heads)[1].read_text())
        assert meta["encoder"]["adapter"] == {"file": ADAPTER_FILE, "sha256": sha}
        assert meta["config"]["adapter"] == TINY_ADAPTER
        assert meta["config_hash"] == trained["cfg"].config_hash()
        card = (heads / f"{name}.md").read_text()
        assert "low-rank adapters" in card and sha in card


def test_the_risk_metrics_come_from_adapters_that_never_saw_the_fold(trained):
    """One adapter per fold plus the final one, each trained once and cached."""
    cached = sorted((trained["root"] / "cache" / "adapters").glob("adapter-*.npz"))
    assert len(cached) == trained["cfg"].risk_folds + 1
    assert len({sha256_file(p) for p in cached}) == len(cached)
    final = sha256_file(trained["heads"] / ADAPTER_FILE)
    assert sum(sha256_file(p) == final for p in cached) == 1
    metrics = trained["results"]["risk"]
    assert metrics["users"] == 25
    assert metrics["at_risk_oof_at_chosen_threshold"]["recall"] >= 0.95


def test_a_rerun_reuses_the_adapters_and_evaluate_reproduces_the_card(trained):
    root = trained["root"]
    again = root / "heads-again"
    results = train_all(
        cfg=trained["cfg"],
        data_dir=trained["data"],
        cache_dir=root / "cache",
        heads_dir=again,
        log=lambda _: None,
    )
    assert sha256_file(again / ADAPTER_FILE) == sha256_file(trained["heads"] / ADAPTER_FILE)
    assert results["risk"] == trained["results"]["risk"]
    evaluated = evaluate_all(
        data_dir=trained["data"],
        cache_dir=root / "cache",
        heads_dir=trained["heads"],
        log=lambda _: None,
    )
    assert evaluated["risk_crossval"] == trained["results"]["risk"]


def test_the_scorer_serves_the_heads_through_their_verified_adapter(trained, tmp_path: Path):
    heads: Path = trained["heads"]
    scorer = TextScorer(device="cpu", heads_dir=heads)
    sha = sha256_file(heads / ADAPTER_FILE)
    encoder = next(m for m in scorer.models if m.name.startswith("all-MiniLM-L6-v2"))
    assert encoder.version.endswith(f"+adapter.{sha[:16]}")
    (score,) = scorer.score(["I want to die, I think about it every night."])
    assert score.crisis.category != "none"
    assert 0.0 <= score.at_risk_probability <= 1.0

    tampered = tmp_path / "heads"
    shutil.copytree(heads, tampered)
    factors = dict(np.load(tampered / ADAPTER_FILE))
    name = next(iter(factors))
    factors[name] = factors[name] + 0.01
    np.savez(tampered / ADAPTER_FILE, **factors)
    with pytest.raises(ModelIntegrityError, match="adapter"):
        TextScorer(device="cpu", heads_dir=tampered)


def test_heads_fitted_on_different_encoders_are_refused(trained):
    adapted = load_head("risk", trained["heads"])
    plain = load_head("valence", HEADS_DIR)  # the shipped heads: the frozen encoder
    assert heads_adapter((plain,), HEADS_DIR) is None
    assert heads_adapter((adapted,), trained["heads"]) is not None
    with pytest.raises(ModelIntegrityError, match="different encoder adapters"):
        heads_adapter((plain, adapted), trained["heads"])


def test_treatment_talk_joins_the_adapters_training_data_only_when_asked(trained):
    """Rows of GoEmotions that talk of treatment become "supportive" examples for the adapters
    (the diaries' false alarms, docs/text-scoring.md); off in the default recipe."""
    assert ADAPTER_RECIPE["treatment_weight"] == 0.0
    root = trained["root"]
    messages: list[str] = []
    cfg = TrainConfig(adapter={**TINY_ADAPTER, "treatment_weight": 0.3})
    train_all(
        cfg=cfg,
        data_dir=trained["data"],
        cache_dir=root / "cache",
        heads_dir=root / "heads-treatment",
        log=messages.append,
        only=("risk",),
    )
    used = [m for m in messages if "treatment-talk rows" in m]
    assert used and all(m.endswith("+ 2 treatment-talk rows") for m in used)
    plain = sha256_file(trained["heads"] / ADAPTER_FILE)
    assert sha256_file(root / "heads-treatment" / ADAPTER_FILE) != plain
    default = _adapter_messages(trained, TINY_ADAPTER)  # the default recipe: none
    assert default and all(m.endswith("+ 0 treatment-talk rows") for m in default)


def _adapter_messages(trained: dict[str, Any], recipe: dict[str, Any]) -> list[str]:
    messages: list[str] = []
    train_all(
        cfg=TrainConfig(adapter={**recipe, "seed": 11}),
        data_dir=trained["data"],
        cache_dir=trained["root"] / "cache",
        heads_dir=trained["root"] / "heads-seed11",
        log=messages.append,
        only=("risk",),
    )
    return [m for m in messages if "treatment-talk rows" in m]


def test_a_card_cannot_point_the_adapter_outside_the_heads_folder(trained):
    head = load_head("risk", trained["heads"])
    for file in ("../encoder-adapter.npz", "/etc/passwd", ""):
        head.meta["encoder"]["adapter"]["file"] = file
        with pytest.raises(ModelIntegrityError, match="heads folder"):
            heads_adapter((head,), trained["heads"])


def test_a_recipe_without_adapters_keeps_its_hash():
    """Adding the adapter field changed no shipped head's recipe hash."""
    meta = json.loads(head_paths("risk", HEADS_DIR)[1].read_text())
    assert TrainConfig(**meta["config"]).config_hash() == meta["config_hash"]
    assert TrainConfig(adapter=TINY_ADAPTER).config_hash() != meta["config_hash"]
