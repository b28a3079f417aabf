"""Consent: append-only grants and withdrawals per scope, tied to the document version shown."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from config.errors import ConsentMissing, PermissionDenied, ValidationFailed
from privacy.audit import Actor, access_record
from privacy.choices import ConsentScope
from privacy.models import ConsentDocument, ConsentRecord


def consent_document_publish(*, scope: str, version: str, text: str) -> ConsentDocument:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    document, created = ConsentDocument.objects.get_or_create(
        scope=scope, version=version, defaults={"text": text, "sha256": digest}
    )
    if not created and document.sha256 != digest:
        raise ValidationFailed(fields={"version": ["This version was published with other text."]})
    return document


def consent_documents_current() -> dict[str, ConsentDocument]:
    current: dict[str, ConsentDocument] = {}
    for document in ConsentDocument.objects.order_by("scope", "-published_at", "-id"):
        current.setdefault(document.scope, document)
    return current


def consent_change(
    *,
    actor: Actor,
    patient: Any,
    scope: str,
    granted: bool,
    document_version: str | None = None,
    source: str = "api",
) -> ConsentRecord:
    """Grant or withdraw one scope. A grant names the document version the patient was shown."""
    if scope not in ConsentScope.values:
        raise ValidationFailed(fields={"scope": ["Unknown consent scope."]})
    if actor.user_id is None:
        raise PermissionDenied("Consent is given or withdrawn by a person, never by the system.")
    document = None
    if granted:
        if not document_version:
            raise ValidationFailed(fields={"document_version": ["Required to grant consent."]})
        document = ConsentDocument.objects.filter(scope=scope, version=document_version).first()
        if document is None:
            raise ValidationFailed(
                fields={"document_version": ["No such consent document for this scope."]}
            )
    with transaction.atomic():
        record = ConsentRecord.objects.create(
            patient=patient,
            scope=scope,
            granted=granted,
            document=document,
            document_version=document.version if document else "",
            document_sha256=document.sha256 if document else "",
            actor_id=actor.user_id,
            source=source,
        )
        access_record(
            actor=actor,
            action="consent.grant" if granted else "consent.withdraw",
            patient_id=patient.pk,
            resource_type="Consent",
            resource_id=record.pk,
        )
    return record


def consent_state(*, patient: Any) -> dict[str, ConsentRecord | None]:
    """The latest record per scope (None where the patient never decided)."""
    state: dict[str, ConsentRecord | None] = dict.fromkeys(ConsentScope.values)
    for record in ConsentRecord.objects.filter(patient=patient).order_by("-created_at", "-id"):
        if state.get(record.scope) is None:
            state[record.scope] = record
    return state


def consent_overview(*, actor: Actor, patient: Any) -> dict[str, Any]:
    """Every scope with the patient's current decision, and the documents they may grant."""
    state = consent_state(patient=patient)
    access_record(
        actor=actor, action="consent.read", patient_id=patient.pk, resource_type="Consent"
    )
    scopes = [
        {
            "scope": scope,
            "label": ConsentScope(scope).label,
            "granted": bool(record and record.granted),
            "decided_at": record.created_at if record else None,
            "document_version": record.document_version if record else "",
        }
        for scope, record in state.items()
    ]
    return {"scopes": scopes, "documents": list(consent_documents_current().values())}


def consent_history(*, actor: Actor, patient: Any) -> QuerySet[ConsentRecord]:
    access_record(
        actor=actor, action="consent.history", patient_id=patient.pk, resource_type="Consent"
    )
    return ConsentRecord.objects.filter(patient=patient).order_by("-created_at", "-id")


def consent_has(*, patient: Any, scope: str) -> bool:
    latest = (
        ConsentRecord.objects.filter(patient=patient, scope=scope)
        .order_by("-created_at", "-id")
        .first()
    )
    return bool(latest and latest.granted)


def consent_require_any(*, patient: Any, scopes: list[str]) -> None:
    """Raise :class:`ConsentMissing` unless at least one of ``scopes`` is granted."""
    if not any(consent_has(patient=patient, scope=scope) for scope in scopes):
        raise ConsentMissing(*scopes)
