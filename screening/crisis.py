"""Crisis resources shown with the help button's response, by the patient's locale.

Built-in entries are national services that answer around the clock. A clinic can add or replace
entries per locale (``Organisation.crisis_resources``), e.g. its own out-of-hours line.
Pure data and functions: answered even when every worker and the broker are down.
"""

from __future__ import annotations

import re
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


def _clinic_entry(
    clinic_overrides: Any, locale: str, region: str
) -> tuple[list[Resource], str | None]:
    """A clinic's entry for the locale (or region): either a list of resources, or
    ``{"resources": [...], "emergency_number": "..."}``. Malformed entries are ignored, never
    allowed to break the help button's answer.
    """
    if not isinstance(clinic_overrides, dict):
        return [], None
    entry = clinic_overrides.get(locale) or (clinic_overrides.get(region) if region else None)
    if isinstance(entry, list):
        resources, emergency = entry, None
    elif isinstance(entry, dict):
        resources, emergency = entry.get("resources", []), entry.get("emergency_number")
    else:
        return [], None
    clean = [
        {str(k): str(v) for k, v in r.items() if v is not None}
        for r in (resources if isinstance(resources, list) else [])
        if isinstance(r, dict) and isinstance(r.get("name"), str) and r["name"]
    ]
    return clean, emergency if isinstance(emergency, str) and emergency else None


def crisis_resources_for(
    *, locale: str, clinic_overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Resources for a locale like ``en-US``: clinic overrides first, then the built-in table."""
    region = _region(locale)
    base = BUILT_IN.get(region, FALLBACK)
    clinic_resources, clinic_emergency = _clinic_entry(clinic_overrides, locale, region)
    resources = clinic_resources + list(base["resources"])
    emergency = clinic_emergency or base["emergency_number"]
    return {
        "locale": locale,
        "emergency_number": emergency,
        "resources": resources,
        "message": MESSAGE,
    }


#: The help button's answer when the press could not be recorded (the database is down, or an
#: internal error): the patient must still see where to get help, and must not believe that the
#: clinic was told.
UNRECORDED_MESSAGE = (
    "Your request for help could not be recorded. If you are in immediate danger, call your "
    "emergency number now."
)
_LOCALE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


def crisis_resources_unrecorded(
    *, accept_language: str = "", default_locale: str = "en-US"
) -> dict[str, Any]:
    """Built-in resources for a help press that could not be recorded, for the first locale of
    the request's ``Accept-Language`` (no database: no patient locale, no clinic overrides)."""
    first = accept_language.split(",", 1)[0].split(";", 1)[0].strip()
    locale = first if _LOCALE_TAG.match(first) else default_locale
    return {**crisis_resources_for(locale=locale), "message": UNRECORDED_MESSAGE}
