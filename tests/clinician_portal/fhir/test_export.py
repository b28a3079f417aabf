"""Bulk Data $export: kick-off, status polling, NDJSON files (access-controlled, valid R4B,
de-identified), and an independent validator (FHIR.js, the npm package ``fhir``) over them."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from clinician_portal.fhir.models import FhirExportJob
from privacy.models import AccessEvent
from risk.models import Alert
from tests.clinician_portal.fhir.conftest import client_token, submit, validate


def kickoff(api: APIClient, path: str, **params: str) -> str:
    response = api.get(path, params, HTTP_PREFER="respond-async")
    assert response.status_code == 202, response.content[:500]
    location = response["Content-Location"]
    assert "$export-status/" in location
    return location.replace("http://testserver", "")


def manifest(api: APIClient, status_url: str) -> dict[str, Any]:
    response = api.get(status_url)
    assert response.status_code == 200, response.content[:500]
    return response.json()


def download(api: APIClient, url: str) -> list[dict[str, Any]]:
    response = api.get(url.replace("http://testserver", ""))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+ndjson"
    text = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in text.splitlines() if line]


def test_system_export_by_integration_client(fhir: Any) -> None:
    api = client_token(*fhir.clinic_client_secret)
    status_url = kickoff(api, "/fhir/$export")
    body = manifest(api, status_url)
    assert body["requiresAccessToken"] is True
    by_type = {o["type"]: o for o in body["output"]}
    assert {
        "Patient",
        "Observation",
        "QuestionnaireResponse",
        "RiskAssessment",
        "AuditEvent",
    } <= set(by_type)
    patients = download(api, by_type["Patient"]["url"])
    assert {p["id"] for p in patients} == {
        str(fhir.world.patient_a.pk),
        str(fhir.world.patient_b.pk),
    }
    total = 0
    for item in body["output"]:
        resources = download(api, item["url"])
        assert len(resources) == item["count"]
        for resource in resources:
            assert resource["resourceType"] == item["type"]
            validate(resource)
        total += len(resources)
    assert total > 20
    # Files are private to the process owner and to the requester.
    job = FhirExportJob.objects.get()
    folder = Path(django_settings.VIGIL_FHIR_EXPORT_DIR) / str(job.pk)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = client_token(*fhir.other_clinic_client_secret)
    assert other.get(status_url).status_code == 404
    assert other.get(by_type["Patient"]["url"].replace("http://testserver", "")).status_code == 404
    exported = AccessEvent.objects.filter(action="fhir.export").values_list("patient_id", flat=True)
    assert set(exported) == {fhir.world.patient_a.pk, fhir.world.patient_b.pk}


def test_patient_and_group_export_by_clinician(fhir: Any) -> None:
    world = fhir.world
    api = fhir.bearer(world.clinician.user)
    body = manifest(api, kickoff(api, "/fhir/Patient/$export", _type="Observation,Flag"))
    assert {o["type"] for o in body["output"]} == {"Observation", "Flag"}
    group = world.patient_a.care_team_id
    body = manifest(api, kickoff(api, f"/fhir/Group/{group}/$export", _type="Patient"))
    assert body["output"][0]["count"] == 2
    colleague = fhir.bearer(world.colleague.user)
    body = manifest(colleague, kickoff(colleague, "/fhir/Patient/$export", _type="Observation"))
    assert body["output"][0]["count"] == 0  # outside the care team: nothing


def test_export_errors_are_operation_outcomes(
    fhir: Any, client_a: APIClient, anon: APIClient
) -> None:
    api = fhir.bearer(fhir.world.clinician.user)
    response = api.get("/fhir/$export")
    assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"
    response = api.get("/fhir/$export", {"_type": "Medication"}, HTTP_PREFER="respond-async")
    assert response.status_code == 400
    response = api.get("/fhir/$export", {"_type": "AuditEvent"}, HTTP_PREFER="respond-async")
    assert response.status_code == 403
    assert api.get("/fhir/Group/999999/$export", HTTP_PREFER="respond-async").status_code == 404
    assert anon.get("/fhir/$export", HTTP_PREFER="respond-async").status_code == 401
    assert client_a.get("/fhir/$export", HTTP_PREFER="respond-async").status_code == 403
    auditor = fhir.bearer(fhir.world.auditor.user)
    body = manifest(auditor, kickoff(auditor, "/fhir/$export"))
    assert {o["type"] for o in body["output"]} == {"Consent", "AuditEvent"}


def test_export_status_while_queued_and_delete(fhir: Any, settings: Any) -> None:
    settings.VIGIL_FHIR_EXPORT_EAGER = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    from unittest import mock

    api = fhir.bearer(fhir.world.clinician.user)
    with mock.patch("clinician_portal.fhir.tasks.fhir_export_run.delay") as delay:
        status_url = kickoff(api, "/fhir/Patient/$export")
    response = api.get(status_url)
    assert response.status_code == 202 and response["X-Progress"] == "queued"
    assert api.delete(status_url).status_code == 202
    assert api.get(status_url).status_code == 404
    assert delay.call_count <= 1


def test_export_since(fhir: Any) -> None:
    api = fhir.bearer(fhir.world.clinician.user)
    body = manifest(
        api, kickoff(api, "/fhir/Patient/$export", _type="Observation", _since="2100-01-01")
    )
    assert body["output"][0]["count"] == 0


def _fhirjs(cache: Path) -> Path:
    """Install the npm package ``fhir`` (FHIR.js, R4 definitions, offline validator) once."""
    module = cache / "node_modules" / "fhir"
    if module.is_dir():
        return module
    cache.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(cache), "fhir@4.12.0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 or not module.is_dir():
        pytest.skip(f"npm could not install the FHIR.js validator: {result.stderr[-300:]}")
    return module


VALIDATE_JS = r"""
const Fhir = require('fhir').Fhir;
const fs = require('fs');
const fhir = new Fhir();
let errors = [];
let count = 0;
for (const file of process.argv.slice(2)) {
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const resource = JSON.parse(line);
    count += 1;
    const result = fhir.validate(resource, {errorOnUnexpected: true});
    for (const m of result.messages) {
      if (m.severity !== 'error') continue;
      errors.push(`${resource.resourceType}/${resource.id} ${m.location}: ${m.message}`);
    }
  }
}
console.log(JSON.stringify({count, errors}));
"""


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js/npm not installed: the independent FHIR.js validator cannot run",
)
def test_export_validates_with_fhirjs(fhir: Any) -> None:
    world = fhir.world
    for i in range(5):
        submit(world.patient_a, "phq9", [i % 4] * 9)
        submit(world.patient_b, "gad7", [(i + 1) % 4] * 7)
    alert = Alert.objects.filter(patient=world.patient_a).first()
    alert.resolution_note = "Talked to Alice Example"
    alert.save(update_fields=["resolution_note"])
    cache = Path(django_settings.VAR_DIR) / "cache" / "fhirjs"
    module = _fhirjs(cache)
    api = client_token(*fhir.clinic_client_secret)
    job_status = kickoff(api, "/fhir/$export")
    body = manifest(api, job_status)
    # The files are encrypted at rest: validate what a client downloads (decrypted).
    folder = Path(django_settings.VIGIL_FHIR_EXPORT_DIR) / "downloaded"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for output in body["output"]:
        response = api.get(output["url"].replace("http://testserver", ""))
        assert response.status_code == 200
        path = folder / output["url"].rsplit("/", 1)[1]
        path.write_bytes(b"".join(response.streaming_content))
        files.append(str(path))
    script = folder.parent / "validate.js"
    script.write_text(VALIDATE_JS)
    env = {**os.environ, "NODE_PATH": str(module.parent)}
    result = subprocess.run(
        ["node", str(script), *files],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["count"] == sum(o["count"] for o in body["output"])
    assert report["count"] > 30
    assert report["errors"] == []
    content = "".join(Path(f).read_text() for f in files)
    assert "Alice" not in content
