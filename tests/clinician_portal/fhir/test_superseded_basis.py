"""A RiskAssessment keeps, in its basis, the evidence of the alerts its alert superseded: a red
alert raised by a help press over an open orange one still points at the PHQ-9 (item 9) behind
the orange alert."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from risk.models import Alert
from tests.clinician_portal.conftest import non_audit_queries, raise_help_alert
from tests.clinician_portal.fhir.conftest import PHQ9_HIGH, submit, validate
from tests.factories import make_superseded_alert


def _basis(api: Any, alert: Alert) -> list[str]:
    response = api.get(f"/fhir/RiskAssessment/{alert.pk}")
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    validate(body)
    return [b["reference"] for b in body.get("basis", [])]


def _superseded_alert(by: Alert, *, tier: str, evidence: int) -> Alert:
    """A GAD-7 alert ``by`` superseded, one evidence item per questionnaire response."""
    events = [
        {"kind": "questionnaire_scored", "response_id": str(uuid.uuid4()), "instrument": "gad7"}
        for _ in range(evidence)
    ]
    return make_superseded_alert(by, tier=tier, rule_id="phq9_item9", events=events)


def test_red_risk_assessment_keeps_the_superseded_orange_alerts_basis(fhir: Any) -> None:
    orange = fhir.alert_a
    assert orange.tier == "orange"
    red = raise_help_alert(fhir.world.patient_a)
    assert red.tier == "red" and Alert.objects.get(pk=orange.pk).superseded_by_id == red.pk
    api = fhir.bearer(fhir.world.clinician.user)
    qr = fhir.qr_a.pk
    expected = [
        f"RiskAssessment/{orange.pk}",
        f"Flag/{orange.pk}",
        f"QuestionnaireResponse/{qr}",
        f"Observation/qr-{qr}-total",
        f"Observation/qr-{qr}-item9",
    ]
    basis = _basis(api, red)
    assert basis == expected  # the help press itself has no resource behind it
    # The orange alert's own assessment is unchanged (its own evidence only).
    assert _basis(api, orange) == expected[2:]
    # Every reference resolves for the same reader.
    for reference in basis:
        assert api.get(f"/fhir/{reference}").status_code == 200, reference
    # The search returns the same basis as the read.
    search = api.get("/fhir/RiskAssessment", {"_id": str(red.pk)}).json()
    assert [b["reference"] for b in search["entry"][0]["resource"]["basis"]] == expected


def test_another_patients_alert_is_never_in_the_basis(fhir: Any) -> None:
    red = raise_help_alert(fhir.world.patient_a)
    other_qr = submit(fhir.world.patient_b, "phq9", PHQ9_HIGH)
    other = Alert.objects.get(patient=fhir.world.patient_b, tier="orange")
    Alert.objects.filter(pk=other.pk).update(state="superseded", superseded_by=red)
    basis = _basis(fhir.bearer(fhir.world.clinician.user), red)
    assert f"RiskAssessment/{other.pk}" not in basis
    assert not any(str(other_qr.pk) in reference for reference in basis)
    assert f"RiskAssessment/{fhir.alert_a.pk}" in basis  # the real one still is


def test_superseded_basis_costs_no_query_per_alert(fhir: Any) -> None:
    red = raise_help_alert(fhir.world.patient_a)
    api = fhir.bearer(fhir.world.clinician.user)
    query = {"patient": str(fhir.world.patient_a.pk), "_count": "50"}
    with CaptureQueriesContext(connection) as few:
        assert api.get("/fhir/RiskAssessment", query).status_code == 200
    for tier in ("orange", "yellow", "yellow"):
        lower = _superseded_alert(red, tier=tier, evidence=3)
        _superseded_alert(lower, tier="yellow", evidence=2)
    with CaptureQueriesContext(connection) as many:
        response = api.get("/fhir/RiskAssessment", query)
    body = response.json()
    red_entry = next(e["resource"] for e in body["entry"] if e["resource"]["id"] == str(red.pk))
    assert len([b for b in red_entry["basis"] if b["reference"].startswith("RiskAssessment/")]) == 7
    assert len(non_audit_queries(many)) == len(non_audit_queries(few))
