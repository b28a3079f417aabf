"""Small helpers shared by the mappers (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from clinician_portal.fhir import codes


def instant(value: dt.datetime | str | None) -> str | None:
    """An aware datetime as a FHIR instant/dateTime (UTC, seconds, ``Z``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def date(value: dt.date | str | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else value.isoformat()


def ref(resource_type: str, ident: Any, display: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"reference": f"{resource_type}/{ident}"}
    if display:
        out["display"] = display
    return out


def meta(last_updated: dt.datetime | str | None) -> dict[str, Any]:
    stamp = instant(last_updated)
    return {"lastUpdated": stamp} if stamp else {}


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict:
    out: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if text:
        out["text"] = text
    return out


def quantity(value: float | int, unit_code: str, unit: str | None = None) -> dict[str, Any]:
    return {
        "value": value,
        "unit": unit or unit_code,
        "system": codes.UCUM,
        "code": unit_code,
    }


def model_reference(name: str, version: str) -> dict[str, Any]:
    """A logical reference to a model (Vigil exports no Device resources)."""
    return {
        "identifier": {"system": codes.SYSTEM_MODEL, "value": f"{name}@{version}"},
        "display": f"{name} {version}",
    }


def drop_empty(resource: dict[str, Any]) -> dict[str, Any]:
    """Remove keys whose value is None or an empty list/dict (FHIR forbids empty elements)."""
    return {k: v for k, v in resource.items() if v is not None and v != [] and v != {}}
