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
