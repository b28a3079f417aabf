"""Hostile requests: injection text in every text field is stored and returned as data; bombs,
bad encodings and oversize bodies get a 4xx in the error shape; many parallel uploads from one
patient are rate limited while the help button never is; nothing of it reaches the logs (the
folder's conftest fails any test whose logs hold patient text, a password or a token); security
headers are present."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from django.db import close_old_connections

from screening.models import DiaryEntry
from tests.conftest import assert_error, new_key, now_iso
from tests.reliability.conftest import SENSITIVE

pytestmark = pytest.mark.django_db

PAYLOADS = [
    "Hostile diary '); DROP TABLE screening_diaryentry; --",
    "Hostile diary <script>alert('x')</script><img src=x onerror=alert(1)>",
    "Hostile diary {{7*7}} ${7*7} %s%s%s %n \u202e RTL and \U0001f600 \\x00",
    "Hostile diary ' OR '1'='1' UNION SELECT key_hash FROM privacy_apitoken --",
]


def test_injection_text_is_stored_and_returned_as_data(client_a: Any) -> None:
    for text in PAYLOADS:
        SENSITIVE.add(text)
        body = {"idempotency_key": new_key(), "client_timestamp": now_iso(), "text": text}
        response = client_a.post("/api/v1/diary-entries", body)
        assert response.status_code == 201, response.content
        assert response["Content-Type"].startswith("application/json")
        entry_id = response.json()["id"]
        assert DiaryEntry.objects.get(pk=entry_id).text == text
        assert client_a.get(f"/api/v1/diary-entries/{entry_id}").json()["text"] == text
    assert DiaryEntry.objects.count() == len(PAYLOADS)  # the table is still there
    nul = {"idempotency_key": new_key(), "client_timestamp": now_iso(), "text": "a\x00b"}
    assert_error(client_a.post("/api/v1/diary-entries", nul), 400, "validation_failed")


@pytest.mark.parametrize(
    ("name", "body", "content_type", "status"),
    [
        ("invalid_utf8", b'{"text": "\xff\xfe\xfa"}', "application/json", 400),
        ("not_json", b"{{{{", "application/json", 400),
        ("deep_nesting", b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
        (
            "wide_object",
            json.dumps({f"k{i}": i for i in range(150_000)}).encode(),
            "application/json",
            413,
        ),
        ("huge_string", b'{"text": "' + b"a" * (3 * 1024 * 1024) + b'"}', "application/json", 413),
        (
            "xml",
            b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>",
            "application/xml",
            415,
        ),
    ],
)
def test_bombs_and_bad_encodings_are_clean_4xx(
    client_a: Any, name: str, body: bytes, content_type: str, status: int
) -> None:
    response = client_a.generic("POST", "/api/v1/diary-entries", body, content_type=content_type)
    assert 400 <= response.status_code < 500, (name, response.status_code)
    assert_error(response, response.status_code)
    assert response.status_code == status, (name, response.content[:300])
    assert not DiaryEntry.objects.exists()


def test_header_bomb_is_refused_cleanly(client_a: Any) -> None:
    response = client_a.get("/api/v1/me", HTTP_X_FILLER="x" * 200_000, HTTP_X_REQUEST_ID="y" * 5000)
    assert response.status_code in (200, 400, 431), response.status_code
    assert response["X-Request-ID"] != "y" * 5000
    many = {f"HTTP_X_H{i}": "v" for i in range(2000)}
    assert client_a.get("/api/v1/me", **many).status_code in (200, 400, 431)


@pytest.mark.django_db(transaction=True)
def test_parallel_uploads_are_rate_limited_but_help_never_is(
    world: Any, client_a: Any, throttle_rates: Any
) -> None:
    throttle_rates(upload="5/hour")
    results: list[int] = []
    lock = threading.Lock()

    def upload() -> None:
        try:
            body = {"idempotency_key": new_key(), "client_timestamp": now_iso()}
            status = client_a.post("/api/v1/videos", body, format="multipart").status_code
            with lock:
                results.append(status)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=upload) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 12
    assert results.count(429) >= 12 - 5, results  # at most 5 got through to validation
    helps = [client_a.post("/api/v1/help").status_code for _ in range(15)]
    assert set(helps) <= {200, 201}, helps


def test_security_headers(client_a: Any) -> None:
    response = client_a.get("/api/v1/me")
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Frame-Options"] == "DENY"
    assert "default-src" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_hsts_under_production_settings() -> None:
    """HSTS is a production setting (``check --deploy`` clean: tests/config/test_deploy.py)."""
    import subprocess
    import sys

    env = {
        "VIGIL_ENV": "production",
        "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2,
        "DJANGO_ALLOWED_HOSTS": "vigil.example.org",
        "VIGIL_PORTAL_BASE_URL": "https://vigil.example.org",
        "DATABASE_URL": "postgres://u@127.0.0.1:1/x",
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "VIGIL_KEYRING": "k1:" + "A" * 43 + "=",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PATH": "/usr/bin:/bin",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_SSL_REDIRECT)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-800:]
    seconds, subdomains, redirect = out.stdout.split()
    assert int(seconds) >= 31536000 and subdomains == "True" and redirect == "True"
