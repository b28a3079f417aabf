"""Bulk export and access that ends: break-glass exports are flagged like reads and bounded by
the break-glass window; a job is served only while its requester may still see every patient in
it (else 404 and the job is shredded); the manifest's ``Expires`` says when the files go.

Personas: the treating clinician, a colleague outside the care team (with and without
break-glass), the clinic's auditor, a patient and an anonymous caller."""

from __future__ import annotations

import datetime as dt
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import freezegun
import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from clinician_portal.fhir import services
from clinician_portal.fhir.models import FhirExportJob, FhirExportPatient
from privacy.audit import Actor
from privacy.breakglass import break_glass_open
from privacy.models import AccessEvent, BreakGlassAccess
from tests.clinician_portal.fhir.test_export import download, kickoff, manifest

REASON = "Covering the on-call shift tonight"


def job_of(status_url: str) -> FhirExportJob:
    return FhirExportJob.objects.get(pk=status_url.rsplit("/", 1)[-1])


def folder_of(job: FhirExportJob) -> Path:
    return Path(django_settings.VIGIL_FHIR_EXPORT_DIR) / str(job.pk)


def path_of(url: str) -> str:
    return url.replace("http://testserver", "")


def after_break_glass() -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=django_settings.VIGIL_BREAK_GLASS_MINUTES + 5)


@pytest.fixture
def glass_export(fhir: Any) -> tuple[APIClient, str, dict[str, Any], FhirExportJob]:
    """The colleague breaks the glass on patient A and exports what they may see."""
    world = fhir.world
    break_glass_open(
        actor=Actor(user_id=world.colleague.user_id, role="clinician"),
        clinician=world.colleague,
        patient=world.patient_a,
        reason=REASON,
    )
    api = fhir.bearer(world.colleague.user)
    status_url = kickoff(api, "/fhir/Patient/$export", _type="QuestionnaireResponse,Observation")
    body = manifest(api, status_url)
    return api, status_url, body, job_of(status_url)


def test_a_break_glass_export_is_flagged_like_a_read(fhir: Any, glass_export: Any) -> None:
    api, _, body, job = glass_export
    world = fhir.world
    assert set(FhirExportPatient.objects.filter(job=job).values_list("patient_id", flat=True)) == {
        world.patient_a.pk
    }
    exported = AccessEvent.objects.get(action="fhir.export", resource_id=str(job.pk))
    assert exported.patient_id == world.patient_a.pk
    assert exported.break_glass is True and exported.purpose == REASON
    rows = download(api, body["output"][0]["url"])
    assert rows and {r["subject"]["reference"] for r in rows} == {f"Patient/{world.patient_a.pk}"}
    downloads = AccessEvent.objects.filter(action="fhir.export.download", resource_id=str(job.pk))
    flagged = downloads.filter(break_glass=True)
    assert [(e.patient_id, e.purpose) for e in flagged] == [(world.patient_a.pk, REASON)]
    assert downloads.filter(break_glass=False, patient_id__isnull=True).count() == 1


def test_the_care_team_export_is_not_flagged(fhir: Any) -> None:
    api = fhir.bearer(fhir.world.clinician.user)
    status_url = kickoff(api, "/fhir/Patient/$export", _type="QuestionnaireResponse")
    body = manifest(api, status_url)
    download(api, body["output"][0]["url"])
    job = job_of(status_url)
    events = AccessEvent.objects.filter(resource_id=str(job.pk), action__startswith="fhir.export")
    assert events.filter(action="fhir.export").count() == 2  # patients A and B
    assert not events.filter(break_glass=True).exists()


def test_the_export_ends_with_the_break_glass(fhir: Any, glass_export: Any) -> None:
    api, status_url, body, job = glass_export
    world = fhir.world
    url = path_of(body["output"][0]["url"])
    assert folder_of(job).is_dir()
    with freezegun.freeze_time(after_break_glass()):
        assert api.get(f"/fhir/Patient/{world.patient_a.pk}").status_code == 404
        refused = api.get(url)
        assert refused.status_code == 404
        assert refused.json()["resourceType"] == "OperationOutcome"
        assert api.get(status_url).status_code == 404
    assert not FhirExportJob.objects.filter(pk=job.pk).exists()
    assert not folder_of(job).exists()
    revoked = AccessEvent.objects.get(action="fhir.export.revoke", resource_id=str(job.pk))
    assert revoked.reason == "access_lapsed" and revoked.patient_id == world.patient_a.pk
    assert revoked.outcome == "denied" and revoked.status_code == 404
    assert revoked.actor_id == world.colleague.user_id


def test_the_manifest_is_refused_too_and_nothing_is_downloaded(
    fhir: Any, glass_export: Any
) -> None:
    api, status_url, body, job = glass_export
    with freezegun.freeze_time(after_break_glass()):
        assert api.get(status_url).status_code == 404
    assert not folder_of(job).exists()
    assert api.get(path_of(body["output"][0]["url"])).status_code == 404
    assert not AccessEvent.objects.filter(action="fhir.export.download").exists()


def test_the_export_ends_when_the_clinician_leaves_the_care_team(fhir: Any) -> None:
    world = fhir.world
    api = fhir.bearer(world.clinician.user)
    status_url = kickoff(api, "/fhir/Patient/$export", _type="QuestionnaireResponse")
    body = manifest(api, status_url)
    job = job_of(status_url)
    # Patient A moves to the colleague's team and treating clinician.
    patient = world.patient_a
    patient.care_team = world.colleague.care_teams.first()
    patient.treating_clinician = world.colleague
    patient.save(update_fields=["care_team", "treating_clinician"])
    assert api.get(path_of(body["output"][0]["url"])).status_code == 404
    assert not FhirExportJob.objects.filter(pk=job.pk).exists()
    revoked = AccessEvent.objects.filter(action="fhir.export.revoke", resource_id=str(job.pk))
    assert [e.patient_id for e in revoked] == [patient.pk]  # B is still theirs: not named


def test_the_expires_header_is_when_the_files_go(fhir: Any, settings: Any) -> None:
    settings.VIGIL_FHIR_EXPORT_TTL_HOURS = 6
    api = fhir.bearer(fhir.world.clinician.user)
    status_url = kickoff(api, "/fhir/Patient/$export", _type="QuestionnaireResponse")
    response = api.get(status_url)
    assert response.status_code == 200
    job = job_of(status_url)
    assert job.finished_at is not None
    expires = parsedate_to_datetime(response["Expires"])  # an HTTP date
    wanted = job.finished_at + dt.timedelta(hours=6)
    assert abs((expires - wanted).total_seconds()) < 1


def test_a_break_glass_export_expires_with_the_break_glass(fhir: Any, glass_export: Any) -> None:
    api, status_url, _, _ = glass_export
    access = BreakGlassAccess.objects.get(clinician=fhir.world.colleague)
    expires = parsedate_to_datetime(api.get(status_url)["Expires"])
    assert abs((expires - access.expires_at).total_seconds()) < 1


def test_the_hourly_task_shreds_lapsed_jobs_without_a_download(
    fhir: Any, glass_export: Any
) -> None:
    _, _, _, glass_job = glass_export
    care_api = fhir.bearer(fhir.world.clinician.user)
    care_job = job_of(kickoff(care_api, "/fhir/Patient/$export", _type="QuestionnaireResponse"))
    assert services.export_access_sweep() == 0  # nothing lapsed yet
    with freezegun.freeze_time(after_break_glass()):
        assert services.export_access_sweep() == 1
    assert not FhirExportJob.objects.filter(pk=glass_job.pk).exists()
    assert not folder_of(glass_job).exists()
    assert FhirExportJob.objects.filter(pk=care_job.pk).exists()
    revoked = AccessEvent.objects.get(action="fhir.export.revoke")
    assert revoked.actor_role == "system" and revoked.reason == "access_lapsed"


def test_a_revoked_clients_jobs_are_shredded_by_the_task(fhir: Any) -> None:
    from clinician_portal.fhir.models import FhirClient
    from tests.clinician_portal.fhir.conftest import client_token

    api = client_token(*fhir.clinic_client_secret)
    job = job_of(kickoff(api, "/fhir/$export", _type="Patient"))
    FhirClient.objects.filter(client_id=fhir.clinic_client_secret[0]).update(
        revoked_at=timezone.now()
    )
    assert services.export_access_sweep() == 1
    assert not FhirExportJob.objects.filter(pk=job.pk).exists()
    event = AccessEvent.objects.get(action="fhir.export.revoke")
    assert event.reason == "requester_not_authorised" and event.patient_id is None


def test_other_personas_get_nothing_of_the_job(fhir: Any, glass_export: Any) -> None:
    api, status_url, body, job = glass_export
    url = path_of(body["output"][0]["url"])
    world = fhir.world
    treating = fhir.bearer(world.clinician.user)  # sees patient A, but it is not their job
    auditor = fhir.bearer(world.auditor.user)
    patient = fhir.bearer(world.patient_a.user)
    for persona, status in ((treating, 404), (auditor, 404), (patient, 403), (APIClient(), 401)):
        assert persona.get(status_url).status_code == status
        assert persona.get(url).status_code == status
    assert FhirExportJob.objects.filter(pk=job.pk).exists()  # other callers revoke nothing
    assert not AccessEvent.objects.filter(action="fhir.export.download").exists()
    assert api.get(url).status_code == 200


def test_an_auditors_export_stays_available(fhir: Any) -> None:
    api = fhir.bearer(fhir.world.auditor.user)
    status_url = kickoff(api, "/fhir/$export", _type="Consent")
    body = manifest(api, status_url)
    rows = download(api, body["output"][0]["url"])
    assert rows and all(r["resourceType"] == "Consent" for r in rows)
    assert FhirExportPatient.objects.filter(job=job_of(status_url)).exists()
