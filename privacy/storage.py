"""Encrypted file storage for videos: chunked AES-256-GCM under the patient's data key.

File layout (version 1)::

    header: b"VGLVID1\\n" | dek_id (16) | chunk_size (4, big-endian)
    chunk*: length (4, big-endian) | nonce (12) | ciphertext || tag

Each chunk has its own nonce; its associated data binds the header, the object id, the chunk index
and whether it is the last chunk, so chunks cannot be reordered, swapped between files, dropped or
truncated without detection. Plaintext exists only in a worker's private temporary file, removed
when the ``with`` block ends, whatever happens inside it.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from config.errors import DecryptionFailed
from privacy import crypto
from privacy.datakeys import data_key_for_decrypt, data_key_for_encrypt

MAGIC = b"VGLVID1\n"
_MAX_CHUNK_BYTES = 64 * 1024 * 1024  # sanity bound on a stored header's chunk size
_HEADER = struct.Struct(">16sI")
_LEN = struct.Struct(">I")


@dataclass(frozen=True)
class StoredFile:
    name: str
    plaintext_bytes: int
    chunks: int


def _root() -> Path:
    root = Path(settings.VIGIL_MEDIA_ROOT)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def _path(name: str) -> Path:
    root = _root().resolve()
    path = (root / name).resolve()
    if root not in path.parents:
        raise ValueError("invalid storage name")
    return path


def _chunk_aad(header: bytes, object_id: uuid.UUID, index: int, final: bool) -> bytes:
    return header + object_id.bytes + struct.pack(">Q?", index, final)


def _read_exact(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise DecryptionFailed("Stored file is truncated.")
    return bytes(data)


def storage_name_for(*, patient_id: uuid.UUID, object_id: uuid.UUID) -> str:
    return f"videos/{patient_id}/{object_id}.vgl"


def encrypted_file_write(
    *, source: Path, name: str, patient_id: uuid.UUID, object_id: uuid.UUID
) -> StoredFile:
    """Encrypt ``source`` into storage under ``name`` atomically (temp file + rename)."""
    chunk_size = int(settings.VIGIL_MEDIA_CHUNK_BYTES)
    dek_id, dek = data_key_for_encrypt(patient_id=patient_id)
    header = MAGIC + _HEADER.pack(dek_id.bytes, chunk_size)
    dest = _path(name)
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".partial-")
    total = chunks = 0
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            out.write(header)
            current = src.read(chunk_size)
            while True:
                following = src.read(chunk_size) if current else b""
                final = not following
                sealed = crypto.seal(dek, current, _chunk_aad(header, object_id, chunks, final))
                out.write(_LEN.pack(len(sealed)) + sealed)
                total += len(current)
                chunks += 1
                if final:
                    break
                current = following
            out.flush()
            os.fsync(out.fileno())
        Path(tmp_name).replace(dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return StoredFile(name=name, plaintext_bytes=total, chunks=chunks)


def _iter_plaintext(name: str, *, patient_id: uuid.UUID, object_id: uuid.UUID) -> Iterator[bytes]:
    path = _path(name)
    if not path.exists():
        raise DecryptionFailed("Stored file is missing.")
    with path.open("rb") as handle:
        magic = handle.read(len(MAGIC))
        if magic != MAGIC:
            raise DecryptionFailed("Not a Vigil encrypted file.")
        raw = _read_exact(handle, _HEADER.size)
        dek_bytes, chunk_size = _HEADER.unpack(raw)
        if not 0 < chunk_size <= _MAX_CHUNK_BYTES:
            raise DecryptionFailed("Stored file header is invalid.")
        max_sealed = chunk_size + crypto.NONCE_BYTES + crypto.TAG_BYTES
        header = MAGIC + raw
        dek = data_key_for_decrypt(dek_id=uuid.UUID(bytes=dek_bytes), patient_id=patient_id)
        index = 0
        while True:
            size_raw = handle.read(_LEN.size)
            if not size_raw:
                raise DecryptionFailed("Stored file ends without its final chunk.")
            if len(size_raw) != _LEN.size:
                raise DecryptionFailed("Stored file is truncated.")
            (size,) = _LEN.unpack(size_raw)
            if size > max_sealed:  # a damaged length must not make us allocate gigabytes
                raise DecryptionFailed("Stored chunk is larger than the file's chunk size.")
            sealed = _read_exact(handle, size)
            at_end = handle.peek(1) == b""
            plaintext = crypto.unseal(dek, sealed, _chunk_aad(header, object_id, index, at_end))
            yield plaintext
            index += 1
            if at_end:
                return


@contextlib.contextmanager
def decrypted_tempfile(
    *, name: str, patient_id: uuid.UUID, object_id: uuid.UUID, suffix: str = ".media"
) -> Iterator[Path]:
    """Decrypt to a private (0600) temporary file in the work directory; always removed after."""
    work = Path(settings.VIGIL_WORK_DIR)
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp_name = tempfile.mkstemp(dir=work, prefix="dec-", suffix=suffix)
    path = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for block in _iter_plaintext(name, patient_id=patient_id, object_id=object_id):
                out.write(block)
        yield path
    finally:
        path.unlink(missing_ok=True)


def encrypted_file_delete(*, name: str) -> None:
    _path(name).unlink(missing_ok=True)


def encrypted_file_exists(*, name: str) -> bool:
    return _path(name).exists()
