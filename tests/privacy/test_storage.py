"""privacy.storage: chunked, authenticated encryption of video files at rest."""

from __future__ import annotations

import os
import stat
import struct
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from config.errors import DecryptionFailed, KeyNotFound
from privacy import datakeys, storage
from privacy.models import PatientKey

pytestmark = pytest.mark.django_db

CHUNK = 1024
PLAINTEXT = b"".join(
    f"frame {i:05d}: the patient's face and voice, never stored in the clear. ".encode()
    for i in range(80)
)  # ~5.9 KiB: six chunks of 1 KiB


@pytest.fixture(autouse=True)
def folders(settings: Any, tmp_path: Path) -> Any:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    settings.VIGIL_MEDIA_CHUNK_BYTES = CHUNK
    return settings


@pytest.fixture
def patient_id() -> uuid.UUID:
    return uuid.uuid4()  # data keys are created on first use; no patient row is needed


def store(
    tmp_path: Path,
    patient_id: uuid.UUID,
    data: bytes = PLAINTEXT,
    object_id: uuid.UUID | None = None,
) -> tuple[str, uuid.UUID, storage.StoredFile]:
    object_id = object_id or uuid.uuid4()
    source = tmp_path / f"upload-{object_id}.mp4"
    source.write_bytes(data)
    name = storage.storage_name_for(patient_id=patient_id, object_id=object_id)
    stored = storage.encrypted_file_write(
        source=source, name=name, patient_id=patient_id, object_id=object_id
    )
    return name, object_id, stored


def stored_path(settings: Any, name: str) -> Path:
    return Path(settings.VIGIL_MEDIA_ROOT) / name


def read_back(name: str, patient_id: uuid.UUID, object_id: uuid.UUID) -> bytes:
    with storage.decrypted_tempfile(name=name, patient_id=patient_id, object_id=object_id) as path:
        return path.read_bytes()


def split(data: bytes) -> tuple[bytes, list[bytes]]:
    """The file's header and its framed chunks (length prefix included)."""
    header_len = len(storage.MAGIC) + struct.calcsize(">16sI")
    header, rest, chunks = data[:header_len], data[header_len:], []
    while rest:
        (size,) = struct.unpack(">I", rest[:4])
        chunks.append(rest[: 4 + size])
        rest = rest[4 + size :]
    return header, chunks


def work_files(settings: Any) -> list[Path]:
    work = Path(settings.VIGIL_WORK_DIR)
    return sorted(work.iterdir()) if work.exists() else []


# --- round trip --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 4 * CHUNK, len(PLAINTEXT)], ids=lambda s: f"{s}B"
)
def test_round_trip_exact_bytes(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any, size: int
) -> None:
    data = (PLAINTEXT * 2)[:size]
    name, object_id, stored = store(tmp_path, patient_id, data)
    assert stored.plaintext_bytes == size
    assert stored.chunks == max(1, -(-size // CHUNK))
    assert read_back(name, patient_id, object_id) == data


def test_round_trip_with_the_default_chunk_size(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any
) -> None:
    settings.VIGIL_MEDIA_CHUNK_BYTES = 1024 * 1024
    data = os.urandom(2 * 1024 * 1024 + 17)
    name, object_id, stored = store(tmp_path, patient_id, data)
    assert stored.chunks == 3
    assert read_back(name, patient_id, object_id) == data


def test_stored_file_holds_no_plaintext(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any
) -> None:
    name, _, stored = store(tmp_path, patient_id)
    path = stored_path(settings, name)
    raw = path.read_bytes()
    assert stored.chunks == 6
    assert raw.startswith(storage.MAGIC)
    for start in range(0, len(PLAINTEXT) - 16):
        assert PLAINTEXT[start : start + 16] not in raw
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    # No partial files are left next to it.
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_storage_name_is_per_patient_and_object(patient_id: uuid.UUID) -> None:
    object_id = uuid.uuid4()
    assert storage.storage_name_for(patient_id=patient_id, object_id=object_id) == (
        f"videos/{patient_id}/{object_id}.vgl"
    )


def test_exists_and_delete(tmp_path: Path, patient_id: uuid.UUID) -> None:
    name, _, _ = store(tmp_path, patient_id)
    assert storage.encrypted_file_exists(name=name)
    storage.encrypted_file_delete(name=name)
    assert not storage.encrypted_file_exists(name=name)
    storage.encrypted_file_delete(name=name)  # deleting twice is fine


# --- tampering ---------------------------------------------------------------------------------
def _tamper(settings: Any, name: str, rebuild: Any) -> None:
    path = stored_path(settings, name)
    header, chunks = split(path.read_bytes())
    assert len(chunks) == 6
    path.write_bytes(rebuild(header, chunks))


TAMPERINGS = {
    "drop_last_chunk": lambda h, c: h + b"".join(c[:-1]),
    "drop_middle_chunk": lambda h, c: h + b"".join(c[:2] + c[3:]),
    "drop_first_chunk": lambda h, c: h + b"".join(c[1:]),
    "swap_chunks": lambda h, c: h + b"".join([c[1], c[0], *c[2:]]),
    "swap_last_two": lambda h, c: h + b"".join([*c[:-2], c[-1], c[-2]]),
    "append_extra_chunk": lambda h, c: h + b"".join([*c, c[2]]),
    "repeat_last_chunk": lambda h, c: h + b"".join([*c, c[-1]]),
    "trailing_garbage": lambda h, c: h + b"".join(c) + b"\x00",
    "cut_inside_last_chunk": lambda h, c: (h + b"".join(c))[:-7],
    "cut_inside_length": lambda h, c: h + b"".join(c[:-1]) + c[-1][:2],
    "header_only": lambda h, c: h,
    "flip_ciphertext_byte": lambda h, c: (
        h + b"".join([c[0], c[1][:40] + bytes([c[1][40] ^ 1]) + c[1][41:], *c[2:]])
    ),
    "flip_chunk_size_in_header": lambda h, c: h[:-1] + bytes([h[-1] ^ 1]) + b"".join(c),
    "bad_magic": lambda h, c: b"XGLVID1\n" + h[8:] + b"".join(c),
    "huge_length_prefix": lambda h, c: h + c[0] + b"\xff\xff\xff\xf0" + c[1][4:],
    "empty_file": lambda h, c: b"",
}


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_tampered_file_fails(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any, tampering: str
) -> None:
    name, object_id, _ = store(tmp_path, patient_id)
    _tamper(settings, name, TAMPERINGS[tampering])
    with pytest.raises(DecryptionFailed):
        read_back(name, patient_id, object_id)
    assert work_files(settings) == []  # no partial plaintext left behind


def test_damaged_length_is_refused_before_anything_is_read(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any
) -> None:
    """A length prefix of ~4 GiB must not make the reader allocate 4 GiB (that is a MemoryError
    on a small worker, not a DecryptionFailed the service can record)."""
    name, object_id, _ = store(tmp_path, patient_id)
    _tamper(settings, name, TAMPERINGS["huge_length_prefix"])
    with pytest.raises(DecryptionFailed, match="larger than"):
        read_back(name, patient_id, object_id)
    name, object_id, _ = store(tmp_path, patient_id)
    _tamper(settings, name, lambda h, c: h[:-4] + b"\xff\xff\xff\xff" + b"".join(c))
    with pytest.raises(DecryptionFailed, match="header"):
        read_back(name, patient_id, object_id)


def test_chunk_from_another_file_fails(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any
) -> None:
    name_x, object_x, _ = store(tmp_path, patient_id)
    name_y, object_y, _ = store(tmp_path, patient_id, PLAINTEXT.upper())
    _, chunks_x = split(stored_path(settings, name_x).read_bytes())
    _tamper(settings, name_y, lambda h, c: h + b"".join([c[0], chunks_x[1], *c[2:]]))
    with pytest.raises(DecryptionFailed):
        read_back(name_y, patient_id, object_y)
    assert read_back(name_x, patient_id, object_x) == PLAINTEXT


def test_file_read_as_another_object_fails(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any
) -> None:
    name, _, _ = store(tmp_path, patient_id)
    with pytest.raises(DecryptionFailed):
        read_back(name, patient_id, uuid.uuid4())


def test_whole_file_copied_over_another_fails(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any
) -> None:
    name_x, _, _ = store(tmp_path, patient_id)
    name_y, object_y, _ = store(tmp_path, patient_id)
    stored_path(settings, name_y).write_bytes(stored_path(settings, name_x).read_bytes())
    with pytest.raises(DecryptionFailed):
        read_back(name_y, patient_id, object_y)


def test_file_read_for_another_patient_fails(tmp_path: Path, patient_id: uuid.UUID) -> None:
    name, object_id, _ = store(tmp_path, patient_id)
    other = uuid.uuid4()
    datakeys.data_key_for_encrypt(patient_id=other)
    datakeys.cache_clear()
    with pytest.raises(KeyNotFound):  # the header's key id belongs to someone else
        read_back(name, other, object_id)


def test_missing_file_fails(patient_id: uuid.UUID) -> None:
    with pytest.raises(DecryptionFailed):
        read_back(
            storage.storage_name_for(patient_id=patient_id, object_id=uuid.uuid4()),
            patient_id,
            uuid.uuid4(),
        )


def test_destroyed_key_makes_the_video_unreadable_and_refuses_new_ones(
    tmp_path: Path, patient_id: uuid.UUID
) -> None:
    name, object_id, _ = store(tmp_path, patient_id)
    PatientKey.objects.filter(patient_id=patient_id).update(
        destroyed_at=timezone.now(), wrapped_key=None
    )
    datakeys.cache_clear()
    with pytest.raises(KeyNotFound):
        read_back(name, patient_id, object_id)
    with pytest.raises(KeyNotFound):
        store(tmp_path, patient_id)


# --- the plaintext temporary file --------------------------------------------------------------
def test_temporary_plaintext_is_private_and_removed(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any
) -> None:
    name, object_id, _ = store(tmp_path, patient_id)
    with storage.decrypted_tempfile(name=name, patient_id=patient_id, object_id=object_id) as path:
        assert path.parent == Path(settings.VIGIL_WORK_DIR)
        assert path.read_bytes() == PLAINTEXT
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert not path.exists()
    assert work_files(settings) == []


def test_temporary_plaintext_is_removed_when_the_block_raises(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any
) -> None:
    name, object_id, _ = store(tmp_path, patient_id)
    seen: list[Path] = []
    with (
        pytest.raises(RuntimeError, match="analysis crashed"),
        storage.decrypted_tempfile(name=name, patient_id=patient_id, object_id=object_id) as path,
    ):
        seen.append(path)
        assert path.exists()
        raise RuntimeError("analysis crashed")
    assert seen and not seen[0].exists()
    assert work_files(settings) == []


def test_temporary_plaintext_is_removed_on_keyboard_interrupt(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any
) -> None:
    name, object_id, _ = store(tmp_path, patient_id)
    with (
        pytest.raises(KeyboardInterrupt),
        storage.decrypted_tempfile(name=name, patient_id=patient_id, object_id=object_id),
    ):
        raise KeyboardInterrupt
    assert work_files(settings) == []


# --- names -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["../escape.vgl", "videos/../../escape.vgl", "/etc/passwd", ".", "", "videos/../.."],
)
def test_path_traversal_names_are_refused(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any, name: str
) -> None:
    source = tmp_path / "upload.mp4"
    source.write_bytes(PLAINTEXT)
    with pytest.raises(ValueError, match="invalid storage name"):
        storage.encrypted_file_write(
            source=source, name=name, patient_id=patient_id, object_id=uuid.uuid4()
        )
    with pytest.raises(ValueError, match="invalid storage name"):
        read_back(name, patient_id, uuid.uuid4())
    with pytest.raises(ValueError, match="invalid storage name"):
        storage.encrypted_file_delete(name=name)
    assert not (tmp_path / "escape.vgl").exists()
    assert work_files(settings) == []


def test_failed_write_leaves_nothing(tmp_path: Path, patient_id: uuid.UUID, settings: Any) -> None:
    name = storage.storage_name_for(patient_id=patient_id, object_id=uuid.uuid4())
    with pytest.raises(FileNotFoundError):
        storage.encrypted_file_write(
            source=tmp_path / "does-not-exist.mp4",
            name=name,
            patient_id=patient_id,
            object_id=uuid.uuid4(),
        )
    folder = stored_path(settings, name).parent  # the source is opened before anything is made
    assert not folder.exists() or list(folder.iterdir()) == []


# --- in-memory writes and reads (the gpu queue's voice jobs) -------------------------------------
def test_bytes_round_trip_in_the_same_format_as_files(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any
) -> None:
    object_id = uuid.uuid4()
    name = storage.storage_name_for(patient_id=patient_id, object_id=object_id)
    written = storage.encrypted_bytes_write(
        data=PLAINTEXT, name=name, patient_id=patient_id, object_id=object_id
    )
    assert written.plaintext_bytes == len(PLAINTEXT) and written.chunks == 6
    raw = stored_path(settings, name).read_bytes()
    assert raw.startswith(storage.MAGIC) and b"never stored in the clear" not in raw
    back = storage.encrypted_bytes_read(
        name=name, patient_id=patient_id, object_id=object_id, max_bytes=len(PLAINTEXT)
    )
    assert back == PLAINTEXT
    with storage.decrypted_tempfile(name=name, patient_id=patient_id, object_id=object_id) as p:
        assert p.read_bytes() == PLAINTEXT  # the file reader reads it too
    assert storage.patient_stored_objects(patient_id=patient_id) == [(name, object_id)]


def test_bytes_read_is_bounded_and_authenticated(
    tmp_path: Path, patient_id: uuid.UUID, settings: Any
) -> None:
    name, object_id, _ = store(tmp_path, patient_id)
    with pytest.raises(DecryptionFailed):  # larger than the caller expects: stops early
        storage.encrypted_bytes_read(
            name=name, patient_id=patient_id, object_id=object_id, max_bytes=CHUNK * 2
        )
    with pytest.raises(DecryptionFailed):  # bound to its object id
        storage.encrypted_bytes_read(
            name=name, patient_id=patient_id, object_id=uuid.uuid4(), max_bytes=10**6
        )
    path = stored_path(settings, name)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DecryptionFailed):
        storage.encrypted_bytes_read(
            name=name, patient_id=patient_id, object_id=object_id, max_bytes=10**6
        )


def test_empty_bytes_round_trip(patient_id: uuid.UUID) -> None:
    object_id = uuid.uuid4()
    name = storage.storage_name_for(patient_id=patient_id, object_id=object_id)
    storage.encrypted_bytes_write(data=b"", name=name, patient_id=patient_id, object_id=object_id)
    assert (
        storage.encrypted_bytes_read(
            name=name, patient_id=patient_id, object_id=object_id, max_bytes=0
        )
        == b""
    )
