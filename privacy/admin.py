"""Admin for consent documents, consent records and the audit log.

Patient data shown in the admin is read like anywhere else: every list and every detail page of a
model holding patient data is an access event (:class:`PatientDataAdmin`)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from privacy import models
from privacy.audit import Actor, access_record, access_record_patients
from privacy.consent import consent_document_publish


class PatientDataAdmin(admin.ModelAdmin):
    """The admin of a model holding patient data: showing its list records the access event
    ``admin.<model>.list`` once for each patient whose rows the page shows (resource: the
    patient; one event without a patient when it shows none), so every patient's own trail says
    that their rows were listed, and showing one row records ``admin.<model>.view`` (the patient
    and the row), both before the page is rendered. Saves are audited by the services they go
    through."""

    #: The query path from a row to its patient's id ("pk" for the patient itself).
    patient_lookup = "patient"

    def _patient_ids(self, pks: list[Any]) -> set[Any]:
        if not pks:
            return set()
        rows = self.model._default_manager.filter(pk__in=pks)
        # No ordering: it would join the DISTINCT and could hide a second patient.
        ids = rows.order_by().values_list(self.patient_lookup, flat=True).distinct()
        return {i for i in ids if i is not None}

    def _access_record(self, request: HttpRequest, verb: str, *, patient_id: Any, pk: Any) -> None:
        access_record(
            actor=Actor.from_request(request),
            action=f"admin.{self.opts.model_name}.{verb}",
            patient_id=patient_id,
            resource_type=self.model.__name__,
            resource_id="" if pk is None else pk,
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        # A TemplateResponse renders after the view returns: the event is written first.
        context = getattr(response, "context_data", None) or {}
        if isinstance(response, TemplateResponse) and "cl" in context:
            shown = self._patient_ids([row.pk for row in context["cl"].result_list])
            if shown:
                access_record_patients(
                    actor=Actor.from_request(request),
                    action=f"admin.{self.opts.model_name}.list",
                    patient_ids=sorted(shown, key=str),
                )
            else:
                self._access_record(request, "list", patient_id=None, pk=None)
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method != "POST":  # a save is audited by the service it goes through
            obj = self.get_object(request, unquote(object_id))
            if obj is not None and self.has_view_or_change_permission(request, obj):
                patient_ids = self._patient_ids([obj.pk])
                self._access_record(
                    request,
                    "view",
                    patient_id=next(iter(patient_ids), None),
                    pk=obj.pk,
                )
        return super().change_view(request, object_id, form_url, extra_context)


class ConsentDocumentForm(forms.ModelForm):
    class Meta:
        model = models.ConsentDocument
        fields = ("scope", "version", "text")
        help_texts = {
            "version": (
                "A published document never changes: new text is published as a new version."
            ),
            "text": "Exactly the text the patient is shown; its SHA-256 is stored with it.",
        }


@admin.register(models.ConsentDocument)
class ConsentDocumentAdmin(admin.ModelAdmin):
    """Publish-only: a document is created through ``consent_document_publish`` (which stores
    the hash of its text) and is never changed or deleted afterwards, since consent records point
    at it as the text the patient saw."""

    form = ConsentDocumentForm
    list_display = ("scope", "version", "sha256", "published_at")
    fields = ("scope", "version", "text", "sha256", "published_at")
    readonly_fields = ("sha256", "published_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("scope", "version", "text") if obj is None else self.fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            raise PermissionDenied("A published consent document cannot be changed.")
        # The form checked that this scope has no such version yet.
        document = consent_document_publish(
            scope=obj.scope, version=obj.version, text=obj.text, actor=Actor.from_request(request)
        )
        obj.pk = document.pk
        obj.sha256 = document.sha256
        obj.published_at = document.published_at
        obj._state.adding = False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(models.ConsentRecord)
class ConsentRecordAdmin(PatientDataAdmin, ReadOnlyAdmin):
    list_display = ("patient", "scope", "granted", "document_version", "created_at")
    list_filter = ("scope", "granted")


@admin.register(models.AccessEvent)
class AccessEventAdmin(ReadOnlyAdmin):
    list_display = (
        "occurred_at",
        "actor",
        "actor_role",
        "patient",
        "action",
        "outcome",
        "status_code",
    )
    list_filter = ("outcome", "actor_role")
