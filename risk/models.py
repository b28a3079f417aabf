"""Risk: a clinic's rule-set choice and escalation policy, alerts, their history and evidence,
the per-patient day signals the rules read, and the notification outbox."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from privacy.fields import EncryptedJSONField, EncryptedTextField
from privacy.models import AppendOnlyModel
from risk.choices import (
    ACTIVE_STATES,
    AlertState,
    ChainTarget,
    Channel,
    Disposition,
    OutboxState,
    RecipientKind,
    Tier,
)

DEFAULT_RULE_SET_VERSION = "v3"


def default_chain() -> list[dict[str, Any]]:
    """Treating clinician -> care team -> on-call clinician -> clinical lead.

    Level 0 (whatever its target, together with the alert's assignee or treating clinician, and
    for red the on-call clinician) is notified when the alert is raised and waits for the tier's
    acknowledgement deadline (not when none of them can be reached: then the next step is due at
    once); ``delay_minutes`` is the wait after each later notification (and between the
    ``repeat`` extra reminders at a level) before the next step.
    """
    return [
        {"target": ChainTarget.TREATING_CLINICIAN.value, "delay_minutes": 5, "repeat": 0},
        {"target": ChainTarget.CARE_TEAM.value, "delay_minutes": 10, "repeat": 1},
        {"target": ChainTarget.ON_CALL.value, "delay_minutes": 10, "repeat": 2},
        {"target": ChainTarget.CLINICAL_LEAD.value, "delay_minutes": 15, "repeat": 2},
    ]


def default_working_weekdays() -> list[int]:
    return [0, 1, 2, 3, 4]  # Monday .. Friday (Python's weekday numbers)


def default_page_tiers() -> list[str]:
    return [Tier.RED.value, Tier.ORANGE.value]


def default_emergency_contact_tiers() -> list[str]:
    return [Tier.ORANGE.value]


DEFAULT_EMERGENCY_CONTACT_MESSAGE = (
    "This is {clinic}. You are named as an emergency contact of one of our patients. "
    "Please call the clinic as soon as you can."
)


#: Bounds of a clinic's escalation policy (minutes). A red alert must reach a second person within
#: a quarter of an hour; orange within the working half-day; a level waits at most 4 hours.
RED_ACK_MINUTES = (1, 15)
ORANGE_ACK_MINUTES = (5, 240)
CHAIN_DELAY_MINUTES = (1, 240)
#: Yellow alerts are due the next working day at a time of day: it must be within working hours.
YELLOW_ACK_TIMES = (dt.time(6, 0), dt.time(20, 0))


def validate_yellow_ack_time(value: Any) -> None:
    low, high = YELLOW_ACK_TIMES
    if not isinstance(value, dt.time) or not low <= value.replace(tzinfo=None) <= high:
        raise ValidationError(
            f"Must be a time of day from {low:%H:%M} to {high:%H:%M} (clinic time)."
        )


def validate_chain(value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("The chain must be a non-empty list of levels.")
    for i, level in enumerate(value):
        if not isinstance(level, dict) or set(level) != {"target", "delay_minutes", "repeat"}:
            raise ValidationError(f"Level {i} needs exactly target, delay_minutes and repeat.")
        if level["target"] not in ChainTarget.values:
            raise ValidationError(f"Level {i}: unknown target.")
        delay, repeat = level["delay_minutes"], level["repeat"]
        low, high = CHAIN_DELAY_MINUTES
        if isinstance(delay, bool) or not isinstance(delay, int) or not low <= delay <= high:
            raise ValidationError(f"Level {i}: delay_minutes must be {low} to {high}.")
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 0 <= repeat <= 10:
            raise ValidationError(f"Level {i}: repeat must be 0 to 10.")


def validate_tier_list(value: Any) -> None:
    if not isinstance(value, list) or not set(value) <= set(Tier.values):
        raise ValidationError("Must be a list of tiers (red, orange, yellow).")


def validate_weekdays(value: Any) -> None:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in value)
    ):
        raise ValidationError("Must be a non-empty list of weekdays, 0 (Monday) to 6 (Sunday).")


def validate_dates(value: Any) -> None:
    if not isinstance(value, list):
        raise ValidationError("Must be a list of dates (YYYY-MM-DD).")
    for item in value:
        try:
            dt.date.fromisoformat(item)
        except (TypeError, ValueError):
            raise ValidationError("Must be a list of dates (YYYY-MM-DD).") from None


class RuleSetSelection(models.Model):
    """A clinic's rule-set version and threshold overrides. Changes go through
    ``risk.services.rule_set_select`` (validated, recorded in :class:`RuleSetChange`, audited)."""

    organisation = models.OneToOneField(
        "screening.Organisation", on_delete=models.PROTECT, related_name="risk_rule_set"
    )
    version = models.CharField(max_length=16, default=DEFAULT_RULE_SET_VERSION)
    #: {rule id: {parameter: number}}; only parameters the rule set marks overridable.
    threshold_overrides = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"Rule set {self.version} for {self.organisation_id}"

    def clean(self) -> None:
        from risk.rules.engine import EngineError
        from risk.rules.loader import rule_sets

        sets = rule_sets()
        if self.version not in sets:
            raise ValidationError({"version": f"Unknown rule set; known: {', '.join(sets)}."})
        try:
            sets[self.version].with_overrides(self.threshold_overrides or {})
        except EngineError as exc:
            raise ValidationError({"threshold_overrides": str(exc)}) from None


class ConfigChange(AppendOnlyModel):
    """One change of a clinic's configuration: who, when, before and after (no patient data;
    clinicians by id). Append-only, read-only for auditors."""

    id = models.BigAutoField(primary_key=True)
    organisation = models.ForeignKey(
        "screening.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class RuleSetChange(ConfigChange):
    """One change of a clinic's rule-set selection."""

    class Meta(ConfigChange.Meta):
        pass

    def __str__(self) -> str:
        return f"rule set change {self.pk}"


class EscalationPolicy(models.Model):
    """A clinic's acknowledgement deadlines, escalation chain and notification choices. Changes
    go through ``risk.services.escalation_policy_save`` (validated within the bounds above,
    recorded in :class:`PolicyChange`, audited)."""

    organisation = models.OneToOneField(
        "screening.Organisation", on_delete=models.PROTECT, related_name="escalation_policy"
    )
    red_ack_minutes = models.PositiveIntegerField(
        default=5,
        validators=[MinValueValidator(RED_ACK_MINUTES[0]), MaxValueValidator(RED_ACK_MINUTES[1])],
        help_text=f"Minutes, {RED_ACK_MINUTES[0]} to {RED_ACK_MINUTES[1]}.",
    )
    orange_ack_minutes = models.PositiveIntegerField(
        default=30,
        validators=[
            MinValueValidator(ORANGE_ACK_MINUTES[0]),
            MaxValueValidator(ORANGE_ACK_MINUTES[1]),
        ],
        help_text=f"Minutes, {ORANGE_ACK_MINUTES[0]} to {ORANGE_ACK_MINUTES[1]}.",
    )
    #: Yellow alerts are due on the next working day at this time, in the clinic's time zone.
    yellow_ack_time = models.TimeField(
        default=dt.time(10, 0),
        validators=[validate_yellow_ack_time],
        help_text="Yellow alerts are due the next working day at this time (06:00 to 20:00).",
    )
    working_weekdays = models.JSONField(
        default=default_working_weekdays, validators=[validate_weekdays]
    )
    non_working_dates = models.JSONField(default=list, blank=True, validators=[validate_dates])
    chain = models.JSONField(default=default_chain, validators=[validate_chain])
    # PROTECT: a clinician named here cannot be deleted; clearing the field is a policy change,
    # recorded as such (PolicyChange). One who leaves is deactivated and escalation skips them.
    on_call = models.ForeignKey(
        "screening.Clinician",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Paged with every red alert, and level 'on_call' of the chain.",
    )
    clinical_lead = models.ForeignKey(
        "screening.Clinician", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    #: Tiers whose clinician notifications also go through the signed webhook (SMS / pager).
    page_tiers = models.JSONField(default=default_page_tiers, validators=[validate_tier_list])
    #: Tiers that notify the patient's emergency contact (only with the patient's consent).
    emergency_contact_tiers = models.JSONField(
        default=default_emergency_contact_tiers, validators=[validate_tier_list], blank=True
    )
    #: The text sent to an emergency contact; ``{clinic}`` is replaced by the clinic's name.
    #: It must not name a diagnosis or quote the patient.
    emergency_contact_message = models.TextField(
        default=DEFAULT_EMERGENCY_CONTACT_MESSAGE, max_length=600
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name_plural = "escalation policies"

    def __str__(self) -> str:
        return f"Escalation policy of {self.organisation_id}"

    def clean(self) -> None:
        for name, value in (("on_call", self.on_call), ("clinical_lead", self.clinical_lead)):
            if value is not None and value.organisation_id != self.organisation_id:
                raise ValidationError({name: "Must be a clinician of this clinic."})

    def ack_minutes(self, tier: str) -> int:
        return self.red_ack_minutes if tier == Tier.RED else self.orange_ack_minutes


class PolicyChange(ConfigChange):
    """One change of a clinic's escalation policy."""

    class Meta(ConfigChange.Meta):
        pass

    def __str__(self) -> str:
        return f"escalation policy change {self.pk}"


class Alert(models.Model):
    """One alert: a tier for a patient, with the rule set and rule that raised it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(
        "screening.Patient", on_delete=models.PROTECT, related_name="alerts"
    )
    organisation = models.ForeignKey(
        "screening.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    tier = models.CharField(max_length=8, choices=Tier.choices)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.OPEN)
    rule_set_version = models.CharField(max_length=16)
    rule_set_hash = models.CharField(max_length=64)
    rule_id = models.CharField(max_length=48)
    #: The firing's evidence (ids, scores, codes, the parameters used): encrypted.
    evidence = EncryptedJSONField(owner_field="patient_id")
    local_date = models.DateField()
    assigned_to = models.ForeignKey(
        "screening.Clinician", on_delete=models.PROTECT, null=True, related_name="alerts"
    )
    ack_deadline = models.DateTimeField()
    escalation_level = models.PositiveSmallIntegerField(default=0)
    escalation_repeat = models.PositiveSmallIntegerField(default=0)
    #: How many times the alert was put back under a deadline, by a red or deterministic firing
    #: or because its chain ran out unacknowledged (the chain then starts again from level 0;
    #: the round keys its notifications apart).
    escalation_round = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)
    #: Set while no level of the chain (and, for red, not the on-call clinician) has anybody
    #: reachable: the sweeper re-checks on every run and the portal and ``/readyz`` show it.
    unreachable_since = models.DateTimeField(null=True, blank=True)
    superseded_by = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="supersedes"
    )
    disposition = models.CharField(max_length=32, choices=Disposition.choices, blank=True)
    resolution_note = EncryptedTextField(owner_field="patient_id", null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "tier"],
                condition=Q(state__in=[s.value for s in ACTIVE_STATES]),
                name="one_active_alert_per_patient_tier",
            )
        ]
        indexes = [
            models.Index(fields=["state", "next_escalation_at"], name="alert_due"),
            models.Index(fields=["organisation", "state", "tier"], name="alert_triage"),
            models.Index(fields=["patient", "-created_at"], name="alert_patient_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.tier} alert {self.id} ({self.state})"


class AlertTransition(AppendOnlyModel):
    """Every change of an alert's state, and every escalation step: who, when, and a code."""

    id = models.BigAutoField(primary_key=True)
    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="transitions")
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_role = models.CharField(max_length=16)
    #: raised, evidence_attached, escalated, acknowledged, resolved, superseded
    note_code = models.CharField(max_length=48)
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_state or '-'} -> {self.to_state} ({self.note_code})"


class AlertEvidence(models.Model):
    """One signal attached to an alert (the one that raised it, and each that joined it)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="evidence_items")
    patient = models.ForeignKey("screening.Patient", on_delete=models.PROTECT, related_name="+")
    rule_id = models.CharField(max_length=48)
    rule_set_version = models.CharField(max_length=16)
    tier = models.CharField(max_length=8, choices=Tier.choices)
    event_kind = models.CharField(max_length=32)
    dedupe_key = models.CharField(max_length=255)
    local_date = models.DateField()
    snapshot = EncryptedJSONField(owner_field="patient_id")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "dedupe_key"], name="evidence_once_per_alert")
        ]
        indexes = [models.Index(fields=["patient", "dedupe_key"], name="evidence_signal")]

    def __str__(self) -> str:
        return f"evidence {self.rule_id} for {self.alert_id}"


class PatientDaySignals(models.Model):
    """The risk engine's per-patient, per-local-day state: what the rules read besides the event.

    Scores and ids only (no text). ``crisis`` and ``corroboration`` are lists of
    ``{kind, source_id, code, score}``, capped in length.
    """

    id = models.BigAutoField(primary_key=True)
    patient = models.ForeignKey("screening.Patient", on_delete=models.CASCADE, related_name="+")
    local_date = models.DateField()
    mood = models.FloatField(null=True, blank=True)
    mood_confidence = models.FloatField(null=True, blank=True)
    #: The day's mood fused without text (None: only text contributed, or not known); only this
    #: score may confirm crisis language. ``mood_modalities``: the fusion's contributing modalities.
    mood_independent = models.FloatField(null=True, blank=True)
    mood_modalities = models.JSONField(default=list, blank=True)
    crisis = models.JSONField(default=list, blank=True)
    corroboration = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "local_date"], name="day_signals_once")
        ]

    def __str__(self) -> str:
        return f"signals of {self.patient_id} on {self.local_date}"


class OutboxMessage(models.Model):
    """A notification to deliver, written in the same transaction as the alert change."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="outbox")
    recipient_kind = models.CharField(max_length=24, choices=RecipientKind.choices)
    recipient_id = models.CharField(max_length=64)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    level = models.PositiveSmallIntegerField(default=0)
    repeat = models.PositiveSmallIntegerField(default=0)
    #: alert:recipient kind:recipient id:channel:level.repeat. The receiver de-duplicates on it.
    idempotency_key = models.CharField(max_length=200, unique=True)
    #: What is sent: ids, the tier, a link, a clinic-authored text. Never patient text.
    payload = models.JSONField(default=dict)
    state = models.CharField(
        max_length=10, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=48, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["state", "claimed_until"], name="outbox_claimed"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient_kind} {self.recipient_id} ({self.state})"
