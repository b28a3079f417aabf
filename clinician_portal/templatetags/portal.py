"""Small formatting filters for the portal's templates."""

from __future__ import annotations

from typing import Any

from django import template

from privacy.api.selectors import audit_event_actor_label, audit_event_client_ip

register = template.Library()

#: Shown for a missing number (an en dash).
NO_VALUE = "\u2013"


@register.filter
def countdown(seconds: Any) -> str:
    """``754`` -> ``12 min 34 s left``; negative -> ``overdue by 3 min``."""
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        return ""
    overdue = value < 0
    value = abs(value)
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        text = f"{hours} h {minutes} min"
    elif minutes:
        text = f"{minutes} min {secs} s"
    else:
        text = f"{secs} s"
    return f"overdue by {text}" if overdue else f"{text} left"


@register.filter
def signed(value: Any, digits: int = 1) -> str:
    if value is None:
        return NO_VALUE
    try:
        return f"{float(value):+.{int(digits)}f}"
    except (TypeError, ValueError):
        return NO_VALUE


@register.filter
def percent(value: Any) -> str:
    if value is None:
        return NO_VALUE
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return NO_VALUE


@register.filter
def audit_actor(event: Any) -> str:
    """An access event's actor as auditors see it (a patient by pseudonym, never a username)."""
    return audit_event_actor_label(event=event) or NO_VALUE


@register.filter
def audit_client_ip(event: Any) -> str:
    """The IP address of a caller that was not signed in; empty for everyone else."""
    return audit_event_client_ip(event=event) or ""
