"""Flag: a risk banner for an alert (active while the alert is open or acknowledged).

Input keys: id, patient_id, tier, state, start, end, last_updated.
"""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.common import coding, drop_empty, instant, meta, ref

ACTIVE_STATES = frozenset({"open", "acknowledged"})


def flag_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    tier = data["tier"]
    active = data["state"] in ACTIVE_STATES
    period: dict[str, Any] = {"start": instant(data.get("start"))}
    if not active and data.get("end"):
        period["end"] = instant(data["end"])
    return drop_empty(
        {
            "resourceType": "Flag",
            "id": str(data["id"]),
            "meta": meta(data.get("last_updated")),
            "status": "active" if active else "inactive",
            "category": [
                {
                    "coding": [
                        coding(codes.FLAG_CATEGORY, "behavioral", "Behavioral"),
                        coding(codes.FLAG_CATEGORY, "safety", "Safety"),
                    ]
                }
            ],
            "code": {
                "coding": [coding(codes.SYSTEM_TIER, tier, f"{tier.capitalize()} alert")],
                "text": f"{tier.capitalize()} risk alert",
            },
            "subject": ref("Patient", data["patient_id"]),
            "period": period,
        }
    )
