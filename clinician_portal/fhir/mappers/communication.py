"""Communication: a notification that was delivered (an OutboxMessage in state ``sent``).

Input keys: as for :mod:`communication_request`, plus sent.
"""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.common import concept, drop_empty, instant, meta, ref
from clinician_portal.fhir.mappers.communication_request import (
    communication_category,
    communication_recipient,
)


def communication_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    return drop_empty(
        {
            "resourceType": "Communication",
            "id": str(data["id"]),
            "meta": meta(data.get("last_updated")),
            "basedOn": [ref("CommunicationRequest", data["id"])],
            "status": "completed",
            "category": [communication_category(int(data.get("level", 0)))],
            "priority": codes.TIER_PRIORITY.get(data.get("tier", ""), "routine"),
            "medium": [concept(codes.SYSTEM_CHANNEL, data["channel"])],
            "subject": ref("Patient", data["patient_id"]),
            "about": [ref("RiskAssessment", data["alert_id"])],
            "sent": instant(data.get("sent")),
            "recipient": [communication_recipient(data)],
        }
    )
