"""Crisis resources shown with the help button's response, by the patient's locale.

Built-in entries are national services that answer around the clock. A clinic can add or replace
entries per locale (``Organisation.crisis_resources``), e.g. its own out-of-hours line.
Pure data and functions: answered even when every worker and the broker are down.
"""

from __future__ import annotations

from typing import Any

Resource = dict[str, str]

BUILT_IN: dict[str, dict[str, Any]] = {
    "US": {
        "emergency_number": "911",
        "resources": [
            {
                "name": "988 Suicide & Crisis Lifeline",
                "phone": "988",
                "sms": "988",
                "hours": "24/7",
            },
        ],
    },
    "CA": {
        "emergency_number": "911",
        "resources": [
            {"name": "9-8-8 Suicide Crisis Helpline", "phone": "988", "sms": "988", "hours": "24/7"}
        ],
    },
    "GB": {
        "emergency_number": "999",
        "resources": [
            {"name": "Samaritans", "phone": "116 123", "hours": "24/7"},
            {"name": "NHS 111 (mental health option)", "phone": "111", "hours": "24/7"},
        ],
    },
    "IE": {
        "emergency_number": "112",
        "resources": [{"name": "Samaritans Ireland", "phone": "116 123", "hours": "24/7"}],
    },
    "AU": {
        "emergency_number": "000",
        "resources": [{"name": "Lifeline Australia", "phone": "13 11 14", "hours": "24/7"}],
    },
    "DE": {
        "emergency_number": "112",
        "resources": [{"name": "TelefonSeelsorge", "phone": "0800 111 0 111", "hours": "24/7"}],
    },
    "FR": {
        "emergency_number": "112",
        "resources": [
            {
                "name": "3114 Numéro national de prévention du suicide",
                "phone": "3114",
                "hours": "24/7",
            }
        ],
    },
}

FALLBACK: dict[str, Any] = {
    "emergency_number": "112",
    "resources": [],
}

MESSAGE = (
    "If you are in immediate danger, call your emergency number now. "
    "Your request for help has been recorded."
)


def _region(locale: str) -> str:
    parts = locale.replace("_", "-").split("-")
    return parts[-1].upper() if len(parts) > 1 else ""


def crisis_resources_for(
    *, locale: str, clinic_overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Resources for a locale like ``en-US``: clinic overrides first, then the built-in table."""
    region = _region(locale)
    base = BUILT_IN.get(region, FALLBACK)
    overrides = (clinic_overrides or {}).get(locale) or (clinic_overrides or {}).get(region)
    resources = list(base["resources"])
    emergency = base["emergency_number"]
    if isinstance(overrides, dict):
        resources = list(overrides.get("resources", [])) + resources
        emergency = overrides.get("emergency_number", emergency)
    return {
        "locale": locale,
        "emergency_number": emergency,
        "resources": resources,
        "message": MESSAGE,
    }
