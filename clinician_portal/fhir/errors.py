"""FHIR errors: every error of the FHIR API is an OperationOutcome."""

from __future__ import annotations

from typing import Any


class FhirError(Exception):
    """An error answered as an OperationOutcome with ``status`` and issue ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def operation_outcome(*, code: str, message: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }
