from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "risk"
    verbose_name = "Risk"

    def ready(self) -> None:
        from risk import erasure, intake  # noqa: F401  (erasure registers its hook)
        from risk.rules.loader import rule_sets
        from risk.services import help_request_alert

        # Load, validate and hash every rule set now: a malformed file stops the start-up.
        rule_sets()
        # The help button's red alert, raised inside the press's own transaction.
        if help_request_alert not in intake.HELP_REQUEST_HANDLERS:
            intake.HELP_REQUEST_HANDLERS.append(help_request_alert)
