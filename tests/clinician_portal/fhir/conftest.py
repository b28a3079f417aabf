"""FHIR fixtures: a world with questionnaires, an alert with evidence and notifications, the
personas' FHIR clients, and a validator that checks every resource with fhir.resources.R4B."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from rest_framework.test import APIClient

from clinician_portal.fhir.services import fhir_client_create
from privacy.audit import Actor
from risk.models import Alert, OutboxMessage
from screening.models import QuestionnaireResponse
from screening.services.questionnaires import questionnaire_submit
from tests.factories import CareTeamFactory, OrganisationFactory, make_clinician, make_patient

PHQ9_HIGH = [2, 2, 2, 2, 1, 1, 1, 1, 2]  # item 9 = 2: an alert
GAD7 = [1, 1, 2, 0, 1, 1, 0]


def validate(resource: dict[str, Any]) -> Any:
    """Parse with fhir.resources R4B (raises on any structural error)."""
    cls = get_fhir_model_class(resource["resourceType"])
    return cls.model_validate(resource)


def submit(
    patient: Any, instrument: str, answers: list[int], when: dt.datetime | None = None
) -> QuestionnaireResponse:
    response, _ = questionnaire_submit(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        idempotency_key=uuid.uuid4(),
        instrument=instrument,
        answers=answers,
        client_timestamp=when or timezone.now() - dt.timedelta(minutes=1),
    )
    return response


@dataclass
class Fhir:
    world: Any
    qr_a: QuestionnaireResponse
    qr_a_gad: QuestionnaireResponse
    qr_b: QuestionnaireResponse
    alert_a: Alert
    other_patient: Any
    other_clinic_client_secret: tuple[str, str]
    clinic_client_secret: tuple[str, str]

    def bearer(self, user: Any) -> APIClient:
        return self.world.client_for(user)


def client_token(client_id: str, secret: str, scope: str = "") -> APIClient:
    api = APIClient()
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if scope:
        data["scope"] = scope
    response = api.post("/fhir/auth/token", data, format="multipart")
    assert response.status_code == 200, response.content
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access_token']}")
    return api


@pytest.fixture
def fhir(world: Any, settings: Any, tmp_path: Any) -> Fhir:
    settings.VIGIL_FHIR_EXPORT_EAGER = True
    settings.VIGIL_FHIR_EXPORT_DIR = str(tmp_path / "export")
    settings.VIGIL_FHIR_BASE_URL = "http://testserver/fhir/"
    qr_a = submit(world.patient_a, "phq9", PHQ9_HIGH)
    qr_a_gad = submit(world.patient_a, "gad7", GAD7)
    qr_b = submit(world.patient_b, "phq9", [0] * 9)
    alert_a = Alert.objects.get(patient=world.patient_a)
    other_clinic = OrganisationFactory()
    other_team = CareTeamFactory(organisation=other_clinic)
    other_clinician = make_clinician(team=other_team)
    other_patient = make_patient(team=other_team, clinician=other_clinician)
    submit(other_patient, "phq9", PHQ9_HIGH)
    client, secret = fhir_client_create(organisation=world.clinic, name="EHR")
    other_client, other_secret = fhir_client_create(organisation=other_clinic, name="Other EHR")
    assert OutboxMessage.objects.filter(alert=alert_a).exists()
    return Fhir(
        world=world,
        qr_a=qr_a,
        qr_a_gad=qr_a_gad,
        qr_b=qr_b,
        alert_a=alert_a,
        other_patient=other_patient,
        other_clinic_client_secret=(other_client.client_id, other_secret),
        clinic_client_secret=(client.client_id, secret),
    )
