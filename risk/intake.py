"""Where screening (and, later, the scoring and media pipelines) hand events to the risk engine.

- The help button calls :func:`help_request_received` inside the help request's own transaction,
  so that the red alert the risk engine raises there commits (or not) together with the press,
  never through the broker or a worker. ``risk.apps`` registers the red-alert handler into
  :data:`HELP_REQUEST_HANDLERS` at start-up.
- A questionnaire submission calls :func:`questionnaire_scored` inside its own transaction, so
  PHQ-9 item 9 and the PHQ-9 total raise their alerts with the submission (deterministic
  triggers: no model output is consulted and none can suppress them).
- Producers not built yet (the crisis detector, the fused daily mood, video distress, baselines)
  call :func:`signal_received` with a typed event from ``risk.rules.engine``.
- The daily mood's producer calls :func:`daily_mood_retracted` when a day's mood it sent no
  longer stands (deleted with the data it came from, or the day now abstains).
- A text score hands its model's at-risk decision to :func:`text_risk_assessed`: risk decides
  what tier (if any) that opinion suggests, not the producer.
- Whatever changes a patient's clinic (``screening.services.people.patient_update``) calls
  :func:`patient_transferred` inside its transaction: active alerts follow the patient.

This module imports nothing heavy at import time: screening imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datetime as dt
    import uuid
    from collections.abc import Iterable

    from privacy.audit import Actor
    from risk.rules.engine import Event
    from screening.models import HelpRequest, Patient, QuestionnaireResponse

#: Functions called with (help_request, new_emergency) inside the transaction. The risk engine
#: registers its red-alert handler here; tests register spies.
HELP_REQUEST_HANDLERS: list = []


def help_request_received(*, help_request: HelpRequest, new_emergency: bool) -> None:
    for handler in HELP_REQUEST_HANDLERS:
        handler(help_request=help_request, new_emergency=new_emergency)


def help_requests_alerted(*, patient_ids: Iterable[uuid.UUID], since: dt.datetime) -> set[str]:
    """The ids of the help presses of these patients since ``since`` that the risk engine has
    already counted (the evidence of their red alert exists): the help sweep re-runs the intake
    for the others."""
    from risk.selectors import help_presses_with_evidence

    return help_presses_with_evidence(patient_ids=patient_ids, since=since)


def questionnaire_scored(*, response: QuestionnaireResponse) -> Any:
    """A new questionnaire response was stored (call inside the submission's transaction)."""
    from risk.services import questionnaire_alert

    return questionnaire_alert(response=response)


def daily_mood_retracted(
    *, patient: Patient, local_dates: Iterable[dt.date], baseline_drop_only: bool = False
) -> int:
    """Days whose fused mood no longer stands (deleted after a consent withdrawal, or the day
    now abstains): risk forgets them, and with them the mood baseline drop, so no new alert is
    raised from them (``baseline_drop_only``: the day still has a mood, but no longer a drop).
    Alerts already raised stay. Call inside the transaction that deletes or recomputes them."""
    from risk.services import day_mood_retract

    return day_mood_retract(
        patient=patient, local_dates=local_dates, baseline_drop_only=baseline_drop_only
    )


#: The tier a text model's own "at risk" decision suggests to the ``model_opinion`` rule: yellow,
#: for clinician review. The head's threshold is tuned for recall (docs/text-scoring.md), so its
#: opinion alone is never more; explicit statements reach orange and red through the crisis
#: detector's ``crisis_language`` events, which this does not replace.
TEXT_AT_RISK_TIER = "yellow"


def text_risk_assessed(
    *,
    patient: Patient,
    local_date: dt.date,
    model: str,
    model_version: str,
    source_ref: str,
    at_risk: bool,
    probability: float,
) -> Any:
    """A diary entry or transcript was scored: the model's at-risk decision at its calibrated
    threshold and its probability. Risk turns it into a ``model_assessment`` event (a suggested
    tier, or none: "low risk", which fires nothing and can suppress nothing). Call inside the
    transaction that stores the score."""
    from risk.rules.engine import ModelAssessment

    return signal_received(
        patient=patient,
        event=ModelAssessment(
            local_date=local_date,
            model=model,
            model_version=model_version,
            source_ref=source_ref,
            suggested_tier=TEXT_AT_RISK_TIER if at_risk else None,
            score=probability,
        ),
    )


def derived_signals_retracted(*, patient: Patient, signals: Iterable[str]) -> int:
    """A consent withdrawal deleted the data some signals were derived from (``signals``:
    ``text``, ``transcript``, ``media_distress``, ``voice``, ``face``): risk forgets them on every
    day, so they confirm nothing later. Alerts already raised stay. Call inside the transaction
    that deletes the data."""
    from risk.services import day_signals_retract

    return day_signals_retract(patient=patient, signals=signals)


def signal_received(*, patient: Patient, event: Event) -> Any:
    """Any other scored input (crisis language, daily mood, media distress, baseline drop, a
    model's opinion), on the patient's local day. Call it inside the transaction that stores the
    score, so the score and the alert commit together."""
    from risk.services import signal_evaluate

    return signal_evaluate(patient=patient, event=event)


def patient_transferred(*, actor: Actor, patient: Patient) -> Any:
    """The patient now belongs to another clinic (saved, inside the caller's transaction): their
    active alerts move to it and escalate there from level 0. Returns the moved alerts' ids."""
    from risk.services import alerts_follow_patient_transfer

    return alerts_follow_patient_transfer(actor=actor, patient=patient)
