"""Key rotation: KEK rotation re-wraps data keys only; a patient's data key rotation re-encrypts
everything of theirs and destroys the old key."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from config.errors import DecryptionFailed, KeyNotFound
from privacy import crypto, datakeys, keys, rotation, storage
from privacy.audit import Actor
from privacy.choices import ConsentScope
from privacy.consent import consent_change
from privacy.models import AccessEvent, PatientKey
from screening.models import DiaryEntry, EmergencyContact, Patient, QuestionnaireResponse
from screening.services.diary import diary_entry_create
from screening.services.people import emergency_contact_set
from screening.services.questionnaires import questionnaire_submit
from screening.services.videos import video_submission_create
from tests.factories import make_patient
from tests.media import MediaSet, shared_media

OLD_KEY = hashlib.sha256(b"vigil-test-only-kek").digest()  # the test profile's "test-1"
NEW_KEY = hashlib.sha256(b"vigil-test-rotation-kek-2").digest()


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


ANALYSIS = (ConsentScope.TEXT_ANALYSIS, ConsentScope.VOICE_ANALYSIS, ConsentScope.FACE_ANALYSIS)
BOTH = f"test-1:{b64(OLD_KEY)},new-1:{b64(NEW_KEY)}"
ONLY_NEW = f"new-1:{b64(NEW_KEY)}"


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaSet:
    return shared_media(tmp_path_factory)


@pytest.fixture(autouse=True)
def folders(settings: Any, tmp_path: Path) -> Any:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    settings.VIGIL_MEDIA_CHUNK_BYTES = 4096  # several chunks per test video
    return settings


@pytest.fixture
def use_keyring(settings: Any) -> Any:
    """``use_keyring(spec, active)`` switches the keyring for this test only (caches cleared)."""

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


# --- a populated world -----------------------------------------------------------------------
class Data:
    """Everything encrypted that was stored, with the plaintext it must decrypt to."""

    def __init__(self) -> None:
        self.fields: list[tuple[type, Any, str, Any]] = []  # (model, pk, field, plaintext)
        self.videos: list[tuple[str, uuid.UUID, uuid.UUID, bytes]] = []  # name, patient, object

    def of(self, patient: Patient) -> Data:
        mine = Data()
        mine.fields = [
            f
            for f in self.fields
            if (f[0] is Patient and f[1] == patient.pk)
            or (
                f[0] is not Patient and f[0]._base_manager.filter(pk=f[1], patient=patient).exists()
            )
        ]
        mine.videos = [v for v in self.videos if v[1] == patient.pk]
        return mine


def populate(patient: Patient, media: MediaSet, data: Data, *, entries: int = 2) -> None:
    actor = Actor(user_id=patient.user_id, role="patient")
    data.fields.append((Patient, patient.pk, "display_name", patient.display_name))
    for i in range(entries):
        text = f"Diary {i} of {patient.pseudonym}: slept badly, felt low — ünïcødé"
        entry, _ = diary_entry_create(
            actor=actor,
            patient=patient,
            idempotency_key=uuid.uuid4(),
            text=text,
            client_timestamp=timezone.now(),
        )
        data.fields.append((DiaryEntry, entry.pk, "text", text))
    answers = [1, 2, 0, 1, 3, 0, 1, 2, 0]
    response, _ = questionnaire_submit(
        actor=actor,
        patient=patient,
        idempotency_key=uuid.uuid4(),
        instrument="phq9",
        answers=answers,
        client_timestamp=timezone.now(),
    )
    data.fields.append((QuestionnaireResponse, response.pk, "answers", answers))
    contact = emergency_contact_set(
        patient=patient,
        name=f"Contact of {patient.pseudonym}",
        phone="+1 555 0100",
        email="contact@example.org",
        relationship="sister",
    )
    data.fields += [
        (EmergencyContact, contact.pk, "name", f"Contact of {patient.pseudonym}"),
        (EmergencyContact, contact.pk, "phone", "+1 555 0100"),
        (EmergencyContact, contact.pk, "email", "contact@example.org"),
    ]
    video, _ = video_submission_create(
        actor=actor,
        patient=patient,
        idempotency_key=uuid.uuid4(),
        upload_path=media.good_mp4,
        client_timestamp=timezone.now(),
    )
    data.videos.append((video.storage_name, patient.pk, video.pk, media.good_mp4.read_bytes()))


@pytest.fixture
def data(world: Any, media: MediaSet) -> Data:
    stored = Data()
    third = make_patient(
        team=world.patient_a.care_team,
        clinician=world.clinician,
        display_name="Carla Third",
    )
    for scope in ANALYSIS:
        consent_change(
            actor=Actor(user_id=third.user_id, role="patient"),
            patient=third,
            scope=scope,
            granted=True,
            document_version="1",
        )
    for patient in (world.patient_a, world.patient_b, third):
        populate(patient, media, stored)
    return stored


def assert_all_decrypt(data: Data) -> None:
    datakeys.cache_clear()
    for model, pk, name, plaintext in data.fields:
        assert getattr(model._default_manager.get(pk=pk), name) == plaintext, (model, name)
    for name, patient_id, object_id, plaintext in data.videos:
        with storage.decrypted_tempfile(
            name=name, patient_id=patient_id, object_id=object_id
        ) as path:
            assert path.read_bytes() == plaintext


def raw_blob(model: type, pk: Any, column: str) -> bytes | None:
    qn = connection.ops.quote_name
    db_pk = model._meta.pk.get_db_prep_value(pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn(column)} FROM {qn(model._meta.db_table)} "  # noqa: S608
            f"WHERE {qn(model._meta.pk.column)} = %s",
            [db_pk],
        )
        row = cursor.fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


def raw_blob_set(model: type, pk: Any, column: str, value: bytes) -> None:
    qn = connection.ops.quote_name
    db_pk = model._meta.pk.get_db_prep_value(pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(model._meta.db_table)} SET {qn(column)} = %s "  # noqa: S608
            f"WHERE {qn(model._meta.pk.column)} = %s",
            [connection.Database.Binary(value), db_pk],
        )


def ciphertexts(data: Data) -> dict[tuple[str, Any, str], bytes | None]:
    return {(m._meta.label, pk, name): raw_blob(m, pk, name) for m, pk, name, _ in data.fields}


def files(settings: Any, data: Data) -> dict[str, bytes]:
    root = Path(settings.VIGIL_MEDIA_ROOT)
    return {name: (root / name).read_bytes() for name, *_ in data.videos}


def key_rows() -> dict[uuid.UUID, dict[str, Any]]:
    return {
        row["id"]: {
            **row,
            "wrapped_key": None if row["wrapped_key"] is None else bytes(row["wrapped_key"]),
        }
        for row in PatientKey.objects.values()
    }


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def flip(blob: bytes, at: int = -5) -> bytes:
    changed = bytearray(blob)
    changed[at] ^= 0x01
    return bytes(changed)


# --- KEK rotation ------------------------------------------------------------------------------
def test_kek_rotation_rewraps_every_live_key_and_touches_no_record(
    world: Any, data: Data, settings: Any, use_keyring: Any, media: MediaSet
) -> None:
    # A retired key (a patient whose data key was replaced) and a destroyed one (an erased patient).
    patient_c = world.patient_b
    retired_id = PatientKey.objects.get(patient_id=patient_c.pk).id
    datakeys.patient_key_replace(patient_id=patient_c.pk)
    populate(patient_c, media, data, entries=1)  # under the new current key
    gone = uuid.uuid4()
    datakeys.data_key_for_encrypt(patient_id=gone)
    datakeys.patient_keys_destroy(patient_id=gone)
    assert set(PatientKey.objects.values_list("kek_id", flat=True)) == {"test-1"}
    live = PatientKey.objects.filter(destroyed_at__isnull=True).count()
    before_records = ciphertexts(data)
    before_files = files(settings, data)
    before_keys = key_rows()

    use_keyring(BOTH, active="new-1")
    assert_all_decrypt(data)
    out, err = run("rotate_keys", "--to", "new-1", "--batch-size", "2", "--no-progress")

    assert f"Re-wrapped {live} data keys in {-(-live // 2)} batches; 0 failed" in out
    assert "KEK test-1 is no longer used by any data key" in out
    assert err == ""
    after = key_rows()
    for dek_id, row in after.items():
        if row["destroyed_at"] is None:
            assert row["kek_id"] == "new-1"
            assert row["wrapped_key"] != before_keys[dek_id]["wrapped_key"]
        else:  # the destroyed key is left exactly as it was
            assert row == before_keys[dek_id]
        assert row["retired_at"] == before_keys[dek_id]["retired_at"]
    assert after[retired_id]["kek_id"] == "new-1" and after[retired_id]["retired_at"] is not None
    # No record and no file was re-encrypted: byte-identical.
    assert ciphertexts(data) == before_records
    assert files(settings, data) == before_files
    events = AccessEvent.objects.filter(action="key.rewrap").order_by("id")
    assert events.count() == -(-live // 2)
    assert all(e.actor_id is None and e.actor_role == "system" for e in events)
    assert "KEK rotation to new-1: batch 1: 2 data keys re-wrapped, 0 failed" in events[0].purpose
    assert_all_decrypt(data)

    # With ONLY the new key loaded, everything still decrypts: nothing depends on the old key.
    use_keyring(ONLY_NEW)
    assert_all_decrypt(data)
    out, _ = run("rotate_keys", "--check-retirable", "test-1")
    assert "KEK test-1 is no longer used by any data key" in out
    # And new data keys are wrapped under the new key.
    fresh = uuid.uuid4()
    datakeys.data_key_for_encrypt(patient_id=fresh)
    assert PatientKey.objects.get(patient_id=fresh).kek_id == "new-1"


def test_without_rotation_the_new_key_alone_cannot_decrypt(
    world: Any, data: Data, use_keyring: Any
) -> None:
    """The control for the test above: the old key really is needed before rotation."""
    use_keyring(ONLY_NEW)
    with pytest.raises(KeyNotFound, match="'test-1' is not loaded"):
        assert_all_decrypt(data)


def test_interrupted_rotation_continues_when_run_again(
    world: Any, data: Data, use_keyring: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(4):  # more keys than records: data keys exist before any record is written
        datakeys.data_key_for_encrypt(patient_id=uuid.uuid4())
    use_keyring(BOTH, active="new-1")
    live = PatientKey.objects.filter(destroyed_at__isnull=True).count()
    assert live == 7
    real = rotation._rewrap_batch
    calls = {"n": 0}

    def crash_after_first_batch(**kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(**kwargs)

    monkeypatch.setattr(rotation, "_rewrap_batch", crash_after_first_batch)
    with pytest.raises(RuntimeError, match="killed"):
        rotation.kek_rotate(to="new-1", batch_size=2)
    assert PatientKey.objects.filter(kek_id="new-1").count() == 2  # the first batch committed
    assert AccessEvent.objects.filter(action="key.rewrap").count() == 1
    assert rotation.kek_rotation_pending(to="new-1") == live - 2

    monkeypatch.setattr(rotation, "_rewrap_batch", real)
    report = rotation.kek_rotate(to="new-1", batch_size=2)
    assert report.rewrapped == live - 2
    assert report.failed == {} and report.remaining == 0
    assert report.retirable == ["test-1"]
    assert PatientKey.objects.filter(kek_id="new-1").count() == live
    use_keyring(ONLY_NEW)
    assert_all_decrypt(data)


def test_rerun_when_done_changes_nothing(world: Any, data: Data, use_keyring: Any) -> None:
    use_keyring(BOTH, active="new-1")
    with pytest.raises(CommandError, match="KEK test-1 is still used by 3 data keys"):
        run("rotate_keys", "--check-retirable", "test-1")
    out, _ = run("rotate_keys", "--to", "new-1", "--check-retirable", "test-1", "--no-progress")
    assert "KEK test-1 is no longer used by any data key or TOTP secret: it can be retired." in out
    keys_before = key_rows()
    events_before = AccessEvent.objects.count()
    out, err = run("rotate_keys", "--to", "new-1", "--no-progress")
    assert "Re-wrapping 0 data keys" in out
    assert "Re-wrapped 0 data keys in 0 batches; 0 failed" in out
    assert err == ""
    assert key_rows() == keys_before
    assert AccessEvent.objects.count() == events_before


def test_unwrappable_keys_are_reported_by_id_and_fail_the_command(
    world: Any, data: Data, use_keyring: Any
) -> None:
    use_keyring(BOTH, active="new-1")
    tampered = PatientKey.objects.get(patient_id=world.patient_a.pk)
    PatientKey.objects.filter(pk=tampered.pk).update(wrapped_key=flip(bytes(tampered.wrapped_key)))
    orphan = PatientKey.objects.get(patient_id=world.patient_b.pk)
    PatientKey.objects.filter(pk=orphan.pk).update(kek_id="lost-9")  # a KEK nobody has any more
    live = PatientKey.objects.filter(destroyed_at__isnull=True).count()

    with pytest.raises(CommandError) as excinfo:
        run("rotate_keys", "--to", "new-1", "--batch-size", "2", "--no-progress")
    assert excinfo.value.returncode != 0
    assert "2 data keys could not be unwrapped" in str(excinfo.value)
    # Reported by id, with the reason, and counted; never silently skipped.
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError):
        call_command("rotate_keys", "--to", "new-1", "--no-progress", stdout=out, stderr=err)
    assert f"FAILED data key {tampered.pk} (under KEK test-1: Ciphertext failed" in err.getvalue()
    assert f"FAILED data key {orphan.pk} (under KEK lost-9: Key-encryption key 'lost-9'" in (
        err.getvalue()
    )
    assert "Re-wrapped 0 data keys in 1 batches; 2 failed to unwrap" in out.getvalue()
    assert "KEK test-1 is still used by 1 data keys: keep it loaded." in out.getvalue()
    assert "KEK test-1 is no longer used" not in out.getvalue()
    # The messages name no patient data.
    assert world.patient_a.pseudonym not in err.getvalue()
    assert "Alice" not in err.getvalue()
    # Everything else was re-wrapped; the failing keys are untouched.
    assert PatientKey.objects.filter(kek_id="new-1").count() == live - 2
    assert PatientKey.objects.get(pk=tampered.pk).kek_id == "test-1"
    with pytest.raises(CommandError, match="still used by 1 data keys"):
        run("rotate_keys", "--check-retirable", "test-1")
    # The failures show in the audit trail's counts too.
    last = AccessEvent.objects.filter(action="key.rewrap").order_by("id").last()
    assert last is not None and "0 data keys re-wrapped, 2 failed to unwrap" in last.purpose


@pytest.mark.django_db(transaction=True)
def test_rotation_skips_keys_a_running_service_holds_locked(use_keyring: Any) -> None:
    """While the service runs, a batch never waits on (or overwrites) a row another transaction
    holds: it skips it, says it is still under the old KEK, and the next run picks it up."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks (SQLite serialises writers instead)")
    for _ in range(3):
        datakeys.data_key_for_encrypt(patient_id=uuid.uuid4())
    locked = PatientKey.objects.order_by("pk").first()
    assert locked is not None
    use_keyring(BOTH, active="new-1")
    holding, release = threading.Event(), threading.Event()

    def service_transaction() -> None:
        try:
            with transaction.atomic():
                PatientKey.objects.select_for_update().get(pk=locked.pk)
                holding.set()
                release.wait(20)
        finally:
            connections.close_all()

    thread = threading.Thread(target=service_transaction)
    thread.start()
    try:
        assert holding.wait(20)
        report = rotation.kek_rotate(to="new-1", batch_size=2)
        assert (report.rewrapped, report.failed, report.usage) == (2, {}, {"new-1": 2, "test-1": 1})
        assert report.retirable == []
    finally:
        release.set()
        thread.join(20)
    report = rotation.kek_rotate(to="new-1", batch_size=2)
    assert report.rewrapped == 1 and report.usage == {"new-1": 3}
    assert PatientKey.objects.get(pk=locked.pk).kek_id == "new-1"


def test_target_key_must_be_loaded(world: Any, use_keyring: Any) -> None:
    use_keyring(None)
    with pytest.raises(CommandError, match=r"'new-1' is not loaded.*VIGIL_KEYRING"):
        run("rotate_keys", "--to", "new-1", "--no-progress")
    with pytest.raises(KeyNotFound):
        rotation.kek_rotate(to="new-1")
    with pytest.raises(CommandError, match="--to"):
        run("rotate_keys")


def test_dry_run_changes_nothing_and_warns_about_the_active_key(
    world: Any, data: Data, use_keyring: Any
) -> None:
    use_keyring(BOTH, active="test-1")
    before = key_rows()
    out, err = run("rotate_keys", "--to", "new-1", "--dry-run", "--no-progress")
    live = PatientKey.objects.filter(destroyed_at__isnull=True).count()
    assert f"Dry run: {live} data keys would be re-wrapped, 0 would fail" in out
    assert "Set VIGIL_ACTIVE_KEK_ID=new-1" in err
    assert key_rows() == before
    assert not AccessEvent.objects.filter(action="key.rewrap").exists()


def test_rotation_run_by_a_named_user_is_attributed(
    world: Any, data: Data, use_keyring: Any
) -> None:
    use_keyring(BOTH, active="new-1")
    run("rotate_keys", "--to", "new-1", "--by", world.auditor.user.username, "--no-progress")
    event = AccessEvent.objects.filter(action="key.rewrap").first()
    assert event is not None and event.actor_id == world.auditor.user_id


def test_the_progress_bar_runs(world: Any, data: Data, use_keyring: Any, capsys: Any) -> None:
    use_keyring(BOTH, active="new-1")
    run("rotate_keys", "--to", "new-1", "--batch-size", "3")
    assert "re-wrap" in capsys.readouterr().err


# --- one patient's data key ----------------------------------------------------------------------
def test_encrypted_models_are_discovered_from_the_registry() -> None:
    found = {
        (item.label, item.owner_field): {f.name for f in item.fields}
        for item in rotation.encrypted_models()
    }
    assert found[("screening.DiaryEntry", "patient_id")] == {"text"}
    assert found[("screening.QuestionnaireResponse", "patient_id")] == {"answers"}
    assert found[("screening.EmergencyContact", "patient_id")] == {"name", "phone", "email"}
    assert found[("screening.Patient", "id")] == {"display_name"}


def test_patient_key_rotation_reencrypts_everything_of_theirs_only(
    world: Any, data: Data, settings: Any
) -> None:
    patient = world.patient_a
    mine, others = data.of(patient), data.of(world.patient_b)
    old_key = PatientKey.objects.get(patient_id=patient.pk)
    mine_before, others_before = ciphertexts(mine), ciphertexts(others)
    files_before, other_files_before = files(settings, mine), files(settings, others)

    out, err = run("rotate_patient_key", "--patient", patient.pseudonym)

    new_key = PatientKey.objects.get(patient_id=patient.pk, destroyed_at__isnull=True)
    assert new_key.pk != old_key.pk and new_key.retired_at is None
    old_key.refresh_from_db()
    assert old_key.destroyed_at is not None and old_key.wrapped_key is None
    assert f"Destroyed old data key {old_key.pk}" in out and err == ""
    assert "Re-encrypted 5 records (7 values) and 1 stored files" in out
    # Every ciphertext of theirs changed and now names the new key ...
    for key, blob in ciphertexts(mine).items():
        assert blob is not None and blob != mine_before[key]
        assert crypto.field_dek_id(blob) == new_key.pk
    for name, blob in files(settings, mine).items():
        assert blob != files_before[name]
        assert storage.stored_file_dek_id(name=name) == new_key.pk
    # ... the plaintext is the same, the video included ...
    assert_all_decrypt(mine)
    # ... and nobody else's data changed.
    assert ciphertexts(others) == others_before
    assert files(settings, others) == other_files_before
    assert_all_decrypt(others)
    # Nothing decrypts with the old key any more.
    with pytest.raises(KeyNotFound):
        datakeys.data_key_for_decrypt(dek_id=old_key.pk, patient_id=patient.pk)
    event = AccessEvent.objects.get(action="key.patient_rotate")
    assert event.patient_id == patient.pk and event.resource_id == str(new_key.pk)
    assert "5 records and 1 files re-encrypted" in event.purpose
    assert "1 old keys destroyed" in event.purpose
    # New data uses the new key.
    entry, _ = diary_entry_create(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        idempotency_key=uuid.uuid4(),
        text="after the rotation",
        client_timestamp=timezone.now(),
    )
    assert crypto.field_dek_id(raw_blob(DiaryEntry, entry.pk, "text") or b"") == new_key.pk


def test_patient_key_rotation_resumes_after_an_interruption(
    world: Any, data: Data, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient = world.patient_a
    mine = data.of(patient)
    old_key = PatientKey.objects.get(patient_id=patient.pk)

    def crash(**kwargs: Any) -> bool:
        raise RuntimeError("worker killed")

    monkeypatch.setattr(storage, "encrypted_file_reencrypt", crash)
    with pytest.raises(RuntimeError, match="worker killed"):
        rotation.patient_data_key_rotate(actor=Actor.system(), patient=patient)
    # Records are done, the file is not, the old key is retired but still there.
    new_key = PatientKey.objects.get(patient_id=patient.pk, retired_at__isnull=True)
    old_key.refresh_from_db()
    assert old_key.retired_at is not None and old_key.destroyed_at is None
    for name, *_ in mine.videos:
        assert storage.stored_file_dek_id(name=name) == old_key.pk
    assert_all_decrypt(mine)  # readable throughout

    monkeypatch.undo()
    report = rotation.patient_data_key_rotate(actor=Actor.system(), patient=patient)
    assert report.resumed and report.new_key_id == new_key.pk
    assert (report.records_reencrypted, report.records_skipped) == (0, 5)
    assert (report.files_reencrypted, report.files_skipped) == (1, 0)
    assert report.destroyed_key_ids == [old_key.pk] and report.complete
    assert PatientKey.objects.filter(patient_id=patient.pk).count() == 2  # no third key
    assert_all_decrypt(mine)

    # Once complete, running it again is a new rotation (a new key).
    again = rotation.patient_data_key_rotate(actor=Actor.system(), patient=patient)
    assert not again.resumed and again.new_key_id != new_key.pk
    assert again.records_reencrypted == 5 and again.destroyed_key_ids == [new_key.pk]
    assert_all_decrypt(mine)


def test_a_record_that_fails_to_decrypt_is_reported_and_the_old_key_kept(
    world: Any, data: Data
) -> None:
    patient = world.patient_a
    mine = data.of(patient)
    old_key = PatientKey.objects.get(patient_id=patient.pk)
    broken = next(pk for model, pk, name, _ in mine.fields if model is DiaryEntry)
    raw_blob_set(DiaryEntry, broken, "text", flip(raw_blob(DiaryEntry, broken, "text") or b""))

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="not complete"):
        call_command("rotate_patient_key", "--patient", patient.pseudonym, stdout=out, stderr=err)
    assert (
        f"FAILED screening.DiaryEntry {broken}: Ciphertext failed authentication" in err.getvalue()
    )
    assert "1 old data keys are still used by 1 values or files and were kept" in err.getvalue()
    assert "Re-encrypted 4 records" in out.getvalue()
    old_key.refresh_from_db()
    assert old_key.destroyed_at is None and old_key.retired_at is not None
    # Everything else moved to the new key and reads back.
    assert_all_decrypt(_without(mine, broken))
    datakeys.cache_clear()
    with pytest.raises(DecryptionFailed):
        _ = DiaryEntry.objects.get(pk=broken).text


def _without(data: Data, pk: Any) -> Data:
    rest = Data()
    rest.fields = [f for f in data.fields if f[1] != pk]
    rest.videos = data.videos
    return rest


def test_patient_key_rotation_refuses_an_erased_patient(world: Any) -> None:
    patient = world.patient_a
    Patient.objects.filter(pk=patient.pk).update(erased_at=timezone.now())
    patient.refresh_from_db()
    with pytest.raises(CommandError, match="erased"):
        run("rotate_patient_key", "--patient", patient.pseudonym)
    with pytest.raises(CommandError, match="No patient"):
        run("rotate_patient_key", "--patient", "P-NOBODY")
