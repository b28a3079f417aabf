"""Patient: pseudonymous. A stable pseudonym identifier, birth year only, no name/address/telecom.

Input keys: id, pseudonym, birth_year, organisation_id, treating_clinician_id, erased,
last_updated.
"""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.common import drop_empty, meta, ref


def patient_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    birth_year = data.get("birth_year")
    clinician = data.get("treating_clinician_id")
    return drop_empty(
        {
            "resourceType": "Patient",
            "id": str(data["id"]),
            "meta": meta(data.get("last_updated")),
            "identifier": [
                {
                    "use": "secondary",
                    "system": codes.SYSTEM_PSEUDONYM,
                    "value": data["pseudonym"],
                }
            ],
            "active": not data.get("erased", False),
            "birthDate": f"{int(birth_year):04d}" if birth_year else None,
            "generalPractitioner": [ref("Practitioner", clinician)] if clinician else [],
            "managingOrganization": ref("Organization", data["organisation_id"]),
        }
    )
