"""Erasure and bulk exports: an erased patient's records never stay readable in an export."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from clinician_portal.fhir import services
from clinician_portal.fhir.models import ExportStatus, FhirExportJob, FhirExportPatient
from privacy import erasure
from privacy.audit import Actor
from privacy.erasure import patient_erase
from privacy.models import AccessEvent
from screening.models import Patient
from tests.clinician_portal.fhir.conftest import GAD7, submit

REASON = "patient request ticket 4711"


@pytest.fixture
def exports(world: Any, settings: Any, tmp_path: Path) -> Path:
    settings.VIGIL_FHIR_EXPORT_EAGER = True
    settings.VIGIL_FHIR_EXPORT_DIR = str(tmp_path / "export")
    settings.VIGIL_FHIR_BASE_URL = "http://testserver/fhir/"
    submit(world.patient_a, "gad7", GAD7)
    submit(world.patient_b, "gad7", GAD7)
    return tmp_path / "export"


def kickoff(api: APIClient, path: str, **params: str) -> FhirExportJob:
    response = api.get(path, params, HTTP_PREFER="respond-async")
    assert response.status_code == 202, response.content[:500]
    job_id = response["Content-Location"].rsplit("/", 1)[-1]
    job = FhirExportJob.objects.get(pk=job_id)
    assert job.status == ExportStatus.COMPLETE, job.error
    return job


def erase(patient: Patient) -> erasure.ErasureResult:
    return patient_erase(actor=Actor(user_id=None, role="admin"), patient=patient, reason=REASON)


def included(job: FhirExportJob) -> set[uuid.UUID]:
    return set(FhirExportPatient.objects.filter(job=job).values_list("patient_id", flat=True))


def test_an_export_records_the_patients_it_contains(world, exports):
    api = world.client_for(world.clinician.user)
    job = kickoff(api, "/fhir/Patient/$export", _type="QuestionnaireResponse")
    assert included(job) == {world.patient_a.pk, world.patient_b.pk}
    logged = AccessEvent.objects.filter(action="fhir.export", resource_id=str(job.pk))
    assert set(logged.values_list("patient_id", flat=True)) == included(job)
    empty = kickoff(world.client_for(world.colleague.user), "/fhir/Patient/$export")
    assert included(empty) == set()  # outside the care team: nobody


def test_erasure_deletes_the_exports_that_contain_the_patient(
    world, exports, django_capture_on_commit_callbacks
):
    api = world.client_for(world.clinician.user)
    with_a = kickoff(api, "/fhir/Patient/$export", _type="QuestionnaireResponse")
    file_url = f"/fhir/$export-file/{with_a.pk}/QuestionnaireResponse.ndjson"
    assert api.get(file_url).status_code == 200
    without_a = kickoff(world.client_for(world.colleague.user), "/fhir/Patient/$export")
    assert (exports / str(with_a.pk)).is_dir() and (exports / str(without_a.pk)).is_dir()

    with django_capture_on_commit_callbacks(execute=True):
        result = erase(world.patient_a)

    assert result.hooks["fhir exports"] == 1
    assert not FhirExportJob.objects.filter(pk=with_a.pk).exists()
    assert not FhirExportPatient.objects.filter(patient=world.patient_a).exists()
    assert not (exports / str(with_a.pk)).exists()
    assert api.get(file_url).status_code == 404
    assert api.get(f"/fhir/$export-status/{with_a.pk}").status_code == 404
    # An export without the patient stays.
    assert FhirExportJob.objects.filter(pk=without_a.pk).exists()
    assert (exports / str(without_a.pk)).is_dir()
    event = AccessEvent.objects.get(action="fhir.export.erase")
    assert (event.patient_id, event.resource_id) == (world.patient_a.pk, str(with_a.pk))


def test_the_job_key_is_destroyed_inside_the_erasure_transaction(world, exports):
    """Files of a job are unreadable once the erasure commits, even before they are removed."""
    api = world.client_for(world.clinician.user)
    job = kickoff(api, "/fhir/Patient/$export", _type="QuestionnaireResponse")
    with CaptureQueriesContext(connection) as queries:
        erase(world.patient_a)  # the on-commit file removal is not run here
    assert (exports / str(job.pk)).is_dir()  # files remain until the commit hook...
    assert not FhirExportJob.objects.filter(pk=job.pk).exists()  # ...but the key is gone
    assert any("wrapped_key" in q["sql"] and "UPDATE" in q["sql"] for q in queries.captured_queries)


def test_an_export_that_finishes_after_the_erasure_is_shredded(world, exports, monkeypatch):
    """The race: the export read the patient before the erasure and finishes after it."""
    api = world.client_for(world.clinician.user)
    real_write = services._export_write

    def write_then_erase(*, job: Any, principal: Any) -> Any:
        output = real_write(job=job, principal=principal)
        erase(Patient.objects.get(pk=world.patient_a.pk))
        return output

    monkeypatch.setattr(services, "_export_write", write_then_erase)
    response = api.get(
        "/fhir/Patient/$export", {"_type": "QuestionnaireResponse"}, HTTP_PREFER="respond-async"
    )
    assert response.status_code == 202
    job = FhirExportJob.objects.get()
    assert (job.status, job.error, job.wrapped_key) == (ExportStatus.FAILED, "PatientErased", None)
    assert not (exports / str(job.pk)).exists()
    assert included(job) == set()
