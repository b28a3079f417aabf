"""Low-rank adapters (LoRA) for the MiniLM encoder: train, merge, save, verify and apply.

The at-risk head on the frozen encoder stops short of the issue's precision goal
(docs/text-scoring.md): the frozen embedding separates "writing about one's own crisis" from
"writing to help someone" poorly. Fine-tuning the encoder with low-rank adapters ranks users
clearly better (``docs/experiments/2026-11-22-lora-risk.md``). This module is that method as
product code, no Django:

- :func:`lora_train` fine-tunes rank-``r`` adapters on the query, key, value, attention-output and
  both feed-forward Linear layers of the chosen transformer layers, with a linear head over the
  mean-pooled, L2-normalised embedding (the same pooling the encoder uses), weighted cross-entropy,
  AdamW and a linear warm-up then decay. Seeded: the same inputs give the same adapter.
- The result is the **merged deltas** ``(alpha / r) * B @ A`` per adapted weight, so applying an
  adapter adds to the Linear weights once at load (:func:`adapter_apply`): inference costs exactly
  what the plain encoder costs, and the int8 mode quantises the merged weights.
- :func:`adapter_save` writes them byte-reproducibly (npz) as their rank-``r`` factors, a small
  file; :func:`adapter_load` refuses a file whose SHA-256 differs from the recorded one
  (``ModelIntegrityError``) and returns the deltas.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from screening.ml.artifacts import ModelIntegrityError, sha256_file, verify_file

#: The Linear layers of a BERT layer that can be adapted, by their path inside ``encoder.layer.N``.
LORA_TARGETS: dict[str, str] = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "o": "attention.output.dense",
    "f": "intermediate.dense",
    "i": "output.dense",
}


@dataclass(frozen=True, kw_only=True)
class AdapterRef:
    """An adapter file and the SHA-256 it must have (recorded with the heads trained on it)."""

    path: Path
    sha256: str


@dataclass(frozen=True, kw_only=True)
class LoraConfig:
    """The adapter recipe (defaults: the measured variant "A" of the experiment page)."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.1
    layers: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    targets: str = "qkvofi"  # letters of LORA_TARGETS
    epochs: float = 2.0
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup: float = 0.1
    batch_size: int = 16
    seed: int = 0
    bf16: bool = False  # bf16 autocast for training on CPU (about twice as fast, less exact)

    def __post_init__(self) -> None:
        if self.rank < 1 or self.batch_size < 1 or self.epochs <= 0:
            raise ValueError("rank, batch_size and epochs must be positive")
        if not self.targets or set(self.targets) - set(LORA_TARGETS):
            raise ValueError(f"targets must be letters of {''.join(LORA_TARGETS)}")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["layers"] = list(self.layers)
        return out

    def weight_names(self) -> list[str]:
        """The state-dict names of the adapted weights, in a fixed order."""
        return [
            f"encoder.layer.{layer}.{LORA_TARGETS[t]}.weight"
            for layer in self.layers
            for t in self.targets
        ]


@functools.cache
def _lora_linear_class() -> Any:
    """The adapter-wrapped Linear, built on first use (torch is imported lazily)."""
    import torch

    class LoraLinear(torch.nn.Module):
        """``base(x) + dropout(x) @ A^T @ B^T * alpha / r``; ``B`` starts at zero, so a fresh
        adapter changes nothing."""

        def __init__(self, base: Any, *, rank: int, alpha: float, dropout: float) -> None:
            super().__init__()
            self.base = base
            self.A = torch.nn.Parameter(torch.empty(rank, base.in_features))
            torch.nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
            self.B = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            self.drop = torch.nn.Dropout(dropout)
            self.scale = alpha / rank

        def forward(self, x: Any) -> Any:
            return self.base(x) + (self.drop(x) @ self.A.t() @ self.B.t()) * self.scale

        def delta(self) -> Any:
            return (self.B @ self.A).detach() * self.scale

    return LoraLinear


def _parent_and_name(model: Any, weight_name: str) -> tuple[Any, str]:
    path = weight_name.removesuffix(".weight").split(".")
    parent = model
    for part in path[:-1]:
        parent = getattr(parent, part)
    return parent, path[-1]


def _attach(model: Any, cfg: LoraConfig) -> list[Any]:
    """Wrap the target Linears of ``model`` (in place); every other weight is frozen."""
    lora_linear = _lora_linear_class()
    for p in model.parameters():
        p.requires_grad_(False)
    params: list[Any] = []
    for weight_name in cfg.weight_names():
        parent, name = _parent_and_name(model, weight_name)
        wrapped = lora_linear(
            getattr(parent, name), rank=cfg.rank, alpha=cfg.alpha, dropout=cfg.dropout
        )
        setattr(parent, name, wrapped)
        params += [wrapped.A, wrapped.B]
    return params


def _deltas(model: Any, cfg: LoraConfig) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for weight_name in cfg.weight_names():
        parent, name = _parent_and_name(model, weight_name)
        out[weight_name] = getattr(parent, name).delta().float().cpu().numpy()
    return out


def _pooled(model: Any, ids: Any, mask: Any) -> Any:
    import torch

    hidden = model(
        input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)
    ).last_hidden_state
    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled.float(), p=2, dim=1)


def _padded(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of batches: shuffled, then sorted by length within chunks of 32 batches (little
    padding), then the batches shuffled."""
    perm = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    chunk_size = batch_size * 32
    for start in range(0, len(perm), chunk_size):
        chunk = perm[start : start + chunk_size]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[s : s + batch_size] for s in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def lora_train(
    *,
    model: Any,
    sequences: Sequence[Sequence[int]],
    labels: np.ndarray,
    weights: np.ndarray,
    head_weight: np.ndarray,
    head_bias: np.ndarray,
    cfg: LoraConfig,
    pad_id: int,
    log: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Fine-tune adapters on a copy of ``model`` (a transformers BERT model; left untouched) and
    return the merged weight deltas by state-dict name.

    ``sequences`` are framed wordpiece ids ([CLS] ... [SEP], at most 256), ``labels`` class
    indices for a linear head over the pooled embedding, started at ``head_weight`` (classes x
    384) and ``head_bias`` (for example the frozen head's), ``weights`` one non-negative weight per
    example (normalised to mean 1). Runs on the model's device.
    """
    import torch

    n = len(sequences)
    if n == 0 or len(labels) != n or len(weights) != n:
        raise ValueError("sequences, labels and weights must be non-empty and of equal length")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = next(model.parameters()).device
    work = copy.deepcopy(model)
    params = _attach(work, cfg)
    work.eval()  # the base model's own dropout stays off; only the adapters' dropout trains
    for module in work.modules():
        if isinstance(module, _lora_linear_class()):
            module.drop.train()
    head = torch.nn.Linear(head_weight.shape[1], head_weight.shape[0]).to(device)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(head_weight, dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(head_bias, dtype=torch.float32))
    opt = torch.optim.AdamW([*params, *head.parameters()], lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = max(1, round(math.ceil(n / cfg.batch_size) * cfg.epochs))
    warm = max(1, int(cfg.warmup * total))

    def rate(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, rate)
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.mean()
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    wt = torch.as_tensor(w, dtype=torch.float32)
    lengths = np.array([len(s) for s in sequences])
    step, running, since = 0, 0.0, 0
    autocast = cfg.bf16 and device.type == "cpu"
    while step < total:
        for batch in _batches(lengths, cfg.batch_size, rng):
            if step >= total:
                break
            ids, mask = _padded([sequences[i] for i in batch], pad_id)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                z = _pooled(work, ids.to(device), mask.to(device))
            losses = torch.nn.functional.cross_entropy(
                head(z.float()), y[batch].to(device), reduction="none"
            )
            loss = (losses * wt[batch].to(device)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            running += float(loss.item())
            since += 1
            if log is not None and (step % 50 == 0 or step == total):
                log(f"  adapter step {step}/{total}: loss {running / since:.4f}")
                running, since = 0.0, 0
    return _deltas(work, cfg)


#: How one adapted weight is stored: its delta as two rank-r factors, ``delta = up @ down``.
_UP, _DOWN = "@up", "@down"
#: A delta's singular values past the rank, relative to its largest: above this it is not the
#: low-rank delta of an adapter and is refused rather than truncated.
_RANK_TOLERANCE = 1e-4


def adapter_save(path: Path, deltas: dict[str, np.ndarray], *, rank: int) -> str:
    """Write the deltas byte-reproducibly as rank-``rank`` factors (``up`` out x r, ``down``
    r x in; 1.3 MB for the recipe instead of 42 MB of full matrices) and return the file's SHA-256
    (record it with the heads). A delta of higher rank is refused (``ValueError``)."""
    from screening.ml.text.heads import write_npz

    if not deltas:
        raise ValueError("no adapter deltas to save")
    factors: dict[str, np.ndarray] = {}
    for name, delta in deltas.items():
        if _UP in name or _DOWN in name:
            raise ValueError(f"weight name {name!r} is reserved")
        matrix = np.asarray(delta, dtype=np.float64)
        if matrix.ndim != 2 or not np.isfinite(matrix).all():
            raise ValueError(f"the delta of {name} is not a finite matrix")
        u, s, vt = np.linalg.svd(matrix, full_matrices=False)
        if len(s) > rank and s[0] > 0 and s[rank] > _RANK_TOLERANCE * s[0]:
            raise ValueError(f"the delta of {name} has a rank above {rank}")
        factors[name + _UP] = u[:, :rank] * s[:rank]
        factors[name + _DOWN] = vt[:rank]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_npz(path, factors)
    return sha256_file(path)


def adapter_load(path: Path, *, expected_sha256: str) -> dict[str, np.ndarray]:
    """The deltas of a verified adapter file (ModelIntegrityError if missing, altered or not an
    adapter file)."""
    verify_file(path, name="encoder adapter", expected_sha256=expected_sha256)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: np.asarray(data[k], dtype=np.float32) for k in data.files}
    names = sorted({k.removesuffix(_UP) for k in arrays if k.endswith(_UP)})
    if not names or sorted(arrays) != sorted([n + _UP for n in names] + [n + _DOWN for n in names]):
        raise ModelIntegrityError("encoder adapter", "not a file of adapter factors")
    deltas: dict[str, np.ndarray] = {}
    for name in names:
        up, down = arrays[name + _UP], arrays[name + _DOWN]
        if up.ndim != 2 or down.ndim != 2 or up.shape[1] != down.shape[0]:
            raise ModelIntegrityError("encoder adapter", f"factors of {name} do not fit")
        deltas[name] = up @ down
    return deltas


def adapter_apply(model: Any, deltas: dict[str, np.ndarray]) -> None:
    """Add each delta to the weight of that name, in place. A name the model does not have or a
    shape that differs is refused before anything is changed."""
    import torch

    params = dict(model.named_parameters())
    for name, delta in deltas.items():
        if name not in params:
            raise ModelIntegrityError("encoder adapter", f"unknown weight {name}")
        if tuple(params[name].shape) != tuple(delta.shape):
            raise ModelIntegrityError("encoder adapter", f"shape of {name} differs")
    with torch.no_grad():
        for name, delta in deltas.items():
            param = params[name]
            param.add_(torch.as_tensor(delta, dtype=param.dtype, device=param.device))
