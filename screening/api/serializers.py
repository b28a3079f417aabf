"""Input serializers validate shape; output serializers render. No logic lives here."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone as dj_timezone
from rest_framework import serializers

from config.inputs import StrictBooleanField, StrictInputSerializer, StrictIntegerField
from privacy.choices import ConsentScope
from screening.choices import Instrument
from screening.models import DiaryEntry, QuestionnaireResponse, VideoSubmission


class OffsetDateTimeField(serializers.DateTimeField):
    """An ISO 8601 timestamp that must carry its UTC offset: a naive one is refused, never read
    as server time (that would file the input under the wrong day).
    """

    default_error_messages = {"naive": "Must include a UTC offset, e.g. +01:00 or Z."}

    def enforce_timezone(self, value: Any) -> Any:
        if dj_timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class TimestampedInput(StrictInputSerializer):
    idempotency_key = serializers.UUIDField(
        help_text="A UUID the app generates once per submission; retries reuse it."
    )
    client_timestamp = OffsetDateTimeField(
        help_text="When the patient made the entry, with its UTC offset (ISO 8601)."
    )
    timezone = serializers.CharField(
        max_length=64,
        required=False,
        help_text="The patient's IANA time zone at that moment, e.g. Europe/London.",
    )


class DiaryEntryCreateSerializer(TimestampedInput):
    text = serializers.CharField(
        max_length=settings.VIGIL_DIARY_MAX_CHARS,
        trim_whitespace=False,
        help_text=f"At most {settings.VIGIL_DIARY_MAX_CHARS} characters.",
    )
    self_rated_mood = StrictIntegerField(min_value=0, max_value=10, required=False, allow_null=True)


class DiaryEntrySerializer(serializers.ModelSerializer):
    text = serializers.CharField(read_only=True)

    class Meta:
        model = DiaryEntry
        fields = [
            "id",
            "text",
            "self_rated_mood",
            "client_timestamp",
            "timezone",
            "local_date",
            "created_at",
        ]
        read_only_fields = fields


class VideoUploadSerializer(TimestampedInput):
    file = serializers.FileField(
        allow_empty_file=True, help_text="MP4/MOV (H.264, HEVC) or WebM (VP8/VP9/AV1)."
    )


class VideoSubmissionSerializer(serializers.ModelSerializer):
    class Meta:
        model = VideoSubmission
        fields = [
            "id",
            "status",
            "stage",
            "percent",
            "failure_reason",
            "failure_message",
            "duration_seconds",
            "client_timestamp",
            "timezone",
            "local_date",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class QuestionnaireCreateSerializer(TimestampedInput):
    instrument = serializers.ChoiceField(choices=Instrument.choices)
    answers = serializers.ListField(
        child=StrictIntegerField(min_value=0, max_value=3),
        min_length=7,
        max_length=9,
        help_text="One answer per item, 0-3, in the instrument's order (PHQ-9: 9, GAD-7: 7).",
    )


class QuestionnaireResponseSerializer(serializers.ModelSerializer):
    answers = serializers.ListField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = QuestionnaireResponse
        fields = [
            "id",
            "instrument",
            "answers",
            "total",
            "severity",
            "item9",
            "client_timestamp",
            "timezone",
            "local_date",
            "created_at",
        ]
        read_only_fields = fields


class HelpCreateSerializer(serializers.Serializer):
    idempotency_key = serializers.UUIDField(required=False, allow_null=True)
    client_timestamp = serializers.DateTimeField(required=False, allow_null=True)


class CrisisResourceSerializer(serializers.Serializer):
    name = serializers.CharField()
    phone = serializers.CharField(required=False)
    sms = serializers.CharField(required=False)
    url = serializers.CharField(required=False)
    hours = serializers.CharField(required=False)


class CrisisResourcesSerializer(serializers.Serializer):
    locale = serializers.CharField()
    emergency_number = serializers.CharField()
    message = serializers.CharField()
    resources = CrisisResourceSerializer(many=True)


class HelpResponseSerializer(serializers.Serializer):
    help_request_id = serializers.UUIDField()
    emergency_id = serializers.UUIDField()
    received_at = serializers.DateTimeField()
    crisis = CrisisResourcesSerializer()


class ConsentChangeSerializer(StrictInputSerializer):
    scope = serializers.ChoiceField(choices=ConsentScope.choices)
    granted = StrictBooleanField()
    document_version = serializers.CharField(max_length=32, required=False, allow_blank=True)
    delete_derived = StrictBooleanField(
        required=False,
        default=False,
        help_text=(
            "Only with granted=false: also delete the data derived under this scope "
            "(stored on the consent record)."
        ),
    )


class ConsentRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    scope = serializers.CharField()
    granted = serializers.BooleanField()
    document_version = serializers.CharField()
    document_sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()


class ConsentScopeStateSerializer(serializers.Serializer):
    scope = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    granted = serializers.BooleanField()
    decided_at = serializers.DateTimeField(allow_null=True)
    document_version = serializers.CharField(allow_blank=True)


class ConsentDocumentSerializer(serializers.Serializer):
    scope = serializers.CharField()
    version = serializers.CharField()
    text = serializers.CharField()
    sha256 = serializers.CharField()


class ConsentOverviewSerializer(serializers.Serializer):
    scopes = ConsentScopeStateSerializer(many=True)
    documents = ConsentDocumentSerializer(many=True)


class LoginSerializer(StrictInputSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    totp_code = serializers.CharField(
        max_length=16,
        required=False,
        allow_blank=True,
        help_text="Clinicians and auditors: the current 6-digit code of their authenticator app "
        "(the portal's second factor). Patients leave it out.",
    )
    device_name = serializers.CharField(max_length=80, required=False, allow_blank=True)


class TokenIssuedSerializer(serializers.Serializer):
    token = serializers.CharField()
    token_id = serializers.UUIDField()
    expires_at = serializers.DateTimeField()


class TokenSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    key_prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    current = serializers.SerializerMethodField()

    def get_current(self, obj: Any) -> bool:
        return bool(self.context.get("current_id") == obj.id)


class MeSerializer(serializers.Serializer):
    pseudonym = serializers.CharField()
    timezone = serializers.CharField()
    locale = serializers.CharField()
    clinic = serializers.CharField()
    care_team = serializers.CharField()
