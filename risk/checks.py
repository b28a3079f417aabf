"""System checks of the risk engine's configuration (registered by ``RiskConfig.ready``).

``VIGIL_RISK_RULE_SET_DEFAULT`` must name a rule set shipped in ``risk/rules/sets/``: a wrong
default would fail every questionnaire and every help button's red alert at run time. The same
validation raises ``ImproperlyConfigured`` in ``RiskConfig.ready`` (Celery workers run the system
checks but ignore what they report), so no process starts scoring with a wrong default.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from risk.rules.loader import rule_sets

RULE_SET_DEFAULT_UNKNOWN = "vigil.E101"


def rule_set_default_problem() -> str | None:
    """Why the configured default rule set is unusable, or None when it loads."""
    default = getattr(settings, "VIGIL_RISK_RULE_SET_DEFAULT", None)
    known = sorted(rule_sets())
    if not isinstance(default, str) or default not in known:
        return (
            f"VIGIL_RISK_RULE_SET_DEFAULT={default!r} is not a shipped rule set "
            f"(one of {', '.join(known)}; versions are lower-case)"
        )
    return None


def rule_set_default_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problem = rule_set_default_problem()
    if problem is None:
        return []
    return [
        checks.Error(
            problem,
            hint="Set VIGIL_RISK_RULE_SET_DEFAULT to a file name in risk/rules/sets/ (e.g. v3).",
            id=RULE_SET_DEFAULT_UNKNOWN,
        )
    ]
