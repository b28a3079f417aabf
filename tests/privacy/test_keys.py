"""privacy.keys: loading the key-encryption keyring; privacy.datakeys: wrapped data keys."""

from __future__ import annotations

import base64
import json
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.errors import DecryptionFailed, KeyNotFound
from privacy import crypto, datakeys, keys
from privacy.models import PatientKey

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def write_keyring(path: Path, payload: dict[str, Any], mode: int = 0o600) -> Path:
    path.write_text(json.dumps(payload))
    path.chmod(mode)
    return path


@pytest.fixture
def ring_settings(settings: Any) -> Iterator[Any]:
    """Settings for the keyring; the cached keyring is rebuilt before and after the test."""
    settings.VIGIL_KEYRING = None
    settings.VIGIL_KEYRING_FILE = None
    settings.VIGIL_ACTIVE_KEK_ID = None
    keys.keyring.cache_clear()
    datakeys.cache_clear()
    yield settings
    keys.keyring.cache_clear()
    datakeys.cache_clear()


# --- parse_inline --------------------------------------------------------------------------------
def test_parse_inline() -> None:
    parsed = keys.parse_inline(f" a:{b64(KEY_A)} , b : {b64(KEY_B)} ,")
    assert parsed == {"a": KEY_A, "b": KEY_B}
    assert keys.parse_inline("") == {}


@pytest.mark.parametrize(
    "spec",
    [
        "a",  # no separator
        f":{b64(KEY_A)}",  # no id
        "a:not base64!!",
        f"a:{b64(KEY_A[:31])}",  # 31 bytes
        f"a:{b64(KEY_A + b'x')}",  # 33 bytes
        f"a:{b64(KEY_A)},b:{b64(b'short')}",
    ],
)
def test_parse_inline_rejects_bad_entries(spec: str) -> None:
    with pytest.raises(KeyNotFound):
        keys.parse_inline(spec)


# --- read_file -----------------------------------------------------------------------------------
def test_read_file(tmp_path: Path) -> None:
    path = write_keyring(
        tmp_path / "keys.json", {"active": "b", "keys": {"a": b64(KEY_A), "b": b64(KEY_B)}}
    )
    assert keys.read_file(path) == ({"a": KEY_A, "b": KEY_B}, "b")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_read_file_refuses_a_file_others_can_read(tmp_path: Path, mode: int) -> None:
    path = write_keyring(tmp_path / "keys.json", {"keys": {"a": b64(KEY_A)}}, mode=mode)
    with pytest.raises(KeyNotFound, match="chmod 600"):
        keys.read_file(path)


def test_read_file_missing(tmp_path: Path) -> None:
    with pytest.raises(KeyNotFound):
        keys.read_file(tmp_path / "absent.json")


def test_read_file_rejects_bad_keys(tmp_path: Path) -> None:
    path = write_keyring(tmp_path / "keys.json", {"keys": {"a": b64(b"too short")}})
    with pytest.raises(KeyNotFound):
        keys.read_file(path)


# --- create_local_keyring ------------------------------------------------------------------------
def test_create_local_keyring_once(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "keys.json"
    assert keys.create_local_keyring(path) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded, active = keys.read_file(path)
    assert active in loaded
    assert len(loaded[active]) == 32
    before = path.read_bytes()

    assert keys.create_local_keyring(path) is False
    assert path.read_bytes() == before  # never overwritten: that would lose every patient's data


def test_created_keyrings_differ(tmp_path: Path) -> None:
    keys.create_local_keyring(tmp_path / "one.json")
    keys.create_local_keyring(tmp_path / "two.json")
    assert keys.read_file(tmp_path / "one.json") != keys.read_file(tmp_path / "two.json")


# --- keyring() from settings ---------------------------------------------------------------------
def test_test_profile_falls_back_to_a_deterministic_keyring(ring_settings: Any) -> None:
    ring = keys.keyring()
    assert ring.active_id == "test-1"
    keys.keyring.cache_clear()
    assert keys.keyring() == ring  # a worker process derives the very same key


def test_single_inline_key_is_active(ring_settings: Any) -> None:
    ring_settings.VIGIL_KEYRING = f"a:{b64(KEY_A)}"
    ring = keys.keyring()
    assert (ring.active_id, ring.get("a")) == ("a", KEY_A)


def test_several_keys_need_an_active_id(ring_settings: Any) -> None:
    ring_settings.VIGIL_KEYRING = f"a:{b64(KEY_A)},b:{b64(KEY_B)}"
    with pytest.raises(KeyNotFound, match="VIGIL_ACTIVE_KEK_ID"):
        keys.keyring()
    ring_settings.VIGIL_ACTIVE_KEK_ID = "b"
    keys.keyring.cache_clear()
    ring = keys.keyring()
    assert ring.active_id == "b"
    assert ring.get("a") == KEY_A


def test_active_id_must_be_loaded(ring_settings: Any) -> None:
    ring_settings.VIGIL_KEYRING = f"a:{b64(KEY_A)}"
    ring_settings.VIGIL_ACTIVE_KEK_ID = "c"
    with pytest.raises(KeyNotFound):
        keys.keyring()


def test_keyring_file_and_inline_keys_combine(ring_settings: Any, tmp_path: Path) -> None:
    path = write_keyring(tmp_path / "keys.json", {"active": "a", "keys": {"a": b64(KEY_A)}})
    ring_settings.VIGIL_KEYRING_FILE = str(path)
    ring_settings.VIGIL_KEYRING = f"b:{b64(KEY_B)}"
    ring = keys.keyring()
    assert ring.active_id == "a"  # the file names it
    assert ring.get("b") == KEY_B


def test_keyring_file_with_loose_permissions_refuses_to_load(
    ring_settings: Any, tmp_path: Path
) -> None:
    path = write_keyring(tmp_path / "keys.json", {"keys": {"a": b64(KEY_A)}}, mode=0o644)
    ring_settings.VIGIL_KEYRING_FILE = str(path)
    with pytest.raises(KeyNotFound):
        keys.keyring()


# --- rotation: old wrapped keys keep working ----------------------------------------------------
@pytest.mark.django_db
def test_data_key_wrapped_under_an_old_kek_still_decrypts(ring_settings: Any) -> None:
    ring_settings.VIGIL_KEYRING = f"a:{b64(KEY_A)}"
    old_patient = uuid.uuid4()
    old_row = datakeys.patient_key_create(patient_id=old_patient)
    assert old_row.kek_id == "a"
    dek_id, dek = datakeys.data_key_for_encrypt(patient_id=old_patient)
    assert dek_id == old_row.id

    # Rotate: "b" becomes active, "a" stays loaded for what it wrapped.
    ring_settings.VIGIL_KEYRING = f"a:{b64(KEY_A)},b:{b64(KEY_B)}"
    ring_settings.VIGIL_ACTIVE_KEK_ID = "b"
    keys.keyring.cache_clear()
    datakeys.cache_clear()
    assert datakeys.data_key_for_decrypt(dek_id=dek_id, patient_id=old_patient) == dek
    new_row = datakeys.patient_key_create(patient_id=uuid.uuid4())
    assert new_row.kek_id == "b"

    # Without "a" the old key cannot be opened; with "a" replaced by another key neither.
    ring_settings.VIGIL_KEYRING = f"b:{b64(KEY_B)}"
    keys.keyring.cache_clear()
    datakeys.cache_clear()
    with pytest.raises(KeyNotFound):
        datakeys.data_key_for_decrypt(dek_id=dek_id, patient_id=old_patient)


@pytest.mark.django_db
def test_wrapped_data_key_is_stored_wrapped(ring_settings: Any) -> None:
    patient_id = uuid.uuid4()
    dek_id, dek = datakeys.data_key_for_encrypt(patient_id=patient_id)  # created on first use
    row = PatientKey.objects.get(pk=dek_id)
    assert row.patient_id == patient_id
    assert dek not in bytes(row.wrapped_key)
    assert datakeys.data_key_for_encrypt(patient_id=patient_id) == (dek_id, dek)
    datakeys.cache_clear()
    assert datakeys.data_key_for_decrypt(dek_id=dek_id, patient_id=patient_id) == dek


@pytest.mark.django_db
def test_data_key_is_bound_to_its_patient(ring_settings: Any) -> None:
    patient_id = uuid.uuid4()
    dek_id, _ = datakeys.data_key_for_encrypt(patient_id=patient_id)
    datakeys.cache_clear()
    with pytest.raises(KeyNotFound):
        datakeys.data_key_for_decrypt(dek_id=dek_id, patient_id=uuid.uuid4())
    with pytest.raises(KeyNotFound):
        datakeys.data_key_for_decrypt(dek_id=uuid.uuid4(), patient_id=patient_id)


@pytest.mark.django_db
def test_a_cached_data_key_is_still_bound_to_its_patient(ring_settings: Any) -> None:
    patient_id = uuid.uuid4()
    dek_id, dek = datakeys.data_key_for_encrypt(patient_id=patient_id)  # now in the cache
    with pytest.raises(KeyNotFound, match="another patient"):
        datakeys.data_key_for_decrypt(dek_id=dek_id, patient_id=uuid.uuid4())
    assert datakeys.data_key_for_decrypt(dek_id=dek_id, patient_id=patient_id) == dek


@pytest.mark.django_db
def test_wrapped_key_moved_to_another_patient_fails(ring_settings: Any) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    row_a = datakeys.patient_key_create(patient_id=a)
    row_b = datakeys.patient_key_create(patient_id=b)
    PatientKey.objects.filter(pk=row_b.pk).update(wrapped_key=row_a.wrapped_key)
    datakeys.cache_clear()
    with pytest.raises(DecryptionFailed):
        datakeys.data_key_for_decrypt(dek_id=row_b.pk, patient_id=b)
    assert len(datakeys.data_key_for_decrypt(dek_id=row_a.pk, patient_id=a)) == crypto.KEY_BYTES
