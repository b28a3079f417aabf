"""Strict input serializers for the API: what a clinical record is built from is read exactly.

DRF's defaults are lenient in ways that are harmless in most apps and unsafe here:

* **Unknown fields are ignored.** A client that misspells ``timezone`` as ``time_zone`` has its
  entry filed under the patient's default zone, possibly on another local day, and is never told.
  An auditor who filters ``?patinet=...`` is shown every event as if the filter had applied.
  :class:`StrictInputSerializer` refuses a field it does not know (400 ``validation_failed``,
  the field named under ``fields``), so a client bug surfaces at once instead of as a wrong record.
* **Scalars are coerced.** ``IntegerField`` takes ``"2"`` and ``2.0``; ``BooleanField`` takes
  ``"no"``, ``"off"`` and ``0``. A PHQ-9 answer or a consent decision that arrived as a string is
  a client sending something other than what it means to; :class:`StrictIntegerField` and
  :class:`StrictBooleanField` take only JSON integers and JSON booleans.

Only names that look like identifiers are echoed back (a key could, in principle, carry patient
text; error bodies are written to no log, but an identifier is all a client needs to find its bug).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError

UNKNOWN_FIELD_MESSAGE = "Unknown field: this endpoint does not take it."
MAX_UNKNOWN_REPORTED = 10
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that refuses fields it does not declare.

    ``allowed_extra`` names parameters that are read elsewhere and are not the serializer's to
    refuse (a query string's ``cursor`` and ``page_size`` belong to the paginator).
    """

    allowed_extra: ClassVar[frozenset[str]] = frozenset()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = set(self.fields) | self.allowed_extra
            unknown = sorted(str(name) for name in data if name not in known)
            if unknown:
                raise ValidationError(_unknown_field_errors(unknown))
        return super().to_internal_value(data)


def _unknown_field_errors(unknown: list[str]) -> dict[str, list[ErrorDetail]]:
    errors: dict[str, list[ErrorDetail]] = {}
    others = 0
    for name in unknown:
        if len(errors) < MAX_UNKNOWN_REPORTED and _IDENTIFIER.fullmatch(name):
            errors[name] = [ErrorDetail(UNKNOWN_FIELD_MESSAGE, code="unknown_field")]
        else:
            others += 1
    if others:
        errors["non_field_errors"] = [
            ErrorDetail(f"{others} more unknown field(s), not named here.", code="unknown_field")
        ]
    return errors


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: ``"2"``, ``2.0`` and ``true`` are refused, not read as 2 or 1."""

    default_error_messages = {"strict": "Must be a JSON integer, not a string or a decimal."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("strict")
        return int(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean only: ``"no"``, ``"false"``, ``0`` and ``"off"`` are refused."""

    default_error_messages = {"strict": "Must be a JSON boolean: true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("strict")
        return data
