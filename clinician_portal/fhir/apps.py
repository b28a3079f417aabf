from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "clinician_portal.fhir"
    label = "fhir"
    verbose_name = "FHIR R4B API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # config/celery.py autodiscovers screening, privacy and risk only: register ours here.
        # services registers the erasure hook that deletes an erased patient's exports.
        from clinician_portal.fhir import services, tasks  # noqa: F401
