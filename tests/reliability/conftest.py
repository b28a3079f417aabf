"""Every test in this folder runs with its log records captured (every logger, every level that
the configured logging emits) and fails if a record holds patient text, a password or a bearer
token. Tests add their own patient texts to ``SENSITIVE``; tokens are found by their prefix."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from tests.factories import PASSWORD

SENSITIVE: set[str] = {
    "Alice Example",
    "Bob Example",
    PASSWORD,
    "lighthouse keeper",
    "walked the dog, felt flat",
    "Hostile diary",
    "unique-secret-password-",
}
TOKEN = re.compile(r"vgl_[A-Za-z0-9_\-]{16,}")
CAPTURED: dict[str, int] = {"records": 0, "tests": 0}


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.texts.append(f"{record.name}: {text}")


@pytest.fixture(autouse=True)
def _no_secrets_in_logs() -> Iterator[None]:
    collector = _Collector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
    CAPTURED["records"] += len(collector.texts)
    CAPTURED["tests"] += 1
    leaks = [
        text[:200]
        for text in collector.texts
        if TOKEN.search(text) or any(secret in text for secret in SENSITIVE)
    ]
    assert not leaks, f"secrets or patient text in the logs: {leaks[:5]}"
