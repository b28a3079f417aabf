"""Risk personas on top of the shared ``world``: clinicians with e-mail addresses, a second member
of the care team, an on-call clinician and a clinical lead, and the clinic's escalation policy."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from privacy.audit import Actor
from risk.models import EscalationPolicy
from screening.models import CareTeam, Clinician, Patient, QuestionnaireResponse
from screening.services.questionnaires import questionnaire_submit
from tests.factories import make_clinician


@dataclass
class RiskWorld:
    world: Any
    team: CareTeam
    member: Clinician  # second member of patient A's care team
    on_call: Clinician
    lead: Clinician
    policy: EscalationPolicy

    @property
    def patient(self) -> Patient:
        return self.world.patient_a

    @property
    def clinician(self) -> Clinician:
        return self.world.clinician


def _email(clinician: Clinician, address: str) -> Clinician:
    clinician.user.email = address
    clinician.user.save(update_fields=["email"])
    return clinician


@pytest.fixture
def rw(world: Any) -> RiskWorld:
    team = CareTeam.objects.get(pk=world.patient_a.care_team_id)
    other_team = world.colleague.care_teams.get()
    _email(world.clinician, "treating@clinic.test")
    _email(world.colleague, "colleague@clinic.test")
    member = _email(make_clinician(team=team), "member@clinic.test")
    on_call = _email(make_clinician(team=other_team), "oncall@clinic.test")
    lead = _email(make_clinician(team=other_team), "lead@clinic.test")
    policy = EscalationPolicy.objects.create(
        organisation=world.clinic, on_call=on_call, clinical_lead=lead
    )
    return RiskWorld(
        world=world, team=team, member=member, on_call=on_call, lead=lead, policy=policy
    )


def actor_for(clinician: Clinician) -> Actor:
    return Actor(user_id=clinician.user_id, role="clinician")


def submit_phq9(
    patient: Patient, answers: list[int], *, key: uuid.UUID | None = None
) -> QuestionnaireResponse:
    response, _ = questionnaire_submit(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        idempotency_key=key or uuid.uuid4(),
        instrument="phq9",
        answers=answers,
        client_timestamp=timezone.now() - dt.timedelta(minutes=1),
    )
    return response


def phq9(total: int, item9: int) -> list[int]:
    """Nine answers with the given total and item 9."""
    rest = total - item9
    answers = []
    for _ in range(8):
        value = min(3, rest)
        answers.append(value)
        rest -= value
    assert rest == 0, "total not reachable"
    return [*answers, item9]
