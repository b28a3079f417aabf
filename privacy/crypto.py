"""Envelope encryption with AES-256-GCM. Pure code: no Django, no database.

- A *key-encryption key* (KEK, 32 bytes) identified by a key id lives outside the database
  (environment or a mounted file). It only ever wraps data keys.
- Each patient has a *data key* (DEK, 32 bytes), stored wrapped by a KEK. Rotating a KEK re-wraps
  DEKs; records are untouched. Destroying a DEK makes every copy of that patient's ciphertext
  unreadable (crypto-shredding).
- Every ciphertext binds *associated data* (table, primary key, field, key id), so a ciphertext
  moved to another row or field fails authentication instead of decrypting.

Field blob format (version 1)::

    0x01 | dek_id (16 bytes, UUID) | nonce (12 bytes) | ciphertext || tag (16 bytes)
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from config.errors import DecryptionFailed, KeyNotFound

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
FIELD_VERSION = 1
_HEADER = 1 + 16


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate: returns ``nonce || ciphertext || tag``."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`seal`; raises :class:`DecryptionFailed` on any tampering or wrong AAD."""
    if len(sealed) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionFailed("Ciphertext is truncated.")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag:
        raise DecryptionFailed(
            "Ciphertext failed authentication (wrong key, wrong row or tampered)."
        ) from None


@dataclass(frozen=True)
class KeyRing:
    """Key-encryption keys by id, and the id new data keys are wrapped under."""

    keys: dict[str, bytes]
    active_id: str

    def __post_init__(self) -> None:
        if self.active_id not in self.keys:
            raise KeyNotFound(f"The active key-encryption key '{self.active_id}' is not loaded.")
        for kid, key in self.keys.items():
            if len(key) != KEY_BYTES:
                raise KeyNotFound(f"Key-encryption key '{kid}' is not 32 bytes.")

    def get(self, kek_id: str) -> bytes:
        try:
            return self.keys[kek_id]
        except KeyError:
            raise KeyNotFound(f"Key-encryption key '{kek_id}' is not loaded.") from None


def _wrap_aad(dek_id: uuid.UUID, owner_id: uuid.UUID, kek_id: str) -> bytes:
    return f"vigil:dek:v1|{dek_id}|{owner_id}|{kek_id}".encode()


def wrap_data_key(
    ring: KeyRing, dek: bytes, *, dek_id: uuid.UUID, owner_id: uuid.UUID, kek_id: str | None = None
) -> tuple[str, bytes]:
    """Wrap ``dek`` under the active KEK (or ``kek_id``). Returns ``(kek_id, wrapped)``."""
    kid = kek_id or ring.active_id
    return kid, seal(ring.get(kid), dek, _wrap_aad(dek_id, owner_id, kid))


def unwrap_data_key(
    ring: KeyRing, wrapped: bytes, *, dek_id: uuid.UUID, owner_id: uuid.UUID, kek_id: str
) -> bytes:
    return unseal(ring.get(kek_id), wrapped, _wrap_aad(dek_id, owner_id, kek_id))


def field_aad(*, table: str, pk: object, field: str, dek_id: uuid.UUID) -> bytes:
    return f"vigil:field:v1|{table}|{pk}|{field}|{dek_id}".encode()


def encrypt_field(dek: bytes, dek_id: uuid.UUID, plaintext: bytes, *, aad: bytes) -> bytes:
    return bytes([FIELD_VERSION]) + dek_id.bytes + seal(dek, plaintext, aad)


def field_dek_id(blob: bytes) -> uuid.UUID:
    """The data key id a field blob was written with."""
    if len(blob) < _HEADER + NONCE_BYTES + TAG_BYTES or blob[0] != FIELD_VERSION:
        raise DecryptionFailed("Not an encrypted Vigil field (bad version or length).")
    return uuid.UUID(bytes=blob[1:_HEADER])


def decrypt_field(dek: bytes, blob: bytes, *, aad: bytes) -> bytes:
    field_dek_id(blob)
    return unseal(dek, blob[_HEADER:], aad)
