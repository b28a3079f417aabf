"""Risk services: rule sets per clinic, signals -> alerts, the alert lifecycle, escalation and the
notification outbox. The only place that writes alerts.

- ``signal_evaluate``: one input event -> the rules that read it -> alerts (``alert_raise``).
- ``alert_raise``: de-duplicate, attach evidence or supersede a lower tier, assign, set the
  acknowledgement deadline, write the level-0 outbox rows, audit; all in one transaction.
- ``alert_acknowledge`` / ``alert_resolve``: the lifecycle (every change stored and audited).
- ``alert_escalate`` / ``escalation_sweep``: the chain, step by step, idempotent.
- ``outbox_relay``: claim due messages, deliver (e-mail, signed webhook), back off, mark.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from config.errors import PermissionDenied
from privacy.audit import Actor, access_record
from privacy.choices import AccessOutcome, ConsentScope
from privacy.consent import consent_has
from risk.choices import (
    ACTIVE_STATES,
    TIER_RANK,
    AlertState,
    ChainTarget,
    Channel,
    Disposition,
    OutboxState,
    RecipientKind,
    Tier,
)
from risk.errors import (
    AlertNotFound,
    AlertTransitionInvalid,
    EscalationPolicyInvalid,
    ResolutionIncomplete,
    RuleSetInvalid,
)
from risk.models import (
    Alert,
    AlertEvidence,
    AlertTransition,
    EscalationPolicy,
    OutboxMessage,
    PatientDaySignals,
    PolicyChange,
    RuleSetChange,
    RuleSetSelection,
    default_chain,
)
from risk.rules.engine import (
    DAY_SIGNALS_CAP,
    Adherence,
    BaselineDrop,
    DailyMood,
    EngineError,
    Event,
    Firing,
    HelpPressed,
    MediaDistress,
    MoodRef,
    PatientState,
    QuestionnaireScored,
    RuleSet,
    SignalRef,
    day_signal,
    evaluate,
)
from risk.rules.loader import rule_set_newest, rule_sets
from risk.selectors import alerts_visible_to
from screening.models import (
    DiaryEntry,
    EmergencyContact,
    HelpRequest,
    Organisation,
    Patient,
    QuestionnaireResponse,
    User,
    VideoSubmission,
)

logger = logging.getLogger("vigil.risk")


# --- rule sets -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _rule_set_effective(version: str, overrides_json: str) -> RuleSet:
    return rule_sets()[version].with_overrides(json.loads(overrides_json))


def rule_set_for(*, organisation: Organisation) -> RuleSet:
    """The clinic's selected rule set with its overrides (the default set if it chose none).

    Never raises for configuration: deterministic triggers (the help button, PHQ-9 item 9) must
    fire whatever it says. A selection that no longer loads (a removed file) falls back to the
    default set, and a default that does not load (start-up refuses one, see ``risk.checks``) to
    the newest set shipped with the code; each fallback is logged as an error (names only).
    """
    selection = RuleSetSelection.objects.filter(organisation=organisation).first()
    if selection is not None:
        try:
            return _rule_set_effective(
                selection.version, json.dumps(selection.threshold_overrides or {}, sort_keys=True)
            )
        except (KeyError, EngineError):
            logger.error(
                "clinic %s: rule set selection %r does not load; using the default",
                organisation.pk,
                selection.version,
            )
    return _rule_set_default()


def _rule_set_default() -> RuleSet:
    default = settings.VIGIL_RISK_RULE_SET_DEFAULT
    try:
        return _rule_set_effective(default, "{}")
    except (KeyError, TypeError, EngineError):
        newest = rule_set_newest(rule_sets())
        logger.error(
            "VIGIL_RISK_RULE_SET_DEFAULT %r does not load; using the newest shipped set %s",
            default,
            newest.version,
        )
        return newest


def rule_set_select(
    *,
    actor: Actor,
    organisation: Organisation,
    version: str,
    threshold_overrides: dict[str, Any],
) -> RuleSetSelection:
    """Choose a clinic's rule-set version and overrides: validated, recorded and audited."""
    with transaction.atomic():
        selection = (
            RuleSetSelection.objects.select_for_update().filter(organisation=organisation).first()
        ) or RuleSetSelection(organisation=organisation)
        before = (
            {"version": selection.version, "threshold_overrides": selection.threshold_overrides}
            if selection.pk
            else {}
        )
        selection.version = version
        selection.threshold_overrides = threshold_overrides or {}
        selection.updated_by_id = actor.user_id
        try:
            selection.full_clean(exclude=["organisation", "updated_by"])
        except Exception as exc:
            fields = getattr(exc, "message_dict", {"threshold_overrides": [str(exc)]})
            raise RuleSetInvalid(fields=fields) from None
        selection.save()
        after = {"version": selection.version, "threshold_overrides": selection.threshold_overrides}
        RuleSetChange.objects.create(
            organisation=organisation, actor_id=actor.user_id, before=before, after=after
        )
        access_record(
            actor=actor,
            action="risk.ruleset_change",
            resource_type="RuleSetSelection",
            resource_id=selection.pk,
            purpose=_change_summary(before, after),
        )
    return selection


def _change_summary(before: dict[str, Any], after: dict[str, Any]) -> str:
    old_version = before.get("version", "-")
    changed = sorted(
        f"{rule}.{name}"
        for source in (before.get("threshold_overrides", {}), after["threshold_overrides"])
        for rule, values in source.items()
        for name in values
        if before.get("threshold_overrides", {}).get(rule, {}).get(name)
        != after["threshold_overrides"].get(rule, {}).get(name)
    )
    summary = ", ".join(changed) or "none"
    return f"version {old_version} -> {after['version']}; overrides changed: {summary}"


# --- escalation policy ---------------------------------------------------------------------------
def escalation_policy_for(*, organisation: Organisation) -> EscalationPolicy:
    """The clinic's policy, or the defaults (unsaved) when it has none."""
    policy = EscalationPolicy.objects.filter(organisation=organisation).first()
    return policy or EscalationPolicy(organisation=organisation)


_POLICY_FIELDS = (
    "red_ack_minutes",
    "orange_ack_minutes",
    "yellow_ack_time",
    "working_weekdays",
    "non_working_dates",
    "chain",
    "on_call_id",
    "clinical_lead_id",
    "page_tiers",
    "emergency_contact_tiers",
    "emergency_contact_message",
)


def _policy_values(policy: EscalationPolicy) -> dict[str, Any]:
    values = {name: getattr(policy, name) for name in _POLICY_FIELDS}
    values["yellow_ack_time"] = policy.yellow_ack_time.isoformat(timespec="minutes")
    return values


def escalation_policy_save(*, actor: Actor, policy: EscalationPolicy) -> EscalationPolicy:
    """Save a clinic's escalation policy: validated (bounds: ``risk.models.RED_ACK_MINUTES`` and
    the others; nothing is saved otherwise, :class:`EscalationPolicyInvalid`), recorded with
    before and after values and the actor (:class:`PolicyChange`) and audited."""
    with transaction.atomic():
        stored = (
            EscalationPolicy.objects.select_for_update().filter(pk=policy.pk).first()
            if policy.pk
            else None
        )
        before = _policy_values(stored) if stored is not None else {}
        try:
            policy.full_clean(exclude=["updated_by"])
        except DjangoValidationError as exc:
            raise EscalationPolicyInvalid(fields=exc.message_dict) from None
        policy.updated_by_id = actor.user_id
        policy.save()
        after = _policy_values(policy)
        change = PolicyChange.objects.create(
            organisation_id=policy.organisation_id,
            actor_id=actor.user_id,
            before=before,
            after=after,
        )
        changed = sorted(name for name in after if before.get(name) != after[name])
        access_record(
            actor=actor,
            action="risk.policy_change",
            resource_type="EscalationPolicy",
            resource_id=policy.pk,
            purpose=f"change {change.pk}: {', '.join(changed) or 'none'}"[:200],
        )
    return policy


def ack_deadline(*, tier: str, policy: EscalationPolicy, raised_at: dt.datetime) -> dt.datetime:
    """Red and orange: minutes after raising. Yellow: the next working day at the policy's time
    (default 10:00) in the clinic's time zone, skipping weekends and the clinic's closed dates."""
    if tier in (Tier.RED, Tier.ORANGE):
        return raised_at + dt.timedelta(minutes=policy.ack_minutes(tier))
    tz = zoneinfo.ZoneInfo(policy.organisation.timezone)
    day = raised_at.astimezone(tz).date()
    closed = set(policy.non_working_dates or [])
    weekdays = set(policy.working_weekdays or [0, 1, 2, 3, 4])
    for _ in range(366):
        day += dt.timedelta(days=1)
        if day.weekday() in weekdays and day.isoformat() not in closed:
            break
    local = dt.datetime.combine(day, policy.yellow_ack_time, tzinfo=tz)
    # A wall-clock time that does not exist that day (a DST gap) is read with the offset before it.
    return local.astimezone(dt.UTC)


# --- per-patient state ---------------------------------------------------------------------------
def _state_load(*, patient: Patient, event: Event, rule_set: RuleSet) -> PatientState:
    """The rows the rules for ``event.kind`` read: moods of the event's day +- the mood window,
    crisis and corroborating signals of the event's day +- the corroboration window (v3's
    ``crisis_double_verified``: the adjacent local days), each dated with its row's day and
    ordered nearest day first (each day's lists are capped when recorded)."""
    mood_window = rule_set.mood_window_days(event.kind)
    day_window = rule_set.day_window_days(event.kind)
    if mood_window is None and day_window is None:
        return PatientState()
    span = dt.timedelta(days=max(mood_window or 0, day_window or 0))
    rows = PatientDaySignals.objects.filter(
        patient=patient,
        local_date__gte=event.local_date - span,
        local_date__lte=event.local_date + span,
    ).order_by("local_date")
    moods: dict[dt.date, MoodRef] = {}
    days: list[PatientDaySignals] = []
    for row in rows:
        if row.mood is not None:
            moods[row.local_date] = MoodRef(
                row.local_date,
                row.mood,
                row.mood_confidence or 0.0,
                row.mood_independent,
                tuple(str(m) for m in row.mood_modalities or ()),
            )
        if day_window is not None and abs((row.local_date - event.local_date).days) <= day_window:
            days.append(row)
    days.sort(key=lambda row: abs((row.local_date - event.local_date).days))  # stable
    crisis = tuple(
        SignalRef(**ref, local_date=row.local_date) for row in days for ref in row.crisis
    )
    corroboration = tuple(
        SignalRef(**ref, local_date=row.local_date) for row in days for ref in row.corroboration
    )
    return PatientState(moods=moods, crisis=crisis, corroboration=corroboration)


def _state_record(*, patient: Patient, event: Event) -> None:
    signal = day_signal(event)
    if signal is None and not isinstance(event, DailyMood):
        return
    row, _ = PatientDaySignals.objects.get_or_create(patient=patient, local_date=event.local_date)
    if isinstance(event, DailyMood):
        row.mood, row.mood_confidence = float(event.score), float(event.confidence)
        row.mood_independent = (
            float(event.independent_score) if event.independent_score is not None else None
        )
        row.mood_modalities = list(event.modalities)
    if signal is not None:
        bucket, ref = signal
        refs: list[dict[str, Any]] = list(getattr(row, bucket))
        entry = {"kind": ref.kind, "source_id": ref.source_id, "code": ref.code, "score": ref.score}
        refs = [
            r
            for r in refs
            if (r["kind"], r["source_id"], r["code"]) != (ref.kind, ref.source_id, ref.code)
        ]
        refs.append(entry)
        setattr(row, bucket, refs[-DAY_SIGNALS_CAP:])
    row.save()


# --- signals -> alerts ---------------------------------------------------------------------------
@dataclass
class RaiseResult:
    alert: Alert
    created: bool = False  # a new alert was opened
    attached: bool = False  # the firing joined an existing active alert as new evidence
    duplicate: bool = False  # this very signal was already counted (nothing changed)
    superseded: list[uuid.UUID] = field(default_factory=list)


def signal_evaluate(
    *, patient: Patient, event: Event, actor: Actor | None = None
) -> list[RaiseResult]:
    """Evaluate one event: only the rules that read its kind, against the patient's small state,
    then raise what fired (most urgent first). Runs inside the caller's transaction if there is
    one (the help button's, a questionnaire's), so the alert commits with the input."""
    rule_set = rule_set_for(organisation=patient.organisation)
    with transaction.atomic():
        _lock_patient(patient)
        state = _state_load(patient=patient, event=event, rule_set=rule_set)
        firings = evaluate(rule_set, event, state)
        _state_record(patient=patient, event=event)
        return [
            alert_raise(patient=patient, firing=firing, rule_set=rule_set, actor=actor)
            for firing in firings
        ]


def _lock_patient(patient: Patient) -> None:
    # Serialises the risk writes of one patient (PostgreSQL row lock; SQLite has one writer).
    Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk", flat=True).first()


def _snapshot(firing: Firing, rule_set: RuleSet) -> dict[str, Any]:
    return {
        **dict(firing.evidence),
        "tier": str(firing.tier),
        "deterministic": firing.deterministic,
        "rule_set": {
            "version": rule_set.version,
            "sha256": rule_set.sha256,
            "overrides": {k: dict(v) for k, v in rule_set.overrides.items()},
        },
    }


def alert_raise(
    *,
    patient: Patient,
    firing: Firing,
    rule_set: RuleSet,
    actor: Actor | None = None,
    now: dt.datetime | None = None,
) -> RaiseResult:
    """Turn a firing into an alert.

    - The same signal (``firing.dedupe_key``) counts once for a patient, whatever happened to
      the alert it joined: a retried or re-swept signal changes nothing.
    - An active (open or acknowledged) alert of the same or a higher tier takes the firing as
      evidence (an ``AlertEvidence`` row and an ``evidence_attached`` transition).
    - **Re-arming.** A red firing or a deterministic one (help button, explicit plan/imminent
      intent, PHQ-9 item 9 or total) never joins an alert that is not under a deadline: if the
      alert is *acknowledged* it goes back to ``open`` (``reopened``), and if it is open with no
      next escalation (a row left exhausted before chains restarted by themselves, see
      :func:`alert_escalate`) it restarts (``escalation_restarted``). Either way it gets a fresh
      acknowledgement deadline of the alert's tier, the chain starts again from level 0 (a new
      escalation round, so its notifications have new keys), level 0 is notified as for a new
      alert of that tier (the assignee, for red also the on-call clinician, and the emergency
      contact for the policy's tiers), and an inactive assignee is replaced as for a new
      alert. An open alert still under its deadline keeps its deadline and chain. Other firings
      (yellow, non-deterministic orange) join an acknowledged alert without a new deadline: a
      clinician is already handling it and sees the evidence.
    - Otherwise a new alert opens, assigned to an active treating clinician (else the on-call
      clinician, else the clinical lead), with its deadline and level-0 notifications, and
      supersedes any active lower-tier alert (linked, not lost). If level 0 has nobody reachable
      the next step is due at once (:func:`_notify_raised`), not after the deadline.
    """
    actor = actor or Actor.system()
    now = now or timezone.now()
    with transaction.atomic():
        _lock_patient(patient)
        seen = (
            AlertEvidence.objects.filter(patient=patient, dedupe_key=firing.dedupe_key)
            .select_related("alert")
            .first()
        )
        if seen is not None:
            return RaiseResult(alert=seen.alert, duplicate=True)
        active = list(
            Alert.objects.select_for_update().filter(patient=patient, state__in=ACTIVE_STATES)
        )
        rank = TIER_RANK[Tier(firing.tier)]
        higher = [a for a in active if TIER_RANK[Tier(a.tier)] >= rank]
        if higher:
            target = max(higher, key=lambda a: TIER_RANK[Tier(a.tier)])
            _evidence_add(alert=target, firing=firing, rule_set=rule_set)
            _transition(
                alert=target,
                actor=actor,
                from_state=target.state,
                to_state=target.state,
                code="evidence_attached",
                level=target.escalation_level,
            )
            urgent = firing.tier == Tier.RED or firing.deterministic
            if urgent and (
                target.state == AlertState.ACKNOWLEDGED or target.next_escalation_at is None
            ):
                _alert_rearm(alert=target, patient=patient, actor=actor, now=now, cause="signal")
            # Audited last (the chain head stays locked until commit: keep that window short).
            access_record(
                actor=actor,
                action="alert.evidence_attach",
                patient_id=patient.pk,
                resource_type="Alert",
                resource_id=target.pk,
                reason=firing.rule_id,
            )
            return RaiseResult(alert=target, attached=True)

        policy = escalation_policy_for(organisation=patient.organisation)
        deadline = ack_deadline(tier=firing.tier, policy=policy, raised_at=now)
        alert = Alert(
            patient=patient,
            organisation_id=patient.organisation_id,
            tier=str(firing.tier),
            rule_set_version=rule_set.version,
            rule_set_hash=rule_set.sha256,
            rule_id=firing.rule_id,
            evidence=_snapshot(firing, rule_set),
            local_date=firing.local_date,
            assigned_to_id=_assignee_for(patient=patient, policy=policy),
            ack_deadline=deadline,
            next_escalation_at=deadline,
        )
        alert.save()
        _evidence_add(alert=alert, firing=firing, rule_set=rule_set)
        _transition(
            alert=alert, actor=actor, from_state="", to_state=AlertState.OPEN, code="raised"
        )
        superseded = [_supersede(lower=lower, by=alert, actor=actor) for lower in active]
        _notify_raised(alert=alert, patient=patient, policy=policy, actor=actor, now=now)
        access_record(
            actor=actor,
            action="alert.raise",
            patient_id=patient.pk,
            resource_type="Alert",
            resource_id=alert.pk,
            reason=firing.rule_id,
        )
        _relay_soon()
    logger.info("alert %s raised: %s by %s", alert.pk, alert.tier, alert.rule_id)
    return RaiseResult(alert=alert, created=True, superseded=superseded)


def _assignee_for(*, patient: Patient, policy: EscalationPolicy) -> int | None:
    """Who a new (or re-armed) alert is assigned to: the treating clinician if their account is
    active, else the on-call clinician, else the clinical lead (None: nobody active). Only
    clinicians of the policy's clinic (the alert's) count."""
    from screening.models import Clinician

    candidates = [
        pk
        for pk in (patient.treating_clinician_id, policy.on_call_id, policy.clinical_lead_id)
        if pk is not None
    ]
    active = set(
        Clinician.objects.filter(
            pk__in=candidates, user__is_active=True, organisation_id=policy.organisation_id
        ).values_list("pk", flat=True)
    )
    return next((pk for pk in candidates if pk in active), None)


#: Why an active alert is put back under a deadline (see :func:`_alert_rearm`).
_REARM_CODES = {
    "signal": ("reopened", "alert.reopen"),
    "restart": ("escalation_restarted", "alert.escalation_restart"),
    "transfer": ("transferred", "alert.transfer"),
}


def _alert_rearm(
    *, alert: Alert, patient: Patient, actor: Actor, now: dt.datetime, cause: str
) -> None:
    """Put an active alert back under a deadline (see :func:`alert_raise`): ``open``, a fresh
    deadline of its tier, a new escalation round from level 0, level 0 notified as for a new
    alert. Inside the caller's transaction, with the alert row locked. The policy and staff are
    the alert's clinic's (``alert.organisation``).

    ``cause``:

    - ``"signal"``: a red or deterministic firing joined it (``reopened`` when it was
      acknowledged, else ``escalation_restarted``); the emergency contact is notified as for a
      new alert of its tier.
    - ``"restart"``: the chain ran out with nobody acknowledging (:func:`alert_escalate`). The
      acknowledgement deadline stays (the portal keeps showing it breached); the next step is
      due after the tier's acknowledgement period from now; not the emergency contact again
      (no new signal came in).
    - ``"transfer"``: the patient moved to another clinic (:func:`alerts_follow_patient_transfer`,
      which set ``alert.organisation``): ``transferred``, a fresh deadline of the new clinic's
      policy, assigned afresh within the new clinic; not the emergency contact again.

    Whatever the cause, if level 0 has nobody reachable the next sweep moves on at once."""
    policy = escalation_policy_for(organisation=alert.organisation)
    previous = alert.state
    deadline = ack_deadline(tier=alert.tier, policy=policy, raised_at=now)
    alert.state = AlertState.OPEN
    alert.acknowledged_at = None  # the earlier acknowledgement stays in the transitions
    alert.acknowledged_by = None
    if cause != "restart":
        alert.ack_deadline = deadline
    alert.next_escalation_at = deadline
    alert.escalation_level = alert.escalation_repeat = 0
    alert.escalation_round += 1
    alert.unreachable_since = None
    assignee = alert.assigned_to
    reassigned = False
    if (
        cause == "transfer"
        or assignee is None
        or not assignee.user.is_active
        or assignee.organisation_id != alert.organisation_id
    ):
        chosen = _assignee_for(patient=patient, policy=policy)
        reassigned = chosen != alert.assigned_to_id
        # setting the id drops the cached clinician, so later reads see the new one
        alert.assigned_to_id = chosen
    alert.save(
        update_fields=[
            "organisation",
            "state",
            "acknowledged_at",
            "acknowledged_by",
            "ack_deadline",
            "next_escalation_at",
            "escalation_level",
            "escalation_repeat",
            "escalation_round",
            "unreachable_since",
            "assigned_to",
            "updated_at",
        ]
    )
    code, action = _REARM_CODES[cause]
    if cause == "signal" and previous != AlertState.ACKNOWLEDGED:
        code = _REARM_CODES["restart"][0]
    _transition(
        alert=alert, actor=actor, from_state=previous, to_state=AlertState.OPEN, code=code, level=0
    )
    if reassigned:
        _transition(
            alert=alert,
            actor=actor,
            from_state=AlertState.OPEN,
            to_state=AlertState.OPEN,
            code="reassigned",
            level=0,
        )
    _notify_raised(
        alert=alert,
        patient=patient,
        policy=policy,
        actor=actor,
        now=now,
        emergency_contact=cause == "signal",
    )
    access_record(
        actor=actor,
        action=action,
        patient_id=patient.pk,
        resource_type="Alert",
        resource_id=alert.pk,
        reason=f"round {alert.escalation_round}",
    )
    _relay_soon()


def alerts_follow_patient_transfer(
    *, actor: Actor, patient: Patient, now: dt.datetime | None = None
) -> list[uuid.UUID]:
    """The patient now belongs to another clinic (``patient.organisation``, already saved, inside
    the caller's transaction): move each of their active alerts still with another clinic to the
    patient's, so the clinic whose staff are notified is the one whose staff may act
    (:func:`risk.selectors.alerts_visible_to` reads ``alert.organisation``).

    Per alert, in one transaction: the clinic changes, pending clinician notifications of the old
    clinic are cancelled (``transferred``), and the escalation restarts at the new clinic as for a
    re-armed alert (:func:`_alert_rearm`, cause ``"transfer"``): ``open``, a fresh deadline of
    the new clinic's policy, a new round, assigned within the new clinic (``reassigned``), its
    level 0 notified now; recorded (``transferred``) and audited (``alert.transfer``). Resolved
    and superseded alerts stay with the clinic that handled them. Idempotent: an alert already
    with the patient's clinic is left alone. Returns the ids of the alerts moved."""
    now = now or timezone.now()
    moved: list[uuid.UUID] = []
    with transaction.atomic():
        _lock_patient(patient)
        patient = Patient.objects.get(pk=patient.pk)  # as stored: its clinic, team, clinician
        organisation_id = patient.organisation_id
        alerts = list(
            Alert.objects.select_for_update()
            .filter(patient_id=patient.pk, state__in=ACTIVE_STATES)
            .exclude(organisation_id=organisation_id)
            .order_by("created_at")
        )
        for alert in alerts:
            previous_organisation = alert.organisation_id
            # setting the id drops the cached clinic, so the new clinic's policy is read
            alert.organisation_id = organisation_id
            _outbox_cancel_reminders(alert=alert, reason="transferred")
            _alert_rearm(alert=alert, patient=patient, actor=actor, now=now, cause="transfer")
            logger.info(
                "alert %s transferred from organisation %s to %s",
                alert.pk,
                previous_organisation,
                organisation_id,
            )
            moved.append(alert.pk)
    return moved


def _evidence_add(*, alert: Alert, firing: Firing, rule_set: RuleSet) -> AlertEvidence:
    return AlertEvidence.objects.create(
        alert=alert,
        patient_id=alert.patient_id,
        rule_id=firing.rule_id,
        rule_set_version=rule_set.version,
        tier=str(firing.tier),
        event_kind=firing.event_kind,
        dedupe_key=firing.dedupe_key[:255],
        local_date=firing.local_date,
        snapshot=_snapshot(firing, rule_set),
    )


def _transition(
    *,
    alert: Alert,
    actor: Actor,
    from_state: str,
    to_state: str,
    code: str,
    level: int | None = None,
) -> AlertTransition:
    return AlertTransition.objects.create(
        alert=alert,
        from_state=from_state,
        to_state=to_state,
        actor_id=actor.user_id,
        actor_role=actor.role,
        note_code=code[:48],
        level=level,
    )


def _supersede(*, lower: Alert, by: Alert, actor: Actor) -> uuid.UUID:
    previous = lower.state
    lower.state = AlertState.SUPERSEDED
    lower.superseded_by = by
    lower.next_escalation_at = None
    lower.save(update_fields=["state", "superseded_by", "next_escalation_at", "updated_at"])
    _transition(
        alert=lower,
        actor=actor,
        from_state=previous,
        to_state=lower.state,
        code=f"superseded:{by.tier}",
    )
    _outbox_cancel_reminders(alert=lower, reason="superseded")
    access_record(
        actor=actor,
        action="alert.supersede",
        patient_id=lower.patient_id,
        resource_type="Alert",
        resource_id=lower.pk,
    )
    return lower.pk


# --- lifecycle -----------------------------------------------------------------------------------
def _alert_for_actor(*, actor: Actor, alert_id: uuid.UUID, action: str) -> Alert:
    """The alert, if the actor may handle it: a clinician who sees it in the portal
    (:func:`risk.selectors.alerts_visible_to`: the clinic's clinician who treats the patient, is
    in the patient's care team, is the on-call clinician or clinical lead, or is assigned the
    alert while it is still active; assignment gives no lasting access)."""
    alert = Alert.objects.select_related("patient").filter(pk=alert_id).first()
    if alert is None:
        raise AlertNotFound()
    clinician = None
    if actor.user_id is not None:
        from screening.models import Clinician

        clinician = Clinician.objects.filter(user_id=actor.user_id).first()
    # The same rule as the portal's alert list (risk.selectors.alerts_visible_to): one place says
    # who may see and handle an alert.
    allowed = (
        clinician is not None
        and alerts_visible_to(clinician=clinician, active_only=False).filter(pk=alert.pk).exists()
    )
    if not allowed:
        access_record(
            actor=actor,
            action=action,
            patient_id=alert.patient_id,
            outcome=AccessOutcome.DENIED,
            resource_type="Alert",
            resource_id=alert.pk,
            reason="not_in_care_team",
        )
        raise PermissionDenied("Only the patient's clinicians may handle this alert.")
    return alert


def alert_acknowledge(*, actor: Actor, alert_id: uuid.UUID) -> Alert:
    """open -> acknowledged. Stops the escalation and cancels undelivered clinician reminders."""
    _alert_for_actor(actor=actor, alert_id=alert_id, action="alert.acknowledge")
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert_id)
        if alert.state != AlertState.OPEN:
            raise AlertTransitionInvalid(state=alert.state, wanted=AlertState.ACKNOWLEDGED)
        _acknowledge(alert=alert, actor=actor)
    return alert


def _acknowledge(*, alert: Alert, actor: Actor) -> None:
    alert.state = AlertState.ACKNOWLEDGED
    alert.acknowledged_at = timezone.now()
    alert.acknowledged_by_id = actor.user_id
    alert.next_escalation_at = None
    alert.save(
        update_fields=[
            "state",
            "acknowledged_at",
            "acknowledged_by",
            "next_escalation_at",
            "updated_at",
        ]
    )
    _transition(
        alert=alert,
        actor=actor,
        from_state=AlertState.OPEN,
        to_state=AlertState.ACKNOWLEDGED,
        code="acknowledged",
        level=alert.escalation_level,
    )
    _outbox_cancel_reminders(alert=alert, reason="acknowledged")
    access_record(
        actor=actor,
        action="alert.acknowledge",
        patient_id=alert.patient_id,
        resource_type="Alert",
        resource_id=alert.pk,
    )


def alert_resolve(*, actor: Actor, alert_id: uuid.UUID, disposition: str, note: str) -> Alert:
    """(open ->) acknowledged -> resolved, with a disposition and a note (both required).
    Resolving an open alert records its acknowledgement first, by the same person."""
    problems: dict[str, list[str]] = {}
    if disposition not in Disposition.values:
        problems["disposition"] = [f"Choose one of: {', '.join(Disposition.values)}."]
    note = (note or "").strip()
    if not note:
        problems["note"] = ["A note is required."]
    elif len(note) > 4000:
        problems["note"] = ["Keep the note under 4000 characters."]
    if problems:
        raise ResolutionIncomplete(fields=problems)
    _alert_for_actor(actor=actor, alert_id=alert_id, action="alert.resolve")
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert_id)
        if alert.state not in ACTIVE_STATES:
            raise AlertTransitionInvalid(state=alert.state, wanted=AlertState.RESOLVED)
        if alert.state == AlertState.OPEN:
            _acknowledge(alert=alert, actor=actor)
        alert.state = AlertState.RESOLVED
        alert.disposition = disposition
        alert.resolution_note = note
        alert.resolved_at = timezone.now()
        alert.resolved_by_id = actor.user_id
        alert.save(
            update_fields=[
                "state",
                "disposition",
                "resolution_note",
                "resolved_at",
                "resolved_by",
                "updated_at",
            ]
        )
        _transition(
            alert=alert,
            actor=actor,
            from_state=AlertState.ACKNOWLEDGED,
            to_state=AlertState.RESOLVED,
            code=f"resolved:{disposition}",
        )
        access_record(
            actor=actor,
            action="alert.resolve",
            patient_id=alert.patient_id,
            resource_type="Alert",
            resource_id=alert.pk,
            reason=disposition,
        )
    return alert


# --- escalation ----------------------------------------------------------------------------------
def _chain(policy: EscalationPolicy) -> list[dict[str, Any]]:
    return list(policy.chain or default_chain())


def _next_step(chain: list[dict[str, Any]], level: int, repeat: int) -> tuple[int, int] | None:
    if level < len(chain) and repeat < int(chain[level]["repeat"]):
        return level, repeat + 1
    if level + 1 < len(chain):
        return level + 1, 0
    return None


def _active(user_ids: list[int]) -> list[int]:
    """Those of ``user_ids`` whose accounts are active, in order (inactive accounts are never
    notified: delivery would refuse them, ``recipient_inactive``)."""
    if not user_ids:
        return []
    ok = set(User.objects.filter(pk__in=user_ids, is_active=True).values_list("pk", flat=True))
    return [pk for pk in dict.fromkeys(user_ids) if pk in ok]


def _reachable(*, user_ids: list[int], tier: str, policy: EscalationPolicy) -> list[int]:
    """Those of ``user_ids`` a notification can reach: active accounts with an e-mail address,
    or any active account when the tier also pages through the webhook (the gateway maps the
    user id to a device). Only these count as "somebody to notify" when a level of the chain is
    chosen; an active user without an address is still written to (a visible ``no_address``
    failure), but a level of only such users is skipped."""
    if not user_ids:
        return []
    users = User.objects.filter(pk__in=user_ids, is_active=True)
    if Channel.WEBHOOK.value not in _channels_for_users(tier=tier, policy=policy):
        users = users.exclude(email="")
    ok = set(users.values_list("pk", flat=True))
    return [pk for pk in dict.fromkeys(user_ids) if pk in ok]


def _target_users(*, alert: Alert, target: str, policy: EscalationPolicy) -> list[int]:
    """The active users of one chain target (empty when it has none), of the alert's clinic only
    (``policy`` is that clinic's): whoever is notified may act on the alert. The
    treating-clinician level is one user: the first of the assignee and the patient's treating
    clinician who can be reached (:func:`_reachable`), else the first active one (written to,
    a visible ``no_address`` failure; the level counts as having nobody reachable)."""
    patient = alert.patient
    if target == ChainTarget.TREATING_CLINICIAN:
        candidates = [
            clinician.user_id
            for clinician in (alert.assigned_to, patient.treating_clinician)
            if clinician is not None and clinician.organisation_id == alert.organisation_id
        ]
        reachable = _reachable(user_ids=candidates, tier=alert.tier, policy=policy)
        return (reachable or _active(candidates))[:1]
    if target == ChainTarget.CARE_TEAM:
        if patient.care_team.organisation_id != alert.organisation_id:
            return []
        return _active(
            list(patient.care_team.members.order_by("pk").values_list("user_id", flat=True))
        )
    if target == ChainTarget.ON_CALL:
        return _active([policy.on_call.user_id] if policy.on_call else [])
    if target == ChainTarget.CLINICAL_LEAD:
        return _active([policy.clinical_lead.user_id] if policy.clinical_lead else [])
    return []


def _level_reachable(*, alert: Alert, target: str, policy: EscalationPolicy) -> list[int] | None:
    """A level's users if at least one of them can be reached (see :func:`_reachable`), else
    None (the level has nobody to notify and is skipped)."""
    users = _target_users(alert=alert, target=target, policy=policy)
    return users if _reachable(user_ids=users, tier=alert.tier, policy=policy) else None


def _step_key(alert: Alert, level: int, repeat: int) -> str:
    """The outbox key of a chain step. A re-armed alert (round > 0) walks the chain again with
    new keys, so its notifications are not taken for the earlier round's (already sent) ones."""
    step = f"{level}.{repeat}"
    return step if alert.escalation_round == 0 else f"r{alert.escalation_round}.{step}"


#: How often an alert with nobody reachable is checked again (the sweeper's beat interval), so a
#: clinician added or given an address later is reached without waiting for a deadline.
UNREACHABLE_RECHECK = dt.timedelta(seconds=30)


def _step_find(
    *,
    alert: Alert,
    chain: list[dict[str, Any]],
    policy: EscalationPolicy,
    step: tuple[int, int] | None,
    actor: Actor,
) -> tuple[tuple[int, int] | None, list[int]]:
    """From ``step`` on, the first step whose level has somebody reachable, and its users;
    levels passed over are recorded (``escalation_skipped:<target>``). ``(None, [])``: none."""
    while step is not None:
        found = _level_reachable(alert=alert, target=chain[step[0]]["target"], policy=policy)
        if found is not None:
            return step, found
        _transition(
            alert=alert,
            actor=actor,
            from_state=AlertState.OPEN,
            to_state=AlertState.OPEN,
            code=f"escalation_skipped:{chain[step[0]]['target']}",
            level=step[0],
        )
        step = _next_step(chain, step[0], chain[step[0]]["repeat"])
    return None, []


def _anybody_reachable(
    *, alert: Alert, chain: list[dict[str, Any]], policy: EscalationPolicy
) -> bool:
    """Whether a new round could reach anybody: level 0 (with, for red, the on-call clinician)
    or any level of the chain."""
    if _reachable(
        user_ids=_raised_users(alert=alert, policy=policy), tier=alert.tier, policy=policy
    ):
        return True
    targets = dict.fromkeys(level["target"] for level in chain)
    return any(
        _level_reachable(alert=alert, target=target, policy=policy) is not None
        for target in targets
    )


def _alert_unreachable(*, alert: Alert, actor: Actor, now: dt.datetime) -> None:
    """Nobody in the whole chain can be reached: the alert stays open and is checked again on
    every sweep. The first time it is flagged (``unreachable_since``), recorded
    (``escalation_unreachable``), audited and logged as an error (ids only)."""
    first = alert.unreachable_since is None
    if first:
        alert.unreachable_since = now
    alert.next_escalation_at = now + UNREACHABLE_RECHECK
    alert.save(update_fields=["unreachable_since", "next_escalation_at", "updated_at"])
    if not first:
        return
    _transition(
        alert=alert,
        actor=actor,
        from_state=AlertState.OPEN,
        to_state=AlertState.OPEN,
        code="escalation_unreachable",
        level=alert.escalation_level,
    )
    access_record(
        actor=actor,
        action="alert.escalation_unreachable",
        patient_id=alert.patient_id,
        resource_type="Alert",
        resource_id=alert.pk,
        reason=f"round {alert.escalation_round}",
    )
    logger.error(
        "alert %s (organisation %s, %s): nobody in the escalation chain is reachable; "
        "re-checking every %ss",
        alert.pk,
        alert.organisation_id,
        alert.tier,
        int(UNREACHABLE_RECHECK.total_seconds()),
    )


def alert_escalate(*, alert_id: uuid.UUID, now: dt.datetime | None = None) -> bool:
    """Take one escalation step if the alert is open and past its next deadline.

    Idempotent: the step is taken under the alert's row lock and re-checked there, so a second
    sweep (or a concurrent one) finds the deadline moved and does nothing; the outbox rows of a
    step have unique keys per (alert, recipient, channel, round, level.repeat). Levels with
    nobody reachable to notify (none set, or only inactive accounts or ones without an address)
    are skipped.

    An unacknowledged alert never goes quiet. When the chain runs out (the last level's delay has
    passed), a new round starts from the top (:func:`_alert_rearm`, cause ``"restart"``:
    ``escalation_restarted``, new notification keys), for every tier. When no level has
    anybody reachable at all, the alert is flagged (``escalation_unreachable``, an error log) and
    checked again on every sweep (:data:`UNREACHABLE_RECHECK`) until somebody is, then restarts.
    """
    now = now or timezone.now()
    actor = Actor.system()
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .filter(pk=alert_id, state=AlertState.OPEN, next_escalation_at__lte=now)
            .first()
        )
        if alert is None:
            return False
        policy = escalation_policy_for(organisation=alert.organisation)
        chain = _chain(policy)
        step: tuple[int, int] | None = None
        users: list[int] = []
        if alert.unreachable_since is None:  # a flagged alert only re-checks the whole chain
            step = _next_step(chain, alert.escalation_level, alert.escalation_repeat)
            step, users = _step_find(
                alert=alert, chain=chain, policy=policy, step=step, actor=actor
            )
        if step is None:
            if _anybody_reachable(alert=alert, chain=chain, policy=policy):
                _alert_rearm(
                    alert=alert, patient=alert.patient, actor=actor, now=now, cause="restart"
                )
            else:
                _alert_unreachable(alert=alert, actor=actor, now=now)
            return True
        level, repeat = step
        _escalation_step_take(
            alert=alert,
            actor=actor,
            policy=policy,
            chain=chain,
            level=level,
            repeat=repeat,
            users=users,
            code=f"escalated:{chain[level]['target']}:{repeat}",
            step_key=_step_key(alert, level, repeat),
            action="alert.escalate",
            reason=f"level {level}.{repeat}",
            now=now,
        )
    return True


def _escalation_step_take(
    *,
    alert: Alert,
    actor: Actor,
    policy: EscalationPolicy,
    chain: list[dict[str, Any]],
    level: int,
    repeat: int,
    users: list[int],
    code: str,
    step_key: str | None,
    action: str,
    reason: str,
    now: dt.datetime,
) -> None:
    """One escalation step, by the sweeper or by a clinician (inside the caller's transaction,
    with the alert row locked): the transition, a notification per user and channel (keyed by
    ``step_key``; None keys it by the transition, so each manual request notifies once), the new
    level and, for an open alert, the next deadline, then the audit event and a relay kick."""
    transition = _transition(
        alert=alert,
        actor=actor,
        from_state=alert.state,
        to_state=alert.state,
        code=code,
        level=level,
    )
    _outbox_users(
        alert=alert,
        user_ids=users,
        level=level,
        repeat=repeat,
        policy=policy,
        step=step_key or f"manual-{transition.pk}",
        now=now,
    )
    alert.escalation_level, alert.escalation_repeat = level, repeat
    alert.unreachable_since = None  # somebody was reached
    if alert.state == AlertState.OPEN:
        alert.next_escalation_at = now + dt.timedelta(minutes=int(chain[level]["delay_minutes"]))
    alert.save(
        update_fields=[
            "escalation_level",
            "escalation_repeat",
            "next_escalation_at",
            "unreachable_since",
            "updated_at",
        ]
    )
    access_record(
        actor=actor,
        action=action,
        patient_id=alert.patient_id,
        resource_type="Alert",
        resource_id=alert.pk,
        reason=reason,
    )
    _relay_soon()


def escalation_sweep(*, now: dt.datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Escalate every open alert past its deadline (one step each). Safe to run at any rate,
    twice, or concurrently: each step re-checks the deadline under the alert's row lock."""
    now = now or timezone.now()
    due = list(
        Alert.objects.filter(state=AlertState.OPEN, next_escalation_at__lte=now)
        .order_by("next_escalation_at")
        .values_list("pk", flat=True)[:limit]
    )
    escalated = failed = 0
    for alert_id in due:
        try:
            escalated += int(alert_escalate(alert_id=alert_id, now=now))
        except Exception:
            failed += 1
            logger.exception("escalation of alert %s failed", alert_id)
    return {"due": len(due), "escalated": escalated, "failed": failed}


# --- notifications: the outbox -------------------------------------------------------------------
def _alert_link(alert: Alert) -> str:
    return f"{settings.VIGIL_PORTAL_BASE_URL.rstrip('/')}/portal/alerts/{alert.pk}"


def _channels_for_users(*, tier: str, policy: EscalationPolicy) -> list[str]:
    channels = [Channel.EMAIL.value]
    if settings.VIGIL_ALERT_WEBHOOK_URL and tier in (policy.page_tiers or []):
        channels.append(Channel.WEBHOOK.value)
    return channels


def _outbox_add(
    *,
    alert: Alert,
    recipient_kind: str,
    recipient_id: str,
    channel: str,
    level: int,
    repeat: int,
    step: str,
    payload: dict[str, Any],
    now: dt.datetime,
) -> OutboxMessage:
    key = f"{alert.pk}:{recipient_kind}:{recipient_id}:{channel}:{step}"
    message, _ = OutboxMessage.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "alert": alert,
            "recipient_kind": recipient_kind,
            "recipient_id": recipient_id,
            "channel": channel,
            "level": level,
            "repeat": repeat,
            "payload": {**payload, "idempotency_key": key},
            "next_attempt_at": now,
        },
    )
    return message


def _outbox_users(
    *,
    alert: Alert,
    user_ids: Iterable[int],
    level: int,
    repeat: int,
    policy: EscalationPolicy,
    step: str,
    now: dt.datetime,
) -> None:
    payload = {
        "type": "alert",
        "alert_id": str(alert.pk),
        "tier": alert.tier,
        "level": level,
        "repeat": repeat,
        "link": _alert_link(alert),
    }
    for user_id in dict.fromkeys(user_ids):
        for channel in _channels_for_users(tier=alert.tier, policy=policy):
            _outbox_add(
                alert=alert,
                recipient_kind=RecipientKind.USER,
                recipient_id=str(user_id),
                channel=channel,
                level=level,
                repeat=repeat,
                step=step,
                payload=payload,
                now=now,
            )


def _raised_users(*, alert: Alert, policy: EscalationPolicy) -> list[int]:
    """Level 0's users, notified when the alert opens (and at each new round): the assignee (or
    treating clinician), the users of the first level of the clinic's chain whatever its target
    (a clinic that puts the on-call clinician first means it), and for red the on-call
    clinician."""
    users = _target_users(alert=alert, target=ChainTarget.TREATING_CLINICIAN, policy=policy)
    first = _chain(policy)[0]["target"]
    if first != ChainTarget.TREATING_CLINICIAN:
        users += _target_users(alert=alert, target=first, policy=policy)
    if alert.tier == Tier.RED:
        users += _target_users(alert=alert, target=ChainTarget.ON_CALL, policy=policy)
    return list(dict.fromkeys(users))


def _notify_raised(
    *,
    alert: Alert,
    patient: Patient,
    policy: EscalationPolicy,
    actor: Actor,
    now: dt.datetime,
    emergency_contact: bool = True,
) -> None:
    """Notify level 0 (:func:`_raised_users`; the emergency contact too if asked, for the
    policy's tiers, with consent). If nobody at level 0 can be reached (inactive accounts, no
    address), the next escalation step is due now: the next sweep moves on to the next level
    with somebody reachable, or flags the alert unreachable, instead of waiting out the
    acknowledgement deadline. Inside the caller's transaction, the alert saved and locked."""
    users = _raised_users(alert=alert, policy=policy)
    _outbox_users(
        alert=alert,
        user_ids=users,
        level=0,
        repeat=0,
        policy=policy,
        step=_step_key(alert, 0, 0),
        now=now,
    )
    if emergency_contact and alert.tier in (policy.emergency_contact_tiers or []):
        _notify_emergency_contact(alert=alert, patient=patient, policy=policy, actor=actor, now=now)
    if not _reachable(user_ids=users, tier=alert.tier, policy=policy):
        alert.next_escalation_at = now  # nobody at level 0: on to the next level next sweep
        alert.save(update_fields=["next_escalation_at", "updated_at"])


def _notify_emergency_contact(
    *, alert: Alert, patient: Patient, policy: EscalationPolicy, actor: Actor, now: dt.datetime
) -> None:
    """Only with the patient's "emergency_contact" consent, and only the clinic's own message."""
    if not consent_has(patient=patient, scope=ConsentScope.EMERGENCY_CONTACT):
        return
    contact = EmergencyContact.objects.filter(patient=patient).first()
    if contact is None:
        return
    clinic = alert.organisation  # the clinic handling the alert (the patient's)
    payload = {
        "type": "emergency_contact",
        "clinic": clinic.name,
        "message": policy.emergency_contact_message.replace("{clinic}", clinic.name),
    }
    channels = []
    if contact.email:
        channels.append(Channel.EMAIL.value)
    if contact.phone and settings.VIGIL_ALERT_WEBHOOK_URL:
        channels.append(Channel.WEBHOOK.value)
    for channel in channels:
        _outbox_add(
            alert=alert,
            recipient_kind=RecipientKind.EMERGENCY_CONTACT,
            recipient_id=str(contact.pk),
            channel=channel,
            level=0,
            repeat=0,
            step=_step_key(alert, 0, 0),
            payload=payload,
            now=now,
        )
    access_record(
        actor=actor,
        action="alert.emergency_contact_notify",
        patient_id=patient.pk,
        resource_type="EmergencyContact",
        resource_id=contact.pk,
        purpose="consented emergency-contact notification",
    )


def _outbox_cancel_reminders(*, alert: Alert, reason: str) -> None:
    """Clinician notifications not yet handed to a relay are dropped once someone acts.
    Messages to the emergency contact are kept (they are the clinic's own decision)."""
    OutboxMessage.objects.filter(
        alert=alert, state=OutboxState.PENDING, recipient_kind=RecipientKind.USER
    ).update(state=OutboxState.CANCELLED, last_error=reason[:48], updated_at=timezone.now())


def _kick_relay() -> None:
    try:
        from risk.tasks import outbox_relay as task

        task.apply_async(retry=False, expires=120)
    except Exception:
        logger.warning("could not enqueue the outbox relay; the periodic relay will deliver")


def _relay_soon() -> None:
    """After commit, ask a worker to relay now (lower latency than the next beat tick).

    Best effort and off the request's path: the enqueue runs in a short-lived daemon thread, so
    a slow or unreachable broker never delays the response (the help button never waits on the
    broker). If it fails, the periodic relay delivers; the alert and its outbox rows are
    committed either way.
    """
    if not settings.VIGIL_ALERT_RELAY_ON_COMMIT:
        return

    def start() -> None:
        threading.Thread(target=_kick_relay, name="vigil-relay-kick", daemon=True).start()

    transaction.on_commit(start, robust=True)


class DeliveryFailed(Exception):
    """A delivery attempt failed; ``code`` is stored, ``permanent`` stops the retries."""

    def __init__(self, code: str, *, permanent: bool = False) -> None:
        super().__init__(code)
        self.code = code[:48]
        self.permanent = permanent


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp + "." + body``, hex, prefixed ``sha256=``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_signature_verify(
    *,
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse stale timestamps."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body)
    return age <= tolerance_seconds and hmac.compare_digest(expected, signature)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a signed POST is never re-sent elsewhere


def _recipient_address(message: OutboxMessage) -> dict[str, Any]:
    if message.recipient_kind == RecipientKind.USER:
        user = User.objects.filter(pk=int(message.recipient_id)).first()
        if user is None or not user.is_active:
            raise DeliveryFailed("recipient_inactive", permanent=True)
        return {"email": user.email or None}
    contact = (
        EmergencyContact.objects.filter(pk=message.recipient_id).select_related("patient").first()
    )
    if contact is None:
        raise DeliveryFailed("recipient_gone", permanent=True)
    if not consent_has(patient=contact.patient, scope=ConsentScope.EMERGENCY_CONTACT):
        raise DeliveryFailed("consent_withdrawn", permanent=True)
    return {"email": contact.email or None, "phone": contact.phone or None}


def _send_email(message: OutboxMessage, address: dict[str, Any]) -> None:
    to = address.get("email")
    if not to:
        raise DeliveryFailed("no_address", permanent=True)
    payload = message.payload
    if payload.get("type") == "emergency_contact":
        subject = f"A message from {payload.get('clinic', 'your clinic')}"
        body = str(payload.get("message", ""))
    else:
        subject = f"Vigil: a {payload.get('tier', '')} alert needs your attention"
        body = (
            "An alert for one of your patients needs your attention.\n\n"
            f"Open it here: {payload.get('link', '')}\n\n"
            f"Reference: {payload.get('alert_id', '')} (level {payload.get('level', 0)})\n"
        )
    key = message.idempotency_key
    email = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={
            "X-Vigil-Idempotency-Key": key,
            "Message-ID": f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@vigil>",
        },
    )
    try:
        email.send(fail_silently=False)
    except Exception as exc:
        raise DeliveryFailed(f"smtp_{type(exc).__name__}".lower()) from None


def _send_webhook(message: OutboxMessage, address: dict[str, Any]) -> None:
    url = settings.VIGIL_ALERT_WEBHOOK_URL
    secret = settings.VIGIL_ALERT_WEBHOOK_SECRET
    if not url or not secret:
        raise DeliveryFailed("webhook_not_configured", permanent=True)
    if not url.startswith(("https://", "http://")):
        raise DeliveryFailed("webhook_bad_url", permanent=True)
    recipient: dict[str, Any] = {"kind": message.recipient_kind, "id": message.recipient_id}
    if message.recipient_kind == RecipientKind.EMERGENCY_CONTACT:
        if not address.get("phone"):
            raise DeliveryFailed("no_address", permanent=True)
        recipient["phone"] = address["phone"]
    body = json.dumps(
        {**message.payload, "recipient": recipient}, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Vigil-Alerts/1",
            "X-Vigil-Timestamp": timestamp,
            "X-Vigil-Signature": webhook_signature(secret=secret, timestamp=timestamp, body=body),
            "X-Vigil-Idempotency-Key": message.idempotency_key,
        },
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=settings.VIGIL_ALERT_WEBHOOK_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"http_{exc.code}") from None
    except TimeoutError:
        raise DeliveryFailed("timeout") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        code = "timeout" if isinstance(reason, TimeoutError) else "connection_error"
        raise DeliveryFailed(code) from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"http_{status}")


def _backoff(attempts: int) -> dt.timedelta:
    base = settings.VIGIL_ALERT_OUTBOX_BACKOFF_SECONDS
    cap = settings.VIGIL_ALERT_OUTBOX_BACKOFF_MAX_SECONDS
    return dt.timedelta(seconds=min(cap, base * (2 ** max(0, attempts - 1))))


def _claim(*, limit: int, now: dt.datetime) -> list[OutboxMessage]:
    """Claim due messages: pending ones whose time has come, and ones whose sender's lease ran
    out (it crashed between sending and marking). The conditional update is the claim: of two
    relays racing for a row, one updates it and the other finds it taken. Where the database
    can, candidates are read with ``FOR UPDATE SKIP LOCKED`` so relays do not even wait on each
    other; elsewhere (SQLite) the two statements run in autocommit, so no read lock is held
    while asking for the write lock (which SQLite would refuse as a deadlock).
    """
    due = Q(state=OutboxState.PENDING, next_attempt_at__lte=now) | Q(
        state=OutboxState.SENDING, claimed_until__lt=now
    )
    token = uuid.uuid4()
    lease = dt.timedelta(seconds=settings.VIGIL_ALERT_OUTBOX_LEASE_SECONDS)
    skip_locked = connection.features.has_select_for_update_skip_locked
    with transaction.atomic() if skip_locked else contextlib.nullcontext():
        candidates = OutboxMessage.objects.filter(due).order_by("next_attempt_at")
        if skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        ids = list(candidates.values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        OutboxMessage.objects.filter(due, pk__in=ids).update(
            state=OutboxState.SENDING,
            claim_token=token,
            claimed_until=now + lease,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    return list(OutboxMessage.objects.filter(claim_token=token).order_by("next_attempt_at"))


def _mark(message: OutboxMessage, **changes: Any) -> bool:
    """Write the outcome only if this relay still holds the claim."""
    changes.setdefault("updated_at", timezone.now())
    return bool(
        OutboxMessage.objects.filter(
            pk=message.pk, state=OutboxState.SENDING, claim_token=message.claim_token
        ).update(claim_token=None, claimed_until=None, **changes)
    )


def outbox_deliver(message: OutboxMessage) -> str:
    """Send one claimed message and record the outcome: sent, retry later, or failed."""
    try:
        address = _recipient_address(message)
        if message.channel == Channel.EMAIL:
            _send_email(message, address)
        else:
            _send_webhook(message, address)
    except DeliveryFailed as exc:
        return _failed(message, exc.code, permanent=exc.permanent)
    except Exception as exc:
        logger.exception("outbox message %s: unexpected delivery error", message.pk)
        return _failed(message, f"error_{type(exc).__name__}".lower(), permanent=False)
    _mark(message, state=OutboxState.SENT, sent_at=timezone.now(), last_error="")
    return OutboxState.SENT


def _failed(message: OutboxMessage, code: str, *, permanent: bool) -> str:
    if code == "consent_withdrawn":
        _mark(message, state=OutboxState.CANCELLED, last_error=code)
        return OutboxState.CANCELLED
    if permanent or message.attempts >= settings.VIGIL_ALERT_OUTBOX_MAX_ATTEMPTS:
        _mark(message, state=OutboxState.FAILED, last_error=code)
        logger.error("outbox message %s failed for good: %s", message.pk, code)
        return OutboxState.FAILED
    _mark(
        message,
        state=OutboxState.PENDING,
        last_error=code,
        next_attempt_at=timezone.now() + _backoff(message.attempts),
    )
    logger.warning("outbox message %s: attempt %s failed (%s)", message.pk, message.attempts, code)
    return OutboxState.PENDING


def outbox_relay(
    *,
    limit: int = 200,
    batch: int = 5,
    budget_seconds: float = 60.0,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Deliver due notifications, a few at a time, until none is due, ``limit`` were handled or
    the time budget is spent (so a slow gateway never holds claims past the task's time limit).

    At least once: a relay that dies after sending but before marking leaves the row claimed;
    when its lease expires another relay sends it again with the same idempotency key (header
    ``X-Vigil-Idempotency-Key``, in the webhook body, and the e-mail's Message-ID), on which
    receivers de-duplicate. On our side a row is never sent by two relays at once and is marked
    sent once.
    """
    started = time.monotonic()
    counts = {"claimed": 0, "sent": 0, "retry": 0, "failed": 0, "cancelled": 0}
    outcome_key = {"sent": "sent", "pending": "retry", "failed": "failed", "cancelled": "cancelled"}
    while counts["claimed"] < limit and time.monotonic() - started < budget_seconds:
        claimed = _claim(limit=min(batch, limit - counts["claimed"]), now=now or timezone.now())
        if not claimed:
            break
        for message in claimed:
            counts["claimed"] += 1
            counts[outcome_key[outbox_deliver(message)]] += 1
    return counts


def alert_delivery_state(*, alert: Alert) -> list[dict[str, Any]]:
    """Delivery state of an alert's notifications, for the portal and the admin."""
    return [
        {
            "recipient_kind": m.recipient_kind,
            "recipient_id": m.recipient_id,
            "channel": m.channel,
            "level": m.level,
            "repeat": m.repeat,
            "state": m.state,
            "attempts": m.attempts,
            "sent_at": m.sent_at,
            "last_error": m.last_error,
        }
        for m in alert.outbox.order_by("created_at")
    ]


# --- intake: the producers that exist today ------------------------------------------------------
def _local_date(patient: Patient, moment: dt.datetime) -> dt.date:
    return moment.astimezone(zoneinfo.ZoneInfo(patient.timezone)).date()


def help_request_alert(*, help_request: HelpRequest, new_emergency: bool) -> None:
    """The help button's red alert, raised inside the press's own transaction (registered into
    ``risk.intake.HELP_REQUEST_HANDLERS``). Nothing here touches the broker before commit."""
    patient = Patient.objects.select_related("organisation").get(pk=help_request.patient_id)
    moment = help_request.client_timestamp or help_request.received_at or timezone.now()
    event = HelpPressed(
        local_date=_local_date(patient, moment),
        help_request_id=str(help_request.pk),
        emergency_id=str(help_request.emergency_id),
        new_emergency=new_emergency,
    )
    signal_evaluate(patient=patient, event=event)


def questionnaire_alert(*, response: QuestionnaireResponse) -> list[RaiseResult]:
    patient = Patient.objects.select_related("organisation").get(pk=response.patient_id)
    event = QuestionnaireScored(
        local_date=response.local_date,
        response_id=str(response.pk),
        instrument=response.instrument,
        total=int(response.total),
        item9=response.item9,
    )
    return signal_evaluate(patient=patient, event=event)


def adherence_evaluate(*, patient: Patient, now: dt.datetime | None = None) -> list[RaiseResult]:
    """Build the patient's adherence event from a bounded window of their inputs' local days and
    evaluate it. Keyed by the last input's day, so one silence raises at most one alert."""
    rule_set = rule_set_for(organisation=patient.organisation)
    rules = rule_set.rules_for(Adherence.kind)
    if not rules:
        return []
    window = max(int(r.params["window_days"]) for r in rules)
    silent = max(int(r.params["days_silent_at_least"]) for r in rules)
    today = _local_date(patient, now or timezone.now())
    since = today - dt.timedelta(days=window + silent + 1)
    days: set[dt.date] = set()
    for model in (DiaryEntry, VideoSubmission, QuestionnaireResponse):
        days.update(
            model.objects.filter(patient=patient, local_date__gte=since, local_date__lte=today)
            .values_list("local_date", flat=True)
            .distinct()
        )
    if not days:
        return []  # silent longer than the window: the silence was judged when it began
    last = max(days)
    first_counted = last - dt.timedelta(days=window - 1)
    event = Adherence(
        local_date=today,
        days_silent=(today - last).days,
        active_days_before=sum(1 for day in days if first_counted <= day <= last),
        last_input_date=last,
    )
    return signal_evaluate(patient=patient, event=event)


def adherence_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Evaluate non-adherence for every active patient (a few indexed queries each)."""
    checked = raised = 0
    patients = Patient.objects.filter(erased_at__isnull=True).select_related("organisation")
    for patient in patients.iterator(chunk_size=200):
        checked += 1
        try:
            raised += sum(r.created for r in adherence_evaluate(patient=patient, now=now))
        except Exception:
            logger.exception("adherence check of patient %s failed", patient.pk)
    return {"checked": checked, "raised": raised}


# --- portal actions: manual escalation and reassignment -----------------------------------------
def _level_users(
    *, alert: Alert, chain: list[dict[str, Any]], start: int, policy: EscalationPolicy
) -> tuple[int, list[int]] | None:
    """The first chain level from ``start`` that has somebody reachable to notify (inactive
    accounts and ones without an address do not count)."""
    for level in range(start, len(chain)):
        users = _level_reachable(alert=alert, target=chain[level]["target"], policy=policy)
        if users is not None:
            return level, users
    return None


def alert_escalate_manual(
    *, actor: Actor, alert_id: uuid.UUID, now: dt.datetime | None = None
) -> Alert:
    """A clinician asks for help now: the alert moves to the next level of the chain that has
    somebody to notify (open or acknowledged alerts). Raises :class:`AlertTransitionInvalid`
    when the alert is closed or the chain has no further level."""
    _alert_for_actor(actor=actor, alert_id=alert_id, action="alert.escalate_manual")
    now = now or timezone.now()
    with transaction.atomic():
        # the alert row only (of=self): a join would lock the patient after the alert, the
        # reverse of every service that locks the patient first (deadlock)
        alert = (
            Alert.objects.select_for_update(of=("self",)).select_related("patient").get(pk=alert_id)
        )
        if alert.state not in ACTIVE_STATES:
            raise AlertTransitionInvalid(state=alert.state, wanted="escalated")
        policy = escalation_policy_for(organisation=alert.organisation)
        chain = _chain(policy)
        found = _level_users(
            alert=alert, chain=chain, start=alert.escalation_level + 1, policy=policy
        )
        if found is None:
            raise AlertTransitionInvalid(state=alert.state, wanted="escalated")
        level, users = found
        _escalation_step_take(
            alert=alert,
            actor=actor,
            policy=policy,
            chain=chain,
            level=level,
            repeat=0,
            users=users,
            code=f"escalated_manual:{chain[level]['target']}",
            step_key=None,
            action="alert.escalate_manual",
            reason=f"level {level}",
            now=now,
        )
    return alert


def alert_reassign(
    *, actor: Actor, alert_id: uuid.UUID, clinician_id: int, now: dt.datetime | None = None
) -> Alert:
    """Give an active alert to another clinician who may handle it (the patient's treating
    clinician, a member of their care team, or the clinic's on-call clinician or lead), and
    notify them. Anyone else is refused (:class:`ValidationFailed`)."""
    from config.errors import ValidationFailed
    from screening.models import Clinician

    _alert_for_actor(actor=actor, alert_id=alert_id, action="alert.reassign")
    now = now or timezone.now()
    with transaction.atomic():
        # the alert row only (of=self): a join would lock the patient after the alert, the
        # reverse of every service that locks the patient first (deadlock)
        alert = (
            Alert.objects.select_for_update(of=("self",)).select_related("patient").get(pk=alert_id)
        )
        if alert.state not in ACTIVE_STATES:
            raise AlertTransitionInvalid(state=alert.state, wanted="reassigned")
        policy = escalation_policy_for(organisation=alert.organisation)
        target = (
            Clinician.objects.filter(pk=clinician_id, organisation_id=alert.organisation_id)
            .select_related("user")
            .first()
        )
        eligible = target is not None and (
            target.pk == alert.patient.treating_clinician_id
            or target.care_teams.filter(pk=alert.patient.care_team_id).exists()
            or target.pk in (policy.on_call_id, policy.clinical_lead_id)
        )
        if target is None or not eligible or not target.user.is_active:
            raise ValidationFailed(
                fields={"assignee": ["Choose a clinician of the patient's care team."]}
            )
        if target.pk == alert.assigned_to_id:
            return alert
        alert.assigned_to = target
        alert.save(update_fields=["assigned_to", "updated_at"])
        transition = _transition(
            alert=alert,
            actor=actor,
            from_state=alert.state,
            to_state=alert.state,
            code="reassigned",
            level=alert.escalation_level,
        )
        _outbox_users(
            alert=alert,
            user_ids=[target.user_id],
            level=alert.escalation_level,
            repeat=alert.escalation_repeat,
            policy=policy,
            step=f"reassign-{transition.pk}",
            now=now,
        )
        access_record(
            actor=actor,
            action="alert.reassign",
            patient_id=alert.patient_id,
            resource_type="Alert",
            resource_id=alert.pk,
            reason=f"to clinician {target.pk}",
        )
        _relay_soon()
    return alert


# --- a day's mood retracted by its producer ------------------------------------------------------
#: What a consent withdrawal with deletion can take back from the per-day state, by the scope's
#: derived data: crisis language from diary text or from transcripts, video distress, and the
#: voice / face / text baseline drops. Built from the events' own kinds and the crisis sources
#: (``CrisisLanguage.source_id`` is ``<source>:<ref>``), so a renamed kind cannot silently stop a
#: retraction.
def _crisis_from(source: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda bucket, ref: (
        bucket == "crisis" and str(ref.get("source_id", "")).startswith(f"{source}:")
    )


def _drop_of(signal: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda bucket, ref: ref.get("kind") == BaselineDrop.kind and ref.get("code") == signal


def _either(
    *tests: Callable[[str, dict[str, Any]], bool],
) -> Callable[[str, dict[str, Any]], bool]:
    return lambda bucket, ref: any(test(bucket, ref) for test in tests)


RETRACTABLE_SIGNALS: dict[str, Callable[[str, dict[str, Any]], bool]] = {
    "text": _either(_crisis_from("text"), _drop_of("text")),
    "transcript": _crisis_from("transcript"),
    "media_distress": lambda bucket, ref: ref.get("kind") == MediaDistress.kind,
    "voice": _drop_of("voice"),
    "face": _drop_of("face"),
}


def day_signals_retract(*, patient: Patient, signals: Iterable[str]) -> int:
    """Forget, on every day of the patient's per-day state, the crisis and corroborating signals
    derived from data the patient asked to delete (``signals``: keys of
    :data:`RETRACTABLE_SIGNALS`), so that no later evaluation counts them: deleted video distress
    or a deleted face baseline drop must not confirm new crisis language
    (``crisis_double_verified``), nor deleted crisis language be confirmed by a new signal.
    Alerts already raised stay, evidence and all (the clinical record of what was known when
    they fired). Idempotent; returns how many days changed."""
    wanted = set(signals)
    unknown = wanted - set(RETRACTABLE_SIGNALS)
    if unknown:
        raise ValueError(f"unknown signals: {sorted(unknown)}")
    tests = [RETRACTABLE_SIGNALS[name] for name in sorted(wanted)]
    if not tests:
        return 0
    changed = 0
    with transaction.atomic():
        _lock_patient(patient)
        for row in PatientDaySignals.objects.filter(patient=patient).iterator(chunk_size=500):
            dirty = False
            for bucket in ("crisis", "corroboration"):
                refs: list[dict[str, Any]] = list(getattr(row, bucket))
                kept = [ref for ref in refs if not any(test(bucket, ref) for test in tests)]
                if len(kept) != len(refs):
                    setattr(row, bucket, kept)
                    dirty = True
            if dirty:
                row.save(update_fields=["crisis", "corroboration", "updated_at"])
                changed += 1
    return changed


def day_mood_retract(
    *,
    patient: Patient,
    local_dates: Iterable[dt.date],
    baseline_drop_only: bool = False,
) -> int:
    """Forget days' fused moods in the per-day state the rules read, when they no longer stand:
    screening deleted them (a consent withdrawal with deletion of the data they were made from)
    or a recompute of the day now abstains. Clears the mood fields and the mood ``BaselineDrop``
    derived from the mood (corroboration code ``mood``); with ``baseline_drop_only``, only that
    drop (the day was recomputed and its mood no longer drops). No later evaluation reads them
    (``low_mood_streak``, ``crisis_double_verified``). Alerts already raised stay, evidence and
    all: they are the clinical record of what was known when they fired. Idempotent; returns how
    many days changed."""

    days = sorted(set(local_dates))
    changed = 0
    with transaction.atomic():
        _lock_patient(patient)
        for start in range(0, len(days), 500):
            rows = PatientDaySignals.objects.filter(
                patient=patient, local_date__in=days[start : start + 500]
            )
            for row in rows:
                dirty = False
                if not baseline_drop_only and (
                    row.mood is not None
                    or row.mood_confidence is not None
                    or row.mood_independent is not None
                    or row.mood_modalities
                ):
                    row.mood = row.mood_confidence = row.mood_independent = None
                    row.mood_modalities = []
                    dirty = True
                kept = [
                    ref
                    for ref in row.corroboration
                    if (ref.get("kind"), ref.get("code")) != (BaselineDrop.kind, "mood")
                ]
                if len(kept) != len(row.corroboration):
                    row.corroboration = kept
                    dirty = True
                if dirty:
                    row.save()
                    changed += 1
    return changed
