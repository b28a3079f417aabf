from django.apps import AppConfig
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


class RiskConfig(AppConfig):
    name = "risk"
    verbose_name = "Risk"

    def ready(self) -> None:
        from risk import erasure, intake  # noqa: F401  (erasure registers its hook)
        from risk.rules.loader import rule_sets
        from risk.services import help_request_alert

        # Load, validate and hash every rule set now: a malformed file stops the start-up.
        rule_sets()
        # A default that names no shipped set stops every process, workers included (they run the
        # system checks but ignore their result); ``manage.py check`` reports it as vigil.E101.
        from risk.checks import rule_set_default_check, rule_set_default_problem

        checks.register(rule_set_default_check)
        problem = rule_set_default_problem()
        if problem is not None:
            raise ImproperlyConfigured(problem)
        # The help button's red alert, raised inside the press's own transaction.
        if help_request_alert not in intake.HELP_REQUEST_HANDLERS:
            intake.HELP_REQUEST_HANDLERS.append(help_request_alert)
