"""Admin for clinic set-up. Encrypted content is never listed; clinical review is the portal's."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from config.errors import LegalHold, PermissionDenied
from privacy.audit import Actor, client_ip
from privacy.erasure import REASON_MAX_CHARS, erasure_actor, patient_erase
from screening import models
from screening.services.people import patient_update


class ErasureForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text=(
            "Why the patient is erased (e.g. the request reference). It is kept in the audit "
            "log for good: never write clinical content here."
        ),
    )


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


class PatientAdminForm(forms.ModelForm):
    class Meta:
        model = models.Patient
        fields = (
            "user",
            "organisation",
            "care_team",
            "treating_clinician",
            "timezone",
            "locale",
            "birth_year",
            "legal_hold",
        )

    def clean(self) -> dict[str, Any]:
        """The care team and the treating clinician must be of the patient's clinic: alerts are
        escalated to them and handled by the clinic the patient belongs to."""
        data = super().clean() or {}
        organisation = data.get("organisation")
        if organisation is not None:
            for name in ("care_team", "treating_clinician"):
                value = data.get(name)
                if value is not None and value.organisation_id != organisation.pk:
                    self.add_error(name, "Must be of the patient's clinic.")
        return data


@admin.register(models.Patient)
class PatientAdmin(admin.ModelAdmin):
    form = PatientAdminForm
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
    actions = ["erase_patients"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Patients are never deleted: they are erased, and the row stays as the tombstone.
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        # An edit goes through the service: a change of clinic moves the patient's active alerts
        # to the new clinic in the same transaction (and restarts their escalation there).
        patient_update(actor=Actor.from_request(request), patient=obj)

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.has_perm("screening.delete_patient"))

    @admin.action(
        description="Erase selected patients (destroys their keys; cannot be undone)",
        permissions=["erase"],
    )
    def erase_patients(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        """Confirmation page asking for the reason; on confirmation, erase each patient."""
        form = ErasureForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            try:
                actor = erasure_actor(request.user, ip_address=client_ip(request))
            except PermissionDenied as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return None
            for patient in queryset.order_by("pseudonym"):
                try:
                    result = patient_erase(
                        actor=actor, patient=patient, reason=form.cleaned_data["reason"]
                    )
                except LegalHold as exc:
                    self.message_user(
                        request, f"{patient.pseudonym}: {exc.message}", messages.ERROR
                    )
                    continue
                level = messages.INFO if result.already_erased else messages.SUCCESS
                self.message_user(request, result.message, level)
            return None
        patients = list(queryset.order_by("pseudonym"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Erase patients",
            "opts": self.model._meta,
            "form": form,
            "patients": patients,
            "held": [p for p in patients if p.legal_hold and p.erased_at is None],
            "already": [p for p in patients if p.erased_at is not None],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": "erase_patients",
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/screening/patient/erase_confirmation.html", context)


@admin.register(models.VideoSubmission)
class VideoSubmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "patient", "status", "stage", "percent", "failure_reason", "created_at")
    list_filter = ("status", "stage")
    readonly_fields = [f.name for f in models.VideoSubmission._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False


class _ScoreAdmin(admin.ModelAdmin):
    """Read-only; encrypted fields (evidence excerpts, transcripts) are never shown here."""

    encrypted: tuple[str, ...] = ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.model._meta.fields if f.name not in self.encrypted]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_fields(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.TextAnalysis)
class TextAnalysisAdmin(_ScoreAdmin):
    encrypted = ("evidence",)
    list_display = ("id", "patient", "source", "local_date", "crisis_category", "at_risk")
    list_filter = ("source", "crisis_category", "at_risk")


@admin.register(models.MediaAnalysis)
class MediaAnalysisAdmin(_ScoreAdmin):
    encrypted = ("transcript",)
    list_display = ("id", "patient", "video", "local_date", "distress")


@admin.register(models.DailyMoodScore)
class DailyMoodScoreAdmin(_ScoreAdmin):
    list_display = ("patient", "local_date", "score", "confidence", "abstained", "fusion_version")
    list_filter = ("abstained", "fusion_version")


@admin.register(models.FusionWeights)
class FusionWeightsAdmin(_ScoreAdmin):
    list_display = ("organisation", "created_at", "n_examples", "mae", "ccc", "fusion_version")
