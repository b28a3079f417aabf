"""Privacy API views: validate the query, call one selector or service, render.

- ``GET /access-log``: a patient's own access log (who, in which role and clinic, when, what, why).
- ``/audit/...``: auditors of a clinic: access events, consent history, break-glass accesses and
  their reviews, and the audit chain's verification. Every query is itself an access event.
"""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from privacy.api import selectors
from privacy.api import serializers as s
from privacy.api.permissions import IsAuditor, IsPatient
from privacy.audit import Actor, access_record
from privacy.breakglass import break_glass_review
from privacy.chain_verify import ChainVerification, audit_chain_last, audit_chain_verify
from screening.models import Auditor, Patient


class OccurredNewestFirstPagination(CursorPagination):
    ordering = ("-occurred_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class CreatedNewestFirstPagination(OccurredNewestFirstPagination):
    ordering = ("-created_at", "-id")


class _PrivacyView(GenericAPIView):
    audit_resource = ""

    @property
    def actor(self) -> Actor:
        return Actor.from_request(self.request)

    def query(self, serializer_class: type[s.serializers.Serializer]) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.query_params.dict())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def paged(self, rows: Any) -> Response:
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


# --- patients --------------------------------------------------------------------------------
class AccessLogView(_PrivacyView):
    """Who accessed your record: role and clinic (never a person's name), time, action, purpose
    and outcome, newest first."""

    permission_classes = [IsAuthenticated, IsPatient]
    audit_action = "access_log"
    audit_resource = "AccessEvent"
    serializer_class = s.AccessLogEntrySerializer
    pagination_class = OccurredNewestFirstPagination

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "user_id": self.request.user.pk}

    @extend_schema(responses=s.AccessLogEntrySerializer(many=True))
    def get(self, request: Request) -> Response:
        patient: Patient = request.user.patient  # type: ignore[union-attr]
        return self.paged(selectors.patient_access_log(actor=self.actor, patient=patient))


# --- auditors --------------------------------------------------------------------------------
class AuditorView(_PrivacyView):
    permission_classes = [IsAuthenticated, IsAuditor]

    @property
    def auditor(self) -> Auditor:
        return self.request.user.auditor  # type: ignore[union-attr]


class AuditEventListView(AuditorView):
    """Access events of your clinic, newest first, filtered."""

    audit_action = "audit.events"
    audit_resource = "AccessEvent"
    serializer_class = s.AuditEventSerializer
    pagination_class = OccurredNewestFirstPagination

    @extend_schema(
        parameters=[s.AuditEventQuerySerializer], responses=s.AuditEventSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        query = self.query(s.AuditEventQuerySerializer)
        query["actor_name"] = query.pop("actor", None)
        events = selectors.audit_events_list(actor=self.actor, auditor=self.auditor, **query)
        return self.paged(events)


class AuditConsentListView(AuditorView):
    """Consent grants and withdrawals of your clinic's patients, with the document version and
    hash each grant was given on, newest first."""

    audit_action = "audit.consents"
    audit_resource = "Consent"
    serializer_class = s.AuditConsentSerializer
    pagination_class = CreatedNewestFirstPagination

    @extend_schema(
        parameters=[s.AuditConsentQuerySerializer], responses=s.AuditConsentSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        query = self.query(s.AuditConsentQuerySerializer)
        records = selectors.audit_consents_list(actor=self.actor, auditor=self.auditor, **query)
        return self.paged(records)


class AuditBreakGlassListView(AuditorView):
    """Break-glass accesses to your clinic's patients, each with its latest review."""

    audit_action = "audit.break_glass"
    audit_resource = "BreakGlassAccess"
    serializer_class = s.AuditBreakGlassSerializer
    pagination_class = CreatedNewestFirstPagination

    @extend_schema(
        parameters=[s.AuditBreakGlassQuerySerializer],
        responses=s.AuditBreakGlassSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        query = self.query(s.AuditBreakGlassQuerySerializer)
        accesses = selectors.audit_break_glass_list(actor=self.actor, auditor=self.auditor, **query)
        return self.paged(accesses)


class AuditBreakGlassReviewView(AuditorView):
    """Review a break-glass access (a newer review supersedes; reviews are never changed)."""

    audit_action = "audit.break_glass.review"
    audit_resource = "BreakGlassAccess"
    serializer_class = s.BreakGlassReviewSerializer

    @extend_schema(
        request=s.BreakGlassReviewCreateSerializer, responses={201: s.BreakGlassReviewSerializer}
    )
    def post(self, request: Request, pk: uuid.UUID) -> Response:
        serializer = s.BreakGlassReviewCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        access = selectors.audit_break_glass_get(
            actor=self.actor, auditor=self.auditor, access_id=pk
        )
        review = break_glass_review(
            actor=self.actor,
            access=access,
            appropriate=serializer.validated_data["appropriate"],
            note=serializer.validated_data.get("note", ""),
        )
        return Response(s.BreakGlassReviewSerializer(review).data, status=status.HTTP_201_CREATED)


def _chain_body(result: ChainVerification, *, cached: bool) -> dict[str, Any]:
    data = result.as_dict()
    data["cached"] = cached
    data["anchor_file_checked"] = data.pop("anchor_file") is not None
    return dict(s.ChainVerificationSerializer(data).data)


class AuditChainView(AuditorView):
    """The last verification of the audit hash chain (verified now if none is stored)."""

    audit_action = "audit.chain"
    audit_resource = "AuditChain"
    serializer_class = s.ChainVerificationSerializer

    def get(self, request: Request) -> Response:
        access_record(actor=self.actor, action="audit.chain", resource_type="AuditChain")
        last = audit_chain_last()
        if last is not None:
            return Response(_chain_body(last, cached=True))
        return Response(_chain_body(audit_chain_verify(), cached=False))


class AuditChainVerifyView(AuditorView):
    """Verify the audit hash chain and its anchors now."""

    audit_action = "audit.chain.verify"
    audit_resource = "AuditChain"
    serializer_class = s.ChainVerificationSerializer

    @extend_schema(request=None, responses={200: s.ChainVerificationSerializer})
    def post(self, request: Request) -> Response:
        access_record(actor=self.actor, action="audit.chain.verify", resource_type="AuditChain")
        return Response(_chain_body(audit_chain_verify(), cached=False))
