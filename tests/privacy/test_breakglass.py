"""Break-glass: who may open a patient's record outside the care team, for how long, and review."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from freezegun import freeze_time

from config.errors import PermissionDenied, ValidationFailed
from privacy.audit import Actor
from privacy.breakglass import (
    break_glass_open,
    break_glass_review,
    clinician_patient_access,
)
from privacy.chain_verify import audit_chain_verify
from privacy.models import AccessEvent, BreakGlassAccess, BreakGlassReview
from tests.factories import CareTeamFactory, OrganisationFactory, make_auditor, make_clinician

REASON = "Patient presented at A&E out of hours; on-call review of the safety plan."


def as_actor(person: Any) -> Actor:
    return Actor(user_id=person.user_id, role=person.user.role, ip_address="10.1.2.3")


def open_for(world: Any, reason: str = REASON, clinician: Any = None) -> BreakGlassAccess:
    clinician = clinician or world.colleague
    return break_glass_open(
        actor=as_actor(clinician), clinician=clinician, patient=world.patient_a, reason=reason
    )


@pytest.fixture
def other_clinic(world: Any) -> Any:
    clinic = OrganisationFactory()
    team = CareTeamFactory(organisation=clinic)
    return make_clinician(team=team), make_auditor(organisation=clinic)


# --- who has access -------------------------------------------------------------------------------
def test_the_treating_clinician_and_care_team_members_have_care_team_access(world):
    assert clinician_patient_access(clinician=world.clinician, patient=world.patient_a) == (
        "care_team"
    )
    member = make_clinician(team=world.patient_a.care_team)
    assert clinician_patient_access(clinician=member, patient=world.patient_a) == "care_team"


def test_a_colleague_outside_the_team_has_none_until_breaking_the_glass(world):
    assert clinician_patient_access(clinician=world.colleague, patient=world.patient_a) is None
    open_for(world)
    assert clinician_patient_access(clinician=world.colleague, patient=world.patient_a) == (
        "break_glass"
    )
    # Only for that patient.
    assert clinician_patient_access(clinician=world.colleague, patient=world.patient_b) is None


def test_break_glass_expires(world, settings):
    settings.VIGIL_BREAK_GLASS_MINUTES = 15
    start = timezone.now()
    with freeze_time(start):
        access = open_for(world)
    assert access.expires_at == start + dt.timedelta(minutes=15)
    with freeze_time(start + dt.timedelta(minutes=14, seconds=59)):
        assert clinician_patient_access(clinician=world.colleague, patient=world.patient_a) == (
            "break_glass"
        )
    with freeze_time(start + dt.timedelta(minutes=15)):
        assert clinician_patient_access(clinician=world.colleague, patient=world.patient_a) is None


def test_another_clinics_clinician_has_no_access(world, other_clinic):
    stranger, _ = other_clinic
    assert clinician_patient_access(clinician=stranger, patient=world.patient_a) is None


# --- opening --------------------------------------------------------------------------------------
def test_opening_records_a_break_glass_event_with_the_reason_as_purpose(world):
    access = open_for(world, reason=f"   {REASON}   ")
    assert access.reason == REASON
    event = AccessEvent.objects.get(action="break_glass.open")
    assert event.break_glass is True
    assert event.purpose == REASON
    assert (event.outcome, event.patient_id, event.actor_id) == (
        "allowed",
        world.patient_a.pk,
        world.colleague.user_id,
    )
    assert (event.resource_type, event.resource_id) == ("BreakGlassAccess", str(access.pk))
    assert event.ip_address == "10.1.2.3"
    assert audit_chain_verify().ok


@pytest.mark.parametrize("reason", ["", "   ", "urgent", "  123456789  ", "emergency"])
def test_a_trivial_reason_is_refused(world, reason):
    with pytest.raises(ValidationFailed) as raised:
        open_for(world, reason=reason)
    assert "reason" in raised.value.extra["fields"]
    assert not BreakGlassAccess.objects.exists()


def test_a_ten_character_reason_is_enough(world):
    assert open_for(world, reason="  0123456789 ").reason == "0123456789"


def test_another_clinics_clinician_is_refused_and_it_is_logged(world, other_clinic):
    stranger, _ = other_clinic
    with pytest.raises(PermissionDenied):
        open_for(world, clinician=stranger)
    assert not BreakGlassAccess.objects.exists()
    event = AccessEvent.objects.get(action="break_glass.open")
    assert (event.outcome, event.reason, event.status_code) == ("denied", "other_clinic", 403)
    assert event.break_glass is True
    assert event.purpose == ""  # a refused reason is not kept


def test_the_care_team_has_nothing_to_break(world):
    with pytest.raises(ValidationFailed) as raised:
        open_for(world, clinician=world.clinician)
    assert "patient" in raised.value.extra["fields"]
    assert not BreakGlassAccess.objects.exists()


def test_nobody_breaks_the_glass_for_someone_else(world):
    with pytest.raises(PermissionDenied):
        break_glass_open(
            actor=as_actor(world.clinician),
            clinician=world.colleague,
            patient=world.patient_a,
            reason=REASON,
        )
    with pytest.raises(PermissionDenied):
        break_glass_open(
            actor=as_actor(world.auditor),
            clinician=world.colleague,
            patient=world.patient_a,
            reason=REASON,
        )
    assert not BreakGlassAccess.objects.exists()
    assert set(
        AccessEvent.objects.filter(action="break_glass.open").values_list("outcome", "reason")
    ) == {("denied", "not_own_account")}


def test_an_erased_patient_cannot_be_opened(world):
    from screening.models import Patient

    Patient.objects.filter(pk=world.patient_a.pk).update(erased_at=timezone.now())
    world.patient_a.refresh_from_db()
    with pytest.raises(PermissionDenied):
        open_for(world)


# --- review ---------------------------------------------------------------------------------------
def test_the_clinics_auditor_reviews_and_it_is_logged(world):
    access = open_for(world)
    review = break_glass_review(
        actor=as_actor(world.auditor), access=access, appropriate=True, note=" On-call, fine. "
    )
    assert (review.appropriate, review.note, review.reviewer_id) == (
        True,
        "On-call, fine.",
        world.auditor.user_id,
    )
    event = AccessEvent.objects.get(action="break_glass.review")
    assert (event.outcome, event.reason, event.patient_id, event.resource_id) == (
        "allowed",
        "appropriate",
        world.patient_a.pk,
        str(access.pk),
    )


def test_a_newer_review_supersedes_and_none_is_changed(world):
    access = open_for(world)
    first = break_glass_review(actor=as_actor(world.auditor), access=access, appropriate=True)
    second = break_glass_review(
        actor=as_actor(world.auditor),
        access=access,
        appropriate=False,
        note="No clinical contact followed.",
    )
    assert list(access.reviews.order_by("-created_at", "-id")) == [second, first]
    first.refresh_from_db()
    assert first.appropriate is True


def test_an_inappropriate_verdict_needs_a_note(world):
    access = open_for(world)
    with pytest.raises(ValidationFailed) as raised:
        break_glass_review(actor=as_actor(world.auditor), access=access, appropriate=False)
    assert "note" in raised.value.extra["fields"]
    assert not BreakGlassReview.objects.exists()


def test_only_the_clinics_auditors_review(world, other_clinic):
    access = open_for(world)
    _, foreign_auditor = other_clinic
    for who in (foreign_auditor, world.clinician, world.colleague):
        with pytest.raises(PermissionDenied):
            break_glass_review(actor=as_actor(who), access=access, appropriate=True)
    assert not BreakGlassReview.objects.exists()
    assert (
        AccessEvent.objects.filter(
            action="break_glass.review", outcome="denied", reason="not_clinic_auditor"
        ).count()
        == 3
    )
