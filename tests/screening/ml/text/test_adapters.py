"""Low-rank adapters: training moves the encoder the way its labels ask, merged deltas compute what
the adapted model computes, and an adapter file is applied only when its hash matches."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from screening.ml.artifacts import ModelIntegrityError, sha256_file
from screening.ml.text import adapters
from screening.ml.text.adapters import (
    AdapterRef,
    LoraConfig,
    adapter_apply,
    adapter_load,
    adapter_save,
    lora_train,
)
from screening.ml.text.encoder import ENCODER_TREE_SHA256, MiniLMEncoder
from screening.ml.text.scorer import TextScorer

# Two kinds of everyday sentence the plain encoder already tells apart a little: adaptation must
# pull each kind together and the two apart.
CALM = [
    "We walked along the beach and watched the sunset.",
    "A quiet morning with tea and a good book.",
    "The garden is full of flowers this spring.",
    "We had a picnic in the park with friends.",
]
CHORES = [
    "The invoice has to be paid before Friday.",
    "I need to renew the car insurance this month.",
    "The printer at the office is out of toner again.",
    "Remember to send the tax form to the accountant.",
]
SMALL = LoraConfig(layers=(4, 5), targets="qvf", epochs=6, lr=5e-3, batch_size=4, seed=7)


@pytest.fixture(scope="module")
def encoder(scorer: TextScorer) -> MiniLMEncoder:
    return scorer._encoder  # the session's fp32 encoder (loaded once)


def _framed(encoder: MiniLMEncoder, texts: list[str]) -> list[list[int]]:
    cls_id, sep_id = encoder.tokenizer.cls_token_id, encoder.tokenizer.sep_token_id
    return [[cls_id, *ids, sep_id] for ids in encoder.tokenize(texts)]


def _train(encoder: MiniLMEncoder, cfg: LoraConfig = SMALL) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return lora_train(
        model=encoder.model,
        sequences=_framed(encoder, CALM + CHORES),
        labels=np.array([0] * len(CALM) + [1] * len(CHORES)),
        weights=np.ones(len(CALM) + len(CHORES)),
        head_weight=rng.normal(0, 0.1, size=(2, 384)),
        head_bias=np.zeros(2),
        cfg=cfg,
        pad_id=int(encoder.tokenizer.pad_token_id),
    )


def _with_deltas(encoder: MiniLMEncoder, deltas: dict[str, np.ndarray]) -> MiniLMEncoder:
    adapted = copy.copy(encoder)
    adapted.model = copy.deepcopy(encoder.model)
    adapter_apply(adapted.model, deltas)
    return adapted


def _separation(encoder: MiniLMEncoder) -> float:
    """Mean cosine within the two kinds minus mean cosine across them."""
    x = encoder.encode(CALM + CHORES)
    sims = x @ x.T
    n = len(CALM)
    within = (sims[:n, :n].sum() - n + sims[n:, n:].sum() - n) / (2 * n * (n - 1))
    across = sims[:n, n:].mean()
    return float(within - across)


@pytest.fixture(scope="module")
def trained(encoder: MiniLMEncoder) -> dict[str, np.ndarray]:
    return _train(encoder)


def test_training_pulls_each_kind_together_and_the_kinds_apart(encoder, trained):
    before = _separation(encoder)
    after = _separation(_with_deltas(encoder, trained))
    assert after > before + 0.5, (before, after)


def test_the_deltas_cover_exactly_the_configured_weights(encoder, trained):
    assert sorted(trained) == sorted(SMALL.weight_names())
    params = dict(encoder.model.named_parameters())
    for name, delta in trained.items():
        assert delta.shape == tuple(params[name].shape)
        assert np.abs(delta).max() > 0  # B starts at zero: every adapter was trained
    assert len(trained) == 2 * 3


def test_training_is_seeded_and_leaves_the_base_model_alone(encoder, trained):
    base = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    again = _train(encoder)
    assert all(np.array_equal(again[k], trained[k]) for k in trained)
    after = encoder.model.state_dict()
    assert all(torch.equal(base[k], after[k]) for k in base)
    other = _train(encoder, LoraConfig(**{**SMALL.as_dict(), "layers": (4, 5), "seed": 8}))
    assert not np.array_equal(other[SMALL.weight_names()[0]], trained[SMALL.weight_names()[0]])


def test_merged_deltas_compute_what_the_adapted_model_computes(encoder):
    """The deltas added to the weights (what ships) equal the adapters run beside the frozen
    weights (what was trained), with the adapters' dropout off."""
    cfg = LoraConfig(layers=(0, 5), targets="qkvofi", rank=4, alpha=8, seed=3)
    unmerged = copy.deepcopy(encoder.model)
    adapters._attach(unmerged, cfg)
    torch.manual_seed(3)
    for module in unmerged.modules():
        if isinstance(module, adapters._lora_linear_class()):
            torch.nn.init.normal_(module.B, std=0.02)
    unmerged.eval()
    ids, mask = adapters._padded(_framed(encoder, CALM[:2] + CHORES[:2]), 0)
    with torch.inference_mode():
        expected = adapters._pooled(unmerged, ids, mask).numpy()
        merged = copy.deepcopy(encoder.model)
        adapter_apply(merged, adapters._deltas(unmerged, cfg))
        got = adapters._pooled(merged, ids, mask).numpy()
        plain = adapters._pooled(encoder.model, ids, mask).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-5)
    assert np.abs(plain - expected).max() > 1e-3  # the adapters did change the output


def test_an_adapter_file_applies_only_with_its_hash(encoder, trained, tmp_path: Path):
    path = tmp_path / "adapter.npz"
    sha = adapter_save(path, trained, rank=SMALL.rank)
    assert adapter_save(tmp_path / "again.npz", trained, rank=SMALL.rank) == sha  # reproducible
    loaded = adapter_load(path, expected_sha256=sha)
    assert sorted(loaded) == sorted(trained)
    for k in trained:  # stored as rank-r factors, loaded as the same deltas
        np.testing.assert_allclose(loaded[k], trained[k], atol=1e-6 * np.abs(trained[k]).max())
    with pytest.raises(ModelIntegrityError, match="sha256"):
        adapter_load(path, expected_sha256="0" * 64)
    with pytest.raises(ModelIntegrityError, match="not found"):
        adapter_load(tmp_path / "missing.npz", expected_sha256=sha)

    adapted = MiniLMEncoder(device="cpu", adapter=AdapterRef(path=path, sha256=sha))
    np.testing.assert_allclose(
        adapted.encode(CALM), _with_deltas(encoder, trained).encode(CALM), atol=1e-6
    )
    assert adapted.info.version.endswith(f"+adapter.{sha[:16]}")
    assert adapted.info.sha256 not in (ENCODER_TREE_SHA256, sha)  # covers both files
    with pytest.raises(ModelIntegrityError):
        MiniLMEncoder(device="cpu", adapter=AdapterRef(path=path, sha256="f" * 64))


def test_the_int8_mode_quantises_the_adapted_weights(trained, tmp_path: Path):
    path = tmp_path / "adapter.npz"
    sha = adapter_save(path, trained, rank=SMALL.rank)
    ref = AdapterRef(path=path, sha256=sha)
    fp32 = MiniLMEncoder(device="cpu", adapter=ref).encode(CALM + CHORES)
    int8 = MiniLMEncoder(device="cpu", quantized=True, adapter=ref).encode(CALM + CHORES)
    plain_int8 = MiniLMEncoder(device="cpu", quantized=True).encode(CALM + CHORES)
    to_adapted = (fp32 * int8).sum(axis=1)
    to_plain = (fp32 * plain_int8).sum(axis=1)
    assert to_adapted.min() > 0.95
    assert to_adapted.mean() > to_plain.mean()


def test_a_foreign_or_misshapen_weight_is_refused_before_anything_changes(encoder):
    model = copy.deepcopy(encoder.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    good = np.zeros((384, 384), dtype=np.float32) + 1.0
    for bad in (
        {"encoder.layer.0.attention.self.query.weight": good, "no.such.weight": good},
        {
            "encoder.layer.0.attention.self.query.weight": good,
            "encoder.layer.0.intermediate.dense.weight": good,  # (1536, 384)
        },
    ):
        with pytest.raises(ModelIntegrityError):
            adapter_apply(model, bad)
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    "kwargs",
    [{"rank": 0}, {"batch_size": 0}, {"epochs": 0}, {"targets": "qz"}, {"targets": ""}],
)
def test_a_bad_recipe_is_refused(kwargs):
    with pytest.raises(ValueError):
        LoraConfig(**kwargs)


def test_training_needs_matching_inputs(encoder):
    with pytest.raises(ValueError):
        lora_train(
            model=encoder.model,
            sequences=[],
            labels=np.array([]),
            weights=np.array([]),
            head_weight=np.zeros((2, 384)),
            head_bias=np.zeros(2),
            cfg=SMALL,
            pad_id=0,
        )


def test_the_file_holds_rank_r_factors_and_refuses_anything_else(trained, tmp_path: Path):
    """Full 384 x 1536 deltas would make the recipe's file 42 MB (in git with each retrain); the
    factors are 4% of that. A delta that is not low-rank is refused, not silently truncated."""
    path = tmp_path / "adapter.npz"
    adapter_save(path, trained, rank=SMALL.rank)
    full = sum(d.nbytes for d in trained.values())
    assert path.stat().st_size < full / 10
    with np.load(path) as data:
        names = sorted(data.files)
        shapes = {k: data[k].shape for k in names}
    assert names == sorted(f"{n}@{part}" for n in trained for part in ("up", "down"))
    for n, d in trained.items():
        assert shapes[f"{n}@up"] == (d.shape[0], SMALL.rank)
        assert shapes[f"{n}@down"] == (SMALL.rank, d.shape[1])

    rng = np.random.default_rng(0)
    noisy = {n: d + rng.normal(0, 1e-2, size=d.shape) for n, d in trained.items()}
    with pytest.raises(ValueError, match="rank above"):
        adapter_save(tmp_path / "noisy.npz", noisy, rank=SMALL.rank)

    # a file with the right hash but a factor missing or misshapen is not an adapter
    name = next(iter(trained))
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    for broken in (
        {k: v for k, v in arrays.items() if k != f"{name}@down"},
        {**arrays, f"{name}@down": arrays[f"{name}@down"][:-1]},
    ):
        bad = tmp_path / "broken.npz"
        np.savez(bad, **broken)
        with pytest.raises(ModelIntegrityError):
            adapter_load(bad, expected_sha256=sha256_file(bad))


def test_an_empty_or_non_finite_adapter_is_refused(trained, tmp_path: Path):
    """A training run that diverged (NaN) or produced nothing must not become a file the scorer
    would load; an empty file with a matching hash is not an adapter either."""
    name = next(iter(trained))
    with pytest.raises(ValueError, match="finite"):
        adapter_save(tmp_path / "nan.npz", {name: trained[name] * np.nan}, rank=SMALL.rank)
    with pytest.raises(ValueError, match="no adapter deltas"):
        adapter_save(tmp_path / "none.npz", {}, rank=SMALL.rank)
    empty = tmp_path / "empty.npz"
    np.savez(empty)
    with pytest.raises(ModelIntegrityError, match="not a file of adapter factors"):
        adapter_load(empty, expected_sha256=sha256_file(empty))
