"""CareTeam: a clinic's team and its clinicians. Input keys: id, name, organisation_id,
member_ids (clinician ids), last_updated."""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir.mappers.common import drop_empty, meta, ref


def care_team_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    return drop_empty(
        {
            "resourceType": "CareTeam",
            "id": str(data["id"]),
            "meta": meta(data.get("last_updated")),
            "status": "active",
            "name": data["name"],
            "managingOrganization": [ref("Organization", data["organisation_id"])],
            "participant": [
                {"member": ref("Practitioner", member)} for member in data.get("member_ids", [])
            ],
        }
    )
