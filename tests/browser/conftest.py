"""Headless Chromium for the browser tests: the system's ``/usr/bin/chromium`` driven by
Playwright's Python package (nothing downloads a browser). Missing either: the tests skip."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clinician_portal.conftest import portal  # noqa: F401 (the portal personas)

CHROMIUM = os.environ.get("VIGIL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def chromium_path() -> str | None:
    path = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    return path if path and os.access(path, os.X_OK) else None


class Chromium:
    """Starts Playwright and the system Chromium in the test thread; ``stop()`` ends both."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._playwright: Any = None
        self._browser: Any = None

    def start(self) -> Any:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=self.path, headless=True, args=CHROMIUM_ARGS
            )
        except Exception as exc:  # a broken Chromium: skip, never fail
            self.stop()
            pytest.skip(f"Chromium at {self.path} did not start: {type(exc).__name__}")
        return self._browser

    def stop(self) -> None:
        """Close the browser and Playwright's event loop (the ORM works again after this)."""
        if self._browser is not None:
            with contextlib.suppress(Exception):  # already closed or crashed
                self._browser.close()
            self._browser = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None


@pytest.fixture
def chromium() -> Iterator[Chromium]:
    """Headless Chromium, started by the test (``chromium.start()``) after its database setup:
    Playwright's sync API runs an event loop in the test thread while it is live, and Django
    refuses ORM calls from a thread with a running loop. So a browser test touches the database
    before ``start()`` and after ``stop()`` only (no ``DJANGO_ALLOW_ASYNC_UNSAFE`` needed); the
    live server answers the browser from its own thread meanwhile."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright (the Python package) is not installed")
    path = chromium_path()
    if path is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (set VIGIL_CHROMIUM): browser tests skipped")
    browser = Chromium(path)
    yield browser
    browser.stop()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
