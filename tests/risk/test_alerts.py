"""Alerts from the producers that exist today (questionnaires, the help button) and from typed
events: deterministic triggers, de-duplication, supersession, the lifecycle, consent."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import PermissionDenied
from privacy.audit import Actor
from privacy.consent import consent_change
from privacy.fields import Sealed
from privacy.models import AccessEvent
from risk import intake, services
from risk.errors import AlertTransitionInvalid, ResolutionIncomplete, RuleSetInvalid
from risk.models import Alert, AlertEvidence, AlertTransition, OutboxMessage, RuleSetChange
from risk.rules.engine import (
    CrisisLanguage,
    DailyMood,
    HelpPressed,
    MediaDistress,
    ModelAssessment,
)
from risk.rules.loader import rule_sets
from screening.models import DiaryEntry
from screening.services.people import emergency_contact_set
from tests.risk.conftest import actor_for, phq9, submit_phq9

TODAY = dt.date(2025, 6, 10)


def crisis(category: str = "passive_ideation", *, ref: str = "diary-1", day: dt.date = TODAY):
    return CrisisLanguage(local_date=day, category=category, source="text", source_ref=ref)


def active(patient) -> list[Alert]:
    return list(Alert.objects.filter(patient=patient, state__in=["open", "acknowledged"]))


# --- deterministic triggers from questionnaires --------------------------------------------------
def test_phq9_item9_raises_an_orange_alert_with_the_submission(rw):
    response = submit_phq9(rw.patient, phq9(3, 1))
    alert = Alert.objects.get()
    assert (alert.tier, alert.state, alert.rule_id) == ("orange", "open", "phq9_item9")
    assert alert.assigned_to == rw.clinician
    default = settings.VIGIL_RISK_RULE_SET_DEFAULT  # v3 (test_corroboration_window pins it)
    assert alert.rule_set_version == default
    assert alert.rule_set_hash == rule_sets()[default].sha256
    assert alert.local_date == response.local_date
    # Evidence: encrypted at rest; ids and scores only (not the answers).
    assert isinstance(Alert.objects.values_list("evidence", flat=True).get(), Sealed)
    evidence = Alert.objects.get().evidence
    assert evidence["event"]["response_id"] == str(response.pk)
    assert evidence["event"]["item9"] == 1
    assert "answers" not in str(evidence)
    assert evidence["rule_set"]["version"] == default
    assert AlertEvidence.objects.get().dedupe_key == f"phq9_item9:{response.pk}"
    assert [t.note_code for t in AlertTransition.objects.filter(alert=alert)] == ["raised"]
    assert AccessEvent.objects.filter(action="alert.raise", resource_id=str(alert.pk)).exists()
    # Notified: the treating clinician, by e-mail (no webhook configured in tests).
    assert list(OutboxMessage.objects.values_list("recipient_id", "channel", "level")) == [
        (str(rw.clinician.user_id), "email", 0)
    ]


@pytest.mark.parametrize(("total", "expected"), [(19, None), (20, "phq9_total"), (27, None)])
def test_phq9_total_20_fires_and_19_does_not(rw, total, expected):
    item9 = 0 if total < 27 else 3
    submit_phq9(rw.patient, phq9(total, item9))
    rules = set(Alert.objects.values_list("rule_id", flat=True))
    if total == 27:  # item 9 fires too; one orange alert holds both
        assert rules == {"phq9_item9"}
        assert set(AlertEvidence.objects.values_list("rule_id", flat=True)) == {
            "phq9_item9",
            "phq9_total",
        }
    else:
        assert rules == ({expected} if expected else set())


def test_a_model_saying_low_risk_cannot_suppress_item9(rw):
    patient = rw.patient
    low = ModelAssessment(
        local_date=TODAY, model="risk-lm", model_version="1", source_ref="q", suggested_tier=None
    )
    intake.signal_received(patient=patient, event=low)  # before: nothing to suppress with
    submit_phq9(patient, phq9(1, 1))
    intake.signal_received(patient=patient, event=low)  # after: nothing is lowered or closed
    alert = Alert.objects.get()
    assert (alert.tier, alert.state, alert.rule_id) == ("orange", "open", "phq9_item9")
    assert alert.evidence_items.count() == 1


def test_a_replayed_submission_raises_nothing_twice(rw):
    key = uuid.uuid4()
    submit_phq9(rw.patient, phq9(5, 2), key=key)
    submit_phq9(rw.patient, phq9(5, 2), key=key)
    assert Alert.objects.count() == 1 and AlertEvidence.objects.count() == 1


def test_a_failing_risk_engine_fails_the_submission_rather_than_losing_the_trigger(rw, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("risk engine down")

    monkeypatch.setattr(services, "signal_evaluate", broken)
    with pytest.raises(RuntimeError):
        submit_phq9(rw.patient, phq9(3, 1))
    from screening.models import QuestionnaireResponse

    assert not QuestionnaireResponse.objects.exists()  # the app retries with the same key


# --- duplicates and supersession -----------------------------------------------------------------
def test_duplicate_signals_collapse_into_one_alert_with_more_evidence(rw):
    patient = rw.patient
    first = submit_phq9(patient, phq9(2, 1))
    second = submit_phq9(patient, phq9(4, 2))
    intake.signal_received(patient=patient, event=crisis("passive_ideation"))  # yellow joins
    alert = Alert.objects.get()
    assert alert.tier == "orange"
    assert list(alert.evidence_items.values_list("dedupe_key", flat=True)) == [
        f"phq9_item9:{first.pk}",
        f"phq9_item9:{second.pk}",
        "crisis_single:crisis_language:text:diary-1:passive_ideation",
    ]
    # The very same signal again adds nothing.
    intake.signal_received(patient=patient, event=crisis("passive_ideation"))
    services.questionnaire_alert(response=first)
    assert alert.evidence_items.count() == 3
    assert OutboxMessage.objects.count() == 1


def test_crisis_alone_is_yellow_and_distress_the_same_day_makes_it_orange(rw):
    patient = rw.patient
    (raised,) = intake.signal_received(patient=patient, event=crisis())
    yellow = raised.alert
    assert (yellow.tier, yellow.rule_id) == ("yellow", "crisis_single")
    results = intake.signal_received(
        patient=patient, event=MediaDistress(local_date=TODAY, video_id="video-1", score=0.85)
    )
    orange = results[0].alert
    assert (orange.tier, orange.rule_id, results[0].created) == (
        "orange",
        "crisis_double_verified",
        True,
    )
    yellow.refresh_from_db()
    assert yellow.state == "superseded" and yellow.superseded_by == orange  # linked, not lost
    assert list(orange.supersedes.all()) == [yellow]
    assert yellow.evidence_items.count() == 1
    assert AlertTransition.objects.filter(alert=yellow).last().note_code == "superseded:orange"
    assert active(patient) == [orange]
    assert orange.evidence["crisis"]["source_id"] == "text:diary-1"
    assert orange.evidence["corroboration"]["source_id"] == "video-1"


def test_distress_on_another_local_day_leaves_crisis_yellow_in_v2(rw):
    # v1/v2: the same local day only (v3's window: tests/risk/test_corroboration_window.py).
    services.rule_set_select(
        actor=Actor.system(), organisation=rw.world.clinic, version="v2", threshold_overrides={}
    )
    patient = rw.patient
    intake.signal_received(patient=patient, event=crisis(day=TODAY))
    intake.signal_received(
        patient=patient,
        event=MediaDistress(
            local_date=TODAY + dt.timedelta(days=1), video_id="video-2", score=0.95
        ),
    )
    assert [(a.tier, a.state) for a in Alert.objects.all()] == [("yellow", "open")]


def test_a_low_fused_mood_the_same_day_also_confirms_crisis(rw):
    patient = rw.patient
    mood = DailyMood(
        local_date=TODAY, score=-6.5, modalities=("diary_text", "self_rated"), independent_score=-7
    )
    intake.signal_received(patient=patient, event=mood)
    (orange, _yellow) = intake.signal_received(patient=patient, event=crisis("active_ideation"))
    assert orange.alert.tier == "orange" and orange.created
    assert Alert.objects.count() == 1  # the yellow firing joined the orange alert


@pytest.mark.parametrize("mood_first", [True, False])
def test_a_crisis_text_alone_is_not_confirmed_by_the_mood_made_from_it(rw, mood_first):
    # The day's only input is the diary text: the fused mood is that text's, however low.
    text_only = DailyMood(local_date=TODAY, score=-9, confidence=0.3, modalities=("diary_text",))
    events = [crisis("passive_ideation"), text_only]
    for event in reversed(events) if mood_first else events:
        intake.signal_received(patient=rw.patient, event=event)
    assert [(a.tier, a.rule_id) for a in active(rw.patient)] == [("yellow", "crisis_single")]
    assert not OutboxMessage.objects.filter(recipient_kind="emergency_contact").exists()


@pytest.mark.parametrize(
    "second",
    [
        # a low self-rated mood the same day (the diary text and the rating fused)
        DailyMood(
            local_date=TODAY,
            score=-8.5,
            modalities=("diary_text", "self_rated"),
            independent_score=-8,
        ),
        # a distress video the same day
        MediaDistress(local_date=TODAY, video_id="video-1", score=0.9),
    ],
    ids=["self_rated", "video"],
)
def test_the_same_text_with_an_independent_second_signal_goes_orange(rw, second):
    intake.signal_received(patient=rw.patient, event=crisis("passive_ideation"))
    intake.signal_received(patient=rw.patient, event=second)
    (alert,) = active(rw.patient)
    assert (alert.tier, alert.rule_id) == ("orange", "crisis_double_verified")
    assert alert.evidence["corroboration"]["kind"] == second.kind


def test_three_low_days_raise_yellow_from_stored_state(rw):
    patient = rw.patient
    for offset, score in ((0, -7), (2, -6.5)):
        day = TODAY + dt.timedelta(days=offset)
        assert (
            intake.signal_received(patient=patient, event=DailyMood(local_date=day, score=score))
            == []
        )
    # The middle day arrives last (a late submission): the streak is complete.
    (result,) = intake.signal_received(
        patient=patient, event=DailyMood(local_date=TODAY + dt.timedelta(days=1), score=-8)
    )
    assert (result.alert.tier, result.alert.rule_id) == ("yellow", "low_mood_streak")
    assert result.alert.evidence["days"] == ["2025-06-10", "2025-06-11", "2025-06-12"]


def test_a_lower_tier_signal_joins_an_active_higher_alert(rw):
    patient = rw.patient
    intake.signal_received(
        patient=patient, event=HelpPressed(local_date=TODAY, help_request_id="press-1")
    )
    submit_phq9(patient, phq9(1, 1))
    alert = Alert.objects.get()
    assert alert.tier == "red"
    assert list(alert.evidence_items.values_list("rule_id", flat=True)) == [
        "help_button",
        "phq9_item9",
    ]
    # An open alert under its deadline keeps it (and its chain); the attachment is recorded.
    assert (alert.state, alert.escalation_round) == ("open", 0)
    codes = list(AlertTransition.objects.filter(alert=alert).values_list("note_code", flat=True))
    assert codes == ["raised", "evidence_attached"]


def test_one_active_alert_per_patient_and_tier_is_a_database_constraint(rw):
    submit_phq9(rw.patient, phq9(1, 1))
    alert = Alert.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(
            patient=rw.patient,
            organisation=rw.world.clinic,
            tier="orange",
            rule_set_version="v1",
            rule_set_hash="x",
            rule_id="phq9_total",
            evidence={},
            local_date=alert.local_date,
            ack_deadline=timezone.now(),
        )


def test_after_resolution_a_new_trigger_opens_a_new_alert(rw):
    submit_phq9(rw.patient, phq9(1, 1))
    first = Alert.objects.get()
    services.alert_resolve(
        actor=actor_for(rw.clinician),
        alert_id=first.pk,
        disposition="contacted_patient",
        note="Called, safe.",
    )
    submit_phq9(rw.patient, phq9(2, 1))
    assert Alert.objects.count() == 2
    assert [a.state for a in Alert.objects.order_by("created_at")] == ["resolved", "open"]


# --- lifecycle -----------------------------------------------------------------------------------
def test_acknowledge_then_resolve_with_disposition_and_note(rw):
    submit_phq9(rw.patient, phq9(1, 1))
    alert = Alert.objects.get()
    actor = actor_for(rw.clinician)
    services.alert_acknowledge(actor=actor, alert_id=alert.pk)
    alert.refresh_from_db()
    assert alert.state == "acknowledged" and alert.acknowledged_by_id == rw.clinician.user_id
    assert alert.next_escalation_at is None
    with pytest.raises(AlertTransitionInvalid):
        services.alert_acknowledge(actor=actor, alert_id=alert.pk)

    with pytest.raises(ResolutionIncomplete) as missing:
        services.alert_resolve(actor=actor, alert_id=alert.pk, disposition="", note="  ")
    assert set(missing.value.extra["fields"]) == {"disposition", "note"}
    with pytest.raises(ResolutionIncomplete) as no_note:
        services.alert_resolve(
            actor=actor, alert_id=alert.pk, disposition="false_positive", note=""
        )
    assert set(no_note.value.extra["fields"]) == {"note"}

    services.alert_resolve(
        actor=actor,
        alert_id=alert.pk,
        disposition="safety_plan_reviewed",
        note="Reviewed the safety plan by phone.",
    )
    alert = Alert.objects.get()
    assert (alert.state, alert.disposition) == ("resolved", "safety_plan_reviewed")
    assert alert.resolution_note == "Reviewed the safety plan by phone."
    assert isinstance(Alert.objects.values_list("resolution_note", flat=True).get(), Sealed)
    transitions = list(
        AlertTransition.objects.filter(alert=alert).values_list(
            "from_state", "to_state", "note_code", "actor_id"
        )
    )
    assert transitions == [
        ("", "open", "raised", None),
        ("open", "acknowledged", "acknowledged", rw.clinician.user_id),
        ("acknowledged", "resolved", "resolved:safety_plan_reviewed", rw.clinician.user_id),
    ]
    actions = set(
        AccessEvent.objects.filter(resource_id=str(alert.pk)).values_list("action", flat=True)
    )
    assert {"alert.raise", "alert.acknowledge", "alert.resolve"} <= actions
    with pytest.raises(AlertTransitionInvalid):
        services.alert_resolve(actor=actor, alert_id=alert.pk, disposition="other", note="again")


def test_resolving_an_open_alert_records_its_acknowledgement_first(rw):
    submit_phq9(rw.patient, phq9(1, 1))
    alert = Alert.objects.get()
    services.alert_resolve(
        actor=actor_for(rw.member), alert_id=alert.pk, disposition="contacted_patient", note="ok"
    )
    codes = list(AlertTransition.objects.filter(alert=alert).values_list("note_code", flat=True))
    assert codes == ["raised", "acknowledged", "resolved:contacted_patient"]


def test_only_the_patients_clinicians_may_handle_an_alert(rw):
    submit_phq9(rw.patient, phq9(1, 1))
    alert = Alert.objects.get()
    with pytest.raises(PermissionDenied):
        services.alert_acknowledge(actor=actor_for(rw.world.colleague), alert_id=alert.pk)
    with pytest.raises(PermissionDenied):
        services.alert_acknowledge(actor=Actor.system(), alert_id=alert.pk)
    denied = AccessEvent.objects.filter(action="alert.acknowledge", outcome="denied")
    assert denied.count() == 2
    assert Alert.objects.get().state == "open"
    services.alert_acknowledge(actor=actor_for(rw.on_call), alert_id=alert.pk)  # on call: yes
    assert Alert.objects.get().state == "acknowledged"


# --- re-arming: red or deterministic evidence on an alert nobody is watching ----------------------
def _help(rw, press: str, day: dt.date = TODAY) -> None:
    intake.signal_received(
        patient=rw.patient, event=HelpPressed(local_date=day, help_request_id=press)
    )


def _user_rows(alert: Alert, step: str) -> set[str]:
    return set(
        OutboxMessage.objects.filter(
            alert=alert, recipient_kind="user", idempotency_key__endswith=f":{step}"
        ).values_list("recipient_id", flat=True)
    )


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_plan_language_on_an_acknowledged_red_alert_reopens_it(rw, version):
    # v1 (crisis_imminent not marked deterministic) and v2 alike: a red firing re-arms.
    services.rule_set_select(
        actor=Actor.system(), organisation=rw.world.clinic, version=version, threshold_overrides={}
    )
    _help(rw, "press-1")
    alert = Alert.objects.get()
    services.alert_acknowledge(actor=actor_for(rw.clinician), alert_id=alert.pk)
    before = timezone.now()
    (result,) = intake.signal_received(
        patient=rw.patient,
        event=crisis("imminent_intent", ref="diary-9", day=TODAY + dt.timedelta(days=3)),
    )
    assert result.attached and result.alert.pk == alert.pk
    alert.refresh_from_db()
    assert alert.state == "open"
    assert (alert.escalation_level, alert.escalation_repeat, alert.escalation_round) == (0, 0, 1)
    assert alert.acknowledged_at is None
    # a fresh red deadline (5 minutes), and the chain runs again from level 0
    assert before + dt.timedelta(minutes=4) < alert.ack_deadline
    assert alert.ack_deadline <= timezone.now() + dt.timedelta(minutes=5)
    assert alert.next_escalation_at == alert.ack_deadline
    codes = list(AlertTransition.objects.filter(alert=alert).values_list("note_code", flat=True))
    assert codes == ["raised", "acknowledged", "evidence_attached", "reopened"]
    # notified as a new red alert: the treating clinician and the on-call clinician, new keys
    assert _user_rows(alert, "r1.0.0") == {str(rw.clinician.user_id), str(rw.on_call.user_id)}
    assert (
        OutboxMessage.objects.filter(alert=alert, idempotency_key__endswith=":r1.0.0")
        .filter(state="pending")
        .count()
        == 2
    )
    assert AccessEvent.objects.filter(action="alert.reopen", resource_id=str(alert.pk)).exists()
    # and nobody acknowledging it now escalates it (new rows, not the first round's)
    counts = services.escalation_sweep(now=timezone.now() + dt.timedelta(minutes=6))
    assert counts["escalated"] == 1
    assert _user_rows(alert, "r1.1.0") == {str(rw.clinician.user_id), str(rw.member.user_id)}


def test_a_second_help_press_on_an_acknowledged_alert_reopens_it_for_an_active_clinician(rw):
    _help(rw, "press-1")
    alert = Alert.objects.get()
    services.alert_acknowledge(actor=actor_for(rw.clinician), alert_id=alert.pk)
    rw.clinician.user.is_active = False  # the treating clinician left the clinic
    rw.clinician.user.save()
    _help(rw, "press-2", TODAY + dt.timedelta(days=2))
    alert.refresh_from_db()
    assert alert.state == "open" and alert.next_escalation_at is not None
    assert alert.assigned_to_id == rw.on_call.pk  # given to somebody who can act
    codes = list(AlertTransition.objects.filter(alert=alert).values_list("note_code", flat=True))
    assert codes[-3:] == ["evidence_attached", "reopened", "reassigned"]
    assert _user_rows(alert, "r1.0.0") == {str(rw.on_call.user_id)}


def test_a_deterministic_trigger_on_an_acknowledged_alert_reopens_it(rw):
    submit_phq9(rw.patient, phq9(1, 1))
    alert = Alert.objects.get()
    services.alert_acknowledge(actor=actor_for(rw.member), alert_id=alert.pk)
    submit_phq9(rw.patient, phq9(2, 1))
    alert.refresh_from_db()
    assert (alert.state, alert.tier, alert.escalation_round) == ("open", "orange", 1)
    assert alert.ack_deadline > timezone.now() + dt.timedelta(minutes=25)  # orange: 30 minutes
    assert _user_rows(alert, "r1.0.0") == {str(rw.clinician.user_id)}  # orange: the assignee


def test_a_non_deterministic_lower_firing_joins_an_acknowledged_alert_quietly(rw):
    _help(rw, "press-1")
    alert = Alert.objects.get()
    services.alert_acknowledge(actor=actor_for(rw.clinician), alert_id=alert.pk)
    rows = OutboxMessage.objects.count()
    (result,) = intake.signal_received(patient=rw.patient, event=crisis("passive_ideation"))
    assert result.attached
    alert.refresh_from_db()
    assert alert.state == "acknowledged" and alert.next_escalation_at is None
    assert OutboxMessage.objects.count() == rows
    last = AlertTransition.objects.filter(alert=alert).last()
    assert last is not None
    assert (last.note_code, last.from_state, last.to_state) == (
        "evidence_attached",
        "acknowledged",
        "acknowledged",
    )


def test_a_help_press_on_an_open_alert_whose_chain_ran_out_restarts_it(rw):
    _help(rw, "press-1")
    alert = Alert.objects.get()
    Alert.objects.filter(pk=alert.pk).update(next_escalation_at=None)  # chain exhausted
    _help(rw, "press-2")
    alert.refresh_from_db()
    assert (alert.state, alert.escalation_round) == ("open", 1)
    assert alert.next_escalation_at is not None
    codes = list(AlertTransition.objects.filter(alert=alert).values_list("note_code", flat=True))
    assert codes == ["raised", "evidence_attached", "escalation_restarted"]


def test_a_help_press_on_an_open_alert_under_its_deadline_keeps_it(rw):
    _help(rw, "press-1")
    alert = Alert.objects.get()
    deadline = alert.next_escalation_at
    rows = OutboxMessage.objects.count()
    _help(rw, "press-2")
    alert.refresh_from_db()
    assert (alert.next_escalation_at, alert.escalation_round) == (deadline, 0)
    assert OutboxMessage.objects.count() == rows


# --- the help button -----------------------------------------------------------------------------
def test_repeated_presses_collapse_into_one_red_alert(rw, client_a):
    for _ in range(3):
        assert client_a.post("/api/v1/help").status_code == 201
    alert = Alert.objects.get()
    assert (alert.tier, alert.rule_id) == ("red", "help_button")
    assert alert.evidence_items.count() == 3
    # Level 0 of a red alert: the treating clinician and the on-call clinician.
    recipients = set(OutboxMessage.objects.values_list("recipient_id", flat=True))
    assert recipients == {str(rw.clinician.user_id), str(rw.on_call.user_id)}


@pytest.mark.django_db(transaction=True)
def test_the_red_alert_is_raised_inside_the_press_transaction(rw, client_a):
    seen: list[tuple[bool, bool]] = []

    def after(*, help_request, new_emergency):
        seen.append(
            (
                transaction.get_connection().in_atomic_block,
                Alert.objects.filter(patient_id=help_request.patient_id, tier="red").exists(),
            )
        )

    intake.HELP_REQUEST_HANDLERS.append(after)
    try:
        assert client_a.post("/api/v1/help").status_code == 201
    finally:
        intake.HELP_REQUEST_HANDLERS.remove(after)
    assert seen == [(True, True)]  # the alert exists before the press commits

    # A press that rolls back takes its alert with it.
    from screening.services.help import help_request_create

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        help_request_create(
            actor=Actor(user_id=rw.world.patient_b.user_id, role="patient"),
            patient=rw.world.patient_b,
        )
        raise Abort
    assert not Alert.objects.filter(patient=rw.world.patient_b).exists()


# --- emergency contact ---------------------------------------------------------------------------
def _contact(rw):
    return emergency_contact_set(
        patient=rw.patient, name="Carol Contact", phone="+15550100", email="carol@example.test"
    )


def test_orange_notifies_the_emergency_contact_only_with_consent(rw):
    _contact(rw)
    submit_phq9(rw.patient, phq9(1, 1))
    assert not OutboxMessage.objects.filter(recipient_kind="emergency_contact").exists()

    consent_change(
        actor=Actor(user_id=rw.patient.user_id, role="patient"),
        patient=rw.patient,
        scope="emergency_contact",
        granted=True,
        document_version="1",
    )
    services.alert_resolve(
        actor=actor_for(rw.clinician),
        alert_id=Alert.objects.get().pk,
        disposition="contacted_patient",
        note="n",
    )
    submit_phq9(rw.patient, phq9(2, 1))
    message = OutboxMessage.objects.get(recipient_kind="emergency_contact")
    assert message.channel == "email"
    assert message.payload["type"] == "emergency_contact"
    assert message.payload["message"].startswith(f"This is {rw.world.clinic.name}.")
    assert AccessEvent.objects.filter(action="alert.emergency_contact_notify").count() == 1


def test_red_and_yellow_do_not_notify_the_emergency_contact_by_default(rw):
    _contact(rw)
    consent_change(
        actor=Actor(user_id=rw.patient.user_id, role="patient"),
        patient=rw.patient,
        scope="emergency_contact",
        granted=True,
        document_version="1",
    )
    intake.signal_received(patient=rw.patient, event=crisis())
    intake.signal_received(
        patient=rw.patient, event=HelpPressed(local_date=TODAY, help_request_id="p1")
    )
    assert not OutboxMessage.objects.filter(recipient_kind="emergency_contact").exists()


# --- rule set selection --------------------------------------------------------------------------
def test_a_clinic_lowers_the_phq9_total_threshold_and_the_change_is_audited(rw):
    staff = Actor(user_id=rw.clinician.user_id, role="admin")
    services.rule_set_select(
        actor=staff,
        organisation=rw.world.clinic,
        version="v1",
        threshold_overrides={"phq9_total": {"total_at_least": 15}},
    )
    submit_phq9(rw.patient, phq9(15, 0))
    alert = Alert.objects.get()
    assert alert.rule_id == "phq9_total"
    assert alert.evidence["params"]["total_at_least"] == 15
    assert alert.evidence["rule_set"]["overrides"] == {"phq9_total": {"total_at_least": 15}}
    change = RuleSetChange.objects.get()
    assert change.before == {} and change.after["threshold_overrides"] == {
        "phq9_total": {"total_at_least": 15}
    }
    event = AccessEvent.objects.get(action="risk.ruleset_change")
    assert event.actor_id == rw.clinician.user_id
    assert "phq9_total.total_at_least" in event.purpose

    with pytest.raises(RuleSetInvalid):
        services.rule_set_select(
            actor=staff,
            organisation=rw.world.clinic,
            version="v1",
            threshold_overrides={"phq9_item9": {"item9_at_least": 3}},
        )
    with pytest.raises(RuleSetInvalid):
        services.rule_set_select(
            actor=staff, organisation=rw.world.clinic, version="v9", threshold_overrides={}
        )
    assert RuleSetChange.objects.count() == 1


# --- non-adherence -------------------------------------------------------------------------------
def test_a_patient_who_stops_sending_raises_yellow_once_per_silence(rw):
    patient = rw.patient
    now = timezone.now()
    for days_ago in range(6, 12):  # active six days, then silent for six
        moment = now - dt.timedelta(days=days_ago)
        DiaryEntry.objects.create(
            patient=patient,
            idempotency_key=uuid.uuid4(),
            text="entry",
            client_timestamp=moment,
            timezone=patient.timezone,
            local_date=services._local_date(patient, moment),
        )
    (result,) = services.adherence_evaluate(patient=patient, now=now)
    assert (result.alert.tier, result.alert.rule_id) == ("yellow", "non_adherence")
    assert result.alert.evidence["event"]["days_silent"] == 6
    assert services.adherence_sweep(now=now) == {"checked": 2, "raised": 0}
    services.alert_resolve(
        actor=actor_for(rw.clinician),
        alert_id=result.alert.pk,
        disposition="contacted_patient",
        note="Phone was broken.",
    )
    # The same silence, looked at again the next hour: nothing new.
    assert services.adherence_sweep(now=now + dt.timedelta(hours=1))["raised"] == 0
    assert Alert.objects.count() == 1


def test_a_patient_who_never_sent_much_is_not_flagged(rw):
    patient = rw.patient
    moment = timezone.now() - dt.timedelta(days=8)
    DiaryEntry.objects.create(
        patient=patient,
        idempotency_key=uuid.uuid4(),
        text="one entry",
        client_timestamp=moment,
        timezone=patient.timezone,
        local_date=services._local_date(patient, moment),
    )
    assert services.adherence_evaluate(patient=patient) == []


def test_the_care_team_sees_the_alert_and_others_do_not(rw):
    from risk.selectors import alerts_visible_to

    submit_phq9(rw.patient, phq9(1, 1))
    alert = Alert.objects.get()
    assert list(alerts_visible_to(clinician=rw.clinician)) == [alert]
    assert list(alerts_visible_to(clinician=rw.member)) == [alert]
    assert list(alerts_visible_to(clinician=rw.on_call)) == [alert]  # on call sees the clinic
    assert list(alerts_visible_to(clinician=rw.world.colleague)) == []


def test_a_past_assignee_outside_the_care_team_sees_only_the_active_alert(rw):
    from risk.selectors import alerts_visible_to

    submit_phq9(rw.patient, phq9(1, 1))
    alert = Alert.objects.get()
    outsider = rw.world.colleague  # e.g. a former on-call clinician who was handed it
    Alert.objects.filter(pk=alert.pk).update(assigned_to=outsider)
    assert list(alerts_visible_to(clinician=outsider, active_only=False)) == [alert]
    Alert.objects.filter(pk=alert.pk).update(state="resolved")
    assert list(alerts_visible_to(clinician=outsider, active_only=False)) == []
    # The care team and the on-call clinician keep the closed alert.
    assert list(alerts_visible_to(clinician=rw.clinician, active_only=False)) == [alert]
    assert list(alerts_visible_to(clinician=rw.member, active_only=False)) == [alert]
    assert list(alerts_visible_to(clinician=rw.on_call, active_only=False)) == [alert]


def test_a_past_assignee_may_handle_the_alert_only_while_it_is_active(rw):
    submit_phq9(rw.patient, phq9(1, 1))
    alert = Alert.objects.get()
    outsider = rw.world.colleague
    Alert.objects.filter(pk=alert.pk).update(assigned_to=outsider)
    services.alert_acknowledge(actor=actor_for(outsider), alert_id=alert.pk)  # assigned: yes
    services.alert_resolve(
        actor=actor_for(rw.member), alert_id=alert.pk, disposition="contacted_patient", note="ok"
    )
    before = AccessEvent.objects.filter(action="alert.escalate_manual", outcome="denied").count()
    with pytest.raises(PermissionDenied):
        services.alert_escalate_manual(actor=actor_for(outsider), alert_id=alert.pk)
    denied = AccessEvent.objects.filter(action="alert.escalate_manual", outcome="denied")
    assert denied.count() == before + 1
    assert denied.latest("seq").reason == "not_in_care_team"
