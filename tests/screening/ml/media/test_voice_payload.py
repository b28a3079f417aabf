"""The deferred voice job's payload: an exact round trip, and a named failure for anything
damaged or forged (it is parsed, never unpickled)."""

from __future__ import annotations

import numpy as np
import pytest

from screening.ml.media.voice_payload import (
    MAGIC,
    MAX_HEADER_BYTES,
    voice_payload_pack,
    voice_payload_unpack,
)


def _audio(n: int = 16_000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, n).astype(np.float32)


def test_round_trip_is_exact() -> None:
    samples = _audio()
    meta = {"outcome": {"face": {"smile": 0.123456789}, "transcript": "hello"}, "attempt": 2}
    back = voice_payload_unpack(voice_payload_pack(samples=samples, sample_rate=16_000, meta=meta))
    assert back.sample_rate == 16_000
    assert back.meta == meta
    assert back.samples.dtype == np.float32
    assert np.array_equal(back.samples, samples)  # bit for bit: prosody sees the same numbers


def test_empty_audio_round_trips() -> None:
    back = voice_payload_unpack(
        voice_payload_pack(samples=np.zeros(0, np.float32), sample_rate=16_000, meta={})
    )
    assert back.samples.size == 0 and back.meta == {}


@pytest.mark.parametrize(
    "samples, rate",
    [(np.zeros((2, 10), np.float32), 16_000), (np.zeros(10, np.float32), 0)],
)
def test_pack_refuses_what_it_cannot_describe(samples: np.ndarray, rate: int) -> None:
    with pytest.raises(ValueError):
        voice_payload_pack(samples=samples, sample_rate=rate, meta={})


def test_pack_refuses_a_header_over_the_limit() -> None:
    with pytest.raises(ValueError):
        voice_payload_pack(
            samples=_audio(10), sample_rate=16_000, meta={"x": "a" * (MAX_HEADER_BYTES + 1)}
        )


def _good() -> bytes:
    return voice_payload_pack(samples=_audio(100), sample_rate=16_000, meta={"attempt": 1})


def _with_header(header: bytes, body: bytes = b"") -> bytes:
    return MAGIC + len(header).to_bytes(4, "big") + header + body


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"VGLVOICE1",
        b"PK\x03\x04" + b"\x00" * 40,
        MAGIC + b"\xff\xff\xff\xff",  # a header length far past the end
        _with_header(b"{not json"),
        _with_header(b"\xff\xfe"),  # not UTF-8
        _with_header(b"[1, 2]"),  # not an object
        _with_header(b'{"sample_rate": 16000}'),  # no meta
        _with_header(b'{"sample_rate": "16000", "meta": {}}'),
        _with_header(b'{"sample_rate": true, "meta": {}}'),
        _with_header(b'{"sample_rate": -5, "meta": {}}'),
        _with_header(b'{"sample_rate": 16000, "meta": {}}', b"\x00\x00\x00"),  # 3 bytes
        _good()[:-2],  # truncated samples
    ],
)
def test_malformed_payloads_are_value_errors(data: bytes) -> None:
    with pytest.raises(ValueError):
        voice_payload_unpack(data)


def test_random_damage_never_escapes_as_anything_but_a_value_error() -> None:
    good = _good()
    rng = np.random.default_rng(7)
    for _ in range(200):  # bounded fuzz
        damaged = bytearray(good)
        for index in rng.integers(0, len(MAGIC) + 40, size=3):
            damaged[int(index)] = int(rng.integers(0, 256))
        try:
            back = voice_payload_unpack(bytes(damaged))
        except ValueError:
            continue
        assert isinstance(back.meta, dict) and back.sample_rate > 0
