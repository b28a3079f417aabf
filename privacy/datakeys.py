"""Per-patient data keys: create, find, unwrap (with a short in-process cache).

The only module that unwraps data keys. Encryption always asks the database for the patient's
current key (inside the caller's transaction), so a key created in a transaction that later rolls
back is never used for data that survives. Unwrapped keys are cached by key id for
``VIGIL_DEK_CACHE_SECONDS``: after a key is destroyed, other processes may still hold it in memory
for at most that long, and never on disk.

Key life cycle: *current* (new data is encrypted with it; one per patient) → *retired* (a newer key
replaced it; it still decrypts what it wrote until that is re-encrypted) → *destroyed*
(``wrapped_key`` is NULL: whatever it encrypted, in the database, in backups or in files, can never
be read again). Re-wrapping under another key-encryption key (KEK rotation) changes none of this.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import KeyNotFound
from privacy import crypto
from privacy.keys import keyring
from privacy.models import PatientKey

# dek id -> (owner patient id, data key, expiry): a hit is checked against its owner like a miss.
_cache: dict[uuid.UUID, tuple[uuid.UUID, bytes, float]] = {}
_lock = threading.Lock()


def cache_clear() -> None:
    with _lock:
        _cache.clear()


def _cache_get(dek_id: uuid.UUID, *, owner_id: uuid.UUID) -> bytes | None:
    """The cached key, or None (not cached, expired). A key cached for another patient raises
    :class:`KeyNotFound`, as the database lookup would."""
    with _lock:
        hit = _cache.get(dek_id)
        if hit is None:
            return None
        owner, dek, expires = hit
        if expires < time.monotonic():
            _cache.pop(dek_id, None)
            return None
    if owner != owner_id:
        raise KeyNotFound("The data key for this record belongs to another patient.")
    return dek


def _cache_put(dek_id: uuid.UUID, dek: bytes, *, owner_id: uuid.UUID) -> None:
    ttl = settings.VIGIL_DEK_CACHE_SECONDS
    if ttl <= 0:
        return
    with _lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[dek_id] = (owner_id, dek, time.monotonic() + ttl)


def cache_forget(dek_id: uuid.UUID) -> None:
    with _lock:
        _cache.pop(dek_id, None)


def _unwrap(row: PatientKey) -> bytes:
    if row.destroyed_at is not None or row.wrapped_key is None:
        raise KeyNotFound("This patient's data key was destroyed (erased patient).")
    dek = crypto.unwrap_data_key(
        keyring(),
        bytes(row.wrapped_key),
        dek_id=row.id,
        owner_id=row.patient_id,
        kek_id=row.kek_id,
    )
    _cache_put(row.id, dek, owner_id=row.patient_id)
    return dek


def patient_key_create(*, patient_id: uuid.UUID) -> PatientKey:
    """Create and store a new wrapped data key for a patient (the caller retires any old one)."""
    ring = keyring()
    dek_id = uuid.uuid4()
    kek_id, wrapped = crypto.wrap_data_key(
        ring, crypto.new_key(), dek_id=dek_id, owner_id=patient_id
    )
    return PatientKey.objects.create(
        id=dek_id, patient_id=patient_id, kek_id=kek_id, wrapped_key=wrapped
    )


def data_key_for_encrypt(*, patient_id: uuid.UUID) -> tuple[uuid.UUID, bytes]:
    """The patient's current data key, created on first use."""
    row = (
        PatientKey.objects.filter(
            patient_id=patient_id, retired_at__isnull=True, destroyed_at__isnull=True
        )
        .order_by("-created_at")
        .first()
    )
    if row is None:
        if PatientKey.objects.filter(patient_id=patient_id, destroyed_at__isnull=False).exists():
            raise KeyNotFound("This patient was erased: nothing new can be stored for them.")
        try:
            with transaction.atomic():
                row = patient_key_create(patient_id=patient_id)
        except IntegrityError:  # another request created it first
            row = PatientKey.objects.get(
                patient_id=patient_id, retired_at__isnull=True, destroyed_at__isnull=True
            )
    cached = _cache_get(row.id, owner_id=patient_id)
    return row.id, cached if cached is not None else _unwrap(row)


def data_key_for_decrypt(*, dek_id: uuid.UUID, patient_id: uuid.UUID) -> bytes:
    cached = _cache_get(dek_id, owner_id=patient_id)
    if cached is not None:
        return cached
    row = PatientKey.objects.filter(id=dek_id).first()
    if row is None:
        raise KeyNotFound("The data key for this record does not exist.")
    if row.patient_id != patient_id:
        raise KeyNotFound("The data key for this record belongs to another patient.")
    return _unwrap(row)


def data_key_rewrap(row: PatientKey, *, kek_id: str) -> bytes:
    """``row``'s data key wrapped under the key-encryption key ``kek_id`` (KEK rotation).

    Unwraps with the row's current KEK and wraps again under ``kek_id``; the data key itself does
    not change, so no record needs re-encrypting. Saves nothing and caches nothing. Raises
    :class:`KeyNotFound` (a KEK is not loaded, or the key was destroyed) or
    :class:`~config.errors.DecryptionFailed` (the wrapped key does not authenticate).
    """
    if row.destroyed_at is not None or row.wrapped_key is None:
        raise KeyNotFound("This data key was destroyed.")
    ring = keyring()
    dek = crypto.unwrap_data_key(
        ring, bytes(row.wrapped_key), dek_id=row.id, owner_id=row.patient_id, kek_id=row.kek_id
    )
    _, wrapped = crypto.wrap_data_key(
        ring, dek, dek_id=row.id, owner_id=row.patient_id, kek_id=kek_id
    )
    return wrapped


def patient_key_replace(*, patient_id: uuid.UUID) -> PatientKey:
    """Retire the patient's current data key and create a new current one, in one transaction.

    From the commit on, everything newly encrypted for the patient uses the new key; what the old
    key encrypted still decrypts (it is retired, not destroyed) until it has been re-encrypted.
    """
    with transaction.atomic():
        keys = list(
            PatientKey.objects.select_for_update()
            .filter(patient_id=patient_id, destroyed_at__isnull=True)
            .order_by("created_at")
        )
        if not keys and PatientKey.objects.filter(patient_id=patient_id).exists():
            raise KeyNotFound("This patient was erased: they have no data key to rotate.")
        now = timezone.now()
        for row in keys:
            if row.retired_at is None:
                row.retired_at = now
                row.save(update_fields=["retired_at"])
        return patient_key_create(patient_id=patient_id)


def patient_keys_destroy(
    *, patient_id: uuid.UUID, key_ids: Iterable[uuid.UUID] | None = None
) -> list[uuid.UUID]:
    """Crypto-shred data keys of a patient: all of them, or only ``key_ids``.

    The wrapped key is overwritten with NULL and ``destroyed_at`` set; this process forgets the
    unwrapped keys at once (others within ``VIGIL_DEK_CACHE_SECONDS``). Returns the ids destroyed
    now (keys destroyed earlier are left as they are).
    """
    rows = PatientKey.objects.filter(patient_id=patient_id, destroyed_at__isnull=True)
    if key_ids is not None:
        rows = rows.filter(id__in=list(key_ids))
    ids = list(rows.values_list("id", flat=True))
    if ids:
        PatientKey.objects.filter(id__in=ids, destroyed_at__isnull=True).update(
            wrapped_key=None, destroyed_at=timezone.now()
        )
    for dek_id in ids:
        cache_forget(dek_id)
    return ids
