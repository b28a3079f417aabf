"""KEK rotation re-seals staff TOTP secrets: after the old KEK is retired staff still sign in."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

import pyotp
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from clinician_portal.models import StaffTotp
from clinician_portal.services import totp_secret, totp_secret_set
from config.errors import KeyNotFound
from privacy import datakeys, keys, rotation
from privacy.models import AccessEvent
from tests.clinician_portal.conftest import Portal
from tests.factories import PASSWORD

OLD_KEY = hashlib.sha256(b"vigil-test-only-kek").digest()  # the test profile's "test-1"
NEW_KEY = hashlib.sha256(b"vigil-test-rotation-kek-2").digest()


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


BOTH = f"test-1:{b64(OLD_KEY)},new-1:{b64(NEW_KEY)}"
ONLY_NEW = f"new-1:{b64(NEW_KEY)}"


@pytest.fixture
def use_keyring(settings: Any) -> Any:
    def clear() -> None:
        keys.keyring.cache_clear()
        datakeys.cache_clear()

    def use(spec: str | None, active: str | None = None) -> None:
        settings.VIGIL_KEYRING = spec
        settings.VIGIL_ACTIVE_KEK_ID = active
        clear()

    clear()
    yield use
    clear()


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def sealed_rows() -> dict[int, tuple[str, bytes]]:
    return {row.user_id: (row.kek_id, bytes(row.sealed_secret)) for row in StaffTotp.objects.all()}


def sign_in(user: Any, code: str) -> int:
    client = Client()
    response = client.post("/portal/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client.post("/portal/login/verify/", {"code": code}).status_code


def test_staff_sign_in_with_the_same_code_after_the_old_kek_is_retired(
    portal: Portal, use_keyring: Any
) -> None:
    staff = [portal.world.clinician.user, portal.world.colleague.user, portal.world.auditor.user]
    assert {kek for kek, _ in sealed_rows().values()} == {"test-1"}
    before = sealed_rows()

    use_keyring(BOTH, active="new-1")
    out, err = run("rotate_keys", "--to", "new-1", "--batch-size", "2", "--no-progress")
    assert err == ""
    assert "Re-wrapping 3 staff TOTP secrets under KEK 'new-1'" in out
    assert "Re-sealed 3 staff TOTP secrets in 2 batches; 0 failed to open" in out
    assert "KEK test-1 is no longer used by any data key or TOTP secret" in out
    after = sealed_rows()
    for user_id, (kek, blob) in after.items():
        assert kek == "new-1" and blob != before[user_id][1]
        assert portal.secrets[user_id].encode() not in blob
    events = AccessEvent.objects.filter(action="key.totp_reseal").order_by("seq")
    assert [e.purpose.split(": ", 2)[-1] for e in events] == [
        "2 staff TOTP secrets re-sealed, 0 failed to open",
        "1 staff TOTP secrets re-sealed, 0 failed to open",
    ]

    # The old key leaves the keyring: a code computed from the same secret still signs in.
    use_keyring(ONLY_NEW)
    run("rotate_keys", "--check-retirable", "test-1")
    for user in staff:
        assert sign_in(user, portal.code(user)) == 302
        assert totp_secret(record=StaffTotp.objects.get(user=user)) == portal.secrets[user.pk]


def test_without_rotation_the_old_kek_is_needed(portal: Portal, use_keyring: Any) -> None:
    """The control: before rotation the new key alone cannot open the secrets."""
    use_keyring(ONLY_NEW)
    with pytest.raises(KeyNotFound, match="'test-1' is not loaded"):
        totp_secret(record=StaffTotp.objects.get(user=portal.world.clinician.user))
    assert rotation.totp_kek_usage() == {"test-1": 3}


def test_a_second_run_does_nothing(portal: Portal, use_keyring: Any) -> None:
    use_keyring(BOTH, active="new-1")
    first = rotation.kek_rotate(to="new-1", batch_size=2)
    assert first.totp_resealed == 3 and first.totp_usage == {"new-1": 3}
    assert first.totp_remaining == 0 and first.retirable == ["test-1"]
    rows, events = sealed_rows(), AccessEvent.objects.count()
    out, err = run("rotate_keys", "--to", "new-1", "--no-progress")
    assert "Re-sealed 0 staff TOTP secrets in 0 batches; 0 failed to open" in out
    assert err == ""
    assert sealed_rows() == rows
    assert AccessEvent.objects.count() == events


def test_interrupted_reseal_continues(
    portal: Portal, use_keyring: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clinician_portal import services as portal_services

    use_keyring(BOTH, active="new-1")
    real = portal_services.totp_reseal_batch
    calls = {"n": 0}

    def crash_after_first_batch(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(**kwargs)

    monkeypatch.setattr(portal_services, "totp_reseal_batch", crash_after_first_batch)
    with pytest.raises(RuntimeError, match="killed"):
        rotation.kek_rotate(to="new-1", batch_size=2)
    assert StaffTotp.objects.filter(kek_id="new-1").count() == 2  # the first batch committed
    monkeypatch.setattr(portal_services, "totp_reseal_batch", real)
    report = rotation.kek_rotate(to="new-1", batch_size=2)
    assert report.totp_resealed == 1 and report.totp_usage == {"new-1": 3}


def test_a_secret_that_cannot_be_opened_is_reported_by_user_id(
    portal: Portal, use_keyring: Any
) -> None:
    user = portal.world.colleague.user
    record = StaffTotp.objects.get(user=user)
    blob = bytearray(bytes(record.sealed_secret))
    blob[-3] ^= 0x01
    StaffTotp.objects.filter(pk=record.pk).update(sealed_secret=bytes(blob))
    use_keyring(BOTH, active="new-1")

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 staff TOTP secrets could not be opened"):
        call_command("rotate_keys", "--to", "new-1", "--no-progress", stdout=out, stderr=err)
    assert f"FAILED staff TOTP secret of user {user.pk} (under KEK test-1: Ciphertext failed" in (
        err.getvalue()
    )
    assert portal.secrets[user.pk] not in err.getvalue() + out.getvalue()
    assert "Re-sealed 2 staff TOTP secrets in 1 batches; 1 failed to open" in out.getvalue()
    assert "KEK test-1 is still used by 1 staff TOTP secrets: keep it loaded." in out.getvalue()
    assert StaffTotp.objects.get(pk=record.pk).kek_id == "test-1"
    with pytest.raises(CommandError, match="still used by 1 staff TOTP secrets"):
        run("rotate_keys", "--check-retirable", "test-1")
    # A dry run reports it too, and changes nothing.
    report = rotation.kek_rotate(to="new-1", dry_run=True)
    assert report.totp_resealed == 0 and list(report.totp_failed) == [user.pk]


def test_new_secrets_are_sealed_under_the_active_kek(portal: Portal, use_keyring: Any) -> None:
    use_keyring(BOTH, active="new-1")
    secret = pyotp.random_base32()
    record = totp_secret_set(user=portal.world.clinician.user, secret=secret, confirmed=True)
    assert record.kek_id == "new-1"
    report = rotation.kek_rotate(to="new-1", dry_run=True)
    assert report.totp_resealed == 2 and report.totp_failed == {}
