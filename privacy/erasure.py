"""Erasure of a patient ("right to erasure") by crypto-shredding.

:func:`patient_erase` (also ``manage.py erase_patient`` and the "Erase" action of the Patient
admin), in one transaction, with the patient row locked:

1. **Refuses** with :class:`~config.errors.LegalHold` while ``patient.legal_hold`` is set (the
   refusal is recorded as a denied access event; nothing else changes).
2. **Derived data**: runs every derived-data deleter registered in :mod:`privacy.consent` for every
   scope (the analysis stages register theirs; none stores anything yet).
   Then every *erasure hook* registered here (:func:`erasure_hook_register`): other apps declare
   what they must delete or close for an erased patient.
3. **Inputs**: deletes the patient's ``VideoSubmission``, ``DiaryEntry``, ``QuestionnaireResponse``
   and ``EmergencyContact`` rows. Deleting the video rows also cancels their queued and running
   jobs: a worker that meets a vanished row does nothing. Every other model with an encrypted
   field owned by the patient (found from the model registry; e.g. the risk engine's alerts) keeps
   its rows, which may be part of the safety record and referenced by others: its nullable
   encrypted fields become NULL and the rest is crypto-shredded by step 4. On the ``Patient`` row
   itself ``display_name`` becomes NULL and ``birth_year`` is cleared.
4. **Keys**: destroys every data key of the patient (``wrapped_key`` NULL, ``destroyed_at`` set,
   forgotten by this process's key cache). This is what makes erasure complete: every copy of the
   patient's ciphertext, in database backups, replicas or copied files, can never be decrypted
   again. Other processes forget a cached key within ``VIGIL_DEK_CACHE_SECONDS``; anything written
   concurrently with the erasure is under a destroyed key and equally unreadable.
5. **Login**: revokes every API token, deactivates the user, gives it an unusable password and
   replaces the username with ``erased-<pseudonym>`` (email and names are blanked). The patient can
   no longer log in or use the API.
6. **Tombstone**: sets ``patient.erased_at``; the row stays with its pseudonym, so the records
   that must remain still point at something.
7. **Audit**: records ``patient.erase`` with the actor and ``purpose`` = the reason. The reason is
   typed by staff and kept in the audit log for good: it must say *why* (e.g. "patient request
   ticket 4711", "GDPR art. 17 request of 2025-03-01"), never clinical content.
8. After the commit, deletes the patient's stored video files (already unreadable) and folder.

What deliberately remains: ``ConsentRecord`` rows and access events (append-only; they hold ids,
scopes and document hashes, no content, and prove what was consented to, who accessed what, and
that the erasure happened), and ``HelpRequest`` / ``Emergency`` rows. Those last two hold no
content either (times, locale, press counts, open/closed) and are the clinic's safety record: that
a patient pressed the help button and how the service responded must stay demonstrable (duty of
care, incident review, medico-legal retention), and they now point only at a pseudonymous
tombstone.

Erasing an erased patient is a no-op that says so (:attr:`ErasureResult.already_erased`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import models, transaction
from django.utils import timezone

from config.errors import LegalHold, PermissionDenied, ValidationFailed
from privacy import datakeys, storage
from privacy.audit import Actor, access_record
from privacy.choices import AccessOutcome, ConsentScope, Role
from privacy.consent import derived_data_delete
from privacy.models import ApiToken
from privacy.rotation import encrypted_models

REASON_MAX_CHARS = 500


class ErasureHook(Protocol):
    def __call__(self, *, patient: Any) -> int: ...


#: name -> hook run inside the erasure transaction; returns how many items it deleted or closed.
_ERASURE_HOOKS: dict[str, ErasureHook] = {}


def erasure_hook_register(name: str) -> Callable[[ErasureHook], ErasureHook]:
    """Register (or replace) what another app deletes or closes when a patient is erased.

    Register at import time of a module that is always loaded (e.g. from ``AppConfig.ready``).
    """

    def decorate(func: ErasureHook) -> ErasureHook:
        _ERASURE_HOOKS[name] = func
        return func

    return decorate


@dataclass
class ErasureResult:
    patient_id: uuid.UUID
    pseudonym: str
    already_erased: bool = False
    erased_at: dt.datetime | None = None
    keys_destroyed: int = 0
    rows_deleted: dict[str, int] = field(default_factory=dict)  # model label -> rows
    derived_deleted: dict[str, int] = field(default_factory=dict)  # deleter name -> items
    hooks: dict[str, int] = field(default_factory=dict)  # erasure hook name -> items
    tokens_revoked: int = 0
    files_deleted: int | None = None  # None until the transaction has committed

    @property
    def message(self) -> str:
        if self.already_erased:
            when = self.erased_at.isoformat(timespec="seconds") if self.erased_at else "earlier"
            return f"Patient {self.pseudonym} was already erased ({when}): nothing to do."
        files = "pending" if self.files_deleted is None else str(self.files_deleted)
        return (
            f"Patient {self.pseudonym} erased: {self.keys_destroyed} data keys destroyed, "
            f"{sum(self.rows_deleted.values())} records deleted, {files} stored files deleted, "
            f"{self.tokens_revoked} API tokens revoked, login disabled."
        )


def erasure_actor(user: Any, *, ip_address: str | None = None) -> Actor:
    """The actor for an erasure performed by a member of staff (refuses anyone else)."""
    if user is None or not user.is_active or not (user.is_staff or user.is_superuser):
        raise PermissionDenied("Only active staff users can erase a patient.")
    return Actor(user_id=user.pk, role=Role.ADMIN, ip_address=ip_address)


def _content_models() -> list[type[models.Model]]:
    from screening.models import (
        DiaryEntry,
        EmergencyContact,
        QuestionnaireResponse,
        VideoSubmission,
    )

    return [VideoSubmission, DiaryEntry, QuestionnaireResponse, EmergencyContact]


def _clean_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": ["Say why the patient is erased."]})
    if len(reason) > REASON_MAX_CHARS:
        raise ValidationFailed(
            fields={"reason": [f"At most {REASON_MAX_CHARS} characters, and no clinical content."]}
        )
    return reason


def patient_erase(*, actor: Actor, patient: Any, reason: str) -> ErasureResult:
    """Erase ``patient`` (see the module docstring). Raises :class:`LegalHold` under legal hold."""
    from screening.models import Patient, User

    reason = _clean_reason(reason)
    result = ErasureResult(patient_id=patient.pk, pseudonym=patient.pseudonym)
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        if locked.erased_at is not None:
            result.already_erased = True
            result.erased_at = locked.erased_at
            return result
        held = locked.legal_hold
        if not held:
            _erase_locked(actor=actor, patient=locked, reason=reason, result=result)
            user = User.objects.select_for_update().get(pk=locked.user_id)
            _user_disable(user, pseudonym=locked.pseudonym)
    if held:
        access_record(
            actor=actor,
            action="patient.erase",
            patient_id=patient.pk,
            outcome=AccessOutcome.DENIED,
            resource_type="Patient",
            resource_id=patient.pk,
            reason=LegalHold.code,
            purpose=reason,
        )
        raise LegalHold()
    # The caller's instance must not write the old values back if it is saved later.
    patient.erased_at = result.erased_at
    patient.display_name = None
    patient.birth_year = None
    return result


def _erase_locked(*, actor: Actor, patient: Any, reason: str, result: ErasureResult) -> None:
    patient_id: uuid.UUID = patient.pk
    now = timezone.now()

    # Derived data first: a deleter may need the input rows to find what it derived from them.
    result.derived_deleted = derived_data_delete(
        patient=patient, scopes=list(ConsentScope.values), remaining=frozenset()
    )

    result.hooks = {name: hook(patient=patient) for name, hook in _ERASURE_HOOKS.items()}

    # Input rows (their ciphertext goes with them; the queued jobs of deleted videos are no-ops).
    content = _content_models()
    for model in content:
        deleted, _ = model._base_manager.filter(patient_id=patient_id).delete()
        result.rows_deleted[model._meta.label] = deleted
    # Other encrypted rows stay (records others may reference); what can be NULL becomes NULL.
    for item in encrypted_models():
        if item.model in content:
            continue
        nullable = {f.name: None for f in item.fields if f.null}
        if nullable:
            item.rows_of(patient_id).update(**nullable)

    # Crypto-shredding: whatever ciphertext of theirs is left anywhere is unreadable from now on.
    destroyed = datakeys.patient_keys_destroy(patient_id=patient_id)
    result.keys_destroyed = len(destroyed)

    result.tokens_revoked = ApiToken.objects.filter(
        user_id=patient.user_id, revoked_at__isnull=True
    ).update(revoked_at=now)

    type(patient)._base_manager.filter(pk=patient_id).update(erased_at=now, birth_year=None)
    result.erased_at = now

    access_record(
        actor=actor,
        action="patient.erase",
        patient_id=patient_id,
        resource_type="Patient",
        resource_id=patient_id,
        purpose=reason,
    )

    stored_files = len(storage.patient_stored_objects(patient_id=patient_id))

    def after_commit() -> None:
        for dek_id in destroyed:  # again, in case a read re-cached one before the commit
            datakeys.cache_forget(dek_id)
        storage.patient_files_delete(patient_id=patient_id)  # (a deleter may have begun)
        result.files_deleted = stored_files

    transaction.on_commit(after_commit)


def _user_disable(user: Any, *, pseudonym: str) -> None:
    user.username = f"erased-{pseudonym}"
    user.email = ""
    user.first_name = ""
    user.last_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save(
        update_fields=["username", "email", "first_name", "last_name", "is_active", "password"]
    )
