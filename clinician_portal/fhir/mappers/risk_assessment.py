"""RiskAssessment: the basis of one alert (tier -> qualitativeRisk, rule set in ``method``).

Input keys: id, patient_id, tier, state, rule_set_version, rule_set_hash, rule_id, occurred,
basis (list of "Type/id"), notes (already de-identified texts), last_updated.
"""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.common import coding, drop_empty, instant, meta, ref

STATUS = {"superseded": "amended"}


def risk_assessment_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    tier = data["tier"]
    risk_code, risk_display = codes.TIER_RISK[tier]
    version = data["rule_set_version"]
    return drop_empty(
        {
            "resourceType": "RiskAssessment",
            "id": str(data["id"]),
            "meta": meta(data.get("last_updated")),
            "status": STATUS.get(data.get("state", ""), "final"),
            "method": {
                "coding": [
                    coding(codes.SYSTEM_RULE_SET, version, f"Vigil rule set {version}"),
                ],
                "text": f"Vigil rule set {version} (sha256 {data.get('rule_set_hash', '')})",
            },
            "code": {"coding": [coding(codes.SYSTEM_RULE, data["rule_id"])]},
            "subject": ref("Patient", data["patient_id"]),
            "occurrenceDateTime": instant(data.get("occurred")),
            "basis": [{"reference": r} for r in data.get("basis", [])],
            "prediction": [
                {
                    "outcome": {"text": "Mental health crisis needing clinical attention"},
                    "qualitativeRisk": {
                        "coding": [
                            coding(codes.RISK_PROBABILITY, risk_code, risk_display),
                            coding(codes.SYSTEM_TIER, tier, f"{tier.capitalize()} alert"),
                        ]
                    },
                }
            ],
            "note": [{"text": n} for n in data.get("notes", []) if n],
        }
    )
