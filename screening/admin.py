"""Admin for clinic set-up. Encrypted content is never listed; clinical review is the portal's."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import password_validation
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from config.errors import LegalHold, PermissionDenied
from privacy.admin import PatientDataAdmin
from privacy.audit import Actor, client_ip
from privacy.choices import Role
from privacy.erasure import REASON_MAX_CHARS, erasure_actor, patient_erase
from screening import models
from screening.services.people import patient_create, patient_update


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


class _ClinicFixedAdmin(admin.ModelAdmin):
    """The clinic of an existing row is read-only: patients' care teams and treating clinicians
    must be of the patient's clinic (``patient_update``), and escalation treats one of another
    clinic as nobody, so moving a team or a clinician would silently break every patient and
    alert that refers to them."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "organisation") if obj is not None else fields


class CareTeamForm(forms.ModelForm):
    class Meta:
        model = models.CareTeam
        fields = ("organisation", "name", "members")

    def clean(self) -> dict[str, Any]:
        """Members are clinicians of the team's clinic: escalation reaches a care team through
        its members, and one of another clinic may not see or handle this clinic's alerts."""
        data = super().clean() or {}
        organisation = data.get("organisation") or getattr(self.instance, "organisation", None)
        members = data.get("members")
        if organisation is not None and members is not None:
            foreign = [m for m in members if m.organisation_id != organisation.pk]
            if foreign:
                self.add_error("members", "Every member must be a clinician of the team's clinic.")
        return data


@admin.register(models.CareTeam)
class CareTeamAdmin(_ClinicFixedAdmin):
    form = CareTeamForm
    list_display = ("name", "organisation")
    filter_horizontal = ("members",)


def _staff_user_field(form: forms.ModelForm, role: str) -> None:
    """A staff record's login: an account of that role that is nobody's yet (not a patient's,
    not another clinician's or auditor's). Once the record exists its login is read-only."""
    field = form.fields.get("user")
    if field is None:
        return
    field.queryset = models.User.objects.filter(  # type: ignore[attr-defined]
        role=role, patient__isnull=True, clinician__isnull=True, auditor__isnull=True
    ).order_by("username")


class ClinicianForm(forms.ModelForm):
    class Meta:
        model = models.Clinician
        fields = ("user", "organisation", "title")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _staff_user_field(self, Role.CLINICIAN)


class AuditorForm(forms.ModelForm):
    class Meta:
        model = models.Auditor
        fields = ("user", "organisation")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _staff_user_field(self, Role.AUDITOR)


class _StaffLoginFixedAdmin(_ClinicFixedAdmin):
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "user") if obj is not None else fields


@admin.register(models.Clinician)
class ClinicianAdmin(_StaffLoginFixedAdmin):
    """Clinicians are never deleted (alerts, transitions and escalation policies refer to them):
    one who leaves is deactivated by clearing "active" on their user, and escalation then skips
    them. A clinician's login is a clinician-role account that is nobody else's."""

    form = ClinicianForm
    list_display = ("user", "organisation", "title")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.Auditor)
class AuditorAdmin(_StaffLoginFixedAdmin):
    """An auditor's login is an auditor-role account that is nobody else's; their clinic (whose
    logs they review) is fixed once created."""

    form = AuditorForm
    list_display = ("user", "organisation")


class PatientAdminForm(forms.ModelForm):
    class Meta:
        model = models.Patient
        fields: tuple[str, ...] = (
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


class PatientAddForm(PatientAdminForm):
    """A new patient gets a new login with the patient role (``patient_create``): an existing
    account (a clinician's, an administrator's) can never become a patient."""

    username = forms.CharField(
        max_length=150,
        help_text="The patient's new login. Letters, digits and @/./+/-/_ only.",
    )
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Optional: without one the patient cannot log in until a password is set.",
    )

    class Meta(PatientAdminForm.Meta):
        fields = (
            "organisation",
            "care_team",
            "treating_clinician",
            "timezone",
            "locale",
            "birth_year",
        )

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        field = models.User._meta.get_field("username")
        field.run_validators(username)
        if models.User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("A user with that username already exists.")
        return str(username)

    def clean_password(self) -> str:
        password = self.cleaned_data.get("password") or ""
        if password:
            password_validation.validate_password(password, models.User(role="patient"))
        return password


@admin.register(models.Patient)
class PatientAdmin(PatientDataAdmin):
    form = PatientAdminForm
    add_form = PatientAddForm
    patient_lookup = "pk"
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
    add_fields = (
        "username",
        "password",
        "organisation",
        "care_team",
        "treating_clinician",
        "timezone",
        "locale",
        "birth_year",
    )
    readonly_fields = ("pseudonym", "erased_at")
    actions = ["erase_patients"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Patients are never deleted: they are erased, and the row stays as the tombstone.
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fields if obj is None else super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        # The login of an existing patient is theirs for good.
        return (*fields, "user") if obj is not None else fields

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        actor = Actor.from_request(request)
        if not change:
            # A login with the patient role, the patient's data key, then the record.
            data = form.cleaned_data
            patient = patient_create(
                actor=actor,
                organisation=data["organisation"],
                treating_clinician=data["treating_clinician"],
                care_team=data["care_team"],
                username=data["username"],
                password=data["password"] or None,
                timezone=data["timezone"],
                locale=data["locale"],
                birth_year=data["birth_year"],
            )
            obj.pk, obj.user_id, obj.pseudonym = patient.pk, patient.user_id, patient.pseudonym
            obj._state.adding = False
            return
        # An edit goes through the service: it records which fields changed, and a change of
        # clinic moves the patient's active alerts to the new clinic in the same transaction
        # (and restarts their escalation there).
        patient_update(actor=actor, patient=obj)

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
class VideoSubmissionAdmin(PatientDataAdmin):
    """Read-only: deleting a submission would cascade to its analyses, leave its encrypted
    file behind and record nothing (a patient's videos go by consent withdrawal or erasure)."""

    list_display = ("id", "patient", "status", "stage", "percent", "failure_reason", "created_at")
    list_filter = ("status", "stage")
    readonly_fields = [f.name for f in models.VideoSubmission._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
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


class _PatientScoreAdmin(PatientDataAdmin, _ScoreAdmin):
    """A patient's scores: every list and every row shown is an access event."""


@admin.register(models.TextAnalysis)
class TextAnalysisAdmin(_PatientScoreAdmin):
    encrypted = ("evidence",)
    list_display = ("id", "patient", "source", "local_date", "crisis_category", "at_risk")
    list_filter = ("source", "crisis_category", "at_risk")


@admin.register(models.MediaAnalysis)
class MediaAnalysisAdmin(_PatientScoreAdmin):
    encrypted = ("transcript",)
    list_display = ("id", "patient", "video", "local_date", "distress")


@admin.register(models.DailyMoodScore)
class DailyMoodScoreAdmin(_PatientScoreAdmin):
    list_display = ("patient", "local_date", "score", "confidence", "abstained", "fusion_version")
    list_filter = ("abstained", "fusion_version")


@admin.register(models.FusionWeights)
class FusionWeightsAdmin(_ScoreAdmin):
    list_display = ("organisation", "created_at", "n_examples", "mae", "ccc", "fusion_version")
