"""PHQ-9 and GAD-7 through the API: scored on the server, item 9 on its own, strict answers."""

from __future__ import annotations

from typing import Any

import pytest
from freezegun import freeze_time

from privacy.models import AccessEvent
from screening.models import QuestionnaireResponse
from tests.conftest import assert_error, new_key, now_iso

URL = "/api/v1/questionnaires"


def answers_for(total: int, items: int, *, item9: int | None = None) -> list[int]:
    """Answers (0-3 each) that add up to ``total``; optionally fix PHQ-9 item 9 first."""
    answers = [0] * items
    remaining = total
    if item9 is not None:
        answers[8] = item9
        remaining -= item9
    for i in range(items):
        if item9 is not None and i == 8:
            continue
        answers[i] = min(3, remaining)
        remaining -= answers[i]
    assert remaining == 0 and sum(answers) == total
    return answers


def submission(instrument: str, answers: list[Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "idempotency_key": new_key(),
        "client_timestamp": now_iso(),
        "instrument": instrument,
        "answers": answers,
    }
    body.update(overrides)
    return body


PHQ9_BANDS = [
    (0, "minimal"),
    (4, "minimal"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "moderately_severe"),
    (19, "moderately_severe"),
    (20, "severe"),
    (27, "severe"),
]
GAD7_BANDS = [
    (0, "minimal"),
    (4, "minimal"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "severe"),
    (21, "severe"),
]


@pytest.mark.parametrize(("total", "severity"), PHQ9_BANDS)
def test_phq9_is_scored_on_the_server_at_every_band_boundary(world, client_a, total, severity):
    answers = answers_for(total, 9)
    response = client_a.post(URL, submission("phq9", answers), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["instrument"], data["total"], data["severity"]) == ("phq9", total, severity)
    assert data["answers"] == answers
    assert data["item9"] == answers[8]
    row = QuestionnaireResponse.objects.get(pk=data["id"])
    assert (row.total, row.severity, row.item9, row.answers) == (
        total,
        severity,
        answers[8],
        answers,
    )


@pytest.mark.parametrize(("total", "severity"), GAD7_BANDS)
def test_gad7_is_scored_on_the_server_at_every_band_boundary(world, client_a, total, severity):
    answers = answers_for(total, 7)
    response = client_a.post(URL, submission("gad7", answers), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["instrument"], data["total"], data["severity"]) == ("gad7", total, severity)
    assert data["item9"] is None
    row = QuestionnaireResponse.objects.get(pk=data["id"])
    assert (row.total, row.severity, row.item9) == (total, severity, None)


@pytest.mark.parametrize("item9", [0, 1, 2, 3])
def test_phq9_item9_is_stored_in_its_own_column_whatever_the_total(world, client_a, item9):
    answers = answers_for(item9, 9, item9=item9)  # item 9 is the only non-zero answer
    data = client_a.post(URL, submission("phq9", answers), format="json").json()
    assert data["item9"] == item9
    assert data["severity"] == "minimal"
    assert QuestionnaireResponse.objects.filter(item9=item9).count() == 1


def test_a_client_cannot_send_its_own_score(world, client_a):
    """The server scores; a body that carries its own total, severity or item 9 is refused
    (naming each field), never half-read, and nothing is stored."""
    body = submission("phq9", [0] * 9, total=27, severity="severe", item9=3)
    error = assert_error(client_a.post(URL, body, format="json"), 400, "validation_failed")
    assert set(error["fields"]) == {"total", "severity", "item9"}
    assert error["fields"]["item9"] == ["Unknown field: this endpoint does not take it."]
    assert QuestionnaireResponse.objects.count() == 0


def test_a_misspelt_field_is_refused_not_ignored(world, client_a):
    """``time_zone`` for ``timezone`` would have filed the answers under the patient's default
    zone, perhaps on another local day, without a word to the app."""
    body = submission("gad7", [0] * 7, time_zone="Pacific/Auckland")
    error = assert_error(client_a.post(URL, body, format="json"), 400, "validation_failed")
    assert list(error["fields"]) == ["time_zone"]
    assert QuestionnaireResponse.objects.count() == 0


def test_the_answers_are_encrypted_at_rest(world, client_a):
    from django.db import connection

    data = client_a.post(URL, submission("gad7", [3, 2, 1, 0, 1, 2, 3]), format="json").json()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT answers FROM screening_questionnaireresponse WHERE id = %s",
            [data["id"].replace("-", "")],
        )
        (raw,) = cursor.fetchone()
    assert b"[3, 2, 1, 0, 1, 2, 3]" not in bytes(raw)
    assert b"3,2,1,0,1,2,3" not in bytes(raw)


INVALID = {
    "phq9 with 7 answers": ("phq9", [1] * 7),
    "phq9 with 8 answers": ("phq9", [1] * 8),
    "phq9 with 10 answers": ("phq9", [1] * 10),
    "gad7 with 6 answers": ("gad7", [1] * 6),
    "gad7 with 8 answers": ("gad7", [1] * 8),
    "gad7 with 9 answers": ("gad7", [1] * 9),
    "no answers": ("phq9", []),
    "answer 4": ("phq9", [0] * 8 + [4]),
    "answer -1": ("phq9", [-1] + [0] * 8),
    "gad7 answer 4": ("gad7", [4] + [0] * 6),
    "booleans": ("phq9", [True] * 9),
    "one boolean": ("gad7", [0, 0, 0, False, 0, 0, 0]),
    "null answer": ("phq9", [None] + [0] * 8),
    "fraction": ("gad7", [1.5] + [0] * 6),
    "a whole decimal": ("phq9", [0] * 8 + [2.0]),
    "digits as a string": ("phq9", [0] * 8 + ["2"]),
    "all strings": ("gad7", ["0"] * 7),
    "words": ("gad7", ["Several days"] * 7),
    "nested": ("gad7", [[1]] * 7),
    "answers not a list": ("phq9", "000000000"),
    "answers an object": ("phq9", {"1": 0}),
    "unknown instrument": ("phq2", [0, 0]),
}


@pytest.mark.parametrize(("instrument", "answers"), INVALID.values(), ids=INVALID.keys())
def test_invalid_answers_are_400_and_nothing_is_stored(world, client_a, instrument, answers):
    events_before = AccessEvent.objects.count()
    response = client_a.post(URL, submission(instrument, answers), format="json")
    error = assert_error(response, 400, "validation_failed")
    assert set(error["fields"]) <= {"answers", "instrument"}
    assert error["fields"]
    assert QuestionnaireResponse.objects.count() == 0
    assert AccessEvent.objects.count() == events_before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"idempotency_key": "nope"}, "idempotency_key"),
        ({"client_timestamp": "2026-01-01T00:00:00"}, "client_timestamp"),
        ({"client_timestamp": "2000-01-01T00:00:00Z"}, "client_timestamp"),
        ({"timezone": "Nowhere/Atlantis"}, "timezone"),
    ],
)
def test_timestamps_keys_and_zones_are_checked_like_the_diary(world, client_a, overrides, field):
    response = client_a.post(URL, submission("gad7", [0] * 7, **overrides), format="json")
    error = assert_error(response, 400, "validation_failed")
    assert field in error["fields"]
    assert QuestionnaireResponse.objects.count() == 0


def test_a_retry_with_the_same_key_replays(world, client_a):
    body = submission("phq9", answers_for(12, 9))
    first = client_a.post(URL, body, format="json")
    assert first.status_code == 201
    retry = client_a.post(URL, body, format="json")
    assert retry.status_code == 200
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert QuestionnaireResponse.objects.count() == 1


@pytest.mark.parametrize(
    "change", [{"answers": [3] * 9}, {"instrument": "gad7", "answers": [1] * 7}]
)
def test_the_same_key_with_other_answers_is_a_conflict(world, client_a, change):
    body = submission("phq9", [1] * 9)
    assert client_a.post(URL, body, format="json").status_code == 201
    response = client_a.post(URL, {**body, **change}, format="json")
    assert_error(response, 409, "idempotency_conflict")
    row = QuestionnaireResponse.objects.get()
    assert (row.instrument, row.total) == ("phq9", 9)


def test_list_and_read_own(world, client_a):
    ids = [
        client_a.post(URL, submission("gad7", [i % 4] * 7), format="json").json()["id"]
        for i in range(3)
    ]
    listed = client_a.get(URL, {"page_size": 2}).json()
    assert [row["id"] for row in listed["results"]] == ids[::-1][:2]
    rest = client_a.get(listed["next"]).json()
    assert [row["id"] for row in rest["results"]] == ids[:1]
    one = client_a.get(f"{URL}/{ids[1]}")
    assert one.status_code == 200
    assert one.json()["answers"] == [1] * 7


@freeze_time("2026-03-08T12:00:00Z")
def test_the_local_day_is_the_patients(world):
    client_a = world.client_for(world.patient_a.user)  # a token issued at the frozen time
    body = submission("gad7", [0] * 7, client_timestamp="2026-03-07T23:30:00-05:00")
    data = client_a.post(URL, body, format="json").json()
    assert data["local_date"] == "2026-03-07"
