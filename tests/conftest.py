"""Shared fixtures: the personas every endpoint is tested with, and API clients for them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from privacy import datakeys
from privacy.audit import Actor
from privacy.auth import token_issue
from privacy.choices import ConsentScope
from privacy.consent import consent_change, consent_document_publish
from screening.models import Auditor, Clinician, Organisation, Patient
from tests.factories import (
    CareTeamFactory,
    OrganisationFactory,
    make_auditor,
    make_clinician,
    make_patient,
)


@dataclass
class World:
    clinic: Organisation
    patient_a: Patient
    patient_b: Patient
    clinician: Clinician  # treats A and B
    colleague: Clinician  # same clinic, outside the care team
    auditor: Auditor

    def client_for(self, user: Any) -> APIClient:
        _, raw = token_issue(user=user, name="test")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client


@pytest.fixture(autouse=True)
def _fresh_key_cache() -> None:
    datakeys.cache_clear()


@pytest.fixture
def world(db: Any) -> World:
    clinic = OrganisationFactory()
    team = CareTeamFactory(organisation=clinic)
    other_team = CareTeamFactory(organisation=clinic)
    clinician = make_clinician(team=team)
    colleague = make_clinician(team=other_team)
    patient_a = make_patient(team=team, clinician=clinician, display_name="Alice Example")
    patient_b = make_patient(team=team, clinician=clinician, display_name="Bob Example")
    for scope in ConsentScope.values:
        consent_document_publish(scope=scope, version="1", text=f"Consent text for {scope}.")
    for patient in (patient_a, patient_b):
        for scope in (
            ConsentScope.TEXT_ANALYSIS,
            ConsentScope.VOICE_ANALYSIS,
            ConsentScope.FACE_ANALYSIS,
        ):
            consent_change(
                actor=Actor(user_id=patient.user_id, role="patient"),
                patient=patient,
                scope=scope,
                granted=True,
                document_version="1",
            )
    return World(
        clinic=clinic,
        patient_a=patient_a,
        patient_b=patient_b,
        clinician=clinician,
        colleague=colleague,
        auditor=make_auditor(organisation=clinic),
    )


@pytest.fixture
def client_a(world: World) -> APIClient:
    return world.client_for(world.patient_a.user)


@pytest.fixture
def client_b(world: World) -> APIClient:
    return world.client_for(world.patient_b.user)


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def now_iso() -> str:
    return timezone.now().replace(microsecond=0).isoformat()


def new_key() -> str:
    return str(uuid.uuid4())
