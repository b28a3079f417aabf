"""Readers for the development datasets in ``../shared/datasets`` and an embedding cache.

Only training and evaluation use these (``manage.py train_text_heads`` / ``evaluate_text_heads``);
the scorer and the tests never do. No Django here.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GOEMOTIONS = "goemotions"
CSSRS = "cssrs-reddit"
RISK_LABELS: tuple[str, ...] = ("supportive", "indicator", "ideation", "behavior", "attempt")
AT_RISK_LABELS: frozenset[str] = frozenset({"ideation", "behavior", "attempt"})


class DatasetMissing(FileNotFoundError):
    """The shared development data is not on this machine (a fresh clone has none)."""


def default_data_dir() -> Path:
    env = os.environ.get("VIGIL_TEXT_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[4] / "shared" / "datasets"


def default_cache_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "var" / "text-cache"


def require(data_dir: Path) -> None:
    needed = [
        data_dir / GOEMOTIONS / "group" / "train.tsv",
        data_dir / GOEMOTIONS / "ekman" / "train.tsv",
        data_dir / CSSRS / "dev.csv",
    ]
    missing = [p for p in needed if not p.is_file()]
    if missing:
        raise DatasetMissing(
            f"development data not found under {data_dir} (missing {missing[0].name}); the text "
            "heads are trained and evaluated on ../shared/datasets, which a fresh clone lacks"
        )


@dataclass(frozen=True)
class MultiLabelSet:
    texts: tuple[str, ...]
    labels: np.ndarray  # (n, n_labels) 0/1
    label_names: tuple[str, ...]


def read_goemotions(data_dir: Path, *, grouping: str, split: str) -> MultiLabelSet:
    folder = data_dir / GOEMOTIONS / grouping
    names = tuple(
        line.strip() for line in (folder / "labels.txt").read_text().splitlines() if line.strip()
    )
    texts: list[str] = []
    rows: list[np.ndarray] = []
    with (folder / f"{split}.tsv").open(encoding="utf-8", newline="") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2 or not parts[0].strip():
                continue
            y = np.zeros(len(names), dtype=np.int8)
            for tok in parts[1].split(","):
                if tok.strip():
                    y[int(tok)] = 1
            texts.append(parts[0])
            rows.append(y)
    return MultiLabelSet(tuple(texts), np.stack(rows), names)


def _parse_posts(cell: str) -> list[str]:
    """The ``Post`` column is a Python list literal; 19 cells were cut at 32,759 characters."""
    for suffix in ("", "']", '"]'):
        try:
            value = ast.literal_eval(cell + suffix)
        except (SyntaxError, ValueError):
            continue
        if isinstance(value, list):
            return [str(v) for v in value if str(v).strip()]
    raise ValueError("unparseable Post cell")


@dataclass(frozen=True)
class RiskUser:
    user: str
    posts: tuple[str, ...]
    label: str  # one of RISK_LABELS

    @property
    def text(self) -> str:
        """How the scorer sees a user: their posts as paragraphs of one text."""
        return "\n\n".join(p.strip() for p in self.posts)


def read_cssrs(data_dir: Path) -> list[RiskUser]:
    csv.field_size_limit(1 << 24)
    users = []
    with (data_dir / CSSRS / "dev.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            label = row["Label"].strip().lower()
            if label not in RISK_LABELS:
                raise ValueError("unknown C-SSRS label")
            users.append(RiskUser(row["User"], tuple(_parse_posts(row["Post"])), label))
    return users


def texts_key(texts: Sequence[str], *, model_key: str) -> str:
    digest = hashlib.sha256(model_key.encode())
    for t in texts:
        digest.update(t.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def cached_embeddings(
    name: str,
    texts: Sequence[str],
    *,
    model_key: str,
    encode: Callable[[Sequence[str]], np.ndarray],
    cache_dir: Path,
) -> np.ndarray:
    """``encode(texts)``, stored under ``cache_dir`` keyed by the model and the exact texts."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{name}-{texts_key(texts, model_key=model_key)}.npy"
    if path.is_file():
        arr = np.load(path)
        if arr.shape[0] == len(texts):
            return arr
    arr = encode(texts).astype(np.float32)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    tmp.replace(path)
    return arr
