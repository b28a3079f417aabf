"""The pure mappers against golden files, R4B validation, and the code bindings that
fhir.resources does not enforce (LOINC codes, status values, UCUM units).

Regenerate the goldens after a deliberate change with ``VIGIL_UPDATE_GOLDEN=1``."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.audit_event import audit_event_to_fhir
from clinician_portal.fhir.mappers.care_team import care_team_to_fhir
from clinician_portal.fhir.mappers.communication import communication_to_fhir
from clinician_portal.fhir.mappers.communication_request import communication_request_to_fhir
from clinician_portal.fhir.mappers.consent import consent_to_fhir
from clinician_portal.fhir.mappers.flag import flag_to_fhir
from clinician_portal.fhir.mappers.observation import (
    media_panel_to_fhir,
    mood_to_fhir,
    phq9_item9_to_fhir,
    survey_total_to_fhir,
)
from clinician_portal.fhir.mappers.organization import organization_to_fhir
from clinician_portal.fhir.mappers.patient import patient_to_fhir
from clinician_portal.fhir.mappers.practitioner import practitioner_to_fhir
from clinician_portal.fhir.mappers.provenance import provenance_to_fhir
from clinician_portal.fhir.mappers.questionnaire_response import questionnaire_response_to_fhir
from clinician_portal.fhir.mappers.risk_assessment import risk_assessment_to_fhir
from screening.instruments import GAD7, PHQ9
from tests.clinician_portal.fhir.conftest import validate

GOLDEN = Path(__file__).parent / "golden"
T0 = dt.datetime(2026, 11, 20, 14, 30, 5, 123456, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
PID = "8d0c5f0e-3a8e-4bb3-9a57-1f2e6c0d9a10"
QR = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
ALERT = "5f1d7c0a-7a0e-4a3c-8d6e-6a0b1c2d3e4f"
VIDEO = "0e6f1c8a-9b7d-4c3e-a2f1-5d4c3b2a1f0e"
MSG = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"

CASES: dict[str, Any] = {
    "patient": lambda: patient_to_fhir(
        {
            "id": PID,
            "pseudonym": "P-0A1B2C3D4E5F",
            "birth_year": 1987,
            "organisation_id": 3,
            "treating_clinician_id": 7,
            "erased": False,
            "last_updated": T0,
        }
    ),
    "practitioner": lambda: practitioner_to_fhir(
        {"id": 7, "first_name": "Ada", "last_name": "Byron", "title": "Dr", "last_updated": T0}
    ),
    "organization": lambda: organization_to_fhir(
        {"id": 3, "name": "Clinic North", "slug": "clinic-north", "last_updated": T0}
    ),
    "care_team": lambda: care_team_to_fhir(
        {"id": 4, "name": "Team A", "organisation_id": 3, "member_ids": [7, 9]}
    ),
    "questionnaire_response_phq9": lambda: questionnaire_response_to_fhir(
        {
            "id": QR,
            "patient_id": PID,
            "instrument": "phq9",
            "answers": [0, 1, 2, 3, 0, 1, 2, 3, 2],
            "item_texts": list(PHQ9.items),
            "authored": T0,
            "last_updated": T0,
        }
    ),
    "questionnaire_response_gad7": lambda: questionnaire_response_to_fhir(
        {
            "id": QR,
            "patient_id": PID,
            "instrument": "gad7",
            "answers": [1, 1, 1, 1, 0, 0, 3],
            "item_texts": list(GAD7.items),
            "authored": T0,
            "last_updated": T0,
        }
    ),
    "observation_phq9_total": lambda: survey_total_to_fhir(
        {
            "response_id": QR,
            "patient_id": PID,
            "instrument": "phq9",
            "total": 14,
            "severity": "moderate",
            "effective": T0,
            "last_updated": T0,
        }
    ),
    "observation_gad7_total": lambda: survey_total_to_fhir(
        {
            "response_id": QR,
            "patient_id": PID,
            "instrument": "gad7",
            "total": 7,
            "severity": "mild",
            "effective": T0,
            "last_updated": T0,
        }
    ),
    "observation_phq9_item9": lambda: phq9_item9_to_fhir(
        {"response_id": QR, "patient_id": PID, "item9": 2, "effective": T0, "last_updated": T0}
    ),
    "observation_mood": lambda: mood_to_fhir(
        {
            "patient_id": PID,
            "local_date": dt.date(2026, 11, 20),
            "score": -3.25,
            "confidence": 0.72,
            "abstained": False,
            "model_name": "vigil-fusion",
            "model_version": "fusion-1",
            "derived_from": [f"QuestionnaireResponse/{QR}"],
            "last_updated": T1,
        }
    ),
    "observation_mood_abstained": lambda: mood_to_fhir(
        {
            "patient_id": PID,
            "local_date": "2026-11-19",
            "score": None,
            "confidence": 0.1,
            "abstained": True,
            "reason": "insufficient signal",
            "last_updated": T1,
        }
    ),
    "observation_voice": lambda: media_panel_to_fhir(
        {
            "kind": "voice",
            "video_id": VIDEO,
            "patient_id": PID,
            "effective": T0,
            "features": {
                "speech_rate": 3.1,
                "f0_sd_st": 1.8,
                "intensity_mean_db": -26.5,
                "pause_ratio": 0.41,
                "pause_mean_s": 0.9,
                "pause_count": 4.0,
                "articulation_rate": None,
                "unknown_feature": 5,
                "abstain": False,
                "quality_flags": [],
            },
            "model_name": "vigil-media",
            "model_version": "prosody:1.0",
            "last_updated": T1,
        }
    ),
    "observation_face": lambda: media_panel_to_fhir(
        {
            "kind": "face",
            "video_id": VIDEO,
            "patient_id": PID,
            "effective": T0,
            "features": {
                "smile": 0.12,
                "frown": 0.2,
                "gaze_down_fraction": 0.35,
                "frames_total": 150,
                "expression": {"sad": 0.4, "neutral": 0.5},
                "dominant_expression": "neutral",
                "abstain": False,
            },
            "model_name": "vigil-media",
            "model_version": "face:1.2",
            "last_updated": T1,
        }
    ),
    "risk_assessment": lambda: risk_assessment_to_fhir(
        {
            "id": ALERT,
            "patient_id": PID,
            "tier": "red",
            "state": "open",
            "rule_set_version": "v1",
            "rule_set_hash": "ab" * 32,
            "rule_id": "phq9_item9",
            "occurred": T0,
            "basis": [f"QuestionnaireResponse/{QR}", f"Observation/qr-{QR}-item9"],
            "notes": ["Called <PERSON_1>; safety plan reviewed."],
            "last_updated": T1,
        }
    ),
    "flag_active": lambda: flag_to_fhir(
        {
            "id": ALERT,
            "patient_id": PID,
            "tier": "orange",
            "state": "acknowledged",
            "start": T0,
            "end": T1,
            "last_updated": T1,
        }
    ),
    "flag_inactive": lambda: flag_to_fhir(
        {
            "id": ALERT,
            "patient_id": PID,
            "tier": "yellow",
            "state": "resolved",
            "start": T0,
            "end": T1,
            "last_updated": T1,
        }
    ),
    "communication_request": lambda: communication_request_to_fhir(
        {
            "id": MSG,
            "alert_id": ALERT,
            "patient_id": PID,
            "tier": "red",
            "recipient_kind": "user",
            "recipient_practitioner_id": 7,
            "channel": "webhook",
            "level": 1,
            "repeat": 0,
            "state": "pending",
            "created": T0,
            "last_updated": T0,
        }
    ),
    "communication": lambda: communication_to_fhir(
        {
            "id": MSG,
            "alert_id": ALERT,
            "patient_id": PID,
            "tier": "orange",
            "recipient_kind": "emergency_contact",
            "recipient_practitioner_id": None,
            "channel": "email",
            "level": 0,
            "state": "sent",
            "created": T0,
            "sent": T1,
            "last_updated": T1,
        }
    ),
    "consent_granted": lambda: consent_to_fhir(
        {
            "id": 41,
            "patient_id": PID,
            "organisation_id": 3,
            "scope": "voice_analysis",
            "granted": True,
            "current": True,
            "document_version": "1",
            "recorded": T0,
            "last_updated": T0,
        }
    ),
    "consent_withdrawn_history": lambda: consent_to_fhir(
        {
            "id": 40,
            "patient_id": PID,
            "organisation_id": 3,
            "scope": "research",
            "granted": False,
            "current": False,
            "document_version": "",
            "recorded": T0,
            "last_updated": T0,
        }
    ),
    "audit_event": lambda: audit_event_to_fhir(
        {
            "id": 1001,
            "seq": 1001,
            "hash": "c" * 64,
            "prev_hash": "b" * 64,
            "occurred": T0,
            "actor_role": "clinician",
            "actor_practitioner_id": 9,
            "actor_user_id": 12,
            "patient_id": PID,
            "action": "fhir.read",
            "outcome": "allowed",
            "resource_type": "Observation",
            "resource_id": f"qr-{QR}-total",
            "status_code": 200,
            "reason": "",
            "purpose": "Patient <PERSON_1> unreachable, on-call review",
            "break_glass": True,
            "organisation_id": 3,
        }
    ),
    "provenance": lambda: provenance_to_fhir(
        {
            "id": f"alert-{ALERT}",
            "targets": [f"RiskAssessment/{ALERT}", f"Flag/{ALERT}"],
            "recorded": T0,
            "activity": "rule-evaluation",
            "agents": [{"name": "vigil-rules/phq9_item9", "version": "v1", "sha256": "ab" * 32}],
            "organisation_id": 3,
        }
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_mapper_matches_golden_and_validates(name: str) -> None:
    resource = CASES[name]()
    path = GOLDEN / f"{name}.json"
    if os.environ.get("VIGIL_UPDATE_GOLDEN"):
        path.write_text(json.dumps(resource, indent=2, sort_keys=True) + "\n")
    assert resource == json.loads(path.read_text()), f"{name} differs from its golden file"
    model = validate(resource)
    # Round trip: the library keeps every element we wrote (nothing silently dropped).
    assert json.loads(model.model_dump_json(exclude_none=True)) == json.loads(json.dumps(resource))


def _codings(concept: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in concept.get("coding", [])}


def test_survey_codes_are_loinc_and_units_ucum() -> None:
    phq = CASES["observation_phq9_total"]()
    gad = CASES["observation_gad7_total"]()
    item9 = CASES["observation_phq9_item9"]()
    assert _codings(phq["code"]) == {(codes.LOINC, "44261-6")}
    assert _codings(gad["code"]) == {(codes.LOINC, "70274-6")}
    assert _codings(item9["code"]) == {(codes.LOINC, "44260-8")}
    for obs in (phq, gad, item9):
        assert obs["status"] == "final"
        assert _codings(obs["category"][0]) == {(codes.OBS_CATEGORY, "survey")}
        assert obs["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{QR}"}]
    assert phq["valueQuantity"] == {
        "value": 14,
        "unit": "score",
        "system": codes.UCUM,
        "code": "{score}",
    }
    assert _codings(item9["valueCodeableConcept"]) == {(codes.LOINC, "LA6570-1")}


def test_questionnaire_items_use_loinc_link_ids_and_answer_codes() -> None:
    phq = CASES["questionnaire_response_phq9"]()
    assert [i["linkId"] for i in phq["item"]] == list(codes.ITEM_CODES["phq9"])
    assert phq["item"][-1]["linkId"] == codes.PHQ9_ITEM9
    answers = [i["answer"][0]["valueCoding"]["code"] for i in phq["item"]]
    assert answers == ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"] * 2 + ["LA6570-1"]
    assert phq["status"] == "completed"
    assert phq["questionnaire"] == "http://loinc.org/q/44249-1"
    gad = CASES["questionnaire_response_gad7"]()
    assert len(gad["item"]) == 7 and gad["questionnaire"] == "http://loinc.org/q/69737-5"


def test_patient_is_pseudonymous() -> None:
    patient = CASES["patient"]()
    assert not {"name", "address", "telecom", "photo", "contact"} & set(patient)
    assert patient["birthDate"] == "1987"  # the year only
    assert patient["identifier"] == [
        {"use": "secondary", "system": codes.SYSTEM_PSEUDONYM, "value": "P-0A1B2C3D4E5F"}
    ]
    assert patient["generalPractitioner"] == [{"reference": "Practitioner/7"}]


def test_vigil_measures_have_documented_codes_and_ucum_units() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "fhir.md").read_text()
    for code, (_, unit, _) in codes.MEASURES.items():
        assert f"`{code}`" in doc, f"{code} is not documented in docs/fhir.md"
        if unit:
            assert f"`{unit}`" in doc, f"the unit of {code} is not documented"
    voice = CASES["observation_voice"]()
    by_code = {c["code"]["coding"][0]["code"]: c for c in voice["component"]}
    assert set(by_code) == {
        "speech_rate",
        "f0_sd_st",
        "intensity_mean_db",
        "pause_ratio",
        "pause_mean_s",
        "pause_count",
        "articulation_rate",
    }  # the unknown feature is not invented a code (test_media_features.py: the full set)
    assert by_code["speech_rate"]["valueQuantity"]["code"] == "/s"
    assert by_code["pause_mean_s"]["valueQuantity"]["code"] == "s"
    assert by_code["intensity_mean_db"]["valueQuantity"]["code"] == "dB"
    assert "dataAbsentReason" in by_code["articulation_rate"]
    assert voice["device"]["identifier"]["value"] == "vigil-media@prosody:1.0"
    mood = CASES["observation_mood"]()
    assert mood["valueQuantity"]["value"] == -3.25
    assert mood["component"][0]["valueQuantity"] == {
        "value": 0.72,
        "unit": "ratio",
        "system": codes.UCUM,
        "code": "1",
    }
    abstained = CASES["observation_mood_abstained"]()
    assert "valueQuantity" not in abstained and "dataAbsentReason" in abstained


def test_risk_flag_and_communication_bindings() -> None:
    risk = CASES["risk_assessment"]()
    assert (codes.RISK_PROBABILITY, "high") in _codings(risk["prediction"][0]["qualitativeRisk"])
    assert _codings(risk["method"]) == {(codes.SYSTEM_RULE_SET, "v1")}
    assert risk["status"] in {"registered", "preliminary", "final", "amended"}
    assert CASES["flag_active"]()["status"] == "active"
    inactive = CASES["flag_inactive"]()
    assert inactive["status"] == "inactive" and inactive["period"]["end"] == "2026-11-21T09:00:00Z"
    assert _codings(inactive["category"][0]) == {
        (codes.FLAG_CATEGORY, "behavioral"),
        (codes.FLAG_CATEGORY, "safety"),
    }
    request = CASES["communication_request"]()
    assert request["status"] == "active" and request["priority"] == "stat"
    assert CASES["communication"]()["status"] == "completed"


def test_consent_and_audit_bindings() -> None:
    granted = CASES["consent_granted"]()
    withdrawn = CASES["consent_withdrawn_history"]()
    assert granted["status"] == "active" and granted["provision"]["type"] == "permit"
    assert withdrawn["status"] == "inactive" and withdrawn["provision"]["type"] == "deny"
    event = CASES["audit_event"]()
    assert event["action"] == "R" and event["outcome"] == "0"
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "BTG"
    chain = event["entity"][-1]["detail"]
    assert {d["type"]: d["valueString"] for d in chain}["hash"] == "c" * 64


def test_mappers_are_pure() -> None:
    for build in CASES.values():
        assert build() == build()
