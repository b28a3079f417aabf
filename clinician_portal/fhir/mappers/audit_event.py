"""AuditEvent: one event of the tamper-evident access log, with its chain position and hashes.

Input keys: id, seq, hash, prev_hash, occurred, actor_role, actor_practitioner_id, actor_user_id,
patient_id, action, outcome, resource_type, resource_id, status_code, reason, purpose (already
de-identified), break_glass, organisation_id, network_address (a caller that was not signed
in only).
"""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.common import coding, drop_empty, instant, ref


def _action_letter(action: str) -> str:
    verb = action.rsplit(".", 1)[-1]
    if verb in {"create", "open", "submit", "raise"}:
        return "C"
    if verb in {"update", "change", "acknowledge", "resolve", "review"}:
        return "U"
    if verb in {"delete", "erase"}:
        return "D"
    if verb in {"read", "search", "list", "get", "export", "view"}:
        return "R"
    return "E"


def audit_event_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    who: dict[str, Any]
    if data.get("actor_practitioner_id"):
        who = ref("Practitioner", data["actor_practitioner_id"])
    else:
        user = data.get("actor_user_id")
        who = {
            "identifier": {
                "system": codes.SYSTEM_STAFF,
                "value": _who_value(user, data.get("actor_role")),
            }
        }
    role = data.get("actor_role") or "anonymous"
    agent: dict[str, Any] = {
        "type": {"coding": [coding(codes.SYSTEM_ROLE, role)]},
        "who": who,
        "requestor": True,
    }
    if data.get("network_address"):
        # Only a caller that was not signed in has one here (privacy.api.selectors): all that
        # tells one prober from another. Type 2: an IP address.
        agent["network"] = {"address": str(data["network_address"]), "type": "2"}
    if data.get("break_glass"):
        agent["purposeOfUse"] = [{"coding": [coding(codes.ACT_REASON, "BTG", "break the glass")]}]
    entities: list[dict[str, Any]] = []
    if data.get("patient_id"):
        entities.append({"what": ref("Patient", data["patient_id"]), "role": _role("1")})
    if data.get("resource_type"):
        label = str(data["resource_type"])
        if data.get("resource_id"):
            label = f"{label}/{data['resource_id']}"
        what = {"identifier": {"system": codes.SYSTEM_AUDIT_RESOURCE, "value": label}}
        entities.append({"what": what, "role": _role("4")})
    entities.append(
        {
            "what": {"identifier": {"system": codes.SYSTEM_AUDIT_CHAIN, "value": str(data["seq"])}},
            "name": "vigil-audit-chain",
            "detail": [
                {"type": "seq", "valueString": str(data["seq"])},
                {"type": "hash", "valueString": data.get("hash") or ""},
                {"type": "prev_hash", "valueString": data.get("prev_hash") or ""},
            ],
        }
    )
    allowed = data.get("outcome") == "allowed"
    reason_parts = [p for p in (data.get("reason"), data.get("purpose")) if p]
    return drop_empty(
        {
            "resourceType": "AuditEvent",
            "id": str(data["id"]),
            "meta": {"lastUpdated": instant(data["occurred"])},
            "type": coding(codes.AUDIT_EVENT_TYPE, "rest", "RESTful Operation"),
            "subtype": [coding(codes.SYSTEM_AUDIT_ACTION, data["action"])],
            "action": _action_letter(data["action"]),
            "recorded": instant(data["occurred"]),
            "outcome": "0" if allowed else "4",
            "outcomeDesc": "; ".join(str(p) for p in reason_parts) or None,
            "purposeOfEvent": [{"coding": [coding(codes.ACT_REASON, "BTG", "break the glass")]}]
            if data.get("break_glass")
            else [],
            "agent": [agent],
            "source": {
                "site": "vigil",
                "observer": ref("Organization", data["organisation_id"])
                if data.get("organisation_id")
                else {"display": "Vigil"},
            },
            "entity": entities,
        }
    )


def _who_value(user: Any, role: str | None) -> str:
    """The account that acted; with none, a caller that was not signed in, else the system."""
    if user:
        return f"user-{user}"
    return "anonymous" if role == "anonymous" else "system"


def _role(code: str) -> dict[str, Any]:
    names = {"1": "Patient", "4": "Domain Resource"}
    return coding("http://terminology.hl7.org/CodeSystem/object-role", code, names[code])
