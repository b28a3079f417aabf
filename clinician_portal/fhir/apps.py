from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "clinician_portal.fhir"
    label = "fhir"
    verbose_name = "FHIR R4B API"
    default_auto_field = "django.db.models.BigAutoField"
