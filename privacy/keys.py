"""Loading the key-encryption keyring from configuration, and creating a local one.

Production: ``VIGIL_KEYRING`` (``kid:base64,kid2:base64``) or ``VIGIL_KEYRING_FILE`` (a mounted JSON
file ``{"active": "kid", "keys": {"kid": "base64"}}``), with ``VIGIL_ACTIVE_KEK_ID`` choosing the
active key when several are loaded. The settings refuse to start without one of them.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import os
import secrets
from pathlib import Path

from django.conf import settings

from config.errors import KeyNotFound
from privacy.crypto import KeyRing, new_key


def _decode(kid: str, value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyNotFound(f"Key-encryption key '{kid}' is not valid base64.") from None
    if len(key) != 32:
        raise KeyNotFound(f"Key-encryption key '{kid}' must be 32 bytes.")
    return key


def parse_inline(spec: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        kid, sep, value = part.partition(":")
        if not sep or not kid:
            raise KeyNotFound("VIGIL_KEYRING entries must look like 'kid:base64key'.")
        keys[kid.strip()] = _decode(kid.strip(), value.strip())
    return keys


def read_file(path: Path) -> tuple[dict[str, bytes], str | None]:
    if not path.exists():
        raise KeyNotFound(
            f"Keyring file {path.name} does not exist: run 'manage.py bootstrap_local' (local) "
            "or mount the production keyring."
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyNotFound(f"Keyring file {path.name} must not be readable by others (chmod 600).")
    data = json.loads(path.read_text())
    keys = {kid: _decode(kid, value) for kid, value in data.get("keys", {}).items()}
    return keys, data.get("active")


def _test_keyring() -> KeyRing:
    # Deterministic so that a worker process started by a test derives the same keys.
    key = hashlib.sha256(b"vigil-test-only-kek").digest()
    return KeyRing(keys={"test-1": key}, active_id="test-1")


@functools.cache
def keyring() -> KeyRing:
    """The process's keyring, loaded once. Call ``keyring.cache_clear()`` after changing it."""
    keys: dict[str, bytes] = {}
    active: str | None = None
    if settings.VIGIL_KEYRING_FILE:
        file_keys, active = read_file(Path(settings.VIGIL_KEYRING_FILE))
        keys.update(file_keys)
    if settings.VIGIL_KEYRING:
        keys.update(parse_inline(settings.VIGIL_KEYRING))
    if not keys:
        if settings.IS_TEST:
            return _test_keyring()
        raise KeyNotFound("No key-encryption key is configured (VIGIL_KEYRING / _FILE).")
    active = (
        settings.VIGIL_ACTIVE_KEK_ID or active or (next(iter(keys)) if len(keys) == 1 else None)
    )
    if active is None:
        raise KeyNotFound("Several key-encryption keys are loaded: set VIGIL_ACTIVE_KEK_ID.")
    return KeyRing(keys=keys, active_id=active)


def create_local_keyring(path: Path) -> bool:
    """Create a keyring file with one fresh key and 0600 permissions. False if it already exists."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    kid = "local-" + secrets.token_hex(4)
    payload = {"active": kid, "keys": {kid: base64.b64encode(new_key()).decode()}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle)
    return True
