"""Deadlines and escalation under a controlled clock: through every level of the chain, each
level's delay and repeat count, idempotent sweeps, and yellow's "next working day at 10:00"."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from freezegun import freeze_time

from privacy.models import AccessEvent
from risk import services, tasks
from risk.errors import AlertTransitionInvalid
from risk.models import Alert, AlertTransition, EscalationPolicy, OutboxMessage
from risk.rules.engine import CrisisLanguage, HelpPressed, QuestionnaireScored
from tests.risk.conftest import actor_for

T0 = dt.datetime(2025, 6, 10, 14, 0, tzinfo=dt.UTC)  # a Tuesday


def raise_red(rw, at: dt.datetime = T0) -> Alert:
    with freeze_time(at):
        (result,) = services.signal_evaluate(
            patient=rw.patient, event=HelpPressed(local_date=at.date(), help_request_id="press-1")
        )
    return result.alert


def recipients(alert: Alert, level: int, repeat: int) -> set[str]:
    return set(
        OutboxMessage.objects.filter(alert=alert, level=level, repeat=repeat).values_list(
            "recipient_id", flat=True
        )
    )


def sweep(at: dt.datetime) -> dict[str, int]:
    with freeze_time(at):
        return tasks.escalation_sweep()


def test_red_escalates_through_every_level_with_each_delay_and_repeat(rw):
    alert = raise_red(rw)
    assert alert.ack_deadline == T0 + dt.timedelta(minutes=5)
    team = {str(rw.clinician.user_id), str(rw.member.user_id)}
    on_call, lead = {str(rw.on_call.user_id)}, {str(rw.lead.user_id)}
    assert recipients(alert, 0, 0) == {str(rw.clinician.user_id)} | on_call

    # Default chain: treating (waits for the 5-minute deadline) -> care team (10 min, 1 repeat)
    # -> on call (10 min, 2 repeats) -> clinical lead (15 min, 2 repeats).
    expected = [
        (5, 1, 0, team),
        (15, 1, 1, team),
        (25, 2, 0, on_call),
        (35, 2, 1, on_call),
        (45, 2, 2, on_call),
        (55, 3, 0, lead),
        (70, 3, 1, lead),
        (85, 3, 2, lead),
    ]
    for minute, level, repeat, who in expected:
        due = T0 + dt.timedelta(minutes=minute)
        assert sweep(due - dt.timedelta(seconds=1))["escalated"] == 0, minute  # not yet
        assert sweep(due)["escalated"] == 1, minute
        alert.refresh_from_db()
        assert (alert.escalation_level, alert.escalation_repeat) == (level, repeat)
        assert recipients(alert, level, repeat) == who
        assert sweep(due)["escalated"] == 0  # the same sweep again: nothing twice

    alert.refresh_from_db()
    assert alert.next_escalation_at == T0 + dt.timedelta(minutes=100)
    assert sweep(T0 + dt.timedelta(minutes=100))["escalated"] == 1
    alert.refresh_from_db()
    # The chain ran out unacknowledged: a new round from the top, never silence.
    assert alert.state == "open"
    assert (alert.escalation_round, alert.escalation_level, alert.escalation_repeat) == (1, 0, 0)
    assert alert.next_escalation_at == T0 + dt.timedelta(minutes=105)
    assert alert.ack_deadline == T0 + dt.timedelta(minutes=5)  # still shown as breached
    codes = list(AlertTransition.objects.filter(alert=alert).values_list("note_code", flat=True))
    assert codes == [
        "raised",
        "escalated:care_team:0",
        "escalated:care_team:1",
        "escalated:on_call:0",
        "escalated:on_call:1",
        "escalated:on_call:2",
        "escalated:clinical_lead:0",
        "escalated:clinical_lead:1",
        "escalated:clinical_lead:2",
        "escalation_restarted",
    ]
    assert AccessEvent.objects.filter(
        action="alert.escalation_restart", resource_id=str(alert.pk), reason="round 1"
    ).exists()
    # Every outbox row is unique per (alert, recipient, channel, round, level.repeat); the new
    # round's level 0 (treating clinician and, for red, on call) has new keys.
    keys = list(OutboxMessage.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == len(set(keys)) == 2 + 2 * 2 + 3 + 3 + 2
    assert {k.split(":")[2] for k in keys if k.endswith(":r1.0.0")} == {
        str(rw.clinician.user_id),
        str(rw.on_call.user_id),
    }


def test_a_sweep_run_twice_or_concurrently_creates_no_duplicates(rw):
    alert = raise_red(rw)
    due = T0 + dt.timedelta(minutes=5)
    with freeze_time(due):
        first = services.alert_escalate(alert_id=alert.pk)
        second = services.alert_escalate(alert_id=alert.pk)  # a second worker, same tick
        services.escalation_sweep()
    assert (first, second) == (True, False)
    assert OutboxMessage.objects.filter(level=1).count() == 2


def test_acknowledging_stops_the_escalation(rw):
    alert = raise_red(rw)
    with freeze_time(T0 + dt.timedelta(minutes=2)):
        services.alert_acknowledge(actor=actor_for(rw.clinician), alert_id=alert.pk)
    assert sweep(T0 + dt.timedelta(hours=3)) == {"due": 0, "escalated": 0, "failed": 0}
    assert not OutboxMessage.objects.filter(level__gt=0).exists()
    # Reminders not yet handed to the relay are dropped once someone has acknowledged.
    assert set(OutboxMessage.objects.values_list("state", flat=True)) == {"cancelled"}


def test_levels_with_nobody_to_notify_are_skipped(rw):
    EscalationPolicy.objects.filter(pk=rw.policy.pk).update(on_call=None)
    alert = raise_red(rw)
    sweep(T0 + dt.timedelta(minutes=5))  # care team
    sweep(T0 + dt.timedelta(minutes=15))  # care team again
    sweep(T0 + dt.timedelta(minutes=25))  # no on-call clinician: straight to the lead
    alert.refresh_from_db()
    assert (alert.escalation_level, alert.escalation_repeat) == (3, 0)
    assert AlertTransition.objects.filter(note_code="escalation_skipped:on_call").exists()
    assert recipients(alert, 3, 0) == {str(rw.lead.user_id)}


def _deactivate(*clinicians) -> None:
    for clinician in clinicians:
        clinician.user.is_active = False
        clinician.user.save(update_fields=["is_active"])


def test_levels_with_only_inactive_or_unreachable_clinicians_are_skipped(rw):
    _deactivate(rw.on_call)  # left the clinic, still named in the policy
    alert = raise_red(rw)
    assert recipients(alert, 0, 0) == {str(rw.clinician.user_id)}  # never the inactive on-call
    sweep(T0 + dt.timedelta(minutes=5))  # care team
    sweep(T0 + dt.timedelta(minutes=15))  # care team again
    sweep(T0 + dt.timedelta(minutes=25))  # the on-call level has nobody: straight to the lead
    alert.refresh_from_db()
    assert (alert.escalation_level, alert.escalation_repeat) == (3, 0)
    assert AlertTransition.objects.filter(note_code="escalation_skipped:on_call").exists()
    assert recipients(alert, 3, 0) == {str(rw.lead.user_id)}
    assert not OutboxMessage.objects.filter(recipient_id=str(rw.on_call.user_id)).exists()


def test_a_level_whose_members_have_no_address_is_skipped(rw):
    for clinician in (rw.clinician, rw.member):
        clinician.user.email = ""
        clinician.user.save(update_fields=["email"])
    alert = raise_red(rw)  # red pages by webhook only if a webhook is set: none here
    sweep(T0 + dt.timedelta(minutes=5))
    alert.refresh_from_db()
    assert (alert.escalation_level, alert.escalation_repeat) == (2, 0)  # care team skipped
    assert AlertTransition.objects.filter(note_code="escalation_skipped:care_team").exists()


def test_a_new_alert_goes_to_an_active_treating_clinician_else_the_on_call(rw):
    assert raise_red(rw).assigned_to_id == rw.clinician.pk
    Alert.objects.update(state="resolved")
    _deactivate(rw.clinician)
    with freeze_time(T0):
        (result,) = services.signal_evaluate(
            patient=rw.patient, event=HelpPressed(local_date=T0.date(), help_request_id="press-2")
        )
    alert = result.alert
    assert alert.assigned_to_id == rw.on_call.pk
    # level 0 ("treating clinician", i.e. the assignee) reaches the on-call, not the inactive one
    assert recipients(alert, 0, 0) == {str(rw.on_call.user_id)}


def test_an_inactive_assignee_falls_back_to_the_treating_clinician(rw):
    alert = raise_red(rw)
    Alert.objects.filter(pk=alert.pk).update(assigned_to=rw.member)
    _deactivate(rw.member)
    EscalationPolicy.objects.filter(pk=rw.policy.pk).update(
        chain=[{"target": "treating_clinician", "delay_minutes": 5, "repeat": 1}]
    )
    sweep(T0 + dt.timedelta(minutes=5))
    assert recipients(alert, 0, 1) == {str(rw.clinician.user_id)}


def test_manual_escalation_skips_a_level_of_inactive_clinicians(rw):
    alert = raise_red(rw)
    _deactivate(rw.member)
    rw.clinician.user.email = ""  # the treating clinician is the care team's other member
    rw.clinician.user.save(update_fields=["email"])
    with freeze_time(T0 + dt.timedelta(minutes=1)):
        services.alert_escalate_manual(actor=actor_for(rw.on_call), alert_id=alert.pk)
    alert.refresh_from_db()
    assert alert.escalation_level == 2  # on call, not the unreachable care team
    _deactivate(rw.lead)
    with pytest.raises(AlertTransitionInvalid):  # the lead's level has nobody either
        services.alert_escalate_manual(actor=actor_for(rw.on_call), alert_id=alert.pk)


def test_a_clinic_configures_its_deadlines_and_chain(rw):
    rw.policy.orange_ack_minutes = 12
    rw.policy.chain = [
        {"target": "treating_clinician", "delay_minutes": 3, "repeat": 2},
        {"target": "clinical_lead", "delay_minutes": 7, "repeat": 0},
    ]
    rw.policy.save()
    with freeze_time(T0):
        (result,) = services.signal_evaluate(
            patient=rw.patient,
            event=QuestionnaireScored(
                local_date=T0.date(), response_id="r1", instrument="phq9", total=4, item9=1
            ),
        )
    alert = result.alert
    assert alert.ack_deadline == T0 + dt.timedelta(minutes=12)
    steps = []
    for minute in (12, 15, 18, 25):
        sweep(T0 + dt.timedelta(minutes=minute))
        alert.refresh_from_db()
        steps.append((alert.escalation_level, alert.escalation_repeat))
    assert steps == [(0, 1), (0, 2), (1, 0), (0, 0)]  # after the lead: round 2 from the top
    alert.refresh_from_db()
    assert alert.escalation_round == 1
    assert alert.next_escalation_at == T0 + dt.timedelta(minutes=25 + 12)  # orange's 12 minutes


@pytest.mark.parametrize(
    ("raised_local", "closed", "expected_local"),
    [
        # Tuesday afternoon -> Wednesday 10:00.
        ("2025-06-10T15:00", [], "2025-06-11T10:00"),
        # Tuesday 02:00 -> still the next working day, Wednesday 10:00.
        ("2025-06-10T02:00", [], "2025-06-11T10:00"),
        # Friday -> Monday; the clocks went forward on Sunday 9 March (EST -> EDT).
        ("2025-03-07T15:00", [], "2025-03-10T10:00"),
        # Saturday -> Monday.
        ("2025-06-14T09:00", [], "2025-06-16T10:00"),
        # Thursday 3 July; the clinic is closed on Friday the 4th: Monday 7 July.
        ("2025-07-03T16:00", ["2025-07-04"], "2025-07-07T10:00"),
        # Friday before the clocks go back (2 November): Monday 10:00 EST.
        ("2025-10-31T11:00", [], "2025-11-03T10:00"),
    ],
)
def test_yellow_is_due_the_next_working_day_at_ten_clinic_time(
    rw, raised_local, closed, expected_local
):
    tz = zoneinfo.ZoneInfo("America/New_York")  # the test clinic's zone
    assert rw.world.clinic.timezone == "America/New_York"
    rw.policy.non_working_dates = closed
    raised = dt.datetime.fromisoformat(raised_local).replace(tzinfo=tz)
    deadline = services.ack_deadline(tier="yellow", policy=rw.policy, raised_at=raised)
    assert deadline == dt.datetime.fromisoformat(expected_local).replace(tzinfo=tz)
    assert deadline.astimezone(tz).strftime("%H:%M") == "10:00"


def test_a_yellow_alert_escalates_after_its_working_day_deadline(rw):
    raised = dt.datetime(2025, 3, 7, 20, 0, tzinfo=dt.UTC)  # Friday 15:00 in New York
    with freeze_time(raised):
        (result,) = services.signal_evaluate(
            patient=rw.patient,
            event=CrisisLanguage(
                local_date=raised.date(), category="passive_ideation", source="text", source_ref="d"
            ),
        )
    alert = result.alert
    monday_ten = dt.datetime(2025, 3, 10, 14, 0, tzinfo=dt.UTC)  # 10:00 EDT
    assert alert.ack_deadline == monday_ten
    assert sweep(monday_ten - dt.timedelta(minutes=1))["escalated"] == 0
    assert sweep(monday_ten)["escalated"] == 1
    alert.refresh_from_db()
    assert alert.escalation_level == 1


def _until_restart(alert: Alert, limit: int = 20) -> list[tuple[int, int]]:
    """Sweep at each next deadline until a new round starts; the steps taken on the way."""
    steps = []
    start = alert.escalation_round
    for _ in range(limit):
        alert.refresh_from_db()
        if alert.escalation_round != start:
            return steps
        assert alert.next_escalation_at is not None, "the escalation went quiet"
        assert sweep(alert.next_escalation_at)["escalated"] == 1
        alert.refresh_from_db()
        steps.append((alert.escalation_level, alert.escalation_repeat))
    raise AssertionError("no new round")


def test_an_unacknowledged_alert_keeps_escalating_round_after_round(rw):
    alert = raise_red(rw)
    for expected_round in (1, 2, 3):
        _until_restart(alert)
        alert.refresh_from_db()
        assert (alert.state, alert.escalation_round) == ("open", expected_round)
        assert alert.next_escalation_at is not None
        # each round reaches the lead again, under its own keys
        assert OutboxMessage.objects.filter(
            alert=alert,
            idempotency_key__endswith=f":r{expected_round - 1}.3.2"
            if expected_round > 1
            else ":3.2",
        ).exists()
    assert (
        AlertTransition.objects.filter(alert=alert, note_code="escalation_restarted").count() == 3
    )


def test_a_restarted_round_does_not_message_the_emergency_contact_again(rw):
    rw.policy.emergency_contact_tiers = ["red"]
    rw.policy.save()
    calls = []
    original = services._notify_emergency_contact
    services._notify_emergency_contact = lambda **kw: calls.append(kw)  # type: ignore[assignment]
    try:
        alert = raise_red(rw)
        assert len(calls) == 1
        _until_restart(alert)
    finally:
        services._notify_emergency_contact = original  # type: ignore[assignment]
    assert len(calls) == 1


def test_a_yellow_alert_restarts_its_chain_the_next_working_day(rw):
    raised = dt.datetime(2025, 3, 7, 20, 0, tzinfo=dt.UTC)  # Friday 15:00 in New York
    with freeze_time(raised):
        (result,) = services.signal_evaluate(
            patient=rw.patient,
            event=CrisisLanguage(
                local_date=raised.date(), category="passive_ideation", source="text", source_ref="d"
            ),
        )
    alert = result.alert
    assert alert.tier == "yellow"
    _until_restart(alert)
    alert.refresh_from_db()
    tuesday_ten = dt.datetime(2025, 3, 11, 14, 0, tzinfo=dt.UTC)  # 10:00 EDT
    assert alert.escalation_round == 1
    assert alert.next_escalation_at == tuesday_ten  # once a working day, not all night


def test_without_a_policy_row_the_default_chain_still_repeats(rw):
    EscalationPolicy.objects.filter(pk=rw.policy.pk).delete()  # no on call, no lead
    alert = raise_red(rw)
    assert recipients(alert, 0, 0) == {str(rw.clinician.user_id)}
    steps = _until_restart(alert)
    assert steps == [(1, 0), (1, 1), (0, 0)]  # on call and lead skipped, then a new round
    alert.refresh_from_db()
    assert alert.escalation_round == 1 and alert.next_escalation_at is not None
    skipped = set(
        AlertTransition.objects.filter(note_code__startswith="escalation_skipped").values_list(
            "note_code", flat=True
        )
    )
    assert skipped == {"escalation_skipped:on_call", "escalation_skipped:clinical_lead"}


def _no_address(*clinicians) -> None:
    for clinician in clinicians:
        clinician.user.email = ""
        clinician.user.save(update_fields=["email"])


def test_with_nobody_reachable_the_alert_is_flagged_and_rechecked_every_sweep(rw, client, caplog):
    _no_address(rw.clinician, rw.member, rw.on_call, rw.lead)
    alert = raise_red(rw)
    due = T0 + dt.timedelta(minutes=5)
    with caplog.at_level("ERROR", logger="vigil.risk"):
        assert sweep(due)["escalated"] == 1
    alert.refresh_from_db()
    assert alert.state == "open" and alert.unreachable_since == due
    assert alert.next_escalation_at == due + services.UNREACHABLE_RECHECK
    assert AlertTransition.objects.filter(alert=alert, note_code="escalation_unreachable").exists()
    assert AccessEvent.objects.filter(
        action="alert.escalation_unreachable", resource_id=str(alert.pk)
    ).exists()
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    message = record.getMessage()
    assert str(alert.pk) in message and "reachable" in message
    assert rw.patient.pseudonym not in message and str(rw.patient.pk) not in message
    with freeze_time(due):
        body = client.get("/readyz").json()
    assert (body["status"], body["checks"]["escalation"]) == ("degraded", "degraded")

    # Re-checked on every sweep, recorded once (no transition per sweep).
    later = due + services.UNREACHABLE_RECHECK
    assert sweep(later)["escalated"] == 1
    alert.refresh_from_db()
    assert alert.next_escalation_at == later + services.UNREACHABLE_RECHECK
    transitions = AlertTransition.objects.filter(alert=alert)
    assert transitions.filter(note_code="escalation_unreachable").count() == 1
    count = transitions.count()

    # The clinical lead gets an address: the next sweep starts a new round and reaches them.
    rw.lead.user.email = "lead@clinic.test"
    rw.lead.user.save(update_fields=["email"])
    now = later + services.UNREACHABLE_RECHECK
    assert sweep(now)["escalated"] == 1
    alert.refresh_from_db()
    assert alert.unreachable_since is None and alert.escalation_round == 1
    assert alert.next_escalation_at == now  # level 0 has nobody: straight on
    assert transitions.count() == count + 1  # escalation_restarted
    assert sweep(now)["escalated"] == 1
    alert.refresh_from_db()
    assert (alert.escalation_level, alert.escalation_repeat) == (3, 0)
    assert OutboxMessage.objects.filter(
        alert=alert, recipient_id=str(rw.lead.user_id), idempotency_key__endswith=":r1.3.0"
    ).exists()
    assert client.get("/readyz").json()["checks"]["escalation"] == "ok"


def test_readiness_is_ok_without_stalled_alerts(rw, client):
    raise_red(rw)
    with freeze_time(T0):  # its notifications are due now, not overdue (test_escalation_health)
        body = client.get("/readyz").json()
    assert (body["status"], body["checks"]["escalation"]) == ("ok", "ok")


def test_policy_validation(rw):
    from django.core.exceptions import ValidationError

    rw.policy.chain = [{"target": "the_moon", "delay_minutes": 5, "repeat": 0}]
    with pytest.raises(ValidationError):
        rw.policy.full_clean()
    rw.policy.chain = [{"target": "care_team", "delay_minutes": 0, "repeat": 0}]
    with pytest.raises(ValidationError):
        rw.policy.full_clean()
    rw.policy.chain = [{"target": "care_team", "delay_minutes": 5, "repeat": 0}]
    rw.policy.on_call = rw.world.clinician
    rw.policy.full_clean()


def test_the_defaults_are_within_the_policy_bounds(rw):
    EscalationPolicy(organisation=rw.world.clinic).full_clean(exclude=["organisation"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("red_ack_minutes", 10**6),
        ("red_ack_minutes", 16),
        ("orange_ack_minutes", 4),
        ("orange_ack_minutes", 241),
        ("yellow_ack_time", dt.time(23, 0)),
        ("chain", [{"target": "care_team", "delay_minutes": 241, "repeat": 0}]),
    ],
)
def test_the_policy_service_refuses_values_out_of_bounds_and_saves_nothing(rw, field, value):
    from risk.errors import EscalationPolicyInvalid
    from risk.models import PolicyChange

    policy = EscalationPolicy.objects.get(pk=rw.policy.pk)
    setattr(policy, field, value)
    with pytest.raises(EscalationPolicyInvalid) as refused:
        services.escalation_policy_save(actor=actor_for(rw.lead), policy=policy)
    assert field in refused.value.extra["fields"]
    stored = EscalationPolicy.objects.get(pk=rw.policy.pk)
    assert (stored.red_ack_minutes, stored.orange_ack_minutes) == (5, 30)
    assert stored.yellow_ack_time == dt.time(10, 0) and stored.chain == rw.policy.chain
    assert not PolicyChange.objects.exists()
    assert not AccessEvent.objects.filter(action="risk.policy_change").exists()


def test_a_policy_change_records_who_when_before_and_after(rw):
    from risk.models import PolicyChange

    policy = EscalationPolicy.objects.get(pk=rw.policy.pk)
    policy.red_ack_minutes = 3
    policy.chain = [{"target": "on_call", "delay_minutes": 10, "repeat": 0}]
    at = T0 + dt.timedelta(days=1)
    with freeze_time(at):
        services.escalation_policy_save(actor=actor_for(rw.lead), policy=policy)
    change = PolicyChange.objects.get()
    assert (change.actor_id, change.organisation_id, change.created_at) == (
        rw.lead.user_id,
        rw.world.clinic.pk,
        at,
    )
    assert change.before["red_ack_minutes"] == 5 and change.after["red_ack_minutes"] == 3
    assert change.before["chain"] == rw.policy.chain
    assert change.after["chain"] == policy.chain
    assert change.after["on_call_id"] == rw.on_call.pk
    assert change.after["yellow_ack_time"] == "10:00"
    event = AccessEvent.objects.get(action="risk.policy_change")
    assert event.actor_id == rw.lead.user_id and event.resource_id == str(policy.pk)
    assert "chain" in event.purpose and "red_ack_minutes" in event.purpose
    # a clinic's first policy: before is empty
    EscalationPolicy.objects.all().delete()
    services.escalation_policy_save(
        actor=actor_for(rw.lead), policy=EscalationPolicy(organisation=rw.world.clinic)
    )
    assert PolicyChange.objects.order_by("id").last().before == {}


# --- level 0 with nobody reachable, the chain's first level, the first reachable treating -------
def raise_orange(rw, at: dt.datetime = T0, ref: str = "r1") -> Alert:
    with freeze_time(at):
        (result,) = services.signal_evaluate(
            patient=rw.patient,
            event=QuestionnaireScored(
                local_date=at.date(), response_id=ref, instrument="phq9", total=4, item9=1
            ),
        )
    return result.alert


def test_a_new_alert_with_nobody_reachable_at_level_0_moves_on_at_the_next_sweep(rw):
    _deactivate(rw.clinician)  # the treating clinician left the clinic
    _no_address(rw.on_call)  # the assignee it falls back to has no address
    alert = raise_orange(rw)
    assert alert.assigned_to_id == rw.on_call.pk
    assert alert.ack_deadline == T0 + dt.timedelta(minutes=30)
    assert alert.next_escalation_at == T0  # not after the 30-minute deadline
    assert sweep(T0 + dt.timedelta(seconds=30))["escalated"] == 1  # the very next sweep
    alert.refresh_from_db()
    assert (alert.escalation_level, alert.escalation_repeat) == (1, 0)
    assert recipients(alert, 1, 0) == {str(rw.member.user_id)}  # the care team's active member
    assert alert.ack_deadline == T0 + dt.timedelta(minutes=30)  # the deadline itself stays


def test_a_reopened_alert_with_nobody_reachable_at_level_0_moves_on_at_the_next_sweep(rw):
    alert = raise_orange(rw)
    with freeze_time(T0 + dt.timedelta(minutes=1)):
        services.alert_acknowledge(actor=actor_for(rw.clinician), alert_id=alert.pk)
    _deactivate(rw.clinician)
    _no_address(rw.on_call)
    reopened_at = T0 + dt.timedelta(hours=2)
    raise_orange(rw, at=reopened_at, ref="r2")  # PHQ-9 item 9 again: deterministic, re-arms
    alert.refresh_from_db()
    assert (alert.state, alert.escalation_round) == ("open", 1)
    assert alert.ack_deadline == reopened_at + dt.timedelta(minutes=30)
    assert alert.next_escalation_at == reopened_at
    assert sweep(reopened_at + dt.timedelta(seconds=30))["escalated"] == 1
    alert.refresh_from_db()
    assert (alert.escalation_level, alert.escalation_repeat) == (1, 0)
    assert OutboxMessage.objects.filter(
        alert=alert, recipient_id=str(rw.member.user_id), idempotency_key__endswith=":r1.1.0"
    ).exists()


def test_a_new_alert_with_nobody_reachable_anywhere_is_flagged_at_the_next_sweep(rw, client):
    _no_address(rw.clinician, rw.member, rw.on_call, rw.lead)
    alert = raise_orange(rw)
    assert alert.next_escalation_at == T0
    soon = T0 + dt.timedelta(seconds=30)
    assert sweep(soon)["escalated"] == 1
    alert.refresh_from_db()
    assert alert.unreachable_since == soon  # not half an hour later
    with freeze_time(soon):
        assert client.get("/readyz").json()["checks"]["escalation"] == "degraded"


def test_the_chain_s_first_level_is_notified_with_the_treating_clinician_every_round(rw):
    rw.policy.chain = [
        {"target": "on_call", "delay_minutes": 10, "repeat": 0},
        {"target": "clinical_lead", "delay_minutes": 10, "repeat": 0},
    ]
    rw.policy.save()
    alert = raise_orange(rw)
    assert recipients(alert, 0, 0) == {str(rw.clinician.user_id), str(rw.on_call.user_id)}
    assert alert.next_escalation_at == alert.ack_deadline
    _until_restart(alert)
    _until_restart(alert)
    _until_restart(alert)
    on_call_keys = set(
        OutboxMessage.objects.filter(
            alert=alert, recipient_id=str(rw.on_call.user_id), level=0
        ).values_list("idempotency_key", flat=True)
    )
    assert {key.rsplit(":", 1)[1] for key in on_call_keys} == {"0.0", "r1.0.0", "r2.0.0", "r3.0.0"}
    keys = list(OutboxMessage.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == len(set(keys))


def test_level_0_counts_as_reachable_through_the_chain_s_first_level(rw):
    rw.policy.chain = [
        {"target": "care_team", "delay_minutes": 10, "repeat": 0},
        {"target": "clinical_lead", "delay_minutes": 10, "repeat": 0},
    ]
    rw.policy.save()
    _no_address(rw.clinician)  # the treating clinician cannot be reached, the team's member can
    alert = raise_orange(rw)
    assert recipients(alert, 0, 0) == {str(rw.clinician.user_id), str(rw.member.user_id)}
    assert alert.next_escalation_at == alert.ack_deadline  # somebody was reached: wait


def test_the_treating_level_reaches_the_treating_clinician_past_an_unreachable_assignee(rw):
    alert = raise_red(rw)
    Alert.objects.filter(pk=alert.pk).update(assigned_to=rw.member)
    _no_address(rw.member)  # active, but nothing can reach them (no webhook configured)
    EscalationPolicy.objects.filter(pk=rw.policy.pk).update(
        chain=[{"target": "treating_clinician", "delay_minutes": 5, "repeat": 1}]
    )
    sweep(T0 + dt.timedelta(minutes=5))
    alert.refresh_from_db()
    assert (alert.escalation_round, alert.escalation_level, alert.escalation_repeat) == (0, 0, 1)
    assert recipients(alert, 0, 1) == {str(rw.clinician.user_id)}
    assert not AlertTransition.objects.filter(
        alert=alert, note_code="escalation_skipped:treating_clinician"
    ).exists()
