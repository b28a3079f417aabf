"""Privacy API serializers: query validation and output. Ids, pseudonyms and codes only."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.inputs import StrictBooleanField, StrictInputSerializer
from privacy.api.selectors import audit_event_actor_label, audit_event_client_ip
from privacy.choices import AccessOutcome, ActorRole, ConsentScope
from privacy.models import AccessEvent, BreakGlassAccess, BreakGlassReview, ConsentRecord
from screening.api.serializers import OffsetDateTimeField


# --- queries ---------------------------------------------------------------------------------
class PeriodQuerySerializer(StrictInputSerializer):
    #: The paginator reads these; any other unknown parameter is refused (a misspelt filter
    #: would otherwise show every event as if it had applied).
    allowed_extra = frozenset({"cursor", "page_size"})

    since = OffsetDateTimeField(
        required=False, help_text="From this time on (inclusive), ISO 8601 with a UTC offset."
    )
    until = OffsetDateTimeField(
        required=False, help_text="Before this time (exclusive), ISO 8601 with a UTC offset."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and since > until:
            raise serializers.ValidationError({"until": ["Must not be before since."]})
        return attrs


_PATIENT_HELP = "A patient's pseudonym, e.g. P-1A2B3C4D5E6F."


class AuditEventQuerySerializer(PeriodQuerySerializer):
    patient = serializers.CharField(required=False, max_length=32, help_text=_PATIENT_HELP)
    actor = serializers.CharField(
        required=False,
        max_length=150,
        help_text="The actor's username (staff) or pseudonym (a patient).",
    )
    role = serializers.ChoiceField(
        choices=ActorRole.choices,
        required=False,
        help_text="The actor's role; `anonymous`: requests refused before anyone signed in.",
    )
    ip = serializers.IPAddressField(
        required=False, help_text="The IP address of a caller that was not signed in."
    )
    action = serializers.CharField(
        required=False, max_length=64, help_text="An action code, e.g. diary.read."
    )
    outcome = serializers.ChoiceField(choices=AccessOutcome.choices, required=False)
    break_glass = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Only break-glass events (true)."
    )


class AuditConsentQuerySerializer(PeriodQuerySerializer):
    patient = serializers.CharField(required=False, max_length=32, help_text=_PATIENT_HELP)
    scope = serializers.ChoiceField(choices=ConsentScope.choices, required=False)


class AuditBreakGlassQuerySerializer(PeriodQuerySerializer):
    patient = serializers.CharField(required=False, max_length=32, help_text=_PATIENT_HELP)
    reviewed = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: only reviewed accesses; false: only those waiting for a review.",
    )


# --- patients: their access log ----------------------------------------------------------------
class AccessLogEntrySerializer(serializers.ModelSerializer):
    """One access to the patient's record: who (role and clinic, never a person's name), when,
    what, why and whether it was allowed."""

    role = serializers.CharField(source="actor_role")
    clinic = serializers.SerializerMethodField()
    by_you = serializers.SerializerMethodField()

    class Meta:
        model = AccessEvent
        fields = [
            "id",
            "occurred_at",
            "role",
            "clinic",
            "by_you",
            "action",
            "purpose",
            "outcome",
            "break_glass",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_clinic(self, event: AccessEvent) -> str | None:
        user = event.actor
        if user is None:
            return None
        for relation in ("clinician", "auditor", "patient"):
            profile = getattr(user, relation, None)
            if profile is not None:
                return str(profile.organisation.name)
        return None

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_by_you(self, event: AccessEvent) -> bool:
        """The patient's own doing (the view passes the patient's user id as ``user_id``)."""
        user_id = self.context.get("user_id")
        return user_id is not None and event.actor_id == user_id


# --- auditors ----------------------------------------------------------------------------------
class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    client_ip = serializers.SerializerMethodField()
    patient = serializers.CharField(
        source="patient.pseudonym", read_only=True, allow_null=True, help_text="Pseudonym."
    )

    class Meta:
        model = AccessEvent
        fields = [
            "id",
            "seq",
            "occurred_at",
            "actor",
            "actor_role",
            "client_ip",
            "patient",
            "action",
            "outcome",
            "resource_type",
            "resource_id",
            "status_code",
            "reason",
            "purpose",
            "break_glass",
            "request_id",
            "hash",
        ]
        read_only_fields = fields

    @extend_schema_field(
        serializers.CharField(
            allow_null=True,
            help_text="Username (staff), pseudonym (a patient) or `anonymous` (not signed in).",
        )
    )
    def get_actor(self, event: AccessEvent) -> str | None:
        return audit_event_actor_label(event=event)

    @extend_schema_field(
        serializers.IPAddressField(
            allow_null=True, help_text="Only for callers that were not signed in."
        )
    )
    def get_client_ip(self, event: AccessEvent) -> str | None:
        return audit_event_client_ip(event=event)


class AuditConsentSerializer(serializers.ModelSerializer):
    patient = serializers.CharField(source="patient.pseudonym", read_only=True)
    actor_role = serializers.CharField(source="actor.role", read_only=True)

    class Meta:
        model = ConsentRecord
        fields = [
            "id",
            "patient",
            "scope",
            "granted",
            "document_version",
            "document_sha256",
            "source",
            "delete_derived",
            "actor_role",
            "created_at",
        ]
        read_only_fields = fields


class BreakGlassReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = BreakGlassReview
        fields = ["id", "access", "appropriate", "note", "reviewer", "created_at"]
        read_only_fields = fields


class BreakGlassReviewCreateSerializer(StrictInputSerializer):
    appropriate = StrictBooleanField(help_text="Was the access justified?")
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="Why (required when the access was not appropriate). No clinical content.",
    )


class AuditBreakGlassSerializer(serializers.ModelSerializer):
    clinician = serializers.CharField(source="clinician.user.username", read_only=True)
    patient = serializers.CharField(source="patient.pseudonym", read_only=True)
    active = serializers.SerializerMethodField()
    latest_review = serializers.SerializerMethodField()

    class Meta:
        model = BreakGlassAccess
        fields = [
            "id",
            "clinician",
            "patient",
            "reason",
            "created_at",
            "expires_at",
            "active",
            "latest_review",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_active(self, access: BreakGlassAccess) -> bool:
        from django.utils import timezone

        return bool(access.expires_at > timezone.now())

    @extend_schema_field(BreakGlassReviewSerializer(allow_null=True))
    def get_latest_review(self, access: BreakGlassAccess) -> dict[str, Any] | None:
        reviews = list(access.reviews.all())  # prefetched, newest first
        return BreakGlassReviewSerializer(reviews[0]).data if reviews else None


class ChainBreakSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["altered", "deleted", "reordered", "inserted", "truncated", "rewritten"]
    )
    seq = serializers.IntegerField(allow_null=True, help_text="The first broken position.")
    event_id = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class ChainVerificationSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    verified_at = serializers.DateTimeField()
    cached = serializers.BooleanField(
        help_text="True when this is the last stored result rather than a run made now."
    )
    events_checked = serializers.IntegerField()
    head_seq = serializers.IntegerField()
    head_hash = serializers.CharField()
    anchors_checked = serializers.IntegerField()
    anchor_file_checked = serializers.BooleanField()
    anchor_lines_unreadable = serializers.IntegerField()
    first_break = ChainBreakSerializer(allow_null=True)
