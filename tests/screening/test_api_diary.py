"""Diary entries: create, idempotent retries, paging, validation, limits and the patient's day."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from freezegun import freeze_time

from privacy.models import AccessEvent
from screening.models import DiaryEntry
from tests.conftest import assert_error, new_key, now_iso
from tests.factories import make_patient

URL = "/api/v1/diary-entries"


def entry(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "idempotency_key": new_key(),
        "client_timestamp": now_iso(),
        "text": "Slept badly, felt better after a walk.",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


# --- create and replay -----------------------------------------------------------------------
def test_create_returns_201_with_the_stored_entry(world, client_a):
    body = entry(self_rated_mood=6, timezone="Europe/London")
    response = client_a.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == {
        "id",
        "text",
        "self_rated_mood",
        "client_timestamp",
        "timezone",
        "local_date",
        "created_at",
    }
    assert data["text"] == body["text"]
    assert data["self_rated_mood"] == 6
    assert data["timezone"] == "Europe/London"
    assert "Idempotent-Replayed" not in response
    row = DiaryEntry.objects.get(pk=data["id"])
    assert row.patient_id == world.patient_a.pk
    assert str(row.idempotency_key) == body["idempotency_key"]
    assert row.text == body["text"]


def test_the_text_is_not_stored_in_the_clear(world, client_a):
    from django.db import connection

    body = entry(text="plaintext-marker-4711")
    entry_id = client_a.post(URL, body, format="json").json()["id"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT text FROM screening_diaryentry WHERE id = %s", [uuid.UUID(entry_id).hex]
        )
        (raw,) = cursor.fetchone()
    assert b"plaintext-marker-4711" not in bytes(raw)


def test_a_retry_with_the_same_key_replays_the_first_result(world, client_a):
    body = entry(self_rated_mood=3)
    first = client_a.post(URL, body, format="json")
    assert first.status_code == 201
    retry = client_a.post(URL, body, format="json")
    assert retry.status_code == 200
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert DiaryEntry.objects.filter(patient=world.patient_a).count() == 1
    event = AccessEvent.objects.get(request_id=retry["X-Request-ID"])
    assert event.action == "diary.create_replayed"


def test_the_same_key_may_be_used_by_another_patient(world, client_a, client_b):
    body = entry()
    assert client_a.post(URL, body, format="json").status_code == 201
    assert client_b.post(URL, body, format="json").status_code == 201
    assert DiaryEntry.objects.count() == 2


@pytest.mark.parametrize(
    "change",
    [{"text": "Something else entirely."}, {"self_rated_mood": 9}, {"client_timestamp": "shift"}],
)
def test_the_same_key_with_other_content_is_a_conflict(world, client_a, change):
    body = entry(self_rated_mood=2)
    first = client_a.post(URL, body, format="json")
    assert first.status_code == 201
    if change.get("client_timestamp") == "shift":
        change = {
            "client_timestamp": (timezone.now() - dt.timedelta(minutes=7))
            .replace(microsecond=0)
            .isoformat()
        }
    response = client_a.post(URL, {**body, **change}, format="json")
    assert_error(response, 409, "idempotency_conflict")
    assert DiaryEntry.objects.count() == 1
    assert DiaryEntry.objects.get().text == body["text"]


# --- list and read ---------------------------------------------------------------------------
def test_the_list_is_cursor_paged_newest_first_and_only_own(world, client_a, client_b):
    mine = []
    for i in range(5):
        response = client_a.post(URL, entry(text=f"entry {i}"), format="json")
        mine.append(response.json()["id"])
    client_b.post(URL, entry(text="not for A"), format="json")

    page = client_a.get(URL, {"page_size": 2})
    assert page.status_code == 200
    data = page.json()
    assert set(data) == {"next", "previous", "results"}
    assert [row["text"] for row in data["results"]] == ["entry 4", "entry 3"]
    assert data["previous"] is None
    seen = [row["id"] for row in data["results"]]
    pages = 1
    while data["next"]:
        assert "cursor=" in data["next"]
        data = client_a.get(data["next"]).json()
        seen += [row["id"] for row in data["results"]]
        pages += 1
        assert pages < 10
    assert pages == 3
    assert seen == list(reversed(mine))
    assert all("not for A" not in row for row in seen)


def test_the_page_size_is_capped(world, client_a):
    for _ in range(3):
        client_a.post(URL, entry(), format="json")
    data = client_a.get(URL, {"page_size": 100_000}).json()
    assert len(data["results"]) == 3
    assert data["next"] is None


def test_a_new_entry_does_not_shift_the_next_page(world, client_a):
    for i in range(4):
        client_a.post(URL, entry(text=f"old {i}"), format="json")
    first = client_a.get(URL, {"page_size": 2}).json()
    client_a.post(URL, entry(text="newest"), format="json")
    second = client_a.get(first["next"]).json()
    assert [row["text"] for row in second["results"]] == ["old 1", "old 0"]


def test_a_bad_cursor_is_refused_in_the_error_shape(world, client_a):
    assert_error(client_a.get(URL, {"cursor": "not-a-cursor"}), 404, "not_found")


def test_read_own_entry(world, client_a):
    created = client_a.post(URL, entry(text="just mine"), format="json").json()
    response = client_a.get(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


# --- validation ------------------------------------------------------------------------------
def _future() -> str:
    return (timezone.now() + dt.timedelta(minutes=11)).isoformat()


def _naive() -> str:
    return (timezone.now() - dt.timedelta(minutes=1)).replace(tzinfo=None).isoformat()


def _too_old() -> str:
    return (timezone.now() - dt.timedelta(days=30, minutes=1)).isoformat()


INVALID = {
    "missing text": ({"text": ...}, "text"),
    "missing key": ({"idempotency_key": ...}, "idempotency_key"),
    "missing timestamp": ({"client_timestamp": ...}, "client_timestamp"),
    "bad uuid": ({"idempotency_key": "not-a-uuid"}, "idempotency_key"),
    "empty text": ({"text": ""}, "text"),
    "blank text": ({"text": "   \n\t"}, "text"),
    "nul in text": ({"text": "a\x00b"}, "text"),
    "text not a string": ({"text": {"nested": "object"}}, "text"),
    "naive timestamp": ({"client_timestamp": _naive}, "client_timestamp"),
    "garbage timestamp": ({"client_timestamp": "yesterday"}, "client_timestamp"),
    "future timestamp": ({"client_timestamp": _future}, "client_timestamp"),
    "older than 30 days": ({"client_timestamp": _too_old}, "client_timestamp"),
    "unknown time zone": ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    "time zone path": ({"timezone": "../../etc/passwd"}, "timezone"),
    "time zone directory": ({"timezone": "America"}, "timezone"),
    "time zone not in the model's list": ({"timezone": "posixrules"}, "timezone"),
    "empty time zone": ({"timezone": ""}, "timezone"),
    "mood 11": ({"self_rated_mood": 11}, "self_rated_mood"),
    "mood -1": ({"self_rated_mood": -1}, "self_rated_mood"),
    "mood not a number": ({"self_rated_mood": "happy"}, "self_rated_mood"),
}


@pytest.mark.parametrize(("overrides", "field"), INVALID.values(), ids=INVALID.keys())
def test_invalid_entries_are_refused_with_field_errors_and_nothing_is_stored(
    world, client_a, overrides, field
):
    overrides = {k: (v() if callable(v) else v) for k, v in overrides.items()}
    before = DiaryEntry.objects.count()
    events_before = AccessEvent.objects.count()
    response = client_a.post(URL, entry(**overrides), format="json")
    error = assert_error(response, 400, "validation_failed")
    assert isinstance(error["fields"], dict)
    assert field in error["fields"], error
    assert all(isinstance(m, str) for m in error["fields"][field])
    assert DiaryEntry.objects.count() == before
    assert AccessEvent.objects.count() == events_before


def test_a_body_that_is_not_an_object_is_refused(world, client_a):
    response = client_a.post(URL, json.dumps(["a", "list"]), content_type="application/json")
    error = assert_error(response, 400, "validation_failed")
    assert "non_field_errors" in error["fields"]
    assert DiaryEntry.objects.count() == 0


def test_mood_is_optional_and_may_be_null(world, client_a):
    assert client_a.post(URL, entry(self_rated_mood=None), format="json").status_code == 201
    assert client_a.post(URL, entry(self_rated_mood=0), format="json").status_code == 201
    assert client_a.post(URL, entry(self_rated_mood=10), format="json").status_code == 201
    assert sorted(
        DiaryEntry.objects.values_list("self_rated_mood", flat=True), key=lambda m: m or -1
    ) == [None, 0, 10]


def test_the_timestamp_window_edges(world):
    with freeze_time("2026-03-10T12:00:00Z"):
        client_a = world.client_for(world.patient_a.user)
        ok = [
            "2026-03-10T12:09:00+00:00",  # within the clock skew
            "2026-02-08T12:01:00+00:00",  # just under 30 days
        ]
        for ts in ok:
            assert client_a.post(URL, entry(client_timestamp=ts), format="json").status_code == 201
        for ts in ["2026-03-10T12:10:01+00:00", "2026-02-08T11:59:00+00:00"]:
            response = client_a.post(URL, entry(client_timestamp=ts), format="json")
            assert_error(response, 400, "validation_failed")
    assert DiaryEntry.objects.count() == 2


# --- limits and malformed bodies -------------------------------------------------------------
def test_a_text_at_the_limit_is_accepted(world, client_a):
    text = "x" * settings.VIGIL_DIARY_MAX_CHARS
    assert client_a.post(URL, entry(text=text), format="json").status_code == 201


def test_a_one_megabyte_text_is_refused_naming_the_limit(world, client_a):
    limit = settings.VIGIL_DIARY_MAX_CHARS
    response = client_a.post(URL, entry(text="a" * (1024 * 1024)), format="json")
    error = assert_error(response, 400, "validation_failed")
    assert str(limit) in " ".join(error["fields"]["text"])
    assert "aaaa" not in response.content.decode()
    assert DiaryEntry.objects.count() == 0


def test_one_character_over_the_limit_is_refused(world, client_a):
    text = "y" * (settings.VIGIL_DIARY_MAX_CHARS + 1)
    assert_error(client_a.post(URL, entry(text=text), format="json"), 400, "validation_failed")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"text": "\xff\xfe"}',
        b'{"text": "ok", ',
        b"",
        b"\xef\xbb\xbf\xff",
        b'{"text": NaN}',
    ],
    ids=["invalid utf-8", "truncated json", "empty", "bom then garbage", "NaN"],
)
def test_malformed_bodies_are_400_and_store_nothing(world, client_a, raw):
    before = DiaryEntry.objects.count()
    response = client_a.generic("POST", URL, raw, content_type="application/json")
    if raw == b"":
        # An empty body parses as no fields at all.
        assert_error(response, 400, "validation_failed")
    else:
        assert_error(response, 400, "malformed_request")
    assert DiaryEntry.objects.count() == before


def test_invalid_utf8_inside_a_full_entry_stores_nothing(world, client_a):
    body = json.dumps(entry(text="PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"\xff\xfe")
    response = client_a.generic("POST", URL, body, content_type="application/json")
    assert_error(response, 400, "malformed_request")
    assert DiaryEntry.objects.count() == 0


def test_a_body_larger_than_the_upload_limit_is_413(world, client_a):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = json.dumps(entry(text="z" * (limit + 10)))
    response = client_a.generic("POST", URL, body, content_type="application/json")
    error = assert_error(response, 413, "payload_too_large")
    assert str(limit) in error["message"]
    assert DiaryEntry.objects.count() == 0


def test_a_lying_content_length_is_400(world, client_a):
    response = client_a.generic(
        "POST", URL, b"{}", content_type="application/json", CONTENT_LENGTH="lots"
    )
    assert_error(response, 400, "bad_request")


def test_form_encoded_bodies_are_not_accepted(world, client_a):
    response = client_a.post(URL, "text=hi", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")
    assert DiaryEntry.objects.count() == 0


# --- the patient's day -----------------------------------------------------------------------
def _post_at(client: Any, ts: str, **extra: Any) -> dict[str, Any]:
    response = client.post(URL, entry(client_timestamp=ts, **extra), format="json")
    assert response.status_code == 201, response.content
    return response.json()


@freeze_time("2026-03-08T12:00:00Z")
def test_late_evening_belongs_to_the_local_day_not_the_utc_day(world):
    client_a = world.client_for(world.patient_a.user)  # a token issued at the frozen time
    # 23:30 in New York on 7 March 2026 is 04:30 UTC on 8 March.
    data = _post_at(client_a, "2026-03-07T23:30:00-05:00")
    assert data["local_date"] == "2026-03-07"
    assert data["timezone"] == "America/New_York"
    row = DiaryEntry.objects.get(pk=data["id"])
    assert row.client_timestamp == dt.datetime(2026, 3, 8, 4, 30, tzinfo=dt.UTC)
    assert row.local_date == dt.date(2026, 3, 7)


@freeze_time("2026-03-08T12:00:00Z")
def test_the_same_instant_sent_in_utc_still_gets_the_local_day(world):
    client_a = world.client_for(world.patient_a.user)  # a token issued at the frozen time
    data = _post_at(client_a, "2026-03-08T04:30:00Z")
    assert data["local_date"] == "2026-03-07"


@freeze_time("2026-03-08T12:00:00Z")
def test_the_entry_time_zone_overrides_the_patient_default(world):
    client_a = world.client_for(world.patient_a.user)  # a token issued at the frozen time
    # 20:00 UTC on 7 March: still the 7th in New York, already the 8th in Tokyo.
    tokyo = _post_at(client_a, "2026-03-07T20:00:00+00:00", timezone="Asia/Tokyo")
    default = _post_at(client_a, "2026-03-07T20:00:00+00:00")
    assert (tokyo["timezone"], tokyo["local_date"]) == ("Asia/Tokyo", "2026-03-08")
    assert (default["timezone"], default["local_date"]) == ("America/New_York", "2026-03-07")


@freeze_time("2026-03-08T12:00:00Z")
def test_the_patient_default_time_zone_is_the_patients_own(world):
    from screening.models import CareTeam

    team = CareTeam.objects.get(pk=world.patient_a.care_team_id)
    london = make_patient(team=team, clinician=world.clinician, tz="Europe/London")
    client = world.client_for(london.user)
    # 00:30 UTC on 8 March: the 8th in London, the 7th in New York.
    data = _post_at(client, "2026-03-08T00:30:00Z")
    assert (data["timezone"], data["local_date"]) == ("Europe/London", "2026-03-08")


@freeze_time("2026-03-09T12:00:00Z")
@pytest.mark.parametrize(
    ("ts", "local_date"),
    [
        # Spring forward in New York: 2026-03-08 02:00 EST becomes 03:00 EDT.
        ("2026-03-08T00:00:00-05:00", "2026-03-08"),
        ("2026-03-08T01:59:59-05:00", "2026-03-08"),
        ("2026-03-08T03:00:00-04:00", "2026-03-08"),
        ("2026-03-08T23:59:59-04:00", "2026-03-08"),
        ("2026-03-09T00:00:00-04:00", "2026-03-09"),
        ("2026-03-08T04:59:59Z", "2026-03-07"),  # 23:59:59 EST on the 7th
        ("2026-03-09T03:59:59Z", "2026-03-08"),  # 23:59:59 EDT on the 8th
        ("2026-03-09T04:00:00Z", "2026-03-09"),
    ],
)
def test_spring_forward_day_boundaries(world, ts, local_date):
    client_a = world.client_for(world.patient_a.user)  # a token issued at the frozen time
    assert _post_at(client_a, ts)["local_date"] == local_date


@freeze_time("2026-11-02T12:00:00Z")
@pytest.mark.parametrize(
    ("ts", "local_date"),
    [
        # Fall back in New York: 2026-11-01 02:00 EDT becomes 01:00 EST; 01:30 happens twice.
        ("2026-11-01T01:30:00-04:00", "2026-11-01"),
        ("2026-11-01T01:30:00-05:00", "2026-11-01"),
        ("2026-11-01T04:00:00Z", "2026-11-01"),  # 00:00 EDT
        ("2026-11-01T03:59:59Z", "2026-10-31"),  # 23:59:59 EDT on the 31st
        ("2026-11-02T04:59:59Z", "2026-11-01"),  # 23:59:59 EST on the 1st
        ("2026-11-02T05:00:00Z", "2026-11-02"),
    ],
)
def test_fall_back_day_boundaries(world, ts, local_date):
    client_a = world.client_for(world.patient_a.user)  # a token issued at the frozen time
    assert _post_at(client_a, ts)["local_date"] == local_date


@freeze_time("2026-03-30T12:00:00Z")
def test_a_dst_change_day_in_another_zone(world):
    client_a = world.client_for(world.patient_a.user)  # a token issued at the frozen time
    # Europe/London springs forward on 29 March 2026: 23:30 BST is 22:30 UTC.
    data = _post_at(client_a, "2026-03-29T22:30:00Z", timezone="Europe/London")
    assert data["local_date"] == "2026-03-29"
    data = _post_at(client_a, "2026-03-29T23:30:00Z", timezone="Europe/London")
    assert data["local_date"] == "2026-03-30"


@freeze_time("2026-03-08T12:00:00Z")
def test_the_offset_the_client_sent_does_not_decide_the_day(world):
    client_a = world.client_for(world.patient_a.user)  # a token issued at the frozen time
    # A phone with a wrong offset: the instant is what counts, seen in the patient's zone.
    data = _post_at(client_a, "2026-03-08T05:30:00+01:00")  # 04:30 UTC = 23:30 EST on the 7th
    assert data["local_date"] == "2026-03-07"


def test_now_iso_helper_is_accepted(world, client_a):
    # The shared helper's timestamps pass the window checks (other test files rely on it).
    assert client_a.post(URL, entry(client_timestamp=now_iso()), format="json").status_code == 201


@freeze_time("2026-03-08T12:00:00Z")
def test_a_timestamp_without_offset_is_refused_not_read_as_server_time(world):
    client_a = world.client_for(world.patient_a.user)  # a token issued at the frozen time
    # Read as UTC, 23:30 would land on the wrong day for a New York patient.
    response = client_a.post(URL, entry(client_timestamp="2026-03-07T23:30:00"), format="json")
    error = assert_error(response, 400, "validation_failed")
    assert "offset" in " ".join(error["fields"]["client_timestamp"])
    assert DiaryEntry.objects.count() == 0


def test_a_retry_replays_even_after_the_offline_window_passed(world, client_a):
    key = new_key()
    body = {"idempotency_key": key, "client_timestamp": now_iso(), "text": "First try."}
    first = client_a.post(URL, body, format="json")
    assert first.status_code == 201
    later = timezone.now() + dt.timedelta(days=settings.VIGIL_CLIENT_BACKDATE_DAYS + 5)
    with freeze_time(later):
        # A fresh login: the first token has expired by then.
        retry = world.client_for(world.patient_a.user).post(URL, body, format="json")
    assert retry.status_code == 200
    assert retry.json()["id"] == first.json()["id"]
    assert DiaryEntry.objects.count() == 1
