"""Anchoring the audit chain: a database row, a line in the anchor file, a signed webhook POST."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
from typing import Any
from unittest import mock

import pytest

from config.celery import app as celery_app
from privacy import chain, tasks
from privacy.audit import Actor, access_record, anchor_signature, audit_anchor_record
from privacy.chain_verify import audit_chain_verify
from privacy.models import AuditAnchor, AuditChainHead

WEBHOOK = "https://anchors.example.org/vigil"
SECRET = "anchor-secret-for-tests"


class FakeResponse:
    def __init__(self, status: int = 200) -> None:
        self.status = status

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def _events(n: int = 3) -> None:
    for i in range(n):
        access_record(actor=Actor.system(), action=f"test.{i}")


def _lines(path: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_beat_schedule_anchors_every_five_minutes():
    entries = [
        e
        for e in celery_app.conf.beat_schedule.values()
        if e["task"] == "privacy.tasks.audit_anchor_record"
    ]
    assert len(entries) == 1
    assert float(entries[0]["schedule"]) == 300.0
    assert "privacy.tasks.audit_anchor_record" in celery_app.tasks


def test_the_task_writes_the_row_and_the_file_line(db, settings):
    _events()
    head = AuditChainHead.objects.get()
    result = tasks.audit_anchor_record.apply().get()
    assert result == {"seq": head.seq, "hash": head.hash, "destinations": "database,file"}
    anchor = AuditAnchor.objects.get()
    assert (anchor.seq, anchor.hash) == (head.seq, head.hash)
    lines = _lines(settings.VIGIL_AUDIT_ANCHOR_FILE)
    assert len(lines) == 1
    assert (lines[0]["seq"], lines[0]["hash"]) == (head.seq, head.hash)
    assert lines[0]["anchored_at"].endswith("Z")
    assert settings.VIGIL_AUDIT_ANCHOR_FILE.stat().st_mode & 0o077 == 0
    result = audit_chain_verify()
    assert result.ok and result.anchors_checked == 2


def test_nothing_new_is_not_anchored_twice(db, settings):
    assert audit_anchor_record() is None  # an empty chain
    _events(2)
    assert audit_anchor_record() is not None
    assert audit_anchor_record() is None
    _events(1)
    assert audit_anchor_record() is not None
    assert AuditAnchor.objects.count() == 2
    assert [line["seq"] for line in _lines(settings.VIGIL_AUDIT_ANCHOR_FILE)] == sorted(
        AuditAnchor.objects.values_list("seq", flat=True)
    )


def test_an_unwritable_anchor_file_is_logged_and_the_row_still_recorded(db, settings, caplog):
    _events()
    settings.VIGIL_AUDIT_ANCHOR_FILE = "/proc/vigil-cannot-write-here/anchors.jsonl"
    with caplog.at_level(logging.ERROR, logger="vigil.audit"):
        anchor = audit_anchor_record()
    assert anchor is not None and anchor.destinations == "database"
    assert "could not append the audit anchor" in caplog.text


def test_the_webhook_gets_the_line_signed_with_hmac_sha256(db, settings):
    settings.VIGIL_AUDIT_ANCHOR_WEBHOOK = WEBHOOK
    settings.VIGIL_AUDIT_ANCHOR_SECRET = SECRET
    _events()
    with mock.patch("urllib.request.urlopen", return_value=FakeResponse(204)) as urlopen:
        anchor = audit_anchor_record()
    assert anchor is not None and anchor.destinations == "database,file,webhook"
    (request,), kwargs = urlopen.call_args
    assert kwargs["timeout"] == 5
    assert request.full_url == WEBHOOK
    assert request.get_method() == "POST"
    assert request.get_header("Content-type") == "application/json"
    body = request.data
    assert body == settings.VIGIL_AUDIT_ANCHOR_FILE.read_bytes().strip()
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert request.get_header("X-vigil-signature") == f"sha256={expected}"
    assert anchor_signature(body, SECRET) == f"sha256={expected}"
    assert chain.anchor_parse(body) == (anchor.seq, anchor.hash)


@pytest.mark.parametrize(
    "failure",
    [
        urllib.error.URLError("connection refused"),
        TimeoutError("timed out"),
        urllib.error.HTTPError(WEBHOOK, 500, "boom", {}, None),  # type: ignore[arg-type]
        ValueError("anything else"),
    ],
)
def test_a_failing_webhook_is_logged_and_never_raises(db, settings, caplog, failure):
    settings.VIGIL_AUDIT_ANCHOR_WEBHOOK = WEBHOOK
    settings.VIGIL_AUDIT_ANCHOR_SECRET = SECRET
    _events()
    with (
        caplog.at_level(logging.WARNING, logger="vigil.audit"),
        mock.patch("urllib.request.urlopen", side_effect=failure),
    ):
        result = tasks.audit_anchor_record.apply().get()
    assert result["destinations"] == "database,file"
    assert "audit anchor webhook failed" in caplog.text
    assert SECRET not in caplog.text


def test_a_non_2xx_answer_is_a_failure(db, settings, caplog):
    settings.VIGIL_AUDIT_ANCHOR_WEBHOOK = WEBHOOK
    settings.VIGIL_AUDIT_ANCHOR_SECRET = SECRET
    _events()
    with mock.patch("urllib.request.urlopen", return_value=FakeResponse(302)):
        anchor = audit_anchor_record()
    assert anchor is not None and "webhook" not in anchor.destinations


@pytest.mark.parametrize(
    ("url", "secret"), [(WEBHOOK, None), ("file:///etc/passwd", SECRET), ("ftp://x/y", SECRET)]
)
def test_the_webhook_is_not_called_unsigned_or_off_http(db, settings, caplog, url, secret):
    settings.VIGIL_AUDIT_ANCHOR_WEBHOOK = url
    settings.VIGIL_AUDIT_ANCHOR_SECRET = secret
    _events()
    with mock.patch("urllib.request.urlopen") as urlopen:
        anchor = audit_anchor_record()
    urlopen.assert_not_called()
    assert anchor is not None and anchor.destinations == "database,file"
