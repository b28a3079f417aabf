"""Patient API views: validate input, call one service or selector, render output."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from config.errors import NotFound
from privacy import consent as consent_services
from privacy import services as token_services
from privacy.audit import Actor, access_record
from privacy.choices import AccessOutcome
from screening import selectors
from screening.api import serializers as s
from screening.api.permissions import IsPatient
from screening.api.throttles import LoginUsernameThrottle
from screening.api.uploads import UploadMultiPartParser
from screening.crisis import crisis_resources_for
from screening.models import Patient
from screening.services.diary import diary_entry_create
from screening.services.help import help_request_create
from screening.services.questionnaires import questionnaire_submit
from screening.services.videos import video_submission_create


class NewestFirstPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class PatientView(GenericAPIView):
    permission_classes = [IsAuthenticated, IsPatient]
    audit_resource = ""

    @property
    def actor(self) -> Actor:
        return Actor.from_request(self.request)

    @property
    def patient(self) -> Patient:
        return self.request.user.patient  # type: ignore[union-attr]

    def valid(self, serializer_class: type, data: Any = None) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class _InputList(ListModelMixin, PatientView):
    """A patient's own inputs of one kind, newest first, cursor-paged (stable under inserts)."""

    kind = ""
    pagination_class = NewestFirstPagination

    def get_queryset(self) -> QuerySet:
        return selectors.patient_inputs_list(actor=self.actor, patient=self.patient, kind=self.kind)

    def list_response(self) -> Response:
        return self.list(self.request)


class _InputDetail(PatientView):
    kind = ""

    def detail_response(self, pk: uuid.UUID) -> Response:
        row = selectors.patient_input_get(
            actor=self.actor, patient=self.patient, kind=self.kind, input_id=pk
        )
        return Response(self.get_serializer(row).data)


def _created(data: Any, created: bool) -> Response:
    """201 for a new submission; 200 with ``Idempotent-Replayed`` for a retry."""
    response = Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
    if not created:
        response["Idempotent-Replayed"] = "true"
    return response


# --- diary -----------------------------------------------------------------------------------
class DiaryEntryListCreate(_InputList):
    kind = "diary"
    audit_action = "diary"
    audit_resource = "DiaryEntry"
    serializer_class = s.DiaryEntrySerializer

    @extend_schema(
        request=s.DiaryEntryCreateSerializer,
        responses={201: s.DiaryEntrySerializer, 200: s.DiaryEntrySerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.valid(s.DiaryEntryCreateSerializer)
        entry, created = diary_entry_create(actor=self.actor, patient=self.patient, **data)
        return _created(s.DiaryEntrySerializer(entry).data, created)

    def get(self, request: Request) -> Response:
        return self.list_response()


class DiaryEntryDetail(_InputDetail):
    kind = "diary"
    audit_action = "diary.read"
    audit_resource = "DiaryEntry"
    serializer_class = s.DiaryEntrySerializer

    def get(self, request: Request, pk: uuid.UUID) -> Response:
        return self.detail_response(pk)


# --- videos ----------------------------------------------------------------------------------
class VideoListCreate(_InputList):
    kind = "video"
    audit_action = "video"
    audit_resource = "VideoSubmission"
    serializer_class = s.VideoSubmissionSerializer
    parser_classes = [UploadMultiPartParser]
    throttle_scope = "upload"

    def get_throttles(self) -> list[Any]:
        if self.request.method == "POST":
            return [ScopedRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        request={"multipart/form-data": s.VideoUploadSerializer},
        responses={201: s.VideoSubmissionSerializer, 200: s.VideoSubmissionSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.valid(s.VideoUploadSerializer)
        upload = data["file"]
        try:
            video, created = video_submission_create(
                actor=self.actor,
                patient=self.patient,
                upload_path=Path(upload.temporary_file_path()),
                idempotency_key=data["idempotency_key"],
                client_timestamp=data["client_timestamp"],
                timezone_name=data.get("timezone"),
            )
        finally:
            # The plaintext upload goes now, not at the end of the request. Closing Django's
            # temporary file removes it and marks it closed, so Django's own cleanup is a no-op
            # (unlinking it behind Django's back made that cleanup raise FileNotFoundError).
            upload.close()
        return _created(s.VideoSubmissionSerializer(video).data, created)

    def get(self, request: Request) -> Response:
        return self.list_response()


class VideoDetail(_InputDetail):
    kind = "video"
    audit_action = "video.read"
    audit_resource = "VideoSubmission"
    serializer_class = s.VideoSubmissionSerializer

    def get(self, request: Request, pk: uuid.UUID) -> Response:
        return self.detail_response(pk)


# --- questionnaires --------------------------------------------------------------------------
class QuestionnaireListCreate(_InputList):
    kind = "questionnaire"
    audit_action = "questionnaire"
    audit_resource = "QuestionnaireResponse"
    serializer_class = s.QuestionnaireResponseSerializer

    @extend_schema(
        request=s.QuestionnaireCreateSerializer,
        responses={201: s.QuestionnaireResponseSerializer, 200: s.QuestionnaireResponseSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.valid(s.QuestionnaireCreateSerializer)
        response, created = questionnaire_submit(actor=self.actor, patient=self.patient, **data)
        return _created(s.QuestionnaireResponseSerializer(response).data, created)

    def get(self, request: Request) -> Response:
        return self.list_response()


class QuestionnaireDetail(_InputDetail):
    kind = "questionnaire"
    audit_action = "questionnaire.read"
    audit_resource = "QuestionnaireResponse"
    serializer_class = s.QuestionnaireResponseSerializer

    def get(self, request: Request, pk: uuid.UUID) -> Response:
        return self.detail_response(pk)


# --- help button -----------------------------------------------------------------------------
class HelpView(PatientView):
    """The help button: never throttled, answered with crisis resources in the same response."""

    audit_action = "help"
    audit_resource = "HelpRequest"
    throttle_classes: list[Any] = []
    serializer_class = s.HelpResponseSerializer

    @extend_schema(request=s.HelpCreateSerializer, responses={201: s.HelpResponseSerializer})
    def post(self, request: Request) -> Response:
        press, crisis = help_request_create(
            actor=self.actor,
            patient=self.patient,
            **self._optional_fields(request),
        )
        body = {
            "help_request_id": press.pk,
            "emergency_id": press.emergency_id,
            "received_at": press.received_at,
            "crisis": crisis,
        }
        return Response(s.HelpResponseSerializer(body).data, status=status.HTTP_201_CREATED)

    @staticmethod
    def _optional_fields(request: Request) -> dict[str, Any]:
        """Both fields are optional and a malformed one is dropped, never a reason to refuse.

        A body that cannot be read at all (bad JSON, or a form-encoded, multipart or plain-text
        body the API has no parser for) is ignored: the press is recorded without the fields.
        """
        try:
            raw = request.data
        except (ParseError, UnsupportedMediaType):
            raw = {}
        if not isinstance(raw, dict):
            raw = {}
        serializer = s.HelpCreateSerializer(data=raw)
        if not serializer.is_valid():
            serializer = s.HelpCreateSerializer(
                data={k: v for k, v in raw.items() if k not in serializer.errors}
            )
            serializer.is_valid()
        data = getattr(serializer, "validated_data", {}) or {}
        return {
            "idempotency_key": data.get("idempotency_key"),
            "client_timestamp": data.get("client_timestamp"),
        }

    @extend_schema(responses={200: s.CrisisResourcesSerializer})
    def get(self, request: Request) -> Response:
        """Crisis resources for the patient's locale, without pressing the button."""
        patient = self.patient
        crisis = crisis_resources_for(
            locale=patient.locale, clinic_overrides=patient.organisation.crisis_resources
        )
        return Response(s.CrisisResourcesSerializer(crisis).data)


# --- consent ---------------------------------------------------------------------------------
class ConsentView(PatientView):
    audit_action = "consent"
    audit_resource = "Consent"
    serializer_class = s.ConsentOverviewSerializer

    @extend_schema(responses={200: s.ConsentOverviewSerializer})
    def get(self, request: Request) -> Response:
        overview = consent_services.consent_overview(actor=self.actor, patient=self.patient)
        return Response(s.ConsentOverviewSerializer(overview).data)

    @extend_schema(request=s.ConsentChangeSerializer, responses={201: s.ConsentRecordSerializer})
    def post(self, request: Request) -> Response:
        data = self.valid(s.ConsentChangeSerializer)
        record = consent_services.consent_change(
            actor=self.actor,
            patient=self.patient,
            scope=data["scope"],
            granted=data["granted"],
            document_version=data.get("document_version") or None,
            delete_derived=data.get("delete_derived", False),
        )
        return Response(s.ConsentRecordSerializer(record).data, status=status.HTTP_201_CREATED)


class ConsentHistoryView(ListModelMixin, PatientView):
    audit_action = "consent.history"
    serializer_class = s.ConsentRecordSerializer
    pagination_class = NewestFirstPagination

    def get_queryset(self) -> QuerySet:
        return consent_services.consent_history(actor=self.actor, patient=self.patient)

    def get(self, request: Request) -> Response:
        return self.list(request)


# --- me and tokens ---------------------------------------------------------------------------
class MeView(PatientView):
    audit_action = "me"
    serializer_class = s.MeSerializer

    def get(self, request: Request) -> Response:
        profile = selectors.patient_profile_get(actor=self.actor, patient=self.patient)
        return Response(s.MeSerializer(profile).data)


class LoginView(GenericAPIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle, LoginUsernameThrottle]
    throttle_scope = "login"
    audit_action = "auth.login"
    serializer_class = s.LoginSerializer

    @extend_schema(request=s.LoginSerializer, responses={201: s.TokenIssuedSerializer})
    def post(self, request: Request) -> Response:
        serializer = s.LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, raw = token_services.session_token_login(
            actor=Actor.from_request(request),
            request=request._request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
            totp_code=serializer.validated_data.get("totp_code", ""),
            device_name=serializer.validated_data.get("device_name", ""),
        )
        return Response(
            s.TokenIssuedSerializer(
                {"token": raw, "token_id": token.pk, "expires_at": token.expires_at}
            ).data,
            status=status.HTTP_201_CREATED,
        )


class LogoutView(GenericAPIView):
    """Revoke the token this request was made with."""

    audit_action = "auth.logout"
    serializer_class = None

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        token_services.token_revoke(
            actor=Actor.from_request(request), user=request.user, token_id=request.auth.pk
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenListView(GenericAPIView):
    audit_action = "auth.tokens"
    serializer_class = s.TokenSerializer

    @extend_schema(responses=s.TokenSerializer(many=True))
    def get(self, request: Request) -> Response:
        tokens = token_services.tokens_list(user=request.user)
        return Response(
            s.TokenSerializer(tokens, many=True, context={"current_id": request.auth.pk}).data
        )


class TokenRevokeView(GenericAPIView):
    audit_action = "auth.token_revoke"
    serializer_class = None

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: uuid.UUID) -> Response:
        actor = Actor.from_request(request)
        try:
            token_services.token_revoke(actor=actor, user=request.user, token_id=pk)
        except NotFound:
            # Another user's token id answers exactly like a missing one (404, nothing revealed),
            # but the attempt is logged as denied: probing token ids must leave a trail.
            access_record(
                actor=actor,
                action=self.audit_action,
                outcome=AccessOutcome.DENIED,
                resource_type="ApiToken",
                resource_id=pk,
                status_code=404,
                reason="not_found",
            )
            raise
        return Response(status=status.HTTP_204_NO_CONTENT)
