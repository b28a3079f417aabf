"""A patient moved to another clinic: their active alerts follow them (one clinic notifies and may
act), the move is recorded, and the escalation restarts at the new clinic; escalation always reads
the alert's own clinic, so who is notified and who may act can never disagree."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from freezegun import freeze_time

from config.errors import PermissionDenied
from privacy.audit import Actor
from privacy.models import AccessEvent
from risk import services, tasks
from risk.models import Alert, AlertTransition, EscalationPolicy, OutboxMessage
from risk.rules.engine import HelpPressed, QuestionnaireScored
from risk.selectors import alerts_visible_to
from screening.models import CareTeam, Clinician, Organisation, Patient, User
from screening.services.people import patient_update
from tests.factories import CareTeamFactory, OrganisationFactory, make_clinician
from tests.risk.conftest import actor_for

T0 = dt.datetime(2025, 6, 10, 14, 0, tzinfo=dt.UTC)  # a Tuesday
MOVED = T0 + dt.timedelta(minutes=10)


@dataclass
class NewClinic:
    clinic: Organisation
    team: CareTeam
    clinician: Clinician  # the patient's new treating clinician
    member: Clinician
    on_call: Clinician
    lead: Clinician
    policy: EscalationPolicy

    def user_ids(self) -> set[str]:
        people = (self.clinician, self.member, self.on_call, self.lead)
        return {str(c.user_id) for c in people}


def _clinician(team: CareTeam, address: str) -> Clinician:
    clinician = make_clinician(team=team)
    clinician.user.email = address
    clinician.user.save(update_fields=["email"])
    return clinician


@pytest.fixture
def new(rw: Any) -> NewClinic:
    clinic = OrganisationFactory()
    team, other_team = CareTeamFactory(organisation=clinic), CareTeamFactory(organisation=clinic)
    on_call = _clinician(other_team, "oncall@new.test")
    lead = _clinician(other_team, "lead@new.test")
    policy = EscalationPolicy.objects.create(
        organisation=clinic, on_call=on_call, clinical_lead=lead, orange_ack_minutes=20
    )
    return NewClinic(
        clinic=clinic,
        team=team,
        clinician=_clinician(team, "treating@new.test"),
        member=_clinician(team, "member@new.test"),
        on_call=on_call,
        lead=lead,
        policy=policy,
    )


def raise_orange(rw: Any, at: dt.datetime = T0, ref: str = "r1") -> Alert:
    with freeze_time(at):
        (result,) = services.signal_evaluate(
            patient=rw.patient,
            event=QuestionnaireScored(
                local_date=at.date(), response_id=ref, instrument="phq9", total=4, item9=1
            ),
        )
    return result.alert


def move(patient: Patient, new: NewClinic, at: dt.datetime = MOVED) -> None:
    patient.organisation = new.clinic
    patient.care_team = new.team
    patient.treating_clinician = new.clinician
    with freeze_time(at):
        patient_update(actor=Actor.system(), patient=patient)


def codes(alert: Alert) -> list[str]:
    return list(AlertTransition.objects.filter(alert=alert).values_list("note_code", flat=True))


def test_an_active_alert_follows_the_patient_to_the_new_clinic(rw, new):
    alert = raise_orange(rw)
    old_rows = set(OutboxMessage.objects.filter(alert=alert).values_list("pk", flat=True))
    move(rw.patient, new)
    alert.refresh_from_db()
    assert alert.organisation_id == new.clinic.pk
    assert alert.assigned_to_id == new.clinician.pk
    assert (alert.state, alert.escalation_round, alert.escalation_level) == ("open", 1, 0)
    # the new clinic's own deadline (orange: 20 minutes there), from the move
    assert alert.ack_deadline == alert.next_escalation_at == MOVED + dt.timedelta(minutes=20)
    assert codes(alert)[-2:] == ["transferred", "reassigned"]
    transferred = AlertTransition.objects.get(alert=alert, note_code="transferred")
    assert (transferred.from_state, transferred.to_state, transferred.level) == ("open", "open", 0)
    assert AccessEvent.objects.filter(action="alert.transfer", resource_id=str(alert.pk)).exists()
    # the new clinic's level 0 is notified now; the old clinic's pending reminders are dropped
    new_rows = OutboxMessage.objects.filter(alert=alert).exclude(pk__in=old_rows)
    assert set(new_rows.values_list("recipient_id", flat=True)) == {str(new.clinician.user_id)}
    assert set(new_rows.values_list("idempotency_key", flat=True)) == {
        f"{alert.pk}:user:{new.clinician.user_id}:email:r1.0.0"
    }
    old = OutboxMessage.objects.filter(pk__in=old_rows)
    assert set(old.values_list("state", "last_error")) == {("cancelled", "transferred")}

    # who was notified may act; the old clinic may not any more
    with pytest.raises(PermissionDenied):
        services.alert_acknowledge(actor=actor_for(rw.clinician), alert_id=alert.pk)
    services.alert_acknowledge(actor=actor_for(new.clinician), alert_id=alert.pk)
    assert Alert.objects.get(pk=alert.pk).state == "acknowledged"


def test_a_transferred_alert_escalates_within_the_new_clinic_only(rw, new):
    alert = raise_orange(rw)
    before = set(OutboxMessage.objects.values_list("pk", flat=True))
    move(rw.patient, new)
    alert.refresh_from_db()
    for _ in range(12):  # the whole chain and into the next round
        assert alert.next_escalation_at is not None
        with freeze_time(alert.next_escalation_at):
            assert tasks.escalation_sweep()["escalated"] == 1
        alert.refresh_from_db()
    assert alert.escalation_round >= 2
    after = OutboxMessage.objects.exclude(pk__in=before)
    assert set(after.values_list("recipient_id", flat=True)) == new.user_ids()
    for clinician in (new.member, new.on_call, new.lead):  # each of them may act
        assert alerts_visible_to(clinician=clinician).filter(pk=alert.pk).exists()


def test_an_acknowledged_alert_is_reopened_at_the_new_clinic_and_a_resolved_one_stays(rw, new):
    resolved = raise_orange(rw)
    with freeze_time(T0):
        services.alert_resolve(
            actor=actor_for(rw.clinician), alert_id=resolved.pk, disposition="other", note="ok"
        )
        (result,) = services.signal_evaluate(
            patient=rw.patient, event=HelpPressed(local_date=T0.date(), help_request_id="press-1")
        )
        red = result.alert
        services.alert_acknowledge(actor=actor_for(rw.clinician), alert_id=red.pk)
    move(rw.patient, new)
    red.refresh_from_db()
    resolved.refresh_from_db()
    assert (red.organisation_id, red.state, red.acknowledged_at) == (new.clinic.pk, "open", None)
    assert red.ack_deadline == MOVED + dt.timedelta(minutes=new.policy.red_ack_minutes)
    assert codes(red)[-2:] == ["transferred", "reassigned"]
    transferred = AlertTransition.objects.get(alert=red, note_code="transferred")
    assert (transferred.from_state, transferred.to_state) == ("acknowledged", "open")
    # red: level 0 is the new treating clinician and the new clinic's on-call clinician
    assert set(
        OutboxMessage.objects.filter(
            alert=red, idempotency_key__endswith=":r1.0.0", state="pending"
        ).values_list("recipient_id", flat=True)
    ) == {str(new.clinician.user_id), str(new.on_call.user_id)}
    # history stays with the clinic that handled it
    assert (resolved.organisation_id, resolved.state) == (rw.world.clinic.pk, "resolved")
    assert "transferred" not in codes(resolved)


def test_the_transfer_is_idempotent(rw, new):
    alert = raise_orange(rw)
    move(rw.patient, new)
    rows = OutboxMessage.objects.count()
    assert services.alerts_follow_patient_transfer(actor=Actor.system(), patient=rw.patient) == []
    assert OutboxMessage.objects.count() == rows
    assert codes(alert).count("transferred") == 1


def test_escalation_reads_the_alert_s_clinic_not_the_patient_s(rw, new):
    """A patient moved behind the services' back (a raw update): the alert stays with the old
    clinic, and so do its notifications, to people who may act on it."""
    alert = raise_orange(rw)
    Patient.objects.filter(pk=rw.patient.pk).update(
        organisation=new.clinic, care_team=new.team, treating_clinician=new.clinician
    )
    with freeze_time(alert.ack_deadline):
        assert tasks.escalation_sweep()["escalated"] == 1
    alert.refresh_from_db()
    assert alert.escalation_level == 2  # the patient's care team is another clinic's: skipped
    assert AlertTransition.objects.filter(
        alert=alert, note_code="escalation_skipped:care_team"
    ).exists()
    recipients = set(OutboxMessage.objects.values_list("recipient_id", flat=True))
    assert not recipients & new.user_ids()
    assert str(rw.on_call.user_id) in recipients  # the old clinic's own on-call clinician
    services.alert_acknowledge(actor=actor_for(rw.on_call), alert_id=alert.pk)


# --- the admin: the one place a patient's clinic changes -----------------------------------------
@pytest.fixture
def admin_client(rw: Any) -> tuple[Client, User]:
    user = User.objects.create_superuser(
        username="root-admin", email="root@clinic.test", password="x" * 16, role="admin"
    )
    client = Client()
    client.force_login(user)
    return client, user


def _patient_form(patient: Patient, **changes: Any) -> dict[str, Any]:
    return {
        "user": patient.user_id,
        "organisation": patient.organisation_id,
        "care_team": patient.care_team_id,
        "treating_clinician": patient.treating_clinician_id,
        "timezone": patient.timezone,
        "locale": patient.locale,
        "birth_year": "",
        **changes,
    }


def test_moving_a_patient_in_the_admin_moves_their_alert(rw, new, admin_client):
    client, user = admin_client
    alert = raise_orange(rw)
    url = f"/admin/screening/patient/{rw.patient.pk}/change/"
    assert client.get(url).status_code == 200

    # a care team or treating clinician of another clinic is refused; nothing moves
    mixed = _patient_form(rw.patient, organisation=new.clinic.pk)
    refused = client.post(url, mixed)
    assert refused.status_code == 200 and b"Must be of the patient" in refused.content
    assert Patient.objects.get(pk=rw.patient.pk).organisation_id == rw.world.clinic.pk
    assert Alert.objects.get(pk=alert.pk).organisation_id == rw.world.clinic.pk

    # an edit within the clinic moves nothing
    same = _patient_form(rw.patient, locale="fr-FR")
    assert client.post(url, same).status_code == 302
    assert "transferred" not in codes(alert)

    moved = _patient_form(
        rw.patient,
        organisation=new.clinic.pk,
        care_team=new.team.pk,
        treating_clinician=new.clinician.pk,
    )
    response = client.post(url, moved)
    assert response.status_code == 302, response.content[:800]
    alert.refresh_from_db()
    assert (alert.organisation_id, alert.assigned_to_id) == (new.clinic.pk, new.clinician.pk)
    transferred = AlertTransition.objects.get(alert=alert, note_code="transferred")
    assert transferred.actor_id == user.pk
    assert AccessEvent.objects.filter(
        action="alert.transfer", actor=user, resource_id=str(alert.pk)
    ).exists()
    services.alert_acknowledge(actor=actor_for(new.clinician), alert_id=alert.pk)
