"""Practitioner: a clinician (staff identifier, optional name and title).

Input keys: id, username, first_name, last_name, title, active, last_updated.
"""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.common import drop_empty, meta


def practitioner_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    family = (data.get("last_name") or "").strip()
    given = (data.get("first_name") or "").strip()
    name: dict[str, Any] = {}
    if family:
        name["family"] = family
    if given:
        name["given"] = [given]
    if name and data.get("title"):
        name["prefix"] = [data["title"]]
    return drop_empty(
        {
            "resourceType": "Practitioner",
            "id": str(data["id"]),
            "meta": meta(data.get("last_updated")),
            "identifier": [{"system": codes.SYSTEM_STAFF, "value": f"clinician-{data['id']}"}],
            "active": bool(data.get("active", True)),
            "name": [name] if name else [],
        }
    )
