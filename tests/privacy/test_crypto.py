"""privacy.crypto: AES-256-GCM sealing, the keyring, data-key wrapping, field blobs (pure code)."""

from __future__ import annotations

import uuid

import pytest

from config.errors import DecryptionFailed, KeyNotFound
from privacy import crypto
from privacy.crypto import KeyRing

AAD = b"vigil:test|table|1|field"


@pytest.fixture
def key() -> bytes:
    return crypto.new_key()


# --- seal / unseal -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "plaintext",
    [b"", b"x", b"A calm day.\n" * 500, bytes(range(256))],
    ids=["empty", "one_byte", "long_text", "all_byte_values"],
)
def test_seal_unseal_round_trip(key: bytes, plaintext: bytes) -> None:
    sealed = crypto.seal(key, plaintext, AAD)
    assert len(sealed) == crypto.NONCE_BYTES + len(plaintext) + crypto.TAG_BYTES
    assert crypto.unseal(key, sealed, AAD) == plaintext


def test_new_keys_are_random_256_bit(key: bytes) -> None:
    assert len(key) == crypto.KEY_BYTES == 32
    assert crypto.new_key() != key


def test_sealing_twice_uses_a_fresh_nonce(key: bytes) -> None:
    first, second = crypto.seal(key, b"same text", AAD), crypto.seal(key, b"same text", AAD)
    assert first != second
    assert first[: crypto.NONCE_BYTES] != second[: crypto.NONCE_BYTES]
    assert b"same text" not in first


def test_wrong_key_fails(key: bytes) -> None:
    sealed = crypto.seal(key, b"secret", AAD)
    with pytest.raises(DecryptionFailed):
        crypto.unseal(crypto.new_key(), sealed, AAD)


@pytest.mark.parametrize(
    "aad",
    [b"", AAD + b"x", AAD[:-1], b"vigil:test|table|2|field"],
    ids=["empty", "longer", "shorter", "other_row"],
)
def test_wrong_associated_data_fails(key: bytes, aad: bytes) -> None:
    sealed = crypto.seal(key, b"secret", AAD)
    with pytest.raises(DecryptionFailed):
        crypto.unseal(key, sealed, aad)


def test_any_flipped_byte_fails(key: bytes) -> None:
    sealed = crypto.seal(key, b"a secret worth protecting", AAD)
    # Every position: nonce, ciphertext and tag are all authenticated.
    for position in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        with pytest.raises(DecryptionFailed):
            crypto.unseal(key, bytes(tampered), AAD)


@pytest.mark.parametrize(
    "cut", [0, 1, crypto.NONCE_BYTES, crypto.NONCE_BYTES + crypto.TAG_BYTES - 1]
)
def test_truncated_ciphertext_fails(key: bytes, cut: int) -> None:
    sealed = crypto.seal(key, b"", AAD)
    with pytest.raises(DecryptionFailed):
        crypto.unseal(key, sealed[:cut], AAD)


def test_dropping_the_last_byte_fails(key: bytes) -> None:
    sealed = crypto.seal(key, b"some text", AAD)
    with pytest.raises(DecryptionFailed):
        crypto.unseal(key, sealed[:-1], AAD)


# --- keyring -------------------------------------------------------------------------------------
def test_keyring_needs_its_active_key_loaded() -> None:
    with pytest.raises(KeyNotFound):
        KeyRing(keys={"a": crypto.new_key()}, active_id="b")
    with pytest.raises(KeyNotFound):
        KeyRing(keys={}, active_id="a")


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_keyring_rejects_keys_of_the_wrong_length(length: int) -> None:
    with pytest.raises(KeyNotFound):
        KeyRing(keys={"a": crypto.new_key(), "b": b"k" * length}, active_id="a")


def test_keyring_get() -> None:
    a, b = crypto.new_key(), crypto.new_key()
    ring = KeyRing(keys={"a": a, "b": b}, active_id="b")
    assert ring.get("a") == a
    assert ring.get("b") == b
    with pytest.raises(KeyNotFound):
        ring.get("c")


# --- data-key wrapping ---------------------------------------------------------------------------
@pytest.fixture
def ring() -> KeyRing:
    return KeyRing(keys={"a": crypto.new_key(), "b": crypto.new_key()}, active_id="b")


def test_wrap_unwrap_round_trip(ring: KeyRing) -> None:
    dek, dek_id, owner = crypto.new_key(), uuid.uuid4(), uuid.uuid4()
    kek_id, wrapped = crypto.wrap_data_key(ring, dek, dek_id=dek_id, owner_id=owner)
    assert kek_id == "b"  # the active key
    assert dek not in wrapped
    assert crypto.unwrap_data_key(ring, wrapped, dek_id=dek_id, owner_id=owner, kek_id="b") == dek


def test_wrap_under_a_named_key(ring: KeyRing) -> None:
    dek, dek_id, owner = crypto.new_key(), uuid.uuid4(), uuid.uuid4()
    kek_id, wrapped = crypto.wrap_data_key(ring, dek, dek_id=dek_id, owner_id=owner, kek_id="a")
    assert kek_id == "a"
    assert crypto.unwrap_data_key(ring, wrapped, dek_id=dek_id, owner_id=owner, kek_id="a") == dek
    with pytest.raises(DecryptionFailed):  # claiming another KEK id fails, even if loaded
        crypto.unwrap_data_key(ring, wrapped, dek_id=dek_id, owner_id=owner, kek_id="b")


def test_wrapped_key_is_bound_to_its_owner_and_id(ring: KeyRing) -> None:
    dek, dek_id, owner = crypto.new_key(), uuid.uuid4(), uuid.uuid4()
    _, wrapped = crypto.wrap_data_key(ring, dek, dek_id=dek_id, owner_id=owner)
    with pytest.raises(DecryptionFailed):  # another patient's key row
        crypto.unwrap_data_key(ring, wrapped, dek_id=dek_id, owner_id=uuid.uuid4(), kek_id="b")
    with pytest.raises(DecryptionFailed):  # another key id
        crypto.unwrap_data_key(ring, wrapped, dek_id=uuid.uuid4(), owner_id=owner, kek_id="b")


def test_unwrap_with_a_kek_that_is_not_loaded(ring: KeyRing) -> None:
    dek_id, owner = uuid.uuid4(), uuid.uuid4()
    _, wrapped = crypto.wrap_data_key(ring, crypto.new_key(), dek_id=dek_id, owner_id=owner)
    with pytest.raises(KeyNotFound):
        crypto.unwrap_data_key(ring, wrapped, dek_id=dek_id, owner_id=owner, kek_id="gone")
    other = KeyRing(keys={"b": crypto.new_key()}, active_id="b")  # same id, different key
    with pytest.raises(DecryptionFailed):
        crypto.unwrap_data_key(other, wrapped, dek_id=dek_id, owner_id=owner, kek_id="b")


# --- field blobs ---------------------------------------------------------------------------------
def _aad(dek_id: uuid.UUID, pk: object = "row-1", field: str = "text") -> bytes:
    return crypto.field_aad(table="screening_diaryentry", pk=pk, field=field, dek_id=dek_id)


def test_field_round_trip_and_layout(key: bytes) -> None:
    dek_id = uuid.uuid4()
    blob = crypto.encrypt_field(key, dek_id, "Ünïcode diary".encode(), aad=_aad(dek_id))
    assert blob[0] == crypto.FIELD_VERSION
    assert blob[1:17] == dek_id.bytes
    assert crypto.field_dek_id(blob) == dek_id
    assert crypto.decrypt_field(key, blob, aad=_aad(dek_id)).decode() == "Ünïcode diary"


def test_field_aad_binds_table_row_field_and_key() -> None:
    dek_id = uuid.uuid4()
    variants = {
        crypto.field_aad(table="t", pk=1, field="f", dek_id=dek_id),
        crypto.field_aad(table="u", pk=1, field="f", dek_id=dek_id),
        crypto.field_aad(table="t", pk=2, field="f", dek_id=dek_id),
        crypto.field_aad(table="t", pk=1, field="g", dek_id=dek_id),
        crypto.field_aad(table="t", pk=1, field="f", dek_id=uuid.uuid4()),
    }
    assert len(variants) == 5


def test_field_blob_moved_to_another_row_or_field_fails(key: bytes) -> None:
    dek_id = uuid.uuid4()
    blob = crypto.encrypt_field(key, dek_id, b"text", aad=_aad(dek_id, pk="row-1"))
    with pytest.raises(DecryptionFailed):
        crypto.decrypt_field(key, blob, aad=_aad(dek_id, pk="row-2"))
    with pytest.raises(DecryptionFailed):
        crypto.decrypt_field(key, blob, aad=_aad(dek_id, field="phone"))


_SOME_ID = uuid.UUID("12345678-1234-5678-1234-567812345678").bytes
GARBAGE = {
    "empty": b"",
    "version_only": b"\x01",
    "header_only": b"\x01" + _SOME_ID,
    "one_byte_short": b"\x01" + _SOME_ID + b"\x00" * (crypto.NONCE_BYTES + crypto.TAG_BYTES - 1),
    "unknown_version": b"\x02" + _SOME_ID + b"\x00" * 40,
    "zeros": b"\x00" * 64,
    "plaintext": b"plain text that was never encrypted, stored by mistake",
}


@pytest.mark.parametrize("garbage", list(GARBAGE.values()), ids=list(GARBAGE))
def test_field_blob_parsing_rejects_garbage(key: bytes, garbage: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        crypto.field_dek_id(garbage)
    with pytest.raises(DecryptionFailed):
        crypto.decrypt_field(key, garbage, aad=_aad(uuid.uuid4()))


def test_field_blob_with_valid_header_but_random_body_fails(key: bytes) -> None:
    dek_id = uuid.uuid4()
    blob = b"\x01" + dek_id.bytes + crypto.new_key() + crypto.new_key()
    assert crypto.field_dek_id(blob) == dek_id
    with pytest.raises(DecryptionFailed):
        crypto.decrypt_field(key, blob, aad=_aad(dek_id))
