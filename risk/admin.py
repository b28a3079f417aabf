"""Admin: a clinic's rule-set selection (threshold overrides) and escalation policy, both written
through the services (validated and audited); alerts and the outbox read-only, without their
encrypted content (reading evidence is the portal's job). Showing alerts or outbox messages in
the admin is an access event like any read of patient data (``privacy.admin.PatientDataAdmin``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from privacy.admin import PatientDataAdmin, ReadOnlyAdmin
from privacy.audit import Actor
from risk import models, services
from risk.rules.loader import rule_sets


class RuleSetSelectionForm(forms.ModelForm):
    version = forms.ChoiceField(choices=())

    class Meta:
        model = models.RuleSetSelection
        fields = ("organisation", "version", "threshold_overrides")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        version_field = self.fields["version"]
        assert isinstance(version_field, forms.ChoiceField)
        version_field.choices = [
            (version, f"{version} ({rule_set.sha256[:12]})")
            for version, rule_set in rule_sets().items()
        ]
        self.fields["threshold_overrides"].help_text = (
            'e.g. {"phq9_total": {"total_at_least": 18}}. Only parameters the rule set marks '
            "overridable, within their bounds."
        )


@admin.register(models.RuleSetSelection)
class RuleSetSelectionAdmin(admin.ModelAdmin):
    form = RuleSetSelectionForm
    list_display = ("organisation", "version", "updated_at", "updated_by")
    readonly_fields = ("rule_set_hash", "effective_parameters", "updated_at", "updated_by")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "organisation") if obj is not None else fields

    @admin.display(description="SHA-256 of the rule set file")
    def rule_set_hash(self, obj: models.RuleSetSelection) -> str:
        rule_set = rule_sets().get(obj.version)
        return rule_set.sha256 if rule_set else "(unknown version)"

    @admin.display(description="Effective parameters")
    def effective_parameters(self, obj: models.RuleSetSelection) -> str:
        if obj.organisation_id is None:
            return "-"
        rule_set = services.rule_set_for(organisation=obj.organisation)
        return "; ".join(f"{rule.id}: {dict(rule.params)}" for rule in rule_set.rules)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # The form's clean() ran the model's checks; the service records and audits the change.
        saved = services.rule_set_select(
            actor=Actor.from_request(request),
            organisation=obj.organisation,
            version=obj.version,
            threshold_overrides=obj.threshold_overrides or {},
        )
        obj.pk = saved.pk


@admin.register(models.EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "organisation",
        "red_ack_minutes",
        "orange_ack_minutes",
        "yellow_ack_time",
        "on_call",
        "clinical_lead",
    )
    readonly_fields = ("updated_at", "updated_by")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a deletion would bypass the recorded change (PolicyChange)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "organisation") if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # The form ran the model's validators (the bounds); the service records and audits.
        services.escalation_policy_save(actor=Actor.from_request(request), policy=obj)


class OutboxInline(admin.TabularInline):
    model = models.OutboxMessage
    fields = ("recipient_kind", "recipient_id", "channel", "level", "repeat", "state", "attempts")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TransitionInline(admin.TabularInline):
    model = models.AlertTransition
    fields = ("at", "from_state", "to_state", "note_code", "level", "actor", "actor_role")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.Alert)
class AlertAdmin(PatientDataAdmin, ReadOnlyAdmin):
    list_display = (
        "id",
        "tier",
        "state",
        "rule_id",
        "rule_set_version",
        "created_at",
        "ack_deadline",
        "escalation_level",
        "assigned_to",
    )
    list_filter = ("tier", "state", "rule_id")
    # Evidence and the resolution note are encrypted patient data: not shown here.
    exclude = ("evidence", "resolution_note")
    readonly_fields = (
        "patient",
        "organisation",
        "tier",
        "state",
        "rule_set_version",
        "rule_set_hash",
        "rule_id",
        "local_date",
        "assigned_to",
        "ack_deadline",
        "escalation_level",
        "escalation_repeat",
        "escalation_round",
        "next_escalation_at",
        "superseded_by",
        "disposition",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
        "created_at",
    )
    inlines = [TransitionInline, OutboxInline]


@admin.register(models.OutboxMessage)
class OutboxMessageAdmin(PatientDataAdmin, ReadOnlyAdmin):
    patient_lookup = "alert__patient"

    list_display = (
        "created_at",
        "alert",
        "recipient_kind",
        "channel",
        "level",
        "repeat",
        "state",
        "attempts",
        "last_error",
        "sent_at",
    )
    list_filter = ("state", "channel", "recipient_kind")
    exclude = ("payload",)


@admin.register(models.RuleSetChange)
class RuleSetChangeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "organisation", "actor")


@admin.register(models.PolicyChange)
class PolicyChangeAdmin(ReadOnlyAdmin):
    """Every escalation-policy change: who, when, the values before and after."""

    list_display = ("created_at", "organisation", "actor")
    list_filter = ("organisation",)
    fields = ("created_at", "organisation", "actor", "before", "after")
    readonly_fields = fields
