"""FHIR writes: integration clients, token scopes, the client-credentials exchange, and
bulk export jobs (kick-off and the work itself).

Bulk export files are encrypted at rest. Each job gets a fresh 256-bit data key, stored on the job
row wrapped by the keyring's active key-encryption key (``vigil:fhir-export-key:v1|<job>|<kek>``
as associated data). Each NDJSON file is written as::

    header: b"VGLFHX1\n" | chunk_size (4, big-endian)
    chunk*: length (4, big-endian) | nonce (12) | ciphertext || tag

with AES-256-GCM per chunk; a chunk's associated data binds the job id, the resource type, the
header, the chunk index and whether it is the last chunk, so chunks cannot be reordered, moved to
another file or job, dropped or truncated without detection. Downloads are checked end to end
first and then decrypted as a stream (:func:`export_file_stream`). Deleting a job (or its expiry,
:func:`export_expire`) destroys the wrapped key before the files and the row (crypto-shredding).

A finished job is served only while its requester may still see every patient in it
(:func:`export_access_check`; :func:`export_access_sweep` hourly): a break-glass that ends, a
care team left or a client revoked shreds the job (:func:`export_revoke`). Exports and downloads
of patients seen through break-glass are flagged like reads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import struct
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from clinician_portal.fhir.access import (
    Principal,
    break_glass_patients,
    patients_visible,
    principal_for_token,
)
from clinician_portal.fhir.errors import FhirError
from clinician_portal.fhir.models import (
    ExportStatus,
    FhirClient,
    FhirExportJob,
    FhirExportPatient,
    FhirTokenGrant,
)
from clinician_portal.fhir.scopes import scopes_narrow, scopes_parse
from clinician_portal.fhir.search import Query
from clinician_portal.fhir.sources import registry
from config.errors import DecryptionFailed, KeyNotFound
from privacy import crypto
from privacy.audit import Actor, access_record
from privacy.auth import token_issue
from privacy.choices import AccessOutcome, Role
from privacy.erasure import erasure_hook_register
from privacy.keys import keyring
from privacy.models import ApiToken
from screening.models import CareTeam, Organisation, Patient, User

logger = logging.getLogger("vigil.fhir")

CLIENT_ID_PREFIX = "vfc_"
SECRET_PREFIX = "vfs_"  # noqa: S105 - a public prefix, not a secret


def export_dir() -> Path:
    default = Path(settings.VAR_DIR) / "fhir-export" if hasattr(settings, "VAR_DIR") else None
    return Path(getattr(settings, "VIGIL_FHIR_EXPORT_DIR", None) or default or "var/fhir-export")


def secret_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def fhir_client_create(
    *, organisation: Organisation, name: str, scopes: str = "system/*.rs"
) -> tuple[FhirClient, str]:
    """A clinic's integration client; the raw secret is returned once and never stored."""
    if not scopes_parse(scopes):
        raise FhirError(400, "invalid", "No valid SMART scope given.")
    raw_secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        user = User.objects.create(
            username=f"fhir-client-{uuid.uuid4().hex[:12]}", role=Role.SYSTEM, is_active=True
        )
        user.set_unusable_password()
        user.save(update_fields=["password"])
        client = FhirClient.objects.create(
            organisation=organisation,
            user=user,
            name=name[:80],
            client_id=CLIENT_ID_PREFIX + secrets.token_hex(12),
            secret_hash=secret_hash(raw_secret),
            scopes=" ".join(scopes.split()),
        )
    return client, raw_secret


def token_scopes_set(*, token: ApiToken, scopes: str) -> FhirTokenGrant:
    """Narrow a clinician's or auditor's token to these SMART scopes (the role still caps)."""
    grant, _ = FhirTokenGrant.objects.update_or_create(
        token=token, defaults={"scopes": " ".join(scopes.split()), "client": None}
    )
    return grant


def client_credentials_exchange(
    *, client_id: str, client_secret: str, scope: str, ip: str | None
) -> tuple[str, ApiToken, str]:
    """Exchange a client's credentials for a bearer token limited to the requested scopes."""
    client = FhirClient.objects.select_related("user").filter(client_id=client_id).first()
    valid = client is not None and hmac.compare_digest(
        client.secret_hash, secret_hash(client_secret or "")
    )
    if client is None or not valid or client.revoked_at is not None:
        access_record(
            actor=Actor(
                user_id=client.user_id if client else None, role="fhir_client", ip_address=ip
            ),
            action="fhir.token",
            outcome=AccessOutcome.DENIED,
            resource_type="FhirClient",
            status_code=401,
            reason="invalid_client",
        )
        raise FhirError(401, "login", "invalid_client")
    granted = scopes_narrow(scope, client.scopes)
    if not scopes_parse(granted):
        raise FhirError(400, "invalid", "invalid_scope")
    with transaction.atomic():
        token, raw = token_issue(user=client.user, name=f"fhir:{client.client_id}"[:80])
        FhirTokenGrant.objects.create(token=token, client=client, scopes=granted)
        access_record(
            actor=Actor(user_id=client.user_id, role="fhir_client", ip_address=ip),
            action="fhir.token",
            resource_type="FhirClient",
            resource_id=client.pk,
        )
    return raw, token, granted


# --- bulk export ---------------------------------------------------------------------------------
def export_kickoff(
    *,
    principal: Principal,
    level: str,
    group_id: str = "",
    types: list[str],
    since: Any = None,
    request_url: str,
) -> FhirExportJob:
    specs = registry()
    unknown = [t for t in types if t not in specs]
    if unknown:
        raise FhirError(400, "not-supported", f"Unsupported _type: {', '.join(unknown)}.")
    wanted = types or [t for t in specs if level == "system" or specs[t].patient_bound]
    if level != "system":
        wanted = [t for t in wanted if specs[t].patient_bound]
    allowed = [t for t in wanted if principal.may(t, "search")]
    if types and len(allowed) != len(wanted):
        raise FhirError(403, "forbidden", "The token's scopes do not cover every requested _type.")
    if not allowed:
        raise FhirError(403, "forbidden", "The token's scopes cover no exportable resource type.")
    if (
        level == "group"
        and not CareTeam.objects.filter(
            pk=int(group_id) if group_id.isdigit() else -1,
            organisation_id=principal.organisation_id,
        ).exists()
    ):
        raise FhirError(404, "not-found", "No such Group.")
    job = FhirExportJob.objects.create(
        requester=principal.user,
        token=principal.token,
        level=level,
        group_id=group_id,
        types=",".join(allowed),
        since=since,
        request_url=request_url[:500],
    )
    access_record(
        actor=principal.actor,
        action="fhir.export.kickoff",
        resource_type="FhirExportJob",
        resource_id=job.pk,
    )
    return job


def export_enqueue(*, job: FhirExportJob) -> None:
    """Run the export on the default queue, or in-process when configured eager (tests, demo)."""
    from clinician_portal.fhir.tasks import fhir_export_run

    if getattr(settings, "VIGIL_FHIR_EXPORT_EAGER", False):
        export_run(job_id=job.pk)
        return
    job_id = str(job.pk)
    transaction.on_commit(lambda: fhir_export_run.delay(job_id))


def export_run(*, job_id: uuid.UUID) -> FhirExportJob:
    """Write one NDJSON file per resource type (mode 0600, de-identified, encrypted under the
    job's data key), then the manifest.

    Every exported patient is written to the access log once per job."""
    job = FhirExportJob.objects.select_related("token", "requester").get(pk=job_id)
    if job.status == ExportStatus.COMPLETE:
        return job
    FhirExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.RUNNING)
    try:
        if job.token is None:
            raise FhirError(401, "login", "token revoked")
        principal = principal_for_token(user=job.requester, token=job.token)
        output, patient_ids = _export_write(job=job, principal=principal)
    except Exception as exc:
        logger.warning("fhir export %s failed: %s", job.pk, exc.__class__.__name__)
        FhirExportJob.objects.filter(pk=job.pk).update(
            status=ExportStatus.FAILED,
            error=exc.__class__.__name__,
            finished_at=timezone.now(),
            wrapped_key=None,  # partial files are never served: shred them
        )
        _export_files_remove(job.pk)
        job.refresh_from_db()
        return job
    with transaction.atomic():
        # Lock the exported patients' rows: an erasure under way (it holds its patient's row)
        # finishes first and is seen here; one that starts later finds this job through the
        # FhirExportPatient rows committed with its completion (export_jobs_erase).
        erased = (
            Patient.objects.select_for_update()
            .filter(pk__in=sorted(patient_ids), erased_at__isnull=False)
            .exists()
        )
        if erased:
            FhirExportJob.objects.filter(pk=job.pk).update(
                status=ExportStatus.FAILED,
                error="PatientErased",
                finished_at=timezone.now(),
                wrapped_key=None,
            )
        else:
            FhirExportPatient.objects.bulk_create(
                [FhirExportPatient(job_id=job.pk, patient_id=pk) for pk in sorted(patient_ids)]
            )
            FhirExportJob.objects.filter(pk=job.pk).update(
                status=ExportStatus.COMPLETE, output=output, finished_at=timezone.now()
            )
    if erased:
        _export_files_remove(job.pk)
    job.refresh_from_db()
    return job


# --- export files encrypted at rest --------------------------------------------------------------
EXPORT_MAGIC = b"VGLFHX1\n"
_EXPORT_HEADER = struct.Struct(">I")
_CHUNK_LEN = struct.Struct(">I")
_MAX_EXPORT_CHUNK = 16 * 1024 * 1024


def export_chunk_bytes() -> int:
    return max(1024, int(getattr(settings, "VIGIL_FHIR_EXPORT_CHUNK_BYTES", 64 * 1024)))


def export_ttl() -> timedelta:
    """How long a finished export's files are kept (``VIGIL_FHIR_EXPORT_TTL_HOURS``)."""
    return timedelta(hours=float(getattr(settings, "VIGIL_FHIR_EXPORT_TTL_HOURS", 24)))


def _key_aad(job_id: uuid.UUID, kek_id: str) -> bytes:
    return f"vigil:fhir-export-key:v1|{job_id}|{kek_id}".encode()


def _chunk_aad(
    *, job_id: uuid.UUID, type_name: str, header: bytes, index: int, final: bool
) -> bytes:
    prefix = f"vigil:fhir-export:v1|{job_id}|{type_name}|".encode()
    return prefix + header + struct.pack(">Q?", index, final)


def export_key_create(*, job: FhirExportJob) -> bytes:
    """A fresh data key for the job's files; stored on the row wrapped by the active KEK."""
    ring = keyring()
    kek_id = ring.active_id
    dek = crypto.new_key()
    wrapped = crypto.seal(ring.get(kek_id), dek, _key_aad(job.pk, kek_id))
    FhirExportJob.objects.filter(pk=job.pk).update(kek_id=kek_id, wrapped_key=wrapped)
    job.kek_id, job.wrapped_key = kek_id, wrapped
    return dek


def _export_key(job: FhirExportJob) -> bytes:
    """The job's data key (``DecryptionFailed``/``KeyNotFound`` when destroyed or tampered)."""
    if not job.wrapped_key or not job.kek_id:
        raise DecryptionFailed("The export's key was destroyed.")
    return crypto.unseal(
        keyring().get(job.kek_id), bytes(job.wrapped_key), _key_aad(job.pk, job.kek_id)
    )


def export_kek_usage() -> dict[str, int]:
    """Live export jobs (a key not yet shredded) by the KEK that wraps their key."""
    rows = (
        FhirExportJob.objects.filter(wrapped_key__isnull=False)
        .exclude(kek_id="")
        .values("kek_id")
        .annotate(n=Count("pk"))
    )
    return {row["kek_id"]: row["n"] for row in rows}


def export_keys_rewrap(
    *, to: str, dry_run: bool = False, actor: Actor | None = None
) -> tuple[int, list[uuid.UUID]]:
    """KEK rotation for bulk exports: re-wrap every live job's data key under ``to`` (its files
    are untouched), one job at a time under its row lock, so that the old KEK can be retired
    without making recent exports unreadable. Idempotent and resumable; a job shredded meanwhile
    is skipped. Returns how many were (or, with ``dry_run``, would be) re-wrapped and the ids of
    jobs whose key could not be unwrapped (left as they are)."""
    ring = keyring()
    target = ring.get(to)
    rewrapped, failed = 0, []
    pending = (
        FhirExportJob.objects.filter(wrapped_key__isnull=False)
        .exclude(kek_id=to)
        .values_list("pk", flat=True)
    )
    for job_id in list(pending):
        with transaction.atomic():
            job = (
                FhirExportJob.objects.select_for_update()
                .filter(pk=job_id, wrapped_key__isnull=False)
                .exclude(kek_id=to)
                .first()
            )
            if job is None:
                continue
            try:
                dek = _export_key(job)
            except (DecryptionFailed, KeyNotFound):
                failed.append(job.pk)
                continue
            if not dry_run:
                wrapped = crypto.seal(target, dek, _key_aad(job.pk, to))
                FhirExportJob.objects.filter(pk=job.pk).update(kek_id=to, wrapped_key=wrapped)
            rewrapped += 1
    if rewrapped and not dry_run:  # like key.rewrap / key.totp_reseal (no patient, counts only)
        access_record(
            actor=actor or Actor.system(),
            action="key.export_rewrap",
            resource_type="FhirExportJob",
            purpose=f"{rewrapped} export job keys re-wrapped under KEK {to}",
        )
    return rewrapped, failed


class _ChunkWriter:
    """Buffers plaintext and writes full chunks; the last chunk (maybe empty) on :meth:`close`."""

    def __init__(
        self, handle: BinaryIO, *, dek: bytes, job_id: uuid.UUID, type_name: str, chunk: int
    ) -> None:
        self.handle, self.dek, self.job_id, self.type_name = handle, dek, job_id, type_name
        self.chunk = chunk
        self.header = EXPORT_MAGIC + _EXPORT_HEADER.pack(chunk)
        self.buffer = bytearray()
        self.index = 0
        handle.write(self.header)

    def _emit(self, plaintext: bytes, *, final: bool) -> None:
        aad = _chunk_aad(
            job_id=self.job_id,
            type_name=self.type_name,
            header=self.header,
            index=self.index,
            final=final,
        )
        sealed = crypto.seal(self.dek, plaintext, aad)
        self.handle.write(_CHUNK_LEN.pack(len(sealed)) + sealed)
        self.index += 1

    def write(self, data: bytes) -> None:
        self.buffer += data
        # Keep at least one byte back: the final chunk is only known when the data ends.
        while len(self.buffer) > self.chunk:
            self._emit(bytes(self.buffer[: self.chunk]), final=False)
            del self.buffer[: self.chunk]

    def close(self) -> None:
        self._emit(bytes(self.buffer), final=True)
        self.buffer.clear()


def _read_exact(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise DecryptionFailed("Export file is truncated.")
    return bytes(data)


def _iter_export_chunks(
    path: Path, *, dek: bytes, job_id: uuid.UUID, type_name: str
) -> Iterator[bytes]:
    """Authenticated plaintext chunks of one export file (``DecryptionFailed`` on any damage)."""
    if not path.is_file():
        raise DecryptionFailed("Export file is missing.")
    with path.open("rb") as handle:
        if handle.read(len(EXPORT_MAGIC)) != EXPORT_MAGIC:
            raise DecryptionFailed("Not a Vigil export file.")
        raw = _read_exact(handle, _EXPORT_HEADER.size)
        (chunk,) = _EXPORT_HEADER.unpack(raw)
        if not 0 < chunk <= _MAX_EXPORT_CHUNK:
            raise DecryptionFailed("Export file header is invalid.")
        header = EXPORT_MAGIC + raw
        max_sealed = chunk + crypto.NONCE_BYTES + crypto.TAG_BYTES
        index = 0
        while True:
            size_raw = handle.read(_CHUNK_LEN.size)
            if not size_raw:
                raise DecryptionFailed("Export file ends without its final chunk.")
            if len(size_raw) != _CHUNK_LEN.size:
                raise DecryptionFailed("Export file is truncated.")
            (size,) = _CHUNK_LEN.unpack(size_raw)
            if size > max_sealed:
                raise DecryptionFailed("Export chunk is larger than the file's chunk size.")
            sealed = _read_exact(handle, size)
            at_end = handle.read(1) == b""
            if not at_end:
                handle.seek(-1, os.SEEK_CUR)
            aad = _chunk_aad(
                job_id=job_id, type_name=type_name, header=header, index=index, final=at_end
            )
            yield crypto.unseal(dek, sealed, aad)
            index += 1
            if at_end:
                return


def _export_item(job: FhirExportJob, name: str) -> dict[str, Any]:
    for item in job.output:
        if item.get("name") == name:
            return dict(item)
    raise FhirError(404, "not-found", "No such export file.")


def export_file_stream(*, job: FhirExportJob, name: str) -> Iterator[bytes]:
    """The decrypted NDJSON of one finished export file, as a stream of chunks.

    The whole file is authenticated first (every chunk, and that the final chunk is there), so
    damage is answered as a clean error before any byte is sent; the stream then decrypts again
    chunk by chunk (a file changed in between stops the stream rather than send unchecked bytes).
    Raises :class:`FhirError` 404 for an unknown name and 500 ``exception`` for a damaged file or
    a destroyed key; logs the job id and the error class only.
    """
    item = _export_item(job, name)
    path = export_dir() / str(job.pk) / item["name"]
    type_name = str(item["type"])
    try:
        dek = _export_key(job)
        digest = hashlib.sha256()
        for block in _iter_export_chunks(path, dek=dek, job_id=job.pk, type_name=type_name):
            digest.update(block)
        if item.get("sha256") and digest.hexdigest() != item["sha256"]:
            raise DecryptionFailed("Export file does not match its manifest.")
    except (DecryptionFailed, KeyNotFound) as exc:
        logger.warning("fhir export %s file check failed: %s", job.pk, exc.__class__.__name__)
        raise FhirError(500, "exception", "The export file failed its integrity check.") from None

    def stream() -> Iterator[bytes]:
        try:
            yield from _iter_export_chunks(path, dek=dek, job_id=job.pk, type_name=type_name)
        except DecryptionFailed as exc:
            logger.warning("fhir export %s stream stopped: %s", job.pk, exc.__class__.__name__)
            raise

    return stream()


def _export_write(
    *, job: FhirExportJob, principal: Principal
) -> tuple[list[dict[str, Any]], set[str]]:
    """The job's files; returns their manifest items and the ids of the patients they contain."""
    specs = registry()
    folder = export_dir() / str(job.pk)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    dek = export_key_create(job=job)
    chunk = export_chunk_bytes()
    base = Query()
    if job.level == "group":
        members = patients_visible(principal).filter(care_team_id=int(job.group_id))
        base.patients = [str(pk) for pk in members.values_list("pk", flat=True)]
        if not base.patients:
            base.patients = ["00000000-0000-0000-0000-000000000000"]
    if job.since is not None:
        from clinician_portal.fhir.search import DateBound

        base.last_updated = [DateBound("ge", job.since)]
    page_size = int(getattr(settings, "VIGIL_FHIR_EXPORT_PAGE_SIZE", 1000))
    output: list[dict[str, Any]] = []
    patients_seen: set[str] = set()
    for type_name in [t for t in job.types.split(",") if t]:
        spec = specs[type_name]
        path = folder / f"{type_name}.ndjson"
        digest = hashlib.sha256()
        count = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            writer = _ChunkWriter(handle, dek=dek, job_id=job.pk, type_name=type_name, chunk=chunk)
            after = None
            while True:
                items, more = spec.search(
                    principal=principal, query=base, after=after, count=page_size
                )
                for key, resource, patient_id in items:
                    line = json.dumps(resource, separators=(",", ":"), ensure_ascii=False) + "\n"
                    data = line.encode("utf-8")
                    writer.write(data)
                    digest.update(data)
                    count += 1
                    if patient_id:
                        patients_seen.add(patient_id)
                    after = key
                if not more:
                    break
            writer.close()
        output.append(
            {"type": type_name, "name": path.name, "count": count, "sha256": digest.hexdigest()}
        )
    glass = break_glass_patients(principal=principal, patient_ids=patients_seen)
    for patient_id in sorted(patients_seen):
        # Like a read: a patient seen only through break-glass is flagged, with the stated reason.
        access = glass.get(patient_id)
        access_record(
            actor=principal.actor,
            action="fhir.export",
            patient_id=patient_id,
            resource_type="FhirExportJob",
            resource_id=job.pk,
            purpose=access.reason if access else "",
            break_glass=access is not None,
        )
    return output, patients_seen


def export_manifest(*, job: FhirExportJob, base_url: str) -> dict[str, Any]:
    return {
        "transactionTime": job.created_at.isoformat().replace("+00:00", "Z"),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [
            {
                "type": item["type"],
                "url": f"{base_url}$export-file/{job.pk}/{item['name']}",
                "count": item["count"],
                "extension": {"sha256": item["sha256"]},
            }
            for item in job.output
        ],
        "error": [],
    }


def _export_files_remove(job_id: uuid.UUID) -> None:
    folder = export_dir() / str(job_id)
    if folder.is_dir():
        for child in folder.iterdir():
            child.unlink(missing_ok=True)
        folder.rmdir()


def export_delete(*, job: FhirExportJob) -> None:
    """Crypto-shred the job: its wrapped key is destroyed first (committed), then its files and
    the row, so an interruption anywhere leaves nothing readable."""
    FhirExportJob.objects.filter(pk=job.pk).update(wrapped_key=None)
    job.wrapped_key = None
    _export_files_remove(job.pk)
    job.delete()


@erasure_hook_register("fhir exports")
def export_jobs_erase(*, patient: Any) -> int:
    """Erasure hook: delete every export job whose files contain the erased patient.

    Runs inside the erasure transaction (the patient row locked). The jobs' wrapped keys go with
    their rows, so the files can never be decrypted once the erasure commits; the files themselves
    are removed after the commit (a rolled-back erasure removes nothing). Returns how many jobs.
    """
    jobs = sorted(
        set(
            FhirExportPatient.objects.filter(patient_id=patient.pk).values_list("job_id", flat=True)
        )
    )
    if not jobs:
        return 0
    FhirExportJob.objects.filter(pk__in=jobs).update(wrapped_key=None)
    FhirExportJob.objects.filter(pk__in=jobs).delete()
    for job_id in jobs:
        access_record(
            actor=Actor.system(),
            action="fhir.export.erase",
            patient_id=patient.pk,
            resource_type="FhirExportJob",
            resource_id=job_id,
        )

    def remove_files() -> None:
        for job_id in jobs:
            _export_files_remove(job_id)

    transaction.on_commit(remove_files)
    return len(jobs)


def export_expires_at(*, job: FhirExportJob, principal: Principal | None = None) -> datetime:
    """When the job's files go: :func:`export_ttl` after it finished (after it was created while
    it has not), or earlier, when the requester's access to one of its patients rests on a
    break-glass access that ends first (the files are refused and shredded then)."""
    expires = (job.finished_at or job.created_at) + export_ttl()
    if principal is not None:
        patient_ids = FhirExportPatient.objects.filter(job=job).values_list("patient_id", flat=True)
        glass = break_glass_patients(principal=principal, patient_ids=patient_ids)
        expires = min([expires, *(access.expires_at for access in glass.values())])
    return expires


def export_patients_lapsed(*, job: FhirExportJob, principal: Principal) -> list[str]:
    """The job's patients the principal may no longer see (the same rule as reads: care team or
    an unexpired break-glass for clinicians, the clinic otherwise; erased patients never)."""
    visible = patients_visible(principal).values("pk")
    lapsed = (
        FhirExportPatient.objects.filter(job=job)
        .exclude(patient_id__in=visible)
        .order_by("patient_id")
        .values_list("patient_id", flat=True)
    )
    return [str(pk) for pk in lapsed]


def export_revoke(*, job: FhirExportJob, actor: Actor, patient_ids: list[str], reason: str) -> None:
    """Crypto-shred a job whose requester lost access to its patients, and log it (one
    ``fhir.export.revoke`` per patient whose access lapsed, or one for the job)."""
    job_id = job.pk
    export_delete(job=job)
    targets: list[str | None] = [*patient_ids] or [None]
    for patient_id in targets:
        access_record(
            actor=actor,
            action="fhir.export.revoke",
            outcome=AccessOutcome.DENIED,
            patient_id=patient_id,
            resource_type="FhirExportJob",
            resource_id=job_id,
            status_code=404,
            reason=reason,
        )
    logger.info("fhir export %s revoked: %s", job_id, reason)


def export_access_check(*, job: FhirExportJob, principal: Principal) -> None:
    """Before a finished job's manifest or files are served: every patient in its files must
    still be visible to the caller. Otherwise the job is shredded (:func:`export_revoke`) and the
    answer is 404, as a read of those patients would be."""
    lapsed = export_patients_lapsed(job=job, principal=principal)
    if lapsed:
        export_revoke(job=job, actor=principal.actor, patient_ids=lapsed, reason="access_lapsed")
        raise FhirError(404, "not-found", "No such export job.")


def export_download_record(*, job: FhirExportJob, principal: Principal, name: str) -> None:
    """Log a file download: one event for the job, and one per patient of the job that the
    requester sees only through break-glass (flagged, with the reason) for the auditors' review."""
    access_record(
        actor=principal.actor,
        action="fhir.export.download",
        resource_type="FhirExportJob",
        resource_id=job.pk,
        reason=name[:64],
    )
    patient_ids = FhirExportPatient.objects.filter(job=job).values_list("patient_id", flat=True)
    glass = break_glass_patients(principal=principal, patient_ids=patient_ids)
    for patient_id in sorted(glass):
        access_record(
            actor=principal.actor,
            action="fhir.export.download",
            patient_id=patient_id,
            resource_type="FhirExportJob",
            resource_id=job.pk,
            reason=name[:64],
            purpose=glass[patient_id].reason,
            break_glass=True,
        )


def export_access_sweep() -> int:
    """Shred every finished job whose requester can no longer see all of its patients (a
    break-glass ended, the care team changed, the client was revoked), without waiting for a
    download attempt or the TTL. Jobs whose token is gone are left to those two. Returns how
    many were shredded."""
    count = 0
    jobs = FhirExportJob.objects.select_related("requester", "token").filter(
        status=ExportStatus.COMPLETE, token__isnull=False
    )
    for job in list(jobs.order_by("created_at")):
        if job.token is None:
            continue
        try:
            principal = principal_for_token(user=job.requester, token=job.token)
        except FhirError:
            export_revoke(
                job=job, actor=Actor.system(), patient_ids=[], reason="requester_not_authorised"
            )
            count += 1
            continue
        lapsed = export_patients_lapsed(job=job, principal=principal)
        if lapsed:
            export_revoke(job=job, actor=Actor.system(), patient_ids=lapsed, reason="access_lapsed")
            count += 1
    return count


def export_expire(*, now: Any = None) -> int:
    """Delete (crypto-shred) every export :func:`export_ttl` after it finished (after it was
    created, for one that never finished). Returns how many."""
    cutoff = (now or timezone.now()) - export_ttl()
    expired = list(
        FhirExportJob.objects.filter(
            Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff)
        ).order_by("created_at")
    )
    for job in expired:
        job_id = job.pk
        export_delete(job=job)
        access_record(
            actor=Actor.system(),
            action="fhir.export.expire",
            resource_type="FhirExportJob",
            resource_id=job_id,
        )
    return len(expired)


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(client_id, secret) from an ``Authorization: Basic`` header."""
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    if ":" not in decoded:
        return None
    client_id, secret = decoded.split(":", 1)
    return client_id, secret
