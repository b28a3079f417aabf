from django.apps import AppConfig


class ClinicianPortalConfig(AppConfig):
    name = "clinician_portal"
    verbose_name = "Clinician portal"
