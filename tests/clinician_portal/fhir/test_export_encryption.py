"""Bulk export files are encrypted at rest (chunked AES-256-GCM under a per-job data key wrapped by
the KEK); downloads decrypt as a stream for the requester only; deleting a job crypto-shreds it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from clinician_portal.fhir import services
from clinician_portal.fhir.models import FhirExportJob
from privacy.models import AccessEvent
from tests.clinician_portal.fhir.conftest import client_token, submit
from tests.clinician_portal.fhir.test_export import kickoff, manifest


@pytest.fixture
def small_chunks(settings: Any) -> Any:
    settings.VIGIL_FHIR_EXPORT_CHUNK_BYTES = 1024  # several chunks per file
    return settings


@pytest.fixture
def export(fhir: Any, small_chunks: Any) -> Any:
    for i in range(6):
        submit(fhir.world.patient_a, "phq9", [i % 4] * 9)
    api = client_token(*fhir.clinic_client_secret)
    status_url = kickoff(api, "/fhir/$export")
    body = manifest(api, status_url)
    job = FhirExportJob.objects.get()
    return api, status_url, body, job


def folder_of(job: FhirExportJob) -> Path:
    return Path(django_settings.VIGIL_FHIR_EXPORT_DIR) / str(job.pk)


def path_of(url: str) -> str:
    return url.replace("http://testserver", "")


def get_bytes(api: APIClient, url: str) -> tuple[int, bytes, Any]:
    response = api.get(path_of(url))
    if response.streaming:
        return response.status_code, b"".join(response.streaming_content), response
    return response.status_code, response.content, response


def chunks_of(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of every sealed chunk record (after the 12-byte header)."""
    data = path.read_bytes()
    assert data[:8] == services.EXPORT_MAGIC
    at, found = 12, []
    while at < len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        found.append((at, 4 + size))
        at += 4 + size
    assert at == len(data)
    return found


def by_type(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["type"]: o for o in body["output"]}


def test_files_hold_no_plaintext_and_the_download_is_the_exact_ndjson(export: Any) -> None:
    api, _, body, job = export
    job.refresh_from_db()
    assert job.kek_id == "test-1" and job.wrapped_key and len(bytes(job.wrapped_key)) == 60
    assert body["output"] and all(
        set(o) == {"type", "url", "count", "extension"} for o in body["output"]
    )
    multi_chunk = False
    for output in body["output"]:
        raw = (folder_of(job) / path_of(output["url"]).rsplit("/", 1)[1]).read_bytes()
        assert b"resourceType" not in raw and b'"id"' not in raw
        assert str(job.pk).encode() not in raw
        multi_chunk |= len(chunks_of(folder_of(job) / path_of(output["url"]).rsplit("/", 1)[1])) > 2
        status, content, response = get_bytes(api, output["url"])
        assert status == 200
        assert response["Content-Type"] == "application/fhir+ndjson"
        assert response.streaming
        # Exactly the NDJSON the manifest describes (count and plaintext SHA-256).
        assert hashlib.sha256(content).hexdigest() == output["extension"]["sha256"]
        lines = content.decode().splitlines()
        assert len(lines) == output["count"]
        assert all(json.loads(line)["resourceType"] == output["type"] for line in lines)
        if output["count"]:
            assert content.endswith(b"\n")
    assert multi_chunk


def test_the_download_has_every_exported_patient(fhir: Any, export: Any) -> None:
    api, _, body, _ = export
    patients = get_bytes(api, by_type(body)["Patient"]["url"])[1].decode()
    assert {json.loads(line)["id"] for line in patients.splitlines()} == {
        str(fhir.world.patient_a.pk),
        str(fhir.world.patient_b.pk),
    }


def _outcome(content: bytes) -> dict[str, Any]:
    body = json.loads(content)
    assert body["resourceType"] == "OperationOutcome"
    return body


def test_a_tampered_chunk_is_a_clean_operation_outcome(export: Any) -> None:
    api, _, body, job = export
    output = by_type(body)["Observation"]
    path = folder_of(job) / path_of(output["url"]).rsplit("/", 1)[1]
    chunks = chunks_of(path)
    assert len(chunks) >= 3
    offset, length = chunks[1]  # a middle chunk: the first one would pass before it
    data = bytearray(path.read_bytes())
    data[offset + length - 20] ^= 0x01
    path.write_bytes(bytes(data))
    status, content, response = get_bytes(api, output["url"])
    assert status == 500 and not response.streaming
    outcome = _outcome(content)
    assert outcome["issue"][0]["code"] == "exception"
    text = outcome["issue"][0]["diagnostics"]
    assert "Traceback" not in text and "DecryptionFailed" not in text and "resourceType" not in text
    # Other files of the job are unaffected.
    assert get_bytes(api, by_type(body)["Patient"]["url"])[0] == 200


def test_swapped_chunks_and_files_are_detected(export: Any) -> None:
    api, _, body, job = export
    output = by_type(body)["Observation"]
    path = folder_of(job) / path_of(output["url"]).rsplit("/", 1)[1]
    original = path.read_bytes()
    (a_at, a_len), (b_at, b_len) = chunks_of(path)[:2]
    assert a_len == b_len
    swapped = (
        original[:a_at]
        + original[b_at : b_at + b_len]
        + original[a_at : a_at + a_len]
        + original[b_at + b_len :]
    )
    path.write_bytes(swapped)
    assert get_bytes(api, output["url"])[0] == 500
    # Another file's bytes under this name (another resource type) fail too.
    other = folder_of(job) / path_of(by_type(body)["Patient"]["url"]).rsplit("/", 1)[1]
    path.write_bytes(other.read_bytes())
    assert get_bytes(api, output["url"])[0] == 500
    path.write_bytes(original)
    assert get_bytes(api, output["url"])[0] == 200


def test_a_truncated_file_is_detected(export: Any) -> None:
    api, _, body, job = export
    output = by_type(body)["Observation"]
    path = folder_of(job) / path_of(output["url"]).rsplit("/", 1)[1]
    original = path.read_bytes()
    chunks = chunks_of(path)
    # Dropping the final chunk leaves a well-formed file whose last chunk is not marked final.
    last_at, _ = chunks[-1]
    path.write_bytes(original[:last_at])
    status, content, _ = get_bytes(api, output["url"])
    assert status == 500 and _outcome(content)["issue"][0]["code"] == "exception"
    # Cutting inside a chunk, or leaving only the header, fails too.
    for cut in (last_at + 10, 12):
        path.write_bytes(original[:cut])
        assert get_bytes(api, output["url"])[0] == 500


def test_other_users_still_get_404_and_nothing_leaks(fhir: Any, export: Any) -> None:
    _, status_url, body, _ = export
    url = by_type(body)["Patient"]["url"]
    other = client_token(*fhir.other_clinic_client_secret)
    assert other.get(status_url).status_code == 404
    status, content, _ = get_bytes(other, url)
    assert status == 404 and b"resourceType" in content and b"Patient/" not in content
    colleague = fhir.bearer(fhir.world.colleague.user)
    assert get_bytes(colleague, url)[0] == 404
    assert get_bytes(APIClient(), url)[0] == 401
    downloads = AccessEvent.objects.filter(action="fhir.export.download")
    assert downloads.count() == 0  # refused requests download nothing


def test_delete_crypto_shreds_the_job(export: Any, tmp_path: Path) -> None:
    api, status_url, body, job = export
    folder = folder_of(job)
    copy = {p.name: p.read_bytes() for p in folder.iterdir()}
    wrapped = bytes(job.wrapped_key)
    assert api.delete(status_url).status_code == 202
    assert not folder.exists()
    assert not FhirExportJob.objects.filter(pk=job.pk).exists()
    assert get_bytes(api, by_type(body)["Patient"]["url"])[0] == 404
    # Even a copy of the files is useless without the wrapped key: the job's key is gone, and
    # a job row without it cannot open them.
    job.wrapped_key = None
    with pytest.raises(Exception, match="destroyed"):
        services._export_key(job)
    job.wrapped_key = wrapped
    dek = services._export_key(job)  # (the control: the key, had it been kept, would open them)
    name = next(iter(copy))
    restored = tmp_path / name
    restored.write_bytes(copy[name])
    item = next(o for o in job.output if o["name"] == name)
    plain = b"".join(
        services._iter_export_chunks(restored, dek=dek, job_id=job.pk, type_name=item["type"])
    )
    assert hashlib.sha256(plain).hexdigest() == item["sha256"]


def test_a_destroyed_key_is_a_clean_error(export: Any) -> None:
    api, _, body, job = export
    FhirExportJob.objects.filter(pk=job.pk).update(wrapped_key=None)
    status, content, _ = get_bytes(api, by_type(body)["Patient"]["url"])
    assert status == 500 and _outcome(content)["issue"][0]["code"] == "exception"


def test_expired_exports_are_shredded(export: Any, fhir: Any, settings: Any) -> None:
    _, _, _, job = export
    settings.VIGIL_FHIR_EXPORT_TTL_HOURS = 24
    api = fhir.bearer(fhir.world.clinician.user)
    fresh_url = kickoff(api, "/fhir/Patient/$export", _type="Observation")
    # The TTL runs from the end of the job: one created long ago but just finished is kept.
    FhirExportJob.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=30)
    )
    assert services.export_expire() == 0
    FhirExportJob.objects.filter(pk=job.pk).update(
        finished_at=timezone.now() - dt.timedelta(hours=25)
    )
    assert services.export_expire() == 1
    assert not folder_of(job).exists()
    assert not FhirExportJob.objects.filter(pk=job.pk).exists()
    assert AccessEvent.objects.filter(action="fhir.export.expire", resource_id=str(job.pk)).exists()
    assert api.get(fresh_url).status_code == 200  # the fresh one is kept
    assert services.export_expire() == 0


def test_a_failed_export_leaves_no_readable_files(fhir: Any, monkeypatch: Any) -> None:
    api = fhir.bearer(fhir.world.clinician.user)
    real = services.export_key_create

    def key_then_boom(*, job: Any) -> bytes:
        real(job=job)
        raise RuntimeError("killed")

    monkeypatch.setattr(services, "export_key_create", key_then_boom)
    status_url = kickoff(api, "/fhir/Patient/$export", _type="Observation")
    job = FhirExportJob.objects.get()
    assert job.status == "failed" and job.wrapped_key is None
    assert not folder_of(job).exists()
    assert api.get(status_url).status_code == 500


# --- KEK rotation: live export keys are re-wrapped (manage.py rotate_keys) ------------------------
def test_kek_rotation_rewraps_live_export_keys_so_the_old_kek_can_go(
    export: Any, settings: Any
) -> None:
    """Without the re-wrap a rotation's old KEK had to stay loaded until every export expired;
    removing it earlier made the recent exports unreadable."""
    import base64
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from privacy import datakeys, keys
    from privacy.audit import Actor
    from privacy.rotation import kek_rotate

    api, _, body, job = export
    url = by_type(body)["Patient"]["url"]
    before = get_bytes(api, url)[1]
    old = hashlib.sha256(b"vigil-test-only-kek").digest()  # the test profile's "test-1"
    new = hashlib.sha256(b"vigil-test-export-rotation").digest()

    def use(spec: str, active: str | None) -> None:
        settings.VIGIL_KEYRING = spec
        settings.VIGIL_ACTIVE_KEK_ID = active
        keys.keyring.cache_clear()
        datakeys.cache_clear()

    b64 = base64.b64encode
    try:
        use(f"test-1:{b64(old).decode()},new-1:{b64(new).decode()}", "new-1")
        # Data keys and TOTP secrets alone moved: the export job still holds the old KEK.
        kek_rotate(to="new-1", batch_size=100, dry_run=False, actor=Actor.system())
        with pytest.raises(CommandError, match="still used by 1 FHIR export jobs"):
            call_command("rotate_keys", "--check-retirable", "test-1", stdout=io.StringIO())
        out = io.StringIO()
        call_command("rotate_keys", "--to", "new-1", "--no-progress", stdout=out)
        assert "Re-wrapped 1 FHIR export job keys; 0 failed." in out.getvalue()
        job.refresh_from_db()
        assert job.kek_id == "new-1"
        (event,) = AccessEvent.objects.filter(action="key.export_rewrap")
        assert event.patient_id is None and "1 export job keys" in event.purpose
        call_command("rotate_keys", "--check-retirable", "test-1", stdout=io.StringIO())
        again = io.StringIO()
        call_command("rotate_keys", "--to", "new-1", "--no-progress", stdout=again)
        assert "Re-wrapped 0 FHIR export job keys" in again.getvalue()  # idempotent

        use(f"new-1:{b64(new).decode()}", "new-1")  # the old KEK is gone
        status, after, _ = get_bytes(api, url)
        assert status == 200 and after == before
    finally:
        keys.keyring.cache_clear()
        datakeys.cache_clear()
