"""The one place where Vigil reads its environment.

Every variable read here is documented in ``.env.example``; a test checks that the two agree.
Getters are typed and fail with a clear message naming the variable, never its value.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Every variable the settings read, filled in as the getters are called (the docs test uses it).
READ: set[str] = set()


class EnvError(Exception):
    """A variable is missing or malformed."""


def _raw(name: str) -> str | None:
    READ.add(name)
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _get(name: str, default: T | None, parse: Callable[[str], T], required: bool) -> T | None:
    raw = _raw(name)
    if raw is None:
        if required:
            raise EnvError(f"{name} must be set")
        return default
    try:
        return parse(raw)
    except (ValueError, TypeError) as exc:
        raise EnvError(f"{name} is malformed: {exc.__class__.__name__}") from None


_RATE_PERIODS = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


def parse_rate(raw: str) -> tuple[int, int]:
    """``"120/min"`` -> (120, 60): a count and a window in seconds (DRF's rate syntax)."""
    count, _, period = raw.partition("/")
    seconds = _RATE_PERIODS.get(period.strip().lower())
    if seconds is None or int(count) < 1:
        raise ValueError("expected N/s, N/min, N/hour or N/day with N >= 1")
    return int(count), seconds


def env_rate(name: str, default: str) -> tuple[int, int]:
    value = _get(name, None, parse_rate, False)
    return value if value is not None else parse_rate(default)


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    return _get(name, default, str, required)


def env_int(name: str, default: int | None = None, *, required: bool = False) -> int | None:
    return _get(name, default, int, required)


def env_float(name: str, default: float | None = None) -> float | None:
    return _get(name, default, float, False)


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true/false")


def env_bool(name: str, default: bool) -> bool:
    value = _get(name, default, _parse_bool, False)
    return bool(value)


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = _raw(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]
