"""Search parameters and keyset cursors.

Paging is keyset paging on an immutable key per row: (created timestamp, source, primary key,
resource id). The ``_cursor`` of a ``next`` link is that key, signed (opaque and tamper-proof)
and bound to the query, so rows inserted between two pages can neither repeat nor be skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from django.core import signing

from clinician_portal.fhir.errors import FhirError

CURSOR_SALT = "vigil.fhir.cursor"
#: Control parameters every search accepts.
CONTROL = frozenset({"_count", "_cursor", "_format", "_summary", "_total"})
_DATE = re.compile(
    r"^(eq|ne|gt|lt|ge|le|sa|eb)?(\d{4})(?:-(\d{2})(?:-(\d{2})(T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@dataclass(frozen=True)
class DateBound:
    op: str  # ge | lt
    value: dt.datetime


@dataclass
class Query:
    ids: list[str] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)
    date: list[DateBound] = field(default_factory=list)
    last_updated: list[DateBound] = field(default_factory=list)
    codes: list[tuple[str | None, str]] = field(default_factory=list)
    categories: list[tuple[str | None, str]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    identifiers: list[tuple[str | None, str]] = field(default_factory=list)

    def has_ids(self) -> bool:
        return bool(self.ids)


def _values(raw: list[str]) -> list[str]:
    out: list[str] = []
    for item in raw:
        out.extend(v for v in item.split(",") if v)
    return out


def _token(value: str) -> tuple[str | None, str]:
    if "|" in value:
        system, code = value.split("|", 1)
        return (system or None), code
    return None, value


def date_bounds(value: str) -> list[DateBound]:
    """A FHIR date search value -> half-open bounds (``ge`` start, ``lt`` end), in UTC."""
    match = _DATE.match(value)
    if match is None:
        raise FhirError(400, "invalid", "Invalid date search value.")
    op, year, month, day, time = match.groups()
    op = op or "eq"
    if time:
        try:
            start = dt.datetime.fromisoformat(f"{year}-{month}-{day}{time}".replace("Z", "+00:00"))
        except ValueError:
            raise FhirError(400, "invalid", "Invalid date search value.") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.UTC)
        end = start + dt.timedelta(seconds=1)
    else:
        y, m, d = int(year), int(month or 1), int(day or 1)
        try:
            start = dt.datetime(y, m, d, tzinfo=dt.UTC)
        except ValueError:
            raise FhirError(400, "invalid", "Invalid date search value.") from None
        if day:
            end = start + dt.timedelta(days=1)
        elif month:
            end = dt.datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=dt.UTC)
        else:
            end = dt.datetime(y + 1, 1, 1, tzinfo=dt.UTC)
    if op == "eq":
        return [DateBound("ge", start), DateBound("lt", end)]
    if op in ("ge", "sa"):
        return [DateBound("ge", start if op == "ge" else end)]
    if op == "gt":
        return [DateBound("ge", end)]
    if op in ("lt", "eb"):
        return [DateBound("lt", start)]
    if op == "le":
        return [DateBound("lt", end)]
    raise FhirError(400, "not-supported", "The date prefix 'ne' is not supported.")


def query_parse(params: dict[str, list[str]], allowed: set[str]) -> Query:
    """Parse a search's parameters; unknown ones are an error (strict handling)."""
    query = Query()
    for name, raw in params.items():
        if name in CONTROL:
            continue
        base = name.split(":", 1)[0]
        if base not in allowed:
            raise FhirError(400, "not-supported", f"Unknown search parameter: {base}.")
        values = _values(raw)
        if base == "_id":
            query.ids.extend(values)
        elif base in ("patient", "subject"):
            query.patients.extend(v.rsplit("/", 1)[-1] for v in values)
        elif base == "date":
            for item in raw:  # repeated parameters AND; no comma-OR for dates
                query.date.extend(date_bounds(item))
        elif base == "_lastUpdated":
            for item in raw:
                query.last_updated.extend(date_bounds(item))
        elif base == "code":
            query.codes.extend(_token(v) for v in values)
        elif base == "category":
            query.categories.extend(_token(v) for v in values)
        elif base == "status":
            query.statuses.extend(values)
        elif base == "identifier":
            query.identifiers.extend(_token(v) for v in values)
    return query


def count_parse(raw: str | None, *, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FhirError(400, "invalid", "_count must be an integer.") from None
    if value < 0:
        raise FhirError(400, "invalid", "_count must not be negative.")
    return min(value, maximum)


Key = tuple[str, int, str, str]


def query_fingerprint(resource_type: str, params: dict[str, list[str]]) -> str:
    items = sorted((k, tuple(v)) for k, v in params.items() if k not in ("_cursor", "_format"))
    return hashlib.sha256(repr((resource_type, items)).encode()).hexdigest()[:16]


def cursor_encode(key: Key, fingerprint: str) -> str:
    return signing.dumps({"k": list(key), "q": fingerprint}, salt=CURSOR_SALT, compress=True)


def cursor_decode(token: str, fingerprint: str) -> Key:
    try:
        data = signing.loads(token, salt=CURSOR_SALT)
        ts, source, pk, rid = data["k"]
        if data["q"] != fingerprint:
            raise ValueError("cursor of another query")
        return (str(ts), int(source), str(pk), str(rid))
    except (signing.BadSignature, ValueError, KeyError, TypeError):
        raise FhirError(400, "invalid", "Invalid or foreign paging cursor.") from None


def token_matches(wanted: list[tuple[str | None, str]], concepts: list[dict[str, Any]]) -> bool:
    """Whether any CodeableConcept's codings match any wanted (system, code)."""
    for concept in concepts:
        for coding in concept.get("coding", []):
            for system, code in wanted:
                if coding.get("code") == code and (
                    system is None or coding.get("system") == system
                ):
                    return True
    return False
