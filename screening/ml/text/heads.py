"""The trained text heads: small numpy weight files plus a JSON card, verified before use.

Each head is ``<name>.npz`` (weights) and ``<name>.json`` (label names, thresholds, config hash,
metrics and the SHA-256 of the ``.npz``). :func:`load_head` refuses a head whose ``.npz`` differs
from the hash in its ``.json`` (``ModelIntegrityError``); the ``ModelInfo`` a result carries holds
the ``.json``'s own SHA-256, which pins both files. Inference is plain numpy: no sklearn pickle.
No Django here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from screening.ml.artifacts import ModelInfo, ModelIntegrityError, sha256_file, verify_file

HEADS_DIR = Path(__file__).resolve().parent / "heads"
HEAD_NAMES = ("valence", "emotions", "risk")
#: The int8 encoder's embeddings differ a little from fp32 ones (cosine ~0.97): heads fitted on
#: them stay close to fp32 on dev (valence and emotions within 0.01, the risk head's precision
#: 0.012 below), the fp32 heads did not (docs/text-scoring.md).
INT8_SUFFIX = "-int8"


def head_name(name: str, *, quantized: bool) -> str:
    """The file name of a head for the fp32 or the int8 encoder ("valence" / "valence-int8")."""
    return f"{name}{INT8_SUFFIX}" if quantized else name


#: Every committed head file stem.
HEAD_FILES = HEAD_NAMES + tuple(head_name(n, quantized=True) for n in HEAD_NAMES)


@dataclass(frozen=True)
class Head:
    name: str
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    info: ModelInfo

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.meta["labels"])

    def linear(self, x: np.ndarray, prefix: str = "") -> np.ndarray:
        w = self.arrays[f"{prefix}W"]
        b = self.arrays[f"{prefix}b"]
        return np.asarray(x @ w.T + b, dtype=np.float64)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -40, 40))))


def logit(p: np.ndarray | float, eps: float = 1e-6) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.asarray(np.log(q / (1 - q)))


def head_paths(name: str, heads_dir: Path = HEADS_DIR) -> tuple[Path, Path]:
    return heads_dir / f"{name}.npz", heads_dir / f"{name}.json"


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez`` but byte-reproducible (fixed zip timestamps, sorted names, float32)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(
                buf, np.ascontiguousarray(arrays[key], dtype=np.float32), allow_pickle=False
            )
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, buf.getvalue())


def save_head(
    name: str, *, arrays: dict[str, np.ndarray], meta: dict[str, Any], heads_dir: Path = HEADS_DIR
) -> Path:
    heads_dir.mkdir(parents=True, exist_ok=True)
    npz, js = head_paths(name, heads_dir)
    write_npz(npz, arrays)
    meta = dict(meta, name=name, npz_sha256=sha256_file(npz))
    js.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return js


def heads_adapter(heads: Sequence[Head], heads_dir: Path = HEADS_DIR) -> Any:
    """The encoder adapter the heads were fitted on (an ``AdapterRef``), or None for the plain
    encoder. Heads fitted on different encoders cannot be served by one: refused."""
    from screening.ml.text.adapters import AdapterRef

    named = {json.dumps(h.meta.get("encoder", {}).get("adapter"), sort_keys=True) for h in heads}
    if len(named) != 1:
        raise ModelIntegrityError("text heads", "fitted on different encoder adapters")
    adapter = heads[0].meta.get("encoder", {}).get("adapter")
    if adapter is None:
        return None
    file = str(adapter.get("file", ""))
    if not file or Path(file).name != file:  # a bare name next to the heads, never a path
        raise ModelIntegrityError(
            "text heads", "the adapter's file must be a name in the heads folder"
        )
    return AdapterRef(path=heads_dir / file, sha256=str(adapter.get("sha256", "")))


def load_head(name: str, heads_dir: Path = HEADS_DIR) -> Head:
    npz, js = head_paths(name, heads_dir)
    if not js.is_file():
        raise ModelIntegrityError(f"text head {name}", f"card not found at {js}")
    try:
        meta = json.loads(js.read_text())
    except json.JSONDecodeError as exc:
        raise ModelIntegrityError(f"text head {name}", "card is not valid JSON") from exc
    expected = meta.get("npz_sha256")
    if not isinstance(expected, str):
        raise ModelIntegrityError(f"text head {name}", "card has no npz_sha256")
    verify_file(npz, name=f"text head {name}", expected_sha256=expected)
    with np.load(npz, allow_pickle=False) as data:
        arrays = {k: np.asarray(data[k], dtype=np.float64) for k in data.files}
    info = ModelInfo(
        name=f"vigil-text-{name}",
        version=str(meta.get("version", "")) + "+" + str(meta.get("config_hash", "")),
        sha256=sha256_file(js),
    )
    return Head(name=name, meta=meta, arrays=arrays, info=info)


# --- suicide-risk aggregation, shared by training and the scorer -------------------------------

CRISIS_EXPLICIT = frozenset({"passive_ideation", "active_ideation", "plan", "imminent_intent"})
RISK_FEATURES = (
    "logit_max_passage_at_risk",
    "logit_mean_passage_at_risk",
    "crisis_explicit",
    "crisis_distress",
)


def risk_passage_probs(head: Head, x: np.ndarray) -> np.ndarray:
    """Per-passage probabilities over the five C-SSRS levels, (m, 5)."""
    return softmax(head.linear(x))


def risk_features(
    probs: np.ndarray,
    lengths: np.ndarray,
    at_risk_idx: list[int],
    crisis_category: str,
) -> np.ndarray:
    """Document features for the at-risk calibrator from its passages' level probabilities."""
    r = probs[:, at_risk_idx].sum(axis=1)
    w = np.maximum(np.asarray(lengths, dtype=np.float64), 1.0)
    return np.array(
        [
            float(logit(r.max())),
            float(logit(float((r * w).sum() / w.sum()))),
            1.0 if crisis_category in CRISIS_EXPLICIT else 0.0,
            1.0 if crisis_category == "distress" else 0.0,
        ]
    )


def risk_document_probs(
    probs: np.ndarray, lengths: np.ndarray, worst: int, worst_weight: float
) -> np.ndarray:
    w = np.maximum(np.asarray(lengths, dtype=np.float64), 1.0)
    mean = (probs * w[:, None]).sum(axis=0) / w.sum()
    return worst_weight * probs[worst] + (1 - worst_weight) * mean
