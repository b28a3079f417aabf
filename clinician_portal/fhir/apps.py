from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "clinician_portal.fhir"
    label = "fhir"
    verbose_name = "FHIR R4B API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # config/celery.py autodiscovers screening, privacy and risk only: register ours here.
        from clinician_portal.fhir import tasks  # noqa: F401
