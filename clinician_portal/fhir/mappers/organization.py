"""Organization: a clinic. Input keys: id, name, slug, last_updated."""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.common import drop_empty, meta


def organization_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    return drop_empty(
        {
            "resourceType": "Organization",
            "id": str(data["id"]),
            "meta": meta(data.get("last_updated")),
            "identifier": [{"system": codes.SYSTEM_CLINIC, "value": data["slug"]}],
            "active": True,
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                            "code": "prov",
                            "display": "Healthcare Provider",
                        }
                    ]
                }
            ],
            "name": data["name"],
        }
    )
