"""Erasure: crypto-shredding leaves no readable trace of the patient, anywhere, and keeps the
safety and legal record."""

from __future__ import annotations

import io
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config.errors import KeyNotFound, LegalHold, ValidationFailed
from privacy import consent, crypto, datakeys, erasure, rotation, storage
from privacy.audit import Actor
from privacy.erasure import patient_erase
from privacy.models import AccessEvent, ApiToken, ConsentRecord, PatientKey
from screening.models import (
    DiaryEntry,
    Emergency,
    EmergencyContact,
    HelpRequest,
    Patient,
    QuestionnaireResponse,
    User,
    VideoSubmission,
)
from screening.services.diary import diary_entry_create
from screening.services.help import help_request_create
from screening.services.people import emergency_contact_set
from screening.services.questionnaires import questionnaire_submit
from screening.services.videos import _fail, video_process, video_submission_create
from tests.factories import PASSWORD
from tests.media import MediaSet, shared_media

REASON = "Patient request, ticket 4711"


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaSet:
    return shared_media(tmp_path_factory)


@pytest.fixture(autouse=True)
def folders(settings: Any, tmp_path: Path) -> Any:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    return settings


@pytest.fixture
def staff(db: Any) -> User:
    return User.objects.create_superuser("dpo-admin", "", PASSWORD, role="admin")


def staff_actor(user: User) -> Actor:
    return Actor(user_id=user.pk, role="admin")


class Stored:
    """What one patient stored: the plaintext strings to hunt for and the ciphertext 'backups'."""

    def __init__(self, patient: Patient) -> None:
        self.patient = patient
        self.strings: list[str] = []
        self.blobs: list[tuple[str, Any, str, bytes]] = []  # table, pk, field, ciphertext
        self.videos: list[VideoSubmission] = []
        self.tokens: list[str] = []


def store_everything(world: Any, patient: Patient, media: MediaSet, tag: str) -> Stored:
    stored = Stored(patient)
    actor = Actor(user_id=patient.user_id, role="patient")
    texts = [f"{tag} wrote: I feel hopeless on Sundays", f"{tag} wrote: the pills scare me"]
    for text in texts:
        entry, _ = diary_entry_create(
            actor=actor,
            patient=patient,
            idempotency_key=uuid.uuid4(),
            text=text,
            client_timestamp=timezone.now(),
        )
        stored.blobs.append(("screening_diaryentry", entry.pk, "text", raw(DiaryEntry, entry.pk)))
    response, _ = questionnaire_submit(
        actor=actor,
        patient=patient,
        idempotency_key=uuid.uuid4(),
        instrument="phq9",
        answers=[3, 3, 3, 3, 3, 3, 3, 3, 1],
        client_timestamp=timezone.now(),
    )
    stored.blobs.append(
        ("screening_questionnaireresponse", response.pk, "answers", raw_of(response, "answers"))
    )
    contact_name, phone = f"{tag} Contactperson", f"+1 555 {abs(hash(tag)) % 10000:04d} 77"
    email = f"{tag.lower()}.contact@example.org"
    contact = emergency_contact_set(
        patient=patient, name=contact_name, phone=phone, email=email, relationship="mother"
    )
    for name in ("name", "phone", "email"):
        stored.blobs.append(("screening_emergencycontact", contact.pk, name, raw_of(contact, name)))
    stored.blobs.append(
        ("screening_patient", patient.pk, "display_name", raw_of(patient, "display_name"))
    )
    for _ in range(2):
        video, _ = video_submission_create(
            actor=actor,
            patient=patient,
            idempotency_key=uuid.uuid4(),
            upload_path=media.good_mp4,
            client_timestamp=timezone.now(),
        )
        stored.videos.append(video)
    video_process(video_id=stored.videos[0].pk)  # one done, one still queued
    help_request_create(actor=actor, patient=patient)
    stored.tokens.append(world.client_for(patient.user)._credentials["HTTP_AUTHORIZATION"])
    stored.strings = [
        *texts,
        contact_name,
        phone,
        email,
        patient.display_name,
        patient.user.username,
    ]
    return stored


def raw_of(instance: Any, field: str) -> bytes:
    return raw(type(instance), instance.pk, field)


def raw(model: Any, pk: Any, column: str = "text") -> bytes:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn(column)} FROM {qn(model._meta.db_table)} WHERE {qn('id')} = %s",  # noqa: S608
            [model._meta.pk.get_db_prep_value(pk, connection)],
        )
        return bytes(cursor.fetchone()[0])


def as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False).encode()
    return str(value).encode()


def plaintext_in_database(strings: list[str]) -> list[tuple[str, str, str]]:
    """Every (table, column, string) where a string occurs, in every table and column."""
    needles = [(s, s.encode()) for s in strings]
    hits: list[tuple[str, str, str]] = []
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        assert "screening_diaryentry" in tables and "privacy_accessevent" in tables
        for table in tables:
            columns = [
                c.name for c in connection.introspection.get_table_description(cursor, table)
            ]
            cursor.execute(f"SELECT * FROM {qn(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    data = as_bytes(value)
                    hits += [(table, column, s) for s, n in needles if n in data]
    return hits


def plaintext_in_files(root: Path, strings: list[str]) -> list[tuple[str, str]]:
    if not root.exists():
        return []
    return [
        (str(path), s)
        for path in root.rglob("*")
        if path.is_file()
        for s in strings
        if s.encode() in path.read_bytes()
    ]


def assert_readable(stored: Stored) -> None:
    datakeys.cache_clear()
    patient = Patient.objects.get(pk=stored.patient.pk)
    assert patient.display_name in stored.strings
    texts = {e.text for e in DiaryEntry.objects.filter(patient=patient)}
    assert texts and texts <= set(stored.strings)
    contact = EmergencyContact.objects.get(patient=patient)
    assert {contact.name, contact.phone, contact.email} <= set(stored.strings)
    for video in stored.videos:
        with storage.decrypted_tempfile(
            name=video.storage_name, patient_id=patient.pk, object_id=video.pk
        ) as path:
            assert path.stat().st_size > 0


@pytest.fixture
def two(world: Any, media: MediaSet) -> tuple[Stored, Stored]:
    return (
        store_everything(world, world.patient_a, media, "Alice"),
        store_everything(world, world.patient_b, media, "Bob"),
    )


# --- legal hold --------------------------------------------------------------------------------
def test_legal_hold_refuses_and_changes_nothing(
    world: Any, two: tuple[Stored, Stored], staff: User, settings: Any
) -> None:
    alice, _ = two
    Patient.objects.filter(pk=alice.patient.pk).update(legal_hold=True)
    patient = Patient.objects.get(pk=alice.patient.pk)
    keys_before = list(PatientKey.objects.filter(patient_id=patient.pk).values())
    user_before = User.objects.filter(pk=patient.user_id).values().get()
    counts_before = {
        m: m.objects.filter(patient=patient).count()
        for m in (DiaryEntry, QuestionnaireResponse, VideoSubmission, EmergencyContact)
    }
    files_before = sorted(Path(settings.VIGIL_MEDIA_ROOT).rglob("*"))

    with pytest.raises(LegalHold) as excinfo:
        patient_erase(actor=staff_actor(staff), patient=patient, reason=REASON)
    assert (excinfo.value.code, excinfo.value.status) == ("legal_hold", 409)
    with pytest.raises(CommandError, match="legal hold"):
        call_command(
            "erase_patient",
            "--patient",
            patient.pseudonym,
            "--reason",
            REASON,
            "--by",
            staff.username,
        )

    assert list(PatientKey.objects.filter(patient_id=patient.pk).values()) == keys_before
    assert User.objects.filter(pk=patient.user_id).values().get() == user_before
    assert {m: m.objects.filter(patient=patient).count() for m in counts_before} == counts_before
    assert sorted(Path(settings.VIGIL_MEDIA_ROOT).rglob("*")) == files_before
    patient.refresh_from_db()
    assert patient.erased_at is None
    assert_readable(alice)
    # The refusal itself is on record.
    denied = AccessEvent.objects.filter(action="patient.erase", patient=patient)
    assert denied.count() == 2
    assert {(e.outcome, e.reason, e.actor_id) for e in denied} == {
        ("denied", "legal_hold", staff.pk)
    }


# --- erasure -----------------------------------------------------------------------------------
def test_erasure_leaves_nothing_readable_anywhere(
    world: Any,
    two: tuple[Stored, Stored],
    staff: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    client: Client,
) -> None:
    alice, bob = two
    patient = alice.patient
    assert_readable(alice)  # (also puts Alice's data key in this process's cache)
    root = Path(settings.VIGIL_MEDIA_ROOT)
    backup = root.parent / "backup"
    shutil.copytree(root, backup)  # a backup of the media storage, taken before the erasure
    old_username = patient.user.username
    consents_before = ConsentRecord.objects.filter(patient=patient).count()
    events_before = AccessEvent.objects.filter(patient=patient).count()
    key_ids = list(PatientKey.objects.filter(patient_id=patient.pk).values_list("id", flat=True))

    # The scanner does find plaintext: before the erasure, the login name is the one in the clear.
    assert plaintext_in_database(alice.strings) == [("screening_user", "username", old_username)]

    with django_capture_on_commit_callbacks(execute=True):
        result = patient_erase(actor=staff_actor(staff), patient=patient, reason=REASON)

    assert not result.already_erased
    assert result.keys_destroyed == 1 and result.tokens_revoked == 1 and result.files_deleted == 2
    assert result.rows_deleted == {
        "screening.VideoSubmission": 2,
        "screening.DiaryEntry": 2,
        "screening.QuestionnaireResponse": 1,
        "screening.EmergencyContact": 1,
    }
    assert "erased: 1 data keys destroyed, 6 records deleted, 2 stored files" in result.message

    # 1. No plaintext of theirs in any column of any table, nor in any stored file.
    assert plaintext_in_database(alice.strings) == []
    assert plaintext_in_files(root, alice.strings) == []
    assert not (root / storage.patient_folder_name(patient_id=patient.pk)).exists()
    # 2. No ciphertext of theirs can be decrypted any more: not the copies taken before, not the
    #    backed-up video files (their keys are destroyed; this process forgot its cached copy).
    for dek_id in key_ids:
        row = PatientKey.objects.get(pk=dek_id)
        assert row.wrapped_key is None and row.destroyed_at is not None
    for _table, _pk, _field, blob in alice.blobs:
        with pytest.raises(KeyNotFound):
            datakeys.data_key_for_decrypt(dek_id=crypto.field_dek_id(blob), patient_id=patient.pk)
    shutil.copytree(backup, root, dirs_exist_ok=True)  # restore the backup
    for video in alice.videos:
        with (
            pytest.raises(KeyNotFound),
            storage.decrypted_tempfile(
                name=video.storage_name, patient_id=patient.pk, object_id=video.pk
            ),
        ):
            pass
    datakeys.cache_clear()
    for _table, _pk, _field, blob in alice.blobs:
        with pytest.raises(KeyNotFound):
            datakeys.data_key_for_decrypt(dek_id=crypto.field_dek_id(blob), patient_id=patient.pk)
    # Whatever encrypted value of theirs any model still holds (e.g. the risk engine's alert
    # evidence, kept as the safety record) is unreadable too.
    for item in rotation.encrypted_models():
        for row in item.rows_of(patient.pk):
            for model_field in item.fields:
                if row.__dict__.get(model_field.attname) is not None:
                    with pytest.raises(KeyNotFound):
                        getattr(row, model_field.name)
    # 3. The tombstone: the row stays with its pseudonym, nothing else.
    tomb = Patient.objects.get(pk=patient.pk)
    assert tomb.pseudonym == patient.pseudonym and tomb.erased_at is not None
    assert tomb.display_name is None and tomb.birth_year is None
    for model in (DiaryEntry, QuestionnaireResponse, VideoSubmission, EmergencyContact):
        assert not model.objects.filter(patient=tomb).exists()
    # Nothing new can be stored for them.
    with pytest.raises(KeyNotFound):
        datakeys.data_key_for_encrypt(patient_id=patient.pk)
    # 4. The safety and legal record remains.
    assert HelpRequest.objects.filter(patient=tomb).count() == 1
    assert Emergency.objects.filter(patient=tomb).count() == 1
    assert ConsentRecord.objects.filter(patient=tomb).count() == consents_before
    assert AccessEvent.objects.filter(patient=tomb).count() == events_before + 1
    event = AccessEvent.objects.get(action="patient.erase", patient=tomb)
    assert (event.actor_id, event.actor_role, event.outcome) == (staff.pk, "admin", "allowed")
    assert event.purpose == REASON
    # 5. They cannot log in or use the API.
    user = User.objects.get(pk=tomb.user_id)
    assert not user.is_active and not user.has_usable_password()
    assert user.username == f"erased-{patient.pseudonym}"
    assert (user.email, user.first_name, user.last_name) == ("", "", "")
    assert not ApiToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    for username in (old_username, user.username):
        response = client.post(
            "/api/v1/auth/login",
            {"username": username, "password": PASSWORD},
            content_type="application/json",
        )
        assert response.status_code == 401
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=alice.tokens[0])
    assert response.status_code == 401
    # 6. The other patient is intact.
    assert_readable(bob)
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=bob.tokens[0]).status_code == 200
    assert PatientKey.objects.filter(patient_id=bob.patient.pk, destroyed_at__isnull=True).exists()


def test_erasing_twice_is_a_no_op(
    world: Any, two: tuple[Stored, Stored], staff: User, django_capture_on_commit_callbacks: Any
) -> None:
    patient = two[0].patient
    with django_capture_on_commit_callbacks(execute=True):
        patient_erase(actor=staff_actor(staff), patient=patient, reason=REASON)
    keys = list(PatientKey.objects.values())
    users = list(User.objects.values())
    events = AccessEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = patient_erase(actor=staff_actor(staff), patient=patient, reason="again")
    assert again.already_erased and callbacks == []
    assert f"Patient {patient.pseudonym} was already erased" in again.message
    assert "nothing to do" in again.message
    out = io.StringIO()
    call_command(
        "erase_patient",
        "--patient",
        patient.pseudonym,
        "--reason",
        "third time",
        "--by",
        staff.username,
        stdout=out,
    )
    assert "already erased" in out.getvalue()
    assert list(PatientKey.objects.values()) == keys
    assert list(User.objects.values()) == users
    assert AccessEvent.objects.count() == events


def test_the_audit_chain_still_verifies_after_an_erasure(
    world: Any, two: tuple[Stored, Stored], staff: User, django_capture_on_commit_callbacks: Any
) -> None:
    from privacy.chain_verify import audit_chain_verify

    patient = two[0].patient
    with django_capture_on_commit_callbacks(execute=True):
        patient_erase(actor=staff_actor(staff), patient=patient, reason=REASON)
    result = audit_chain_verify(store=False)
    assert result.ok, result
    erase_event = AccessEvent.objects.get(action="patient.erase", patient=patient)
    assert erase_event.actor_id == staff.pk and erase_event.purpose == REASON
    # The erased content is nowhere in the log.
    for row in AccessEvent.objects.filter(patient=patient).values():
        assert "Alice" not in str(row)


def test_erase_command(
    world: Any, two: tuple[Stored, Stored], staff: User, django_capture_on_commit_callbacks: Any
) -> None:
    patient = two[0].patient
    base = ["erase_patient", "--patient", patient.pseudonym, "--reason", REASON]
    with pytest.raises(CommandError, match="No user"):
        call_command(*base, "--by", "nobody")
    with pytest.raises(CommandError, match="Only active staff"):
        call_command(*base, "--by", world.clinician.user.username)
    with pytest.raises(CommandError, match="No patient"):
        call_command(
            "erase_patient", "--patient", "P-0", "--reason", REASON, "--by", staff.username
        )
    with pytest.raises(CommandError, match="reason"):
        call_command(
            "erase_patient",
            "--patient",
            patient.pseudonym,
            "--reason",
            "  ",
            "--by",
            staff.username,
        )
    assert Patient.objects.get(pk=patient.pk).erased_at is None
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command(*base, "--by", staff.username, stdout=out)
    assert f"Patient {patient.pseudonym} erased: 1 data keys destroyed" in out.getvalue()
    assert Patient.objects.get(pk=patient.pk).erased_at is not None
    event = AccessEvent.objects.get(action="patient.erase", outcome="allowed")
    assert (event.actor_id, event.purpose) == (staff.pk, REASON)


def test_reason_is_required_and_bounded(world: Any, staff: User) -> None:
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(ValidationFailed):
            patient_erase(actor=staff_actor(staff), patient=world.patient_a, reason=reason)
    assert Patient.objects.get(pk=world.patient_a.pk).erased_at is None


def test_erasure_runs_every_registered_derived_data_deleter(
    world: Any, staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, frozenset[str]]] = []
    registry = {scope: dict(found) for scope, found in consent._DERIVED_DELETERS.items()}
    monkeypatch.setattr(consent, "_DERIVED_DELETERS", registry)

    @consent.derived_deleter_register("research", "text_analysis", name="fake features")
    def fake(*, patient: Any, remaining: frozenset[str]) -> int:
        calls.append((patient.pk, remaining))
        return 3

    result = patient_erase(actor=staff_actor(staff), patient=world.patient_a, reason=REASON)
    assert calls == [(world.patient_a.pk, frozenset())]  # once, though registered for two scopes
    assert result.derived_deleted["fake features"] == 3


def test_erasure_runs_the_registered_erasure_hooks(
    world: Any, staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(erasure, "_ERASURE_HOOKS", dict(erasure._ERASURE_HOOKS))
    seen: list[Any] = []

    @erasure.erasure_hook_register("close open alerts")
    def hook(*, patient: Any) -> int:
        seen.append(patient.pk)
        return 2

    result = patient_erase(actor=staff_actor(staff), patient=world.patient_a, reason=REASON)
    assert seen == [world.patient_a.pk] and result.hooks["close open alerts"] == 2
    patient_erase(actor=staff_actor(staff), patient=world.patient_a, reason=REASON)
    assert seen == [world.patient_a.pk]  # not again


# --- queued work -------------------------------------------------------------------------------
def test_jobs_of_an_erased_patient_do_nothing(
    world: Any, two: tuple[Stored, Stored], staff: User, settings: Any
) -> None:
    alice = two[0]
    queued = alice.videos[1]
    assert VideoSubmission.objects.get(pk=queued.pk).status == "queued"
    patient_erase(actor=staff_actor(staff), patient=alice.patient, reason=REASON)
    video_process(video_id=queued.pk)  # the broker still delivers the message: a no-op
    _fail(queued, "timed_out", "a worker that was half-way when the row vanished")
    assert not VideoSubmission.objects.filter(pk=queued.pk).exists()
    assert not AccessEvent.objects.filter(
        action="video.decrypt", resource_id=str(queued.pk)
    ).exists()


# --- the admin action --------------------------------------------------------------------------
def test_admin_action_asks_for_a_reason_then_erases(
    world: Any,
    two: tuple[Stored, Stored],
    staff: User,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    alice, bob = two
    Patient.objects.filter(pk=bob.patient.pk).update(legal_hold=True)
    client.force_login(staff)
    url = reverse("admin:screening_patient_changelist")
    selection = {
        "action": "erase_patients",
        "_selected_action": [str(alice.patient.pk), str(bob.patient.pk)],
        "index": "0",
    }
    # The confirmation page, listing both, naming the hold, asking for the reason.
    page = client.post(url, selection)
    assert page.status_code == 200
    html = page.content.decode()
    assert alice.patient.pseudonym in html and bob.patient.pseudonym in html
    assert "legal hold" in html and 'name="reason"' in html
    assert "Alice" not in html  # no names on the page
    # Confirming without a reason erases nothing.
    page = client.post(url, {**selection, "confirm": "yes", "reason": ""})
    assert page.status_code == 200 and "This field is required" in page.content.decode()
    assert not Patient.objects.filter(erased_at__isnull=False).exists()
    # Confirming with a reason erases Alice and refuses Bob.
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {**selection, "confirm": "yes", "reason": REASON}, follow=True)
    assert done.status_code == 200
    shown = [str(m) for m in done.context["messages"]]
    assert any(f"Patient {alice.patient.pseudonym} erased" in m for m in shown)
    assert any(bob.patient.pseudonym in m and "legal hold" in m for m in shown)
    assert Patient.objects.get(pk=alice.patient.pk).erased_at is not None
    assert Patient.objects.get(pk=bob.patient.pk).erased_at is None
    event = AccessEvent.objects.get(action="patient.erase", outcome="allowed")
    assert (event.actor_id, event.actor_role, event.purpose) == (staff.pk, "admin", REASON)
    assert plaintext_in_database(alice.strings) == []
    assert_readable(bob)
    # Patients cannot be deleted from the admin (only erased).
    assert "delete_selected" not in client.get(url).content.decode()


def test_admin_action_needs_the_permission(world: Any, two: tuple[Stored, Stored]) -> None:
    clerk = User.objects.create_user("clerk", password=PASSWORD, role="admin", is_staff=True)
    from django.contrib.auth.models import Permission

    clerk.user_permissions.add(Permission.objects.get(codename="view_patient"))
    client = Client()
    client.force_login(clerk)
    url = reverse("admin:screening_patient_changelist")
    assert "erase_patients" not in client.get(url).content.decode()
    response = client.post(
        url,
        {
            "action": "erase_patients",
            "_selected_action": [str(two[0].patient.pk)],
            "index": "0",
            "confirm": "yes",
            "reason": REASON,
        },
    )
    assert response.status_code in (200, 302)
    assert Patient.objects.get(pk=two[0].patient.pk).erased_at is None
