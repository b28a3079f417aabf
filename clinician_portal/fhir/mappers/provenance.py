"""Provenance: which rule set or model versions produced which resources.

Input keys: id, targets (list of "Type/id"), recorded, activity ("rule-evaluation" |
"model-inference"), agents (list of {name, version, sha256?}), organisation_id.
"""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.common import coding, drop_empty, instant, model_reference, ref


def provenance_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    agents = []
    for agent in data.get("agents", []):
        who = model_reference(agent["name"], agent.get("version") or "")
        if agent.get("sha256"):
            who["display"] = f"{who['display']} (sha256 {agent['sha256'][:16]})"
        agents.append(
            {
                "type": {"coding": [coding(codes.PROVENANCE_AGENT_TYPE, "assembler", "Assembler")]},
                "who": who,
                "onBehalfOf": ref("Organization", data["organisation_id"]),
            }
        )
    return drop_empty(
        {
            "resourceType": "Provenance",
            "id": str(data["id"]),
            "meta": {"lastUpdated": instant(data["recorded"])},
            "target": [{"reference": t} for t in data["targets"]],
            "recorded": instant(data["recorded"]),
            "activity": {
                "coding": [coding(codes.DATA_OPERATION, "CREATE", "create")],
                "text": data.get("activity") or "model-inference",
            },
            "agent": agents,
        }
    )
