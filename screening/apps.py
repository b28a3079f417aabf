from django.apps import AppConfig


class ScreeningConfig(AppConfig):
    name = "screening"
    verbose_name = "Screening"

    def ready(self) -> None:
        # Register the scores' consent deleters and erasure hook, and the questionnaire receiver,
        # in every process (web, worker, commands), not only where a task happened to import them.
        from screening.models import scores  # noqa: F401
        from screening.services import scoring, videos  # noqa: F401
