"""Consent: append-only grants and withdrawals per scope, tied to the document version shown.

What a withdrawal does, in the transaction that records it:

1. **Queued work stops.** Every registered *work canceller* is asked to cancel the patient's work
   that the remaining scopes no longer allow. Today: video jobs need at least one analysis scope
   (voice, face or text); when none is left, the patient's ``queued`` videos fail at once with the
   reason ``consent_withdrawn``. A job a worker has already started re-checks consent before it
   decrypts and again before it records a result (``screening.services.videos.video_process``).
2. **Derived data goes, when asked.** A withdrawal with ``delete_derived=True`` (stored on the
   record) runs every *derived-data deleter* registered for that scope. The analysis stages
   register theirs (``@derived_deleter_register(scope, name=...)``) for the scores and features
   they store: "text scores" (text analysis: the diary and transcript analyses), "voice scores and
   transcripts" (voice analysis: prosody features and the transcript), "face scores" (face
   analysis), and "video files": when the patient then holds none of voice, face or text analysis
   (which needs the video for its transcript), the encrypted video files of all their videos are
   deleted from storage after the transaction commits; the video rows stay (status, duration, no
   content). Daily mood scores that used the withdrawn data are deleted with it.

Consent is **prospective**: a grant covers what the patient sends from then on. The current
consent period of a scope starts at the first grant after its latest withdrawal
(:func:`consent_period_start`; a newer document accepted while granted continues it); an input
sent before it (while the scope was withdrawn, or before it was ever granted) is not processed
under a later grant (:func:`consent_covers`; in a query, :func:`consent_period_start_subquery`).

Effects that did something (or a requested deletion) are recorded as one access event,
``consent.withdraw_effects``, with the counts as its purpose. Erasure (:mod:`privacy.erasure`)
runs every registered deleter of every scope.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
from collections.abc import Callable
from typing import Any, Protocol

from django.db import transaction
from django.db.models import DateTimeField, F, OuterRef, Q, QuerySet, Subquery

from config.errors import ConsentMissing, PermissionDenied, ValidationFailed
from privacy.audit import Actor, access_record
from privacy.choices import ConsentScope
from privacy.models import ConsentDocument, ConsentRecord


def consent_document_publish(
    *, scope: str, version: str, text: str, actor: Actor | None = None
) -> ConsentDocument:
    """Publish a consent document once (scope, version), with the SHA-256 of its text. The same
    text again is a no-op; other text under a published version is refused (a new text is a new
    version). With ``actor`` (a person publishing, e.g. in the admin) a new document is recorded
    as ``consent.document_publish`` (the scope, version and hash, never the text)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    with transaction.atomic():
        document, created = ConsentDocument.objects.get_or_create(
            scope=scope, version=version, defaults={"text": text, "sha256": digest}
        )
        if not created and document.sha256 != digest:
            raise ValidationFailed(
                fields={"version": ["This version was published with other text."]}
            )
        if created and actor is not None:
            access_record(
                actor=actor,
                action="consent.document_publish",
                resource_type="ConsentDocument",
                resource_id=document.pk,
                purpose=f"{scope} v{version} sha256:{digest[:16]}",
            )
    return document


def consent_documents_current() -> dict[str, ConsentDocument]:
    current: dict[str, ConsentDocument] = {}
    for document in ConsentDocument.objects.order_by("scope", "-published_at", "-id"):
        current.setdefault(document.scope, document)
    return current


# --- effects of a withdrawal: registries ---------------------------------------------------------
class WorkCanceller(Protocol):
    def __call__(self, *, patient: Any, remaining: frozenset[str]) -> int: ...


class DerivedDeleter(Protocol):
    def __call__(self, *, patient: Any, remaining: frozenset[str]) -> int: ...


#: name -> canceller of queued work: given the patient and the scopes still granted after a
#: withdrawal, cancels the work those scopes no longer allow and returns how many jobs it stopped.
_WORK_CANCELLERS: dict[str, WorkCanceller] = {}
#: scope -> name -> deleter of data derived under that scope: given the patient and the scopes
#: still granted, deletes what it owns (files after commit) and returns how many items.
_DERIVED_DELETERS: dict[str, dict[str, DerivedDeleter]] = {}
#: Modules that register effects when imported; loaded before the first withdrawal is applied.
EFFECT_MODULES: list[str] = ["screening.services.videos", "screening.services.scoring"]


def work_canceller_register(name: str) -> Callable[[WorkCanceller], WorkCanceller]:
    """Register (or replace) a canceller of queued work, as a decorator."""

    def decorate(func: WorkCanceller) -> WorkCanceller:
        _WORK_CANCELLERS[name] = func
        return func

    return decorate


def derived_deleter_register(*scopes: str, name: str) -> Callable[[DerivedDeleter], DerivedDeleter]:
    """Register (or replace) a deleter of the data derived under ``scopes``, as a decorator."""
    for scope in scopes:
        if scope not in ConsentScope.values:
            raise ValueError(f"unknown consent scope {scope!r}")

    def decorate(func: DerivedDeleter) -> DerivedDeleter:
        for scope in scopes:
            _DERIVED_DELETERS.setdefault(scope, {})[name] = func
        return func

    return decorate


def _effects_load() -> None:
    for module in EFFECT_MODULES:
        importlib.import_module(module)


def derived_deleters(scope: str) -> dict[str, DerivedDeleter]:
    """The deleters registered for ``scope`` (name -> function)."""
    _effects_load()
    return dict(_DERIVED_DELETERS.get(scope, {}))


def work_cancellers() -> dict[str, WorkCanceller]:
    _effects_load()
    return dict(_WORK_CANCELLERS)


def derived_data_delete(
    *, patient: Any, scopes: list[str], remaining: frozenset[str] = frozenset()
) -> dict[str, int]:
    """Run the deleters of ``scopes`` (each at most once). Returns ``{name: items deleted}``."""
    done: dict[str, int] = {}
    for scope in scopes:
        for name, deleter in derived_deleters(scope).items():
            if name not in done:
                done[name] = deleter(patient=patient, remaining=remaining)
    return done


def consent_granted_scopes(*, patient: Any) -> frozenset[str]:
    return frozenset(
        scope
        for scope, record in consent_state(patient=patient).items()
        if record and record.granted
    )


def _withdrawal_effects(
    *, actor: Actor, patient: Any, record: ConsentRecord
) -> dict[str, dict[str, int]]:
    remaining = consent_granted_scopes(patient=patient)
    cancelled = {
        name: canceller(patient=patient, remaining=remaining)
        for name, canceller in work_cancellers().items()
    }
    deleted = (
        derived_data_delete(patient=patient, scopes=[record.scope], remaining=remaining)
        if record.delete_derived
        else {}
    )
    if record.delete_derived or any(cancelled.values()):
        parts = [f"withdrawal of {record.scope}"]
        parts += [f"cancelled {n} {name}" for name, n in sorted(cancelled.items()) if n]
        if record.delete_derived:
            parts.append(
                "deleted derived: "
                + (", ".join(f"{n} {name}" for name, n in sorted(deleted.items())) or "none stored")
            )
        access_record(
            actor=actor,
            action="consent.withdraw_effects",
            patient_id=patient.pk,
            resource_type="Consent",
            resource_id=record.pk,
            purpose="; ".join(parts),
        )
    return {"cancelled": cancelled, "deleted": deleted}


# --- grants and withdrawals ----------------------------------------------------------------------
def consent_change(
    *,
    actor: Actor,
    patient: Any,
    scope: str,
    granted: bool,
    document_version: str | None = None,
    source: str = "api",
    delete_derived: bool = False,
) -> ConsentRecord:
    """Grant or withdraw one scope. A grant names the document version the patient was shown.

    A withdrawal cancels the queued work the remaining scopes no longer allow and, with
    ``delete_derived``, deletes the data derived under the scope (see the module docstring).
    """
    if scope not in ConsentScope.values:
        raise ValidationFailed(fields={"scope": ["Unknown consent scope."]})
    if granted and delete_derived:
        raise ValidationFailed(
            fields={"delete_derived": ["Only a withdrawal can ask to delete derived data."]}
        )
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
        # The patient's row lock orders this change with the services that store derived data
        # (they take it first too and re-read consent under it): a withdrawal cannot slip
        # between their consent check and their write.
        type(patient)._base_manager.select_for_update().filter(pk=patient.pk).values_list(
            "pk"
        ).first()
        record = ConsentRecord.objects.create(
            patient=patient,
            scope=scope,
            granted=granted,
            document=document,
            document_version=document.version if document else "",
            document_sha256=document.sha256 if document else "",
            actor_id=actor.user_id,
            source=source,
            delete_derived=delete_derived,
        )
        access_record(
            actor=actor,
            action="consent.grant" if granted else "consent.withdraw",
            patient_id=patient.pk,
            resource_type="Consent",
            resource_id=record.pk,
        )
        if not granted:
            _withdrawal_effects(actor=actor, patient=patient, record=record)
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
    return consent_period_start(patient=patient, scope=scope) is not None


# Consent is prospective: a grant covers what the patient sends from then on, never what was sent
# before it (while the scope was withdrawn, or before it was ever granted). The current consent
# period of a scope starts at the first grant after its latest withdrawal: accepting a newer
# consent document while already granted (a second grant) continues the period, it does not
# start a new one (an entry sent a minute before it must still be scored).
def consent_period_start(*, patient: Any, scope: str) -> dt.datetime | None:
    """When the patient's current, unbroken consent to ``scope`` began: the first grant after the
    latest withdrawal (or ever); None when the latest record is a withdrawal or there is none."""
    start: dt.datetime | None = None
    records = (
        ConsentRecord.objects.filter(patient=patient, scope=scope)
        .order_by("-created_at", "-id")
        .values_list("granted", "created_at")
    )
    for granted, created_at in records.iterator(chunk_size=50):  # newest first
        if not granted:
            break
        start = created_at
    return start


def consent_covers(*, patient: Any, scope: str, created_at: dt.datetime) -> bool:
    """Whether ``scope`` is held now and was held when an input created at ``created_at`` was
    sent, without a withdrawal since (the input belongs to the current consent period)."""
    start = consent_period_start(patient=patient, scope=scope)
    return start is not None and created_at >= start


def consent_period_start_subquery(*, scope: str, patient_ref: str = "patient_id") -> Subquery:
    """:func:`consent_period_start` as a subquery of the outer row's patient (``patient_ref``),
    NULL without a current grant. ``.filter(created_at__gte=...)`` keeps the rows created in the
    current consent period (:func:`consent_covers`), in SQL, before any limit."""
    last_withdrawal = (
        ConsentRecord.objects.filter(patient_id=OuterRef("patient_id"), scope=scope, granted=False)
        .order_by("-created_at", "-id")
        .values("created_at")[:1]
    )
    first_grant_since = (
        ConsentRecord.objects.filter(patient_id=OuterRef(patient_ref), scope=scope, granted=True)
        .annotate(withdrawn_at=Subquery(last_withdrawal, output_field=DateTimeField()))
        .filter(Q(withdrawn_at__isnull=True) | Q(created_at__gt=F("withdrawn_at")))
        .order_by("created_at", "id")
        .values("created_at")[:1]
    )
    return Subquery(first_grant_since, output_field=DateTimeField())


def consent_require_any(*, patient: Any, scopes: list[str]) -> None:
    """Raise :class:`ConsentMissing` unless at least one of ``scopes`` is granted."""
    if not any(consent_has(patient=patient, scope=scope) for scope in scopes):
        raise ConsentMissing(*scopes)
