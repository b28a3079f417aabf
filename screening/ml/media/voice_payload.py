"""The payload of a voice job deferred to the gpu queue: decoded audio plus a small JSON header.

Layout (one byte string, encrypted by the caller before it is stored)::

    MAGIC | header length (4 bytes, big-endian) | header (UTF-8 JSON object) | samples

``samples`` are the 16 kHz mono audio as little-endian float32, exactly as the media worker
decoded it, so the batched prosody sees the same numbers the in-line path would have. The header
holds the sample rate and whatever the caller needs to finish the job. No pickle: a damaged or
forged payload can only fail to parse (:class:`ValueError`), never run code.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

MAGIC = b"VGLVOICE1\n"
_LEN = struct.Struct(">I")
MAX_HEADER_BYTES = 1024 * 1024
_SAMPLE = np.dtype("<f4")


@dataclass(frozen=True, kw_only=True)
class VoicePayload:
    samples: npt.NDArray[np.float32]
    sample_rate: int
    meta: dict[str, Any]


def voice_payload_pack(
    *, samples: npt.NDArray[np.float32], sample_rate: int, meta: dict[str, Any]
) -> bytes:
    """Serialise mono ``samples`` at ``sample_rate`` Hz with ``meta`` (JSON-serialisable)."""
    audio = np.asarray(samples)
    if audio.ndim != 1:
        raise ValueError("voice payload: mono samples expected")
    if sample_rate <= 0:
        raise ValueError("voice payload: bad sample rate")
    header = json.dumps(
        {"sample_rate": int(sample_rate), "meta": meta}, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")
    if len(header) > MAX_HEADER_BYTES:
        raise ValueError("voice payload: header too large")
    return MAGIC + _LEN.pack(len(header)) + header + audio.astype(_SAMPLE, copy=False).tobytes()


def voice_payload_unpack(data: bytes) -> VoicePayload:
    """Parse a payload made by :func:`voice_payload_pack`; :class:`ValueError` when malformed."""
    view = memoryview(data)
    start = len(MAGIC) + _LEN.size
    if len(view) < start or bytes(view[: len(MAGIC)]) != MAGIC:
        raise ValueError("voice payload: bad magic")
    (length,) = _LEN.unpack(view[len(MAGIC) : start])
    if length > MAX_HEADER_BYTES or start + length > len(view):
        raise ValueError("voice payload: bad header length")
    try:
        header = json.loads(bytes(view[start : start + length]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("voice payload: bad header") from None
    if not isinstance(header, dict) or not isinstance(header.get("meta"), dict):
        raise ValueError("voice payload: bad header")
    rate = header.get("sample_rate")
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        raise ValueError("voice payload: bad sample rate")
    body = view[start + length :]
    if len(body) % _SAMPLE.itemsize:
        raise ValueError("voice payload: truncated samples")
    samples = np.frombuffer(body, dtype=_SAMPLE).astype(np.float32)
    return VoicePayload(samples=samples, sample_rate=rate, meta=header["meta"])
