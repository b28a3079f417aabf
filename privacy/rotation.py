"""Key rotation: re-wrapping data keys under a new key-encryption key, and replacing one patient's
data key.

**KEK rotation** (:func:`kek_rotate`, ``manage.py rotate_keys --to KID``): every data key that is
not destroyed (current and retired ones) and not yet wrapped under ``KID`` is unwrapped with its
KEK and wrapped again under ``KID``. The data keys themselves do not change, so no record and no
file is touched. Work goes in batches, each its own transaction that locks its rows with
``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises writers), so it runs while the
service keeps serving, and an interrupted run simply continues where it stopped when run again; a
run with nothing left to do changes nothing. A data key that fails to unwrap is reported by id and
counted, never skipped silently. Each batch writes one access event, ``key.rewrap``.

**Data key rotation** (:func:`patient_data_key_rotate`, ``manage.py rotate_patient_key``), for a
suspected leak of one patient's data key: a new data key becomes the patient's current one (the
old one is *retired* in the same transaction: new data uses the new key from then on, and the
database allows one current key per patient), every encrypted field of every row the patient owns
(found from the model registry: every model with an ``Encrypted*Field``, filtered on the field's
``owner_field``) and every stored file is re-encrypted under it, and the retired key is destroyed
once nothing references it any more. Resumable: records and files already under the new key are
skipped, and a run that finds a retired, not yet destroyed key continues that rotation instead of
starting another. One access event, ``key.patient_rotate``, records the counts.

Staff TOTP secrets (``clinician_portal.StaffTotp``) are sealed directly under a KEK, so KEK
rotation re-seals them too, after the data keys, the same way: batches with ``SKIP LOCKED``,
compare-and-swap, resumable, idempotent; a secret that cannot be opened is reported by user id
(never its value) and counted; each batch writes one access event, ``key.totp_reseal``. A KEK is
retirable only once neither a live data key nor a TOTP secret uses it.

Reports carry ids and counts only, never patient content.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models, transaction

from config.errors import DecryptionFailed, KeyNotFound
from privacy import crypto, datakeys, storage
from privacy.audit import Actor, access_record
from privacy.fields import EncryptedFieldMixin, Sealed
from privacy.keys import keyring
from privacy.models import PatientKey

_UNREADABLE = (DecryptionFailed, KeyNotFound)


# --- which models hold encrypted data ------------------------------------------------------------
@dataclass(frozen=True)
class EncryptedModel:
    """One model's encrypted fields that share an owner field (the patient's id attribute)."""

    model: type[models.Model]
    owner_field: str
    fields: tuple[EncryptedFieldMixin, ...]

    @property
    def label(self) -> str:
        return self.model._meta.label

    @property
    def owner_is_pk(self) -> bool:
        """The row *is* the patient's own record (``Patient.display_name``: owner is ``id``)."""
        pk = self.model._meta.pk
        return pk is not None and self.owner_field in (pk.name, pk.attname)

    def rows_of(self, patient_id: uuid.UUID) -> models.QuerySet[Any]:
        # The base manager: every row, whatever a default manager filters or forbids.
        return self.model._base_manager.filter(**{self.owner_field: patient_id})


def encrypted_models() -> list[EncryptedModel]:
    """Every installed, concrete model with encrypted fields, grouped by owner field."""
    found: list[EncryptedModel] = []
    for model in apps.get_models():
        if model._meta.abstract or model._meta.proxy:
            continue
        groups: dict[str, list[EncryptedFieldMixin]] = {}
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, EncryptedFieldMixin):
                groups.setdefault(model_field.owner_field, []).append(model_field)
        for owner_field, fields in groups.items():
            model._meta.get_field(owner_field)  # a typo in owner_field fails loudly here
            found.append(EncryptedModel(model, owner_field, tuple(fields)))
    return sorted(found, key=lambda item: (item.label, item.owner_field))


def _batched(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- KEK rotation --------------------------------------------------------------------------------
@dataclass
class KekRotationReport:
    target: str
    dry_run: bool = False
    rewrapped: int = 0  # (dry run: would be re-wrapped)
    batches: int = 0
    changed_meanwhile: int = 0  # destroyed or re-wrapped by someone else during the run
    failed: dict[uuid.UUID, str] = field(default_factory=dict)  # data key id -> reason
    #: After the run: KEK id -> number of live (not destroyed) data keys wrapped under it.
    usage: dict[str, int] = field(default_factory=dict)
    loaded: tuple[str, ...] = ()
    active: str = ""
    # Staff TOTP secrets (sealed directly under a KEK).
    totp_resealed: int = 0  # (dry run: would be re-sealed)
    totp_batches: int = 0
    totp_changed_meanwhile: int = 0
    totp_failed: dict[int, str] = field(default_factory=dict)  # user id -> reason
    #: After the run: KEK id -> number of staff TOTP secrets sealed under it.
    totp_usage: dict[str, int] = field(default_factory=dict)

    @property
    def remaining(self) -> int:
        """Live data keys still wrapped under another KEK than the target."""
        return sum(n for kid, n in self.usage.items() if kid != self.target)

    @property
    def totp_remaining(self) -> int:
        """Staff TOTP secrets still sealed under another KEK than the target."""
        return sum(n for kid, n in self.totp_usage.items() if kid != self.target)

    @property
    def retirable(self) -> list[str]:
        """Loaded KEKs other than the target that no live data key or TOTP secret uses any more."""
        return [
            kid
            for kid in self.loaded
            if kid != self.target and not self.usage.get(kid) and not self.totp_usage.get(kid)
        ]


def kek_usage() -> dict[str, int]:
    """KEK id -> number of live data keys (not destroyed) wrapped under it."""
    rows = (
        PatientKey.objects.filter(destroyed_at__isnull=True, wrapped_key__isnull=False)
        .values("kek_id")
        .annotate(n=models.Count("id"))
        .order_by("kek_id")
    )
    return {row["kek_id"]: row["n"] for row in rows}


def _rewrap_candidates(target: str) -> models.QuerySet[PatientKey]:
    return PatientKey.objects.filter(destroyed_at__isnull=True, wrapped_key__isnull=False).exclude(
        kek_id=target
    )


def kek_rotation_pending(*, to: str) -> int:
    return _rewrap_candidates(to).count()


def _rewrap_batch(
    *, to: str, batch_size: int, exclude: set[uuid.UUID], actor: Actor, report: KekRotationReport
) -> int:
    """Re-wrap one batch in its own transaction. Returns how many rows it looked at (0: done)."""
    with transaction.atomic():
        rows = list(
            _rewrap_candidates(to)
            .exclude(pk__in=exclude)
            .select_for_update(skip_locked=True)
            .order_by("pk")[:batch_size]
        )
        if not rows:
            return 0
        done = failed = 0
        for row in rows:
            try:
                wrapped = datakeys.data_key_rewrap(row, kek_id=to)
            except _UNREADABLE as exc:
                exclude.add(row.id)
                report.failed[row.id] = f"{row.kek_id}: {exc.message}"
                failed += 1
                continue
            # Compare-and-swap: only if nobody destroyed or re-wrapped it since it was read.
            updated = PatientKey.objects.filter(
                pk=row.pk, kek_id=row.kek_id, destroyed_at__isnull=True
            ).update(kek_id=to, wrapped_key=wrapped)
            if updated:
                done += 1
            else:
                exclude.add(row.id)
                report.changed_meanwhile += 1
        report.rewrapped += done
        report.batches += 1
        access_record(
            actor=actor,
            action="key.rewrap",
            resource_type="PatientKey",
            purpose=(
                f"KEK rotation to {to}: batch {report.batches}: {done} data keys re-wrapped, "
                f"{failed} failed to unwrap"
            ),
        )
    return len(rows)


def _dry_run(*, to: str, batch_size: int, report: KekRotationReport, progress: Any) -> None:
    last: uuid.UUID | None = None
    while True:
        page = _rewrap_candidates(to).order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        rows = list(page[:batch_size])
        if not rows:
            return
        for row in rows:
            try:
                datakeys.data_key_rewrap(row, kek_id=to)
            except _UNREADABLE as exc:
                report.failed[row.id] = f"{row.kek_id}: {exc.message}"
            else:
                report.rewrapped += 1
        report.batches += 1
        last = rows[-1].pk
        if progress is not None:
            progress(len(rows))


def totp_kek_usage() -> dict[str, int]:
    """KEK id -> number of staff TOTP secrets sealed under it."""
    from clinician_portal.services import totp_kek_usage as usage

    return usage()


def totp_reseal_pending(*, to: str) -> int:
    from clinician_portal.services import totp_reseal_pending as pending

    return pending(to=to)


def _totp_rotate(
    *, to: str, batch_size: int, actor: Actor, report: KekRotationReport, progress: Any
) -> None:
    from clinician_portal import services as portal

    if report.dry_run:
        report.totp_resealed, report.totp_failed = portal.totp_reseal_check(to=to)
        return
    exclude: set[int] = set()
    while True:
        batch = portal.totp_reseal_batch(to=to, batch_size=batch_size, exclude=exclude)
        if not batch.seen:
            return
        report.totp_resealed += batch.resealed
        report.totp_changed_meanwhile += batch.changed_meanwhile
        report.totp_failed.update(batch.failed)
        report.totp_batches += 1
        access_record(
            actor=actor,
            action="key.totp_reseal",
            resource_type="StaffTotp",
            purpose=(
                f"KEK rotation to {to}: batch {report.totp_batches}: {batch.resealed} staff TOTP "
                f"secrets re-sealed, {len(batch.failed)} failed to open"
            ),
        )
        if progress is not None:
            progress(batch.seen)


def kek_rotate(
    *,
    to: str,
    batch_size: int = 500,
    dry_run: bool = False,
    actor: Actor | None = None,
    progress: Callable[[int], object] | None = None,
) -> KekRotationReport:
    """Re-wrap every live data key, and re-seal every staff TOTP secret, not yet under the
    key-encryption key ``to``.

    ``to`` must be loaded in the keyring (:class:`KeyNotFound` otherwise). ``progress`` is called
    with the number of keys each batch handled. A dry run unwraps (to find keys that would fail)
    but writes nothing. Records and files are never touched.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    ring = keyring()
    ring.get(to)  # KeyNotFound with a clear message when it is not loaded
    actor = actor or Actor.system()
    report = KekRotationReport(
        target=to, dry_run=dry_run, loaded=tuple(sorted(ring.keys)), active=ring.active_id
    )
    if dry_run:
        _dry_run(to=to, batch_size=batch_size, report=report, progress=progress)
    else:
        exclude: set[uuid.UUID] = set()
        while True:
            seen = _rewrap_batch(
                to=to, batch_size=batch_size, exclude=exclude, actor=actor, report=report
            )
            if not seen:
                break
            if progress is not None:
                progress(seen)
    _totp_rotate(to=to, batch_size=batch_size, actor=actor, report=report, progress=progress)
    report.usage = kek_usage()
    report.totp_usage = totp_kek_usage()
    return report


# --- one patient's data key ----------------------------------------------------------------------
@dataclass
class PatientKeyRotationReport:
    patient_id: uuid.UUID
    new_key_id: uuid.UUID
    resumed: bool = False
    records_reencrypted: int = 0
    records_skipped: int = 0  # already under the new key (or empty)
    values_reencrypted: int = 0
    files_reencrypted: int = 0
    files_skipped: int = 0
    failures: list[str] = field(default_factory=list)  # "label id: reason", never content
    destroyed_key_ids: list[uuid.UUID] = field(default_factory=list)
    #: Retired keys left in place because something still uses them (see ``references``).
    retired_key_ids: list[uuid.UUID] = field(default_factory=list)
    references: int = 0  # stored values and files still under a retired key

    @property
    def complete(self) -> bool:
        return not self.failures and not self.retired_key_ids


def _reencrypt_rows(
    item: EncryptedModel,
    *,
    patient_id: uuid.UUID,
    target: uuid.UUID,
    report: PatientKeyRotationReport,
    batch_size: int,
) -> None:
    pks = list(item.rows_of(patient_id).order_by("pk").values_list("pk", flat=True))
    manager = item.model._base_manager
    for chunk in _batched(pks, batch_size):
        with transaction.atomic():
            for row in manager.select_for_update().filter(pk__in=chunk).order_by("pk"):
                _reencrypt_row(item, row, target=target, report=report)


def _reencrypt_row(
    item: EncryptedModel,
    row: models.Model,
    *,
    target: uuid.UUID,
    report: PatientKeyRotationReport,
) -> None:
    updates: dict[str, bytes] = {}
    try:
        for model_field in item.fields:
            sealed = row.__dict__.get(model_field.attname)
            if sealed is None:
                continue
            if not isinstance(sealed, Sealed):  # loaded rows always hold ciphertext
                raise DecryptionFailed("Stored value is not ciphertext.")
            if crypto.field_dek_id(sealed.blob) == target:
                continue
            value = model_field.decrypt_for(row, sealed)
            blob = model_field.encrypt_for(row, value)
            if crypto.field_dek_id(blob) != target:
                raise KeyNotFound("The patient's current data key changed during the rotation.")
            updates[model_field.name] = blob
    except _UNREADABLE as exc:
        report.failures.append(f"{item.label} {row.pk}: {exc.message}")
        return
    if not updates:
        report.records_skipped += 1
        return
    item.model._base_manager.filter(pk=row.pk).update(**updates)
    report.records_reencrypted += 1
    report.values_reencrypted += len(updates)


def _reencrypt_files(
    *, patient_id: uuid.UUID, target: uuid.UUID, report: PatientKeyRotationReport
) -> None:
    for name, object_id in storage.patient_stored_objects(patient_id=patient_id):
        try:
            if storage.stored_file_dek_id(name=name) == target:
                report.files_skipped += 1
                continue
            storage.encrypted_file_reencrypt(name=name, patient_id=patient_id, object_id=object_id)
        except _UNREADABLE as exc:
            report.failures.append(f"stored file {object_id}: {exc.message}")
            continue
        report.files_reencrypted += 1


def patient_key_references(*, patient_id: uuid.UUID) -> tuple[Counter[uuid.UUID], int]:
    """How many stored values and files use each data key id; and how many could not be read.

    Scans every encrypted column of every row the patient owns (ciphertext headers only, nothing
    is decrypted) and the headers of their stored files.
    """
    counts: Counter[uuid.UUID] = Counter()
    unreadable = 0
    for item in encrypted_models():
        names = [f.name for f in item.fields]
        for values in item.rows_of(patient_id).values_list(*names):
            for value in values:
                if value is None:
                    continue
                try:
                    blob = value.blob if isinstance(value, Sealed) else bytes(value)
                    counts[crypto.field_dek_id(blob)] += 1
                except (DecryptionFailed, TypeError):
                    unreadable += 1
    file_ids, unchecked = storage.patient_files_dek_ids(patient_id=patient_id)
    for dek_id in file_ids:
        counts[dek_id] += 1
    return counts, unreadable + unchecked


def patient_data_key_rotate(
    *, actor: Actor, patient: Any, batch_size: int = 200
) -> PatientKeyRotationReport:
    """Give ``patient`` a new data key, re-encrypt everything of theirs under it, destroy the old.

    See the module docstring. Raises :class:`KeyNotFound` for an erased patient.
    """
    patient_id: uuid.UUID = patient.pk
    if getattr(patient, "erased_at", None) is not None:
        raise KeyNotFound("This patient was erased: they have no data key to rotate.")
    pending_retired = PatientKey.objects.filter(
        patient_id=patient_id, retired_at__isnull=False, destroyed_at__isnull=True
    ).exists()
    current = (
        PatientKey.objects.filter(
            patient_id=patient_id, retired_at__isnull=True, destroyed_at__isnull=True
        )
        .order_by("-created_at")
        .first()
    )
    resumed = pending_retired and current is not None
    if resumed:
        assert current is not None
        target = current
    else:
        target = datakeys.patient_key_replace(patient_id=patient_id)
    report = PatientKeyRotationReport(patient_id=patient_id, new_key_id=target.id, resumed=resumed)

    for item in encrypted_models():
        _reencrypt_rows(
            item, patient_id=patient_id, target=target.id, report=report, batch_size=batch_size
        )
    _reencrypt_files(patient_id=patient_id, target=target.id, report=report)

    # Destroy each retired key that nothing references any more.
    with transaction.atomic():
        retired = list(
            PatientKey.objects.select_for_update()
            .filter(patient_id=patient_id, retired_at__isnull=False, destroyed_at__isnull=True)
            .values_list("id", flat=True)
        )
        counts, unreadable = patient_key_references(patient_id=patient_id)
        if unreadable:
            # A value or file whose key id cannot be read might be under any key: keep them all.
            report.retired_key_ids = retired
            report.references = unreadable
        else:
            unused = [dek_id for dek_id in retired if not counts.get(dek_id)]
            report.retired_key_ids = [dek_id for dek_id in retired if counts.get(dek_id)]
            report.references = sum(counts.get(dek_id, 0) for dek_id in retired)
            report.destroyed_key_ids = datakeys.patient_keys_destroy(
                patient_id=patient_id, key_ids=unused
            )
        access_record(
            actor=actor,
            action="key.patient_rotate",
            patient_id=patient_id,
            resource_type="PatientKey",
            resource_id=target.id,
            purpose=(
                f"data key rotation{' (resumed)' if resumed else ''}: "
                f"{report.records_reencrypted} records and {report.files_reencrypted} files "
                f"re-encrypted, {report.records_skipped + report.files_skipped} already current, "
                f"{len(report.failures)} failed; {len(report.destroyed_key_ids)} old keys "
                f"destroyed, {len(report.retired_key_ids)} still in use"
            ),
        )
    return report
