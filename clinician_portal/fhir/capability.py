"""The CapabilityStatement, generated from the registry (it cannot drift from the code)."""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir.sources import ResourceSpec

FHIR_VERSION = "4.3.0"  # R4B
SOFTWARE_VERSION = "1.0"


def capability_statement(
    *, specs: dict[str, ResourceSpec], base_url: str, date: str
) -> dict[str, Any]:
    resources = []
    for spec in sorted(specs.values(), key=lambda s: s.type):
        resources.append(
            {
                "type": spec.type,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "versioning": "no-version",
                "readHistory": False,
                "searchParam": [
                    {"name": p.name, "type": p.type, "documentation": p.documentation}
                    for p in spec.params
                ],
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "id": "vigil",
        "status": "active",
        "date": date,
        "kind": "instance",
        "publisher": "Vigil",
        "description": (
            "Vigil FHIR R4B (4.3.0) API. US Core and the behavioral-health implementation guides "
            "are R4-based; Vigil's resources are R4B and use only elements common to R4 and R4B. "
            "Read and search only; Bulk Data $export (system, Patient, Group)."
        ),
        "software": {"name": "Vigil", "version": SOFTWARE_VERSION},
        "implementation": {"description": "Vigil FHIR API", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": (
                        "Bearer tokens with SMART scopes (user/<Type>.rs, system/*.rs). "
                        "Integration clients use the client-credentials grant at auth/token."
                    ),
                },
                "resource": resources,
                "operation": [
                    {
                        "name": "export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                    },
                    {
                        "name": "patient-export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
                    },
                    {
                        "name": "group-export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
                    },
                ],
            }
        ],
    }
