"""Encrypted model fields: the database holds ciphertext only, bound to its row, field and owner."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.core.exceptions import FieldError
from django.db import connection, models, transaction
from django.utils import timezone

from config.errors import DecryptionFailed, KeyNotFound
from privacy import datakeys
from privacy.audit import Actor
from privacy.fields import Sealed
from privacy.models import PatientKey
from screening.models import DiaryEntry, EmergencyContact, Patient, QuestionnaireResponse
from screening.services.people import emergency_contact_set
from screening.services.questionnaires import questionnaire_submit
from tests.factories import DiaryEntryFactory

DIARY_TEXT = "I could not sleep again and I felt hopeless about work on Tuesday — Zoë"


def raw_column(model: type[models.Model], pk: Any, column: str) -> bytes | None:
    """The column exactly as the database stores it, read with plain SQL."""
    qn = connection.ops.quote_name
    db_pk = model._meta.pk.get_db_prep_value(pk, connection)  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn(column)} FROM {qn(model._meta.db_table)} WHERE {qn(model._meta.pk.column)} = %s",  # type: ignore[union-attr]  # noqa: E501, S608
            [db_pk],
        )
        row = cursor.fetchone()
    assert row is not None, "row not found"
    return None if row[0] is None else bytes(row[0])


def raw_column_set(model: type[models.Model], pk: Any, column: str, value: bytes) -> None:
    qn = connection.ops.quote_name
    db_pk = model._meta.pk.get_db_prep_value(pk, connection)  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(model._meta.db_table)} SET {qn(column)} = %s WHERE {qn(model._meta.pk.column)} = %s",  # type: ignore[union-attr]  # noqa: E501, S608
            [connection.Database.Binary(value), db_pk],
        )
        assert cursor.rowcount == 1


def assert_no_plaintext(raw: bytes | None, text: str) -> None:
    assert raw is not None
    data = text.encode("utf-8")
    assert data not in raw
    assert text.encode("utf-16-le") not in raw
    for start in range(len(data) - 7):
        window = data[start : start + 8]
        assert window not in raw, f"plaintext fragment {window!r} found in the stored column"


def diary(patient: Patient, text: str = DIARY_TEXT) -> DiaryEntry:
    return DiaryEntryFactory(patient=patient, text=text)


def reload(entry: models.Model) -> Any:
    datakeys.cache_clear()
    return type(entry)._default_manager.get(pk=entry.pk)


# --- nothing readable at rest --------------------------------------------------------------------
def test_diary_text_is_not_stored_in_the_clear(world: Any) -> None:
    entry = diary(world.patient_a)
    raw = raw_column(DiaryEntry, entry.pk, "text")
    assert_no_plaintext(raw, DIARY_TEXT)
    assert raw is not None and len(raw) >= len(DIARY_TEXT.encode()) + 1 + 16 + 12 + 16
    assert reload(entry).text == DIARY_TEXT


def test_same_text_twice_gives_different_ciphertext(world: Any) -> None:
    first, second = diary(world.patient_a), diary(world.patient_a)
    assert raw_column(DiaryEntry, first.pk, "text") != raw_column(DiaryEntry, second.pk, "text")


def test_emergency_contact_and_display_name_are_encrypted(world: Any) -> None:
    contact = emergency_contact_set(
        patient=world.patient_a,
        name="Margaret Thornbury",
        phone="+1 555 0100 4242",
        email="margaret.thornbury@example.org",
        relationship="sister",
    )
    assert_no_plaintext(raw_column(EmergencyContact, contact.pk, "name"), "Margaret Thornbury")
    assert_no_plaintext(raw_column(EmergencyContact, contact.pk, "phone"), "+1 555 0100 4242")
    assert_no_plaintext(
        raw_column(EmergencyContact, contact.pk, "email"), "margaret.thornbury@example.org"
    )
    assert_no_plaintext(raw_column(Patient, world.patient_a.pk, "display_name"), "Alice Example")

    stored = reload(contact)
    assert (stored.name, stored.phone, stored.email) == (
        "Margaret Thornbury",
        "+1 555 0100 4242",
        "margaret.thornbury@example.org",
    )
    assert stored.relationship == "sister"  # not sensitive: plain column
    assert reload(world.patient_a).display_name == "Alice Example"


def test_null_stays_null(world: Any) -> None:
    contact = emergency_contact_set(patient=world.patient_a, name="Someone", phone=None)
    assert raw_column(EmergencyContact, contact.pk, "phone") is None
    assert reload(contact).phone is None


def test_questionnaire_answers_are_encrypted(world: Any) -> None:
    answers = [3, 2, 1, 0, 3, 2, 1, 0, 2]
    response, created = questionnaire_submit(
        actor=Actor(user_id=world.patient_a.user_id, role="patient"),
        patient=world.patient_a,
        idempotency_key=uuid.uuid4(),
        instrument="phq9",
        answers=answers,
        client_timestamp=timezone.now(),
    )
    assert created
    raw = raw_column(QuestionnaireResponse, response.pk, "answers")
    assert raw is not None
    assert json.dumps(answers, separators=(",", ":")).encode() not in raw
    assert json.dumps(answers).encode() not in raw
    assert b"[3," not in raw
    assert reload(response).answers == answers


# --- ciphertext is bound to its row, field and owner --------------------------------------------
def test_ciphertext_copied_to_another_row_fails(world: Any) -> None:
    x = diary(world.patient_a, "Entry X: the one that was copied")
    y = diary(world.patient_a, "Entry Y: the original")
    raw_column_set(DiaryEntry, y.pk, "text", raw_column(DiaryEntry, x.pk, "text") or b"")
    moved = reload(y)
    with pytest.raises(DecryptionFailed):
        _ = moved.text
    assert reload(x).text == "Entry X: the one that was copied"  # the source row is untouched


def test_ciphertext_copied_to_another_field_fails(world: Any) -> None:
    contact = emergency_contact_set(patient=world.patient_a, name="Name", phone="+1 555 0100")
    raw_column_set(
        EmergencyContact,
        contact.pk,
        "phone",
        raw_column(EmergencyContact, contact.pk, "name") or b"",
    )
    stored = reload(contact)
    assert stored.name == "Name"
    with pytest.raises(DecryptionFailed):
        _ = stored.phone


def test_ciphertext_copied_from_another_patient_fails(world: Any) -> None:
    theirs = diary(world.patient_b, "Bob's entry")
    mine = diary(world.patient_a, "Alice's entry")
    raw_column_set(DiaryEntry, mine.pk, "text", raw_column(DiaryEntry, theirs.pk, "text") or b"")
    with pytest.raises(KeyNotFound):  # the key id in the blob belongs to patient B
        _ = reload(mine).text


def test_tampered_ciphertext_fails(world: Any) -> None:
    entry = diary(world.patient_a)
    raw = bytearray(raw_column(DiaryEntry, entry.pk, "text") or b"")
    raw[-5] ^= 0x80
    raw_column_set(DiaryEntry, entry.pk, "text", bytes(raw))
    with pytest.raises(DecryptionFailed):
        _ = reload(entry).text


def test_plaintext_written_behind_the_models_back_is_refused(world: Any) -> None:
    entry = diary(world.patient_a)
    raw_column_set(DiaryEntry, entry.pk, "text", b"written in the clear by a careless script")
    with pytest.raises(DecryptionFailed):
        _ = reload(entry).text


# --- lazy decryption and queries -----------------------------------------------------------------
def test_values_list_returns_sealed_objects_not_text(world: Any) -> None:
    entry = diary(world.patient_a)
    values = list(DiaryEntry.objects.filter(pk=entry.pk).values_list("text", flat=True))
    assert len(values) == 1
    assert isinstance(values[0], Sealed)
    assert DIARY_TEXT not in repr(values[0])
    assert DIARY_TEXT.encode() not in values[0].blob
    row = DiaryEntry.objects.filter(pk=entry.pk).values("text").get()
    assert isinstance(row["text"], Sealed)


def test_loaded_row_keeps_ciphertext_until_read(world: Any) -> None:
    entry = reload(diary(world.patient_a))
    assert isinstance(entry.__dict__["text"], Sealed)
    assert entry.text == DIARY_TEXT
    assert entry.__dict__["text"] == DIARY_TEXT


@pytest.mark.parametrize(
    "lookup", ["text", "text__exact", "text__icontains", "text__startswith", "text__in"]
)
def test_lookups_on_encrypted_fields_are_refused(world: Any, lookup: str) -> None:
    diary(world.patient_a)
    value: Any = [DIARY_TEXT] if lookup.endswith("__in") else DIARY_TEXT
    with pytest.raises(FieldError):
        list(DiaryEntry.objects.filter(**{lookup: value}))


def test_isnull_lookup_is_allowed(world: Any) -> None:
    diary(world.patient_a)
    emergency_contact_set(patient=world.patient_b, name="Someone", phone=None)
    assert DiaryEntry.objects.filter(text__isnull=False).count() == 1
    assert EmergencyContact.objects.filter(phone__isnull=True).count() == 1
    assert EmergencyContact.objects.filter(phone__isnull=False).count() == 0


def test_encrypted_fields_cannot_be_set_by_queryset_update(world: Any) -> None:
    entry = diary(world.patient_a)
    with pytest.raises(TypeError), transaction.atomic():
        DiaryEntry.objects.filter(pk=entry.pk).update(text="bypassing encryption")
    assert reload(entry).text == DIARY_TEXT


# --- crypto-shredding ----------------------------------------------------------------------------
def _destroy_keys(patient: Patient) -> None:
    PatientKey.objects.filter(patient_id=patient.pk).update(
        destroyed_at=timezone.now(), wrapped_key=None
    )
    datakeys.cache_clear()


def test_destroyed_key_makes_data_unreadable(world: Any) -> None:
    entry = diary(world.patient_a)
    other = diary(world.patient_b, "Bob keeps his data")
    _destroy_keys(world.patient_a)

    stored = DiaryEntry.objects.get(pk=entry.pk)
    with pytest.raises(KeyNotFound):
        _ = stored.text
    with pytest.raises(KeyNotFound):
        _ = Patient.objects.get(pk=world.patient_a.pk).display_name
    # The ciphertext is still there, but nothing in the database can open it.
    assert raw_column(DiaryEntry, entry.pk, "text")
    assert PatientKey.objects.get(patient_id=world.patient_a.pk).wrapped_key is None
    assert reload(other).text == "Bob keeps his data"  # other patients are unaffected


def test_destroyed_key_refuses_new_data(world: Any) -> None:
    _destroy_keys(world.patient_a)
    with pytest.raises(KeyNotFound), transaction.atomic():
        diary(world.patient_a, "written after erasure")
    assert not DiaryEntry.objects.filter(patient=world.patient_a).exists()
    # No fresh key was created behind the tombstone.
    assert PatientKey.objects.filter(patient_id=world.patient_a.pk).count() == 1
