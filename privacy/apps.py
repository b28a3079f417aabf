from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "privacy"
    verbose_name = "Privacy"

    def ready(self) -> None:
        from django.conf import settings

        from privacy import schema, signals  # noqa: F401  (OpenAPI auth extension; login events)

        if settings.IS_PRODUCTION:
            # Refuse to start with a keyring that is missing or malformed, not at first write.
            from privacy.keys import keyring

            keyring()
