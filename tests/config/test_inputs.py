"""Strict input: every API endpoint that builds a record refuses fields it does not know and
scalars of the wrong JSON type (config/inputs.py), and stores nothing when it does."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework import serializers

from config.inputs import (
    MAX_UNKNOWN_REPORTED,
    UNKNOWN_FIELD_MESSAGE,
    StrictBooleanField,
    StrictInputSerializer,
    StrictIntegerField,
)
from privacy.models import ConsentRecord
from screening.models import DiaryEntry, QuestionnaireResponse
from tests.conftest import assert_error, new_key, now_iso
from tests.factories import PASSWORD


class _Probe(StrictInputSerializer):
    allowed_extra = frozenset({"cursor"})
    count = StrictIntegerField(required=False)
    flag = StrictBooleanField(required=False)
    name = serializers.CharField(required=False)


def _errors(data: Any) -> dict[str, Any]:
    serializer = _Probe(data=data)
    assert not serializer.is_valid()
    return dict(serializer.errors)


def test_known_fields_and_allowed_extras_pass():
    serializer = _Probe(data={"count": 3, "flag": False, "name": "x", "cursor": "abc"})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"count": 3, "flag": False, "name": "x"}


def test_unknown_fields_are_named_one_by_one():
    errors = _errors({"count": 1, "cuont": 2, "extra": None})
    assert set(errors) == {"cuont", "extra"}
    assert [str(e) for e in errors["cuont"]] == [UNKNOWN_FIELD_MESSAGE]
    assert errors["cuont"][0].code == "unknown_field"


def test_names_that_are_not_identifiers_are_counted_not_echoed():
    """A key could carry text the patient wrote; only identifier-like names come back."""
    secret = "I feel hopeless tonight"
    errors = _errors({secret: 1, "ok_name": 2})
    assert set(errors) == {"ok_name", "non_field_errors"}
    assert secret not in str(errors)
    assert "1 more unknown field" in str(errors["non_field_errors"][0])


def test_at_most_ten_unknown_names_are_reported():
    errors = _errors({f"f{n:02d}": n for n in range(25)})
    named = [k for k in errors if k != "non_field_errors"]
    assert len(named) == MAX_UNKNOWN_REPORTED
    assert "15 more" in str(errors["non_field_errors"][0])


@pytest.mark.parametrize(
    "value", ["2", "2.0", 2.0, 2.5, True, False, None, [2], {"v": 2}], ids=repr
)
def test_strict_integers_take_json_integers_only(value):
    assert "count" in _errors({"count": value})


@pytest.mark.parametrize("value", ["true", "false", "yes", "no", "on", "off", "1", "0", 1, 0, None])
def test_strict_booleans_take_json_booleans_only(value):
    assert "flag" in _errors({"flag": value})


def test_strict_integers_still_apply_their_bounds():
    field = StrictIntegerField(min_value=0, max_value=3)
    assert field.run_validation(3) == 3
    with pytest.raises(serializers.ValidationError):
        field.run_validation(4)


# --- through the API: one misspelt field per endpoint that writes a record ---------------------
def _diary(client: Any) -> Any:
    body = {
        "idempotency_key": new_key(),
        "client_timestamp": now_iso(),
        "text": "A quiet day.",
        "self_rated_mood": 5,
        "time_zone": "Europe/London",  # the real field is "timezone"
    }
    return client.post("/api/v1/diary-entries", body, format="json")


def _diary_mood_as_string(client: Any) -> Any:
    body = {
        "idempotency_key": new_key(),
        "client_timestamp": now_iso(),
        "text": "A quiet day.",
        "self_rated_mood": "5",
    }
    return client.post("/api/v1/diary-entries", body, format="json")


def _questionnaire(client: Any) -> Any:
    body = {
        "idempotency_key": new_key(),
        "client_timestamp": now_iso(),
        "instrument": "phq9",
        "answers": [0] * 9,
        "item_9": 3,
    }
    return client.post("/api/v1/questionnaires", body, format="json")


def _consent(client: Any) -> Any:
    body = {"scope": "text_analysis", "granted": False, "delete_derived": True, "delete": "all"}
    return client.post("/api/v1/consents", body, format="json")


WRITES = {
    "diary, misspelt timezone": (_diary, "time_zone", DiaryEntry),
    "diary, mood as a string": (_diary_mood_as_string, "self_rated_mood", DiaryEntry),
    "questionnaire, item_9": (_questionnaire, "item_9", QuestionnaireResponse),
    "consent, unknown delete": (_consent, "delete", ConsentRecord),
}


@pytest.mark.parametrize(("post", "field", "model"), WRITES.values(), ids=WRITES.keys())
def test_a_write_with_a_bad_field_is_400_and_stores_nothing(world, client_a, post, field, model):
    before = model.objects.count()
    error = assert_error(post(client_a), 400, "validation_failed")
    assert field in error["fields"]
    assert model.objects.count() == before


def test_login_refuses_unknown_fields(world):
    from rest_framework.test import APIClient

    body = {"username": world.patient_a.user.username, "password": PASSWORD, "remember": True}
    error = assert_error(
        APIClient().post("/api/v1/auth/login", body, format="json"), 400, "validation_failed"
    )
    assert list(error["fields"]) == ["remember"]


def test_a_misspelt_audit_filter_is_refused_not_ignored(world):
    """``?patinet=`` would have listed every event as if the patient filter had applied."""
    auditor = world.client_for(world.auditor.user)
    response = auditor.get("/api/v1/audit/events", {"patinet": world.patient_a.pseudonym})
    error = assert_error(response, 400, "validation_failed")
    assert list(error["fields"]) == ["patinet"]
    paged = auditor.get("/api/v1/audit/events", {"page_size": 5})
    assert paged.status_code == 200, paged.content[:300]
