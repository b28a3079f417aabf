"""The screening admin: reads of patient data are access events, patient edits are recorded (field
names only), new patients go through ``patient_create``, and clinicians, care teams and videos
cannot be changed or deleted in ways that would silently break escalation or lose records."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from privacy.models import AccessEvent, PatientKey
from screening.models import (
    CareTeam,
    Clinician,
    DiaryEntry,
    Organisation,
    Patient,
    TextAnalysis,
    User,
    VideoSubmission,
)
from tests.factories import CareTeamFactory, OrganisationFactory, make_clinician


@pytest.fixture
def staff(world: Any) -> User:
    return User.objects.create_superuser(
        username="root-admin", email="root@clinic.test", password="x" * 16, role="admin"
    )


@pytest.fixture
def admin_client(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def _events(action: str) -> list[AccessEvent]:
    return list(AccessEvent.objects.filter(action=action).order_by("seq"))


def _patient_form(patient: Patient, **changes: Any) -> dict[str, Any]:
    return {
        "organisation": patient.organisation_id,
        "care_team": patient.care_team_id,
        "treating_clinician": patient.treating_clinician_id,
        "timezone": patient.timezone,
        "locale": patient.locale,
        "birth_year": patient.birth_year or "",
        **({"legal_hold": "on"} if patient.legal_hold else {}),
        **changes,
    }


def _text_analysis(patient: Patient) -> TextAnalysis:
    today = timezone.localdate()
    entry = DiaryEntry.objects.create(
        patient=patient,
        idempotency_key=uuid.uuid4(),
        client_timestamp=timezone.now(),
        timezone="UTC",
        local_date=today,
        text="A private diary line.",
    )
    return TextAnalysis.objects.create(
        patient=patient,
        source="diary",
        diary_entry=entry,
        local_date=today,
        valence=-0.2,
        confidence=0.8,
    )


def _video(patient: Patient) -> VideoSubmission:
    now = timezone.now()
    return VideoSubmission.objects.create(
        patient=patient,
        idempotency_key=uuid.uuid4(),
        client_timestamp=now,
        timezone=patient.timezone,
        local_date=now.date(),
        storage_name=f"{patient.pk}/{uuid.uuid4()}",
        size_bytes=1234,
        duration_seconds=3.0,
        container="mp4",
        video_codec="h264",
        width=320,
        height=240,
    )


# --- reads are access events --------------------------------------------------------------------
def test_the_patient_detail_and_list_in_the_admin_are_access_events(world, staff, admin_client):
    patient = world.patient_a
    page = admin_client.get(f"/admin/screening/patient/{patient.pk}/change/")
    assert page.status_code == 200
    [view] = _events("admin.patient.view")
    assert (view.actor_id, view.actor_role, view.patient_id) == (staff.pk, "admin", patient.pk)
    assert (view.resource_type, view.resource_id) == ("Patient", str(patient.pk))

    assert admin_client.get("/admin/screening/patient/").status_code == 200
    # Two patients listed: each one's trail says so.
    listed = _events("admin.patient.list")
    assert {(e.actor_id, e.patient_id, e.resource_type) for e in listed} == {
        (staff.pk, world.patient_a.pk, "Patient"),
        (staff.pk, world.patient_b.pk, "Patient"),
    }

    # Narrowed to one patient, the list event names them.
    assert admin_client.get(f"/admin/screening/patient/?q={patient.pseudonym}").status_code == 200
    assert _events("admin.patient.list")[-1].patient_id == patient.pk


def test_a_text_analysis_in_the_admin_is_an_access_event(world, staff, admin_client):
    analysis = _text_analysis(world.patient_b)
    page = admin_client.get(f"/admin/screening/textanalysis/{analysis.pk}/change/")
    assert page.status_code == 200
    assert b"A private diary line." not in page.content
    [view] = _events("admin.textanalysis.view")
    assert (view.actor_id, view.patient_id) == (staff.pk, world.patient_b.pk)
    assert (view.resource_type, view.resource_id) == ("TextAnalysis", str(analysis.pk))

    _text_analysis(world.patient_a)
    assert admin_client.get("/admin/screening/textanalysis/").status_code == 200
    assert {e.patient_id for e in _events("admin.textanalysis.list")} == {
        world.patient_a.pk,
        world.patient_b.pk,
    }
    url = f"/admin/screening/textanalysis/?patient__id__exact={world.patient_b.pk}"
    assert admin_client.get(url).status_code == 200
    assert _events("admin.textanalysis.list")[-1].patient_id == world.patient_b.pk


def test_a_missing_row_records_no_view(world, admin_client):
    response = admin_client.get(f"/admin/screening/textanalysis/{uuid.uuid4()}/change/")
    assert response.status_code == 302
    assert not _events("admin.textanalysis.view")


# --- patient edits are recorded -------------------------------------------------------------------
def test_patient_edits_record_the_changed_fields_and_the_legal_hold(world, staff, admin_client):
    patient = world.patient_a
    url = f"/admin/screening/patient/{patient.pk}/change/"

    # Nothing changed: nothing recorded.
    assert admin_client.post(url, _patient_form(patient)).status_code == 302
    assert not _events("patient.update")

    assert admin_client.post(url, _patient_form(patient, legal_hold="on")).status_code == 302
    patient.refresh_from_db()
    assert patient.legal_hold is True
    [update] = _events("patient.update")
    assert (update.actor_id, update.patient_id, update.purpose) == (
        staff.pk,
        patient.pk,
        "fields: legal_hold",
    )
    [held] = _events("patient.legal_hold_set")
    assert (held.actor_id, held.patient_id) == (staff.pk, patient.pk)

    # A new care team and treating clinician (same clinic): named, never their values.
    other_team = world.colleague.care_teams.get()
    changed = _patient_form(
        patient, care_team=other_team.pk, treating_clinician=world.colleague.pk, birth_year=1990
    )
    assert admin_client.post(url, changed).status_code == 302
    last = _events("patient.update")[-1]
    assert last.purpose == "fields: treating_clinician, care_team, birth_year"
    assert "1990" not in last.purpose and str(other_team.pk) not in last.purpose
    assert not _events("patient.legal_hold_release")

    patient.refresh_from_db()
    released = _patient_form(patient)
    released.pop("legal_hold")
    assert admin_client.post(url, released).status_code == 302
    assert Patient.objects.get(pk=patient.pk).legal_hold is False
    assert _events("patient.update")[-1].purpose == "fields: legal_hold"
    [release] = _events("patient.legal_hold_release")
    assert (release.actor_id, release.patient_id) == (staff.pk, patient.pk)


def test_the_login_of_an_existing_patient_cannot_be_swapped(world, admin_client):
    patient = world.patient_a
    url = f"/admin/screening/patient/{patient.pk}/change/"
    form = _patient_form(patient, user=world.clinician.user_id)
    assert admin_client.post(url, form).status_code == 302
    assert Patient.objects.get(pk=patient.pk).user_id == patient.user_id


# --- new patients ---------------------------------------------------------------------------------
def test_a_patient_added_in_the_admin_gets_a_new_patient_login_and_a_key(
    world, staff, admin_client
):
    url = "/admin/screening/patient/add/"
    page = admin_client.get(url)
    assert page.status_code == 200
    assert b'name="user"' not in page.content and b'name="username"' in page.content
    team = CareTeam.objects.get(pk=world.patient_a.care_team_id)
    form = {
        "username": "new-patient",
        "password": "",
        "organisation": world.clinic.pk,
        "care_team": team.pk,
        "treating_clinician": world.clinician.pk,
        "timezone": "Europe/London",
        "locale": "en-GB",
        "birth_year": "1985",
    }
    # An existing account (a clinician's) cannot become a patient: the login is always new.
    taken = admin_client.post(url, {**form, "username": world.clinician.user.username})
    assert taken.status_code == 200 and b"already exists" in taken.content
    # The care team and treating clinician must be of the patient's clinic.
    elsewhere = OrganisationFactory()
    mixed = admin_client.post(url, {**form, "organisation": elsewhere.pk})
    assert mixed.status_code == 200 and b"Must be of the patient" in mixed.content
    assert Patient.objects.count() == 2

    response = admin_client.post(url, {**form, "_continue": "1"})
    assert response.status_code == 302, response.content[:800]
    patient = Patient.objects.get(user__username="new-patient")
    assert patient.user.role == "patient" and not patient.user.has_usable_password()
    assert (patient.organisation_id, patient.care_team_id) == (world.clinic.pk, team.pk)
    assert (patient.timezone, patient.locale) == ("Europe/London", "en-GB")
    assert patient.birth_year == 1985
    assert PatientKey.objects.filter(patient_id=patient.pk, retired_at__isnull=True).exists()
    [created] = _events("patient.create")
    assert (created.actor_id, created.patient_id) == (staff.pk, patient.pk)
    # On to the created patient's page.
    assert response["Location"].startswith(f"/admin/screening/patient/{patient.pk}/change/")


# --- clinicians and care teams --------------------------------------------------------------------
def test_the_clinic_of_a_clinician_or_care_team_cannot_change(world, admin_client):
    elsewhere: Organisation = OrganisationFactory()
    clinician = world.clinician
    url = f"/admin/screening/clinician/{clinician.pk}/change/"
    form = {"user": clinician.user_id, "organisation": elsewhere.pk, "title": "Dr"}
    assert admin_client.post(url, form).status_code == 302
    clinician.refresh_from_db()
    assert (clinician.organisation_id, clinician.title) == (world.clinic.pk, "Dr")

    team = CareTeam.objects.get(pk=world.patient_a.care_team_id)
    url = f"/admin/screening/careteam/{team.pk}/change/"
    members = [str(pk) for pk in team.members.values_list("pk", flat=True)]
    form = {"name": "Renamed", "organisation": elsewhere.pk, "members": members}
    assert admin_client.post(url, form).status_code == 302
    team.refresh_from_db()
    assert (team.organisation_id, team.name) == (world.clinic.pk, "Renamed")

    # A new one still picks its clinic.
    assert (
        admin_client.post(
            "/admin/screening/careteam/add/", {"name": "New team", "organisation": elsewhere.pk}
        ).status_code
        == 302
    )
    assert CareTeam.objects.get(name="New team").organisation_id == elsewhere.pk


def test_a_clinician_cannot_be_deleted_in_the_admin(world, admin_client):
    team = CareTeamFactory(organisation=world.clinic)
    idle = make_clinician(team=team)  # nothing refers to them: a deletion would go through
    assert admin_client.get(f"/admin/screening/clinician/{idle.pk}/delete/").status_code == 403
    response = admin_client.post(
        "/admin/screening/clinician/",
        {"action": "delete_selected", "_selected_action": [str(idle.pk)], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert Clinician.objects.filter(pk=idle.pk).exists()
    assert b"delete_selected" not in admin_client.get("/admin/screening/clinician/").content


# --- videos ---------------------------------------------------------------------------------------
def test_a_video_submission_is_read_only_and_cannot_be_deleted(world, staff, admin_client):
    video = _video(world.patient_a)
    url = f"/admin/screening/videosubmission/{video.pk}/"
    assert admin_client.get(f"{url}delete/").status_code == 403
    response = admin_client.post(
        "/admin/screening/videosubmission/",
        {"action": "delete_selected", "_selected_action": [str(video.pk)], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert VideoSubmission.objects.filter(pk=video.pk).exists()
    assert admin_client.get(f"{url}change/").status_code == 200
    [view] = _events("admin.videosubmission.view")
    assert (view.actor_id, view.patient_id) == (staff.pk, world.patient_a.pk)


def test_a_care_team_takes_members_of_its_own_clinic_only(world: Any, admin_client: Client) -> None:
    team = CareTeam.objects.get(pk=world.patient_a.care_team_id)
    outsider = make_clinician(team=CareTeamFactory(organisation=OrganisationFactory()))
    url = f"/admin/screening/careteam/{team.pk}/change/"
    members = [m.pk for m in team.members.all()]
    response = admin_client.post(url, {"name": team.name, "members": [*members, outsider.pk]})
    assert response.status_code == 200  # the form again, with the error
    assert b"Every member must be a clinician of the team" in response.content
    assert outsider not in team.members.all()
    ok = admin_client.post(url, {"name": team.name, "members": members})
    assert ok.status_code == 302


@pytest.mark.parametrize(
    ("path", "role"),
    [("clinician", "clinician"), ("auditor", "auditor")],
    ids=["clinician", "auditor"],
)
def test_a_staff_record_takes_a_free_login_of_its_role_only(
    world: Any, admin_client: Client, path: str, role: str
) -> None:
    free = User.objects.create_user(username=f"free-{role}", password="x" * 16, role=role)
    wrong_role = User.objects.create_user(username=f"free-other-{role}", password="x" * 16)
    response = admin_client.get(f"/admin/screening/{path}/add/")
    choices = {c.pk for c in response.context["adminform"].form.fields["user"].queryset}
    assert free.pk in choices
    assert wrong_role.pk not in choices
    assert world.patient_a.user_id not in choices  # a patient's login
    assert world.clinician.user_id not in choices  # already someone's
