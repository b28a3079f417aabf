"""Model files are verified: encoder tree hash, head hashes, and int8 mode stays close to fp32."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from screening.ml.artifacts import ModelIntegrityError, sha256_file, sha256_tree
from screening.ml.text.encoder import (
    ENCODER_TREE_INCLUDE,
    ENCODER_TREE_SHA256,
    MiniLMEncoder,
    encoder_model_path,
    encoder_verified_path,
    resolve_device,
)
from screening.ml.text.heads import HEAD_FILES, HEAD_NAMES, HEADS_DIR, head_paths, load_head
from screening.ml.text.scorer import TextScorer


def test_encoder_tree_hash_matches_the_installed_wheel() -> None:
    path = encoder_model_path()
    assert sha256_tree(path, include=ENCODER_TREE_INCLUDE) == ENCODER_TREE_SHA256
    assert encoder_verified_path() == path


def test_a_modified_encoder_folder_is_refused(tmp_path: Path) -> None:
    src = encoder_model_path()
    dst = tmp_path / "model"
    for f in src.rglob("*"):
        if f.is_file():
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(f)
    assert encoder_verified_path(dst) == dst  # symlinked copy: same content, accepted
    vocab = dst / "vocab.txt"
    content = vocab.read_text()
    vocab.unlink()
    vocab.write_text(content.replace("[unused0]", "[unused9]", 1))
    with pytest.raises(ModelIntegrityError):
        encoder_verified_path(dst)
    with pytest.raises(ModelIntegrityError):
        MiniLMEncoder(device="cpu", model_path=dst)


@pytest.mark.parametrize("name", HEAD_FILES)
def test_heads_match_their_recorded_hashes(name: str) -> None:
    npz, js = head_paths(name)
    meta = json.loads(js.read_text())
    assert meta["npz_sha256"] == sha256_file(npz)
    assert meta["config_hash"] and meta["labels"] and meta["metrics"]
    head = load_head(name)
    assert head.info.sha256 == sha256_file(js)
    assert (HEADS_DIR / f"{name}.md").is_file()  # model card
    # an int8 head was fitted on the int8 encoder's embeddings, an fp32 head on fp32 ones
    assert meta["config"]["quantized"] is name.endswith("-int8")


def test_tampered_head_raises(tmp_path: Path) -> None:
    for name in HEAD_NAMES:
        for p in head_paths(name):
            shutil.copy(p, tmp_path / p.name)
    load_head("risk", tmp_path)  # untouched copy loads
    npz = tmp_path / "risk.npz"
    raw = bytearray(npz.read_bytes())
    raw[-5] ^= 0x01  # flip one bit in the weights
    npz.write_bytes(bytes(raw))
    with pytest.raises(ModelIntegrityError):
        load_head("risk", tmp_path)
    (tmp_path / "valence.npz").unlink()
    with pytest.raises(ModelIntegrityError):
        load_head("valence", tmp_path)
    (tmp_path / "emotions.json").write_text("{not json")
    with pytest.raises(ModelIntegrityError):
        load_head("emotions", tmp_path)


def test_device_argument() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in {"cpu", "cuda"}
    with pytest.raises(ValueError):
        resolve_device("tpu")


SENTENCES = [
    "I feel calm after my walk by the river.",
    "Everything is falling apart and I can't cope anymore.",
    "My therapist suggested keeping this diary every evening.",
    "We celebrated my brother's birthday with a big dinner.",
    "I'm scared about the test results tomorrow.",
    "Nothing much happened today.",
]


def test_quantized_encoder_stays_close_to_fp32(
    scorer: TextScorer, int8_encoder: MiniLMEncoder
) -> None:
    a = scorer.embed(SENTENCES)
    b = int8_encoder.encode(SENTENCES)
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() >= 0.9, cos
    assert "int8" in int8_encoder.info.name
    # it is really a different (quantised) model, not the same weights
    assert not np.allclose(a, b, atol=1e-6)


def test_quantized_requires_cpu() -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: the cuda+int8 refusal is not reachable")
    with pytest.raises(ValueError):
        MiniLMEncoder(device="cuda", quantized=True)
