"""Named errors of the risk services (each maps to the one JSON error shape)."""

from __future__ import annotations

from config.errors import NotFound, ValidationFailed, VigilError


class AlertNotFound(NotFound):
    default_message = "No such alert."


class AlertTransitionInvalid(VigilError):
    """The alert is not in a state that allows this change (e.g. resolving a resolved alert)."""

    code = "alert_transition_invalid"
    status = 409
    default_message = "The alert cannot change to that state now."

    def __init__(self, *, state: str, wanted: str) -> None:
        super().__init__(
            f"An alert that is {state} cannot become {wanted}.", state=state, wanted=wanted
        )


class ResolutionIncomplete(ValidationFailed):
    """Resolving needs a disposition from the list and a note."""

    default_message = "Resolving an alert needs a disposition and a note."


class RuleSetInvalid(ValidationFailed):
    default_message = "The rule set selection is invalid."


class EscalationPolicyInvalid(ValidationFailed):
    default_message = "The escalation policy is invalid; nothing was saved."
