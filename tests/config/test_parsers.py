"""config.parsers: every undecodable JSON body is a 400 in the error shape, never a 500."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.conf import settings
from rest_framework.exceptions import ParseError

from config.parsers import NESTING_MESSAGE, VigilJSONParser
from tests.conftest import assert_error


def parse(body: bytes) -> Any:
    return VigilJSONParser().parse(io.BytesIO(body), "application/json", {"encoding": "utf-8"})


def test_valid_json_parses_as_before() -> None:
    assert parse(b'{"text": "h\\u00e9llo", "n": [1, 2.5, null, true]}') == {
        "text": "héllo",
        "n": [1, 2.5, None, True],
    }
    assert parse(b"[" * 50 + b"]" * 50) == json.loads("[" * 50 + "]" * 50)  # nesting is allowed


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deep_nesting_is_a_parse_error(opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    with pytest.raises(ParseError) as caught:
        parse(opener * 100_000 + closer * 100_000)
    assert str(caught.value.detail) == NESTING_MESSAGE


@pytest.mark.parametrize("body", [b"{{{{", b'{"text": "\xff\xfe"}', b"", b"NaN", b'{"a": 1'])
def test_malformed_bodies_are_parse_errors(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse(body)


def test_it_is_the_default_parser() -> None:
    assert settings.REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] == ["config.parsers.VigilJSONParser"]


@pytest.mark.django_db
def test_a_deeply_nested_request_is_a_clean_400(client_a: Any) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = client_a.generic(
        "POST", "/api/v1/diary-entries", body, content_type="application/json"
    )
    assert_error(response, 400, "malformed_request")
    assert response.json()["error"]["message"] == NESTING_MESSAGE


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "a": 2}',
        b'{"outer": {"x": 1, "x": 1}}',  # the same value twice is still refused
        b'[{"k": [0], "k": [3]}]',
    ],
)
def test_a_repeated_name_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse(body)
    assert "repeated" in str(caught.value.detail)
    assert "outer" not in str(caught.value.detail) and '"k"' not in str(caught.value.detail)


def test_the_same_name_in_different_objects_is_fine() -> None:
    assert parse(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]


@pytest.mark.django_db
def test_a_phq9_with_a_repeated_answers_key_is_refused_and_raises_nothing(client_a: Any) -> None:
    """The last "answers" used to win silently: item 9 = 3 became 0, stored, with no alert."""
    from risk.models import Alert
    from screening.models import QuestionnaireResponse

    body = (
        b'{"instrument": "phq9", "answers": [0, 0, 0, 0, 0, 0, 0, 0, 3], '
        b'"answers": [0, 0, 0, 0, 0, 0, 0, 0, 0], '
        b'"idempotency_key": "7d0b7c8e-2a59-4f57-9d8c-1f7f5c7d6a10", '
        b'"client_timestamp": "2026-01-01T10:00:00+00:00"}'
    )
    response = client_a.generic(
        "POST", "/api/v1/questionnaires", body, content_type="application/json"
    )
    assert_error(response, 400, "malformed_request")
    assert not QuestionnaireResponse.objects.exists()
    assert not Alert.objects.exists()
