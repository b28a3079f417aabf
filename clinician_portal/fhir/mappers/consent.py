"""Consent: one grant or withdrawal of a Vigil consent scope. The latest record of a
(patient, scope) is ``active``; earlier ones are ``inactive`` (the history).

Input keys: id, patient_id, organisation_id, scope, granted, current, document_version,
document_sha256, recorded, last_updated.
"""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.common import coding, concept, drop_empty, instant, meta, ref


def consent_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    scope = data["scope"]
    research = scope == "research"
    policy: dict[str, Any] = {
        "uri": f"{codes.VIGIL_BASE}/consent-documents/{scope}/{data.get('document_version') or '-'}"
    }
    return drop_empty(
        {
            "resourceType": "Consent",
            "id": str(data["id"]),
            "meta": meta(data.get("last_updated")),
            "status": "active" if data.get("current") else "inactive",
            "scope": concept(
                codes.CONSENT_SCOPE,
                "research" if research else "patient-privacy",
                "Research" if research else "Privacy Consent",
            ),
            "category": [concept(codes.LOINC, "59284-0", "Patient Consent")],
            "patient": ref("Patient", data["patient_id"]),
            "dateTime": instant(data.get("recorded")),
            "organization": [ref("Organization", data["organisation_id"])],
            "policy": [policy],
            "policyRule": concept(
                codes.ACT_CODE, "OPTIN" if data["granted"] else "OPTOUT", text=None
            ),
            "provision": {
                "type": "permit" if data["granted"] else "deny",
                "purpose": [coding(codes.SYSTEM_CONSENT_SCOPE, scope)],
            },
        }
    )
