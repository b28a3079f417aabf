"""Encrypted file storage for videos: chunked AES-256-GCM under the patient's data key.

File layout (version 1)::

    header: b"VGLVID1\\n" | dek_id (16) | chunk_size (4, big-endian)
    chunk*: length (4, big-endian) | nonce (12) | ciphertext || tag

Each chunk has its own nonce; its associated data binds the header, the object id, the chunk index
and whether it is the last chunk, so chunks cannot be reordered, swapped between files, dropped or
truncated without detection. Plaintext exists only in a worker's private temporary file, removed
when the ``with`` block ends, whatever happens inside it; a file whose process was killed inside
the block is removed by :func:`decrypted_tempfiles_sweep` (the media reaper and worker start).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import shutil
import stat
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

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


def private_text_open(path: Path) -> TextIO:
    """Open ``path`` for writing text, created or truncated, readable by its owner only (0600).

    For plaintext patient data written on purpose (a command's output, demo credentials): an
    existing file keeps its mode through ``O_TRUNC``, so the mode is set again on the open file.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def storage_name_for(*, patient_id: uuid.UUID, object_id: uuid.UUID) -> str:
    return f"videos/{patient_id}/{object_id}.vgl"


def encrypted_file_write(
    *, source: Path, name: str, patient_id: uuid.UUID, object_id: uuid.UUID
) -> StoredFile:
    """Encrypt ``source`` into storage under ``name`` atomically (temp file + rename)."""
    with source.open("rb") as src:
        return _encrypt_stream(src, name=name, patient_id=patient_id, object_id=object_id)


def encrypted_bytes_write(
    *, data: bytes, name: str, patient_id: uuid.UUID, object_id: uuid.UUID
) -> StoredFile:
    """Encrypt in-memory ``data`` into storage under ``name`` (same format and atomicity as
    :func:`encrypted_file_write`): plaintext a worker produced never touches the disk."""
    return _encrypt_stream(io.BytesIO(data), name=name, patient_id=patient_id, object_id=object_id)


def encrypted_bytes_read(
    *, name: str, patient_id: uuid.UUID, object_id: uuid.UUID, max_bytes: int
) -> bytes:
    """Decrypt a stored file into memory, every chunk authenticated. A file larger than
    ``max_bytes`` raises :class:`DecryptionFailed` before it is all read (memory stays bounded)."""
    parts: list[bytes] = []
    total = 0
    for block in _iter_plaintext(name, patient_id=patient_id, object_id=object_id):
        total += len(block)
        if total > max_bytes:
            raise DecryptionFailed("Stored file is larger than expected.")
        parts.append(block)
    return b"".join(parts)


def _encrypt_stream(
    src: BinaryIO, *, name: str, patient_id: uuid.UUID, object_id: uuid.UUID
) -> StoredFile:
    chunk_size = int(settings.VIGIL_MEDIA_CHUNK_BYTES)
    dek_id, dek = data_key_for_encrypt(patient_id=patient_id)
    header = MAGIC + _HEADER.pack(dek_id.bytes, chunk_size)
    dest = _path(name)
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".partial-")
    total = chunks = 0
    try:
        with os.fdopen(fd, "wb") as out:
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
    for plaintext, _final, _chunk_size in _iter_chunks(
        name, patient_id=patient_id, object_id=object_id
    ):
        yield plaintext


def _iter_chunks(
    name: str, *, patient_id: uuid.UUID, object_id: uuid.UUID
) -> Iterator[tuple[bytes, bool, int]]:
    """Authenticated plaintext chunks as ``(plaintext, is_last, chunk_size)``."""
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
            yield plaintext, at_end, chunk_size
            index += 1
            if at_end:
                return


#: Decrypted plaintext files in the work directory are named ``dec-<hex><suffix>``; a file is
#: created as ``new-*`` (empty), locked, and only then renamed, so every ``dec-*`` file is locked
#: by its owner from the moment it has that name until it is removed.
DECRYPTED_PREFIX = "dec-"
_PENDING_PREFIX = "new-"


def _work_dir() -> Path:
    """The private (0700) work directory; an existing one with wider permissions is tightened."""
    work = Path(settings.VIGIL_WORK_DIR)
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = work.stat()
    if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.geteuid():
        work.chmod(0o700)
    return work


@contextlib.contextmanager
def decrypted_tempfile(
    *, name: str, patient_id: uuid.UUID, object_id: uuid.UUID, suffix: str = ".media"
) -> Iterator[Path]:
    """Decrypt to a private (0600) temporary file in the private (0700) work directory.

    Removed when the block ends, whatever happens inside it. A process killed inside the block
    (SIGKILL, OOM) never runs that cleanup: its file is held under an exclusive ``flock`` for its
    whole life, which the kernel drops when the process dies, so
    :func:`decrypted_tempfiles_sweep` can tell an abandoned file from one still in use.
    """
    work = _work_dir()
    fd, pending_name = tempfile.mkstemp(dir=work, prefix=_PENDING_PREFIX, suffix=suffix)
    pending = Path(pending_name)
    path = work / f"{DECRYPTED_PREFIX}{uuid.uuid4().hex}{suffix}"
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: never waits
                pending.rename(path)
                for block in _iter_plaintext(name, patient_id=patient_id, object_id=object_id):
                    out.write(block)
                out.flush()
                yield path
            finally:
                path.unlink(missing_ok=True)  # before the lock goes with the closed file
    finally:
        pending.unlink(missing_ok=True)


def _owner_gone(path: Path) -> bool:
    """True when no process holds the file's lock (its owner ended without removing it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # gone already, or not a plain file we may open: leave it to the age rule
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError: a live process holds it
        return False
    finally:
        os.close(fd)
    return True


def decrypted_tempfiles_sweep(*, older_than_seconds: float) -> int:
    """Remove plaintext files that killed processes left in the work directory.

    A ``dec-*`` file goes when no live process holds its lock (its owner was killed inside
    :func:`decrypted_tempfile`), or in any case once it is older than ``older_than_seconds``
    (callers pass the media job's hard time limit plus a margin: no job runs that long, so such a
    file belongs to nobody). Empty ``new-*`` files (a kill between creating and naming one; they
    never hold plaintext) go by the same age. Returns how many files were removed.
    """
    work = Path(settings.VIGIL_WORK_DIR)
    if not work.is_dir():
        return 0
    now = time.time()
    removed = 0
    for path in work.iterdir():
        decrypted = path.name.startswith(DECRYPTED_PREFIX)
        if not decrypted and not path.name.startswith(_PENDING_PREFIX):
            continue
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode) and not stat.S_ISLNK(info.st_mode):
            continue
        old = now - info.st_mtime > older_than_seconds
        if old or (decrypted and stat.S_ISREG(info.st_mode) and _owner_gone(path)):
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # its owner (or another sweep) removed it meanwhile
            removed += 1
    return removed


def encrypted_file_delete(*, name: str) -> None:
    _path(name).unlink(missing_ok=True)


def encrypted_file_exists(*, name: str) -> bool:
    return _path(name).exists()


# --- key rotation and erasure --------------------------------------------------------------------
_PARTIAL_PREFIX = ".partial-"
#: A partial file younger than this is an upload or re-encryption still being written; older ones
#: are leftovers of a killed process (they are never read).
_PARTIAL_GRACE_SECONDS = 60 * 60


def patient_folder_name(*, patient_id: uuid.UUID) -> str:
    """The folder holding every stored file of one patient (see :func:`storage_name_for`)."""
    return f"videos/{patient_id}"


def patient_stored_objects(*, patient_id: uuid.UUID) -> list[tuple[str, uuid.UUID]]:
    """``(name, object_id)`` of every complete stored file of a patient, found on disk."""
    folder = _path(patient_folder_name(patient_id=patient_id))
    if not folder.is_dir():
        return []
    found: list[tuple[str, uuid.UUID]] = []
    for path in sorted(folder.glob("*.vgl")):
        try:
            object_id = uuid.UUID(path.stem)
        except ValueError:
            continue
        found.append((storage_name_for(patient_id=patient_id, object_id=object_id), object_id))
    return found


def _header_dek_id(path: Path) -> uuid.UUID | None:
    """The data key id in a stored (or partial) file's header; None when it has none (yet)."""
    with path.open("rb") as handle:
        head = handle.read(len(MAGIC) + _HEADER.size)
    if len(head) < len(MAGIC) + _HEADER.size or not head.startswith(MAGIC):
        return None
    dek_bytes, _ = _HEADER.unpack(head[len(MAGIC) :])
    return uuid.UUID(bytes=dek_bytes)


def stored_file_dek_id(*, name: str) -> uuid.UUID:
    """The data key id a stored file was encrypted with (read from its header)."""
    path = _path(name)
    if not path.exists():
        raise DecryptionFailed("Stored file is missing.")
    dek_id = _header_dek_id(path)
    if dek_id is None:
        raise DecryptionFailed("Not a Vigil encrypted file.")
    return dek_id


def patient_files_dek_ids(*, patient_id: uuid.UUID) -> tuple[set[uuid.UUID], int]:
    """Data key ids the patient's stored files use, and how many files could not be checked.

    Includes partial files still being written (younger than an hour): an upload encrypts its file
    before its row exists, so a key may be referenced by a file no row names yet. A file whose
    header cannot be read counts as unchecked: the caller must then assume any key is in use.
    """
    folder = _path(patient_folder_name(patient_id=patient_id))
    if not folder.is_dir():
        return set(), 0
    ids: set[uuid.UUID] = set()
    unchecked = 0
    now = time.time()
    for path in folder.iterdir():
        if not path.is_file():
            continue
        if path.name.startswith(_PARTIAL_PREFIX):
            if now - path.stat().st_mtime > _PARTIAL_GRACE_SECONDS:
                continue
        elif path.suffix != ".vgl":
            continue
        dek_id = _header_dek_id(path)
        if dek_id is None:
            unchecked += 1
        else:
            ids.add(dek_id)
    return ids, unchecked


def encrypted_file_reencrypt(*, name: str, patient_id: uuid.UUID, object_id: uuid.UUID) -> bool:
    """Re-encrypt a stored file under the patient's current data key, chunk by chunk.

    Each chunk is authenticated and decrypted with the old key and sealed again with the new one
    into a temporary file next to the original (never a plaintext file), which then atomically
    replaces it; the chunk size and chunk boundaries are kept. Any failure leaves the original
    untouched. Returns False when the file already uses the current key (nothing to do).
    """
    dest = _path(name)
    old_dek_id = stored_file_dek_id(name=name)
    new_dek_id, new_dek = data_key_for_encrypt(patient_id=patient_id)
    if old_dek_id == new_dek_id:
        return False
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=_PARTIAL_PREFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            header = b""
            chunks = _iter_chunks(name, patient_id=patient_id, object_id=object_id)
            for index, (plaintext, final, chunk_size) in enumerate(chunks):
                if not header:
                    header = MAGIC + _HEADER.pack(new_dek_id.bytes, chunk_size)
                    out.write(header)
                aad = _chunk_aad(header, object_id, index, final)
                sealed = crypto.seal(new_dek, plaintext, aad)
                out.write(_LEN.pack(len(sealed)) + sealed)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp_name).replace(dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return True


def patient_files_delete(*, patient_id: uuid.UUID) -> int:
    """Delete every stored file of a patient (partial ones too) and their folder.

    Returns how many complete stored files were removed.
    """
    folder = _path(patient_folder_name(patient_id=patient_id))
    if not folder.is_dir():
        return 0
    removed = sum(1 for path in folder.glob("*.vgl") if path.is_file())
    shutil.rmtree(folder)
    return removed
