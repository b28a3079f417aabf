"""Admin for clinic set-up. Encrypted content is never listed; clinical review is the portal's."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from screening import models


@admin.register(models.User)
class VigilUserAdmin(UserAdmin):
    list_display = ("username", "role", "is_active", "is_staff", "last_login")
    list_filter = ("role", "is_active", "is_staff")
    fieldsets = (*UserAdmin.fieldsets, ("Vigil", {"fields": ("role",)}))  # type: ignore[misc]


@admin.register(models.Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "timezone", "default_locale")


@admin.register(models.CareTeam)
class CareTeamAdmin(admin.ModelAdmin):
    list_display = ("name", "organisation")
    filter_horizontal = ("members",)


@admin.register(models.Clinician)
class ClinicianAdmin(admin.ModelAdmin):
    list_display = ("user", "organisation", "title")


@admin.register(models.Auditor)
class AuditorAdmin(admin.ModelAdmin):
    list_display = ("user", "organisation")


@admin.register(models.Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = (
        "pseudonym",
        "organisation",
        "care_team",
        "treating_clinician",
        "legal_hold",
        "erased_at",
    )
    list_filter = ("organisation", "legal_hold")
    search_fields = ("pseudonym",)
    fields = (
        "pseudonym",
        "user",
        "organisation",
        "care_team",
        "treating_clinician",
        "timezone",
        "locale",
        "birth_year",
        "legal_hold",
        "erased_at",
    )
    readonly_fields = ("pseudonym", "erased_at")


@admin.register(models.VideoSubmission)
class VideoSubmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "patient", "status", "stage", "percent", "failure_reason", "created_at")
    list_filter = ("status", "stage")
    readonly_fields = [f.name for f in models.VideoSubmission._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
