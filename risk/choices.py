"""Tiers, alert states, dispositions and outbox vocabularies (the only place risk/ names them)."""

from __future__ import annotations

from django.db import models


class Tier(models.TextChoices):
    RED = "red", "Red"
    ORANGE = "orange", "Orange"
    YELLOW = "yellow", "Yellow"


#: Higher is more urgent. Shared with the pure engine (``risk.rules.engine.TIER_RANK``).
TIER_RANK = {Tier.YELLOW: 1, Tier.ORANGE: 2, Tier.RED: 3}


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
    #: Replaced by a higher-tier alert for the same patient (``superseded_by`` links to it).
    SUPERSEDED = "superseded", "Superseded"


ACTIVE_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED)


class Disposition(models.TextChoices):
    CONTACTED_PATIENT = "contacted_patient", "Contacted the patient"
    SAFETY_PLAN_REVIEWED = "safety_plan_reviewed", "Safety plan reviewed"
    REFERRED_EMERGENCY = "referred_emergency_services", "Referred to emergency services"
    SCHEDULED_FOLLOW_UP = "scheduled_follow_up", "Scheduled a follow-up"
    FALSE_POSITIVE = "false_positive", "False positive"
    OTHER = "other", "Other (see note)"


class ChainTarget(models.TextChoices):
    TREATING_CLINICIAN = "treating_clinician", "Treating clinician"
    CARE_TEAM = "care_team", "Care team"
    ON_CALL = "on_call", "On-call clinician"
    CLINICAL_LEAD = "clinical_lead", "Clinical lead"


class RecipientKind(models.TextChoices):
    USER = "user", "Clinician (user)"
    EMERGENCY_CONTACT = "emergency_contact", "Emergency contact"


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Signed webhook (SMS / pager gateway)"


class OutboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
