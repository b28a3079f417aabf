"""CommunicationRequest: one queued alert notification or escalation step (OutboxMessage).

Input keys: id, alert_id, patient_id, tier, recipient_kind, recipient_practitioner_id (or None),
channel, level, repeat, state, created, last_updated.
"""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.common import concept, drop_empty, instant, meta, ref

STATUS = {
    "pending": "active",
    "sending": "active",
    "sent": "completed",
    "cancelled": "revoked",
    "failed": "revoked",
}


def communication_category(level: int) -> dict[str, Any]:
    code = "alert-escalation" if level > 0 else "alert-notification"
    display = "Alert escalation" if level > 0 else "Alert notification"
    return concept(codes.SYSTEM_COMM_CATEGORY, code, display)


def communication_recipient(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("recipient_practitioner_id"):
        return ref("Practitioner", data["recipient_practitioner_id"])
    if data.get("recipient_kind") == "emergency_contact":
        return {"display": "The patient's emergency contact"}
    return {"display": "Clinic staff member"}


def communication_request_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    state = data["state"]
    return drop_empty(
        {
            "resourceType": "CommunicationRequest",
            "id": str(data["id"]),
            "meta": meta(data.get("last_updated")),
            "status": STATUS[state],
            "statusReason": {"text": "Delivery failed"} if state == "failed" else None,
            "category": [communication_category(int(data.get("level", 0)))],
            "priority": codes.TIER_PRIORITY.get(data.get("tier", ""), "routine"),
            "medium": [concept(codes.SYSTEM_CHANNEL, data["channel"])],
            "subject": ref("Patient", data["patient_id"]),
            "about": [ref("RiskAssessment", data["alert_id"])],
            "authoredOn": instant(data.get("created")),
            "recipient": [communication_recipient(data)],
            "payload": [
                {
                    "contentString": f"Vigil {data.get('tier', '')} alert: escalation level "
                    f"{int(data.get('level', 0))}, reminder {int(data.get('repeat', 0))}"
                }
            ],
        }
    )
