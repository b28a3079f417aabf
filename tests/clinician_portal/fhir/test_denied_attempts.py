"""A colleague's refused FHIR attempts on a patient land in that patient's audit trail.

The answers do not change (404 for reads, an empty Bundle for searches: existence is never
revealed), but a read or search naming a patient of the caller's own clinic whom the caller may
not see is recorded as the portal records a refused view: denied, ``not_in_care_team``, with the
patient. Another clinic's patient, or an unknown id, is a probe recorded without a patient."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework.test import APIClient

from privacy.models import AccessEvent
from risk.models import Alert
from tests.clinician_portal.fhir.conftest import client_token, validate


def _events(user: Any, action: str) -> Any:
    return AccessEvent.objects.filter(actor=user, action=action).order_by("seq")


def _empty_bundle(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert body["resourceType"] == "Bundle" and "entry" not in body
    return dict(body)


def test_colleague_reads_are_recorded_against_the_patient(fhir: Any) -> None:
    world = fhir.world
    api = fhir.bearer(world.colleague.user)
    paths = [
        ("Flag", str(fhir.alert_a.pk)),
        ("Observation", f"qr-{fhir.qr_a.pk}-total"),
        ("Patient", str(world.patient_a.pk)),
    ]
    for resource_type, rid in paths:
        response = api.get(f"/fhir/{resource_type}/{rid}")
        assert response.status_code == 404, resource_type
        assert response.json()["issue"][0]["code"] == "not-found"
    events = list(_events(world.colleague.user, "fhir.read"))
    assert [
        (e.resource_type, e.resource_id, e.patient_id, e.outcome, e.status_code, e.reason)
        for e in events
    ] == [
        (resource_type, rid, world.patient_a.pk, "denied", 404, "not_in_care_team")
        for resource_type, rid in paths
    ]


def test_colleague_search_is_recorded_against_the_patient_body_unchanged(fhir: Any) -> None:
    world = fhir.world
    api = fhir.bearer(world.colleague.user)
    pid = str(world.patient_a.pk)
    searches = [
        ("Flag", {"patient": pid}),
        ("Observation", {"patient": pid}),
        ("Observation", {"subject": f"Patient/{pid}"}),
        ("Flag", {"_id": str(fhir.alert_a.pk)}),
    ]
    for resource_type, params in searches:
        body = _empty_bundle(api.get(f"/fhir/{resource_type}", params))
        # The same answer as a search naming nobody at all: nothing says the patient exists.
        unknown = _empty_bundle(api.get(f"/fhir/{resource_type}", {"patient": str(uuid.uuid4())}))
        assert {k for k in body if k != "link"} == {k for k in unknown if k != "link"}
    events = list(_events(world.colleague.user, "fhir.search").filter(patient__isnull=False))
    assert [(e.resource_type, e.patient_id, e.outcome, e.reason) for e in events] == [
        (resource_type, world.patient_a.pk, "denied", "not_in_care_team")
        for resource_type, _ in searches
    ]
    # No "allowed, results:0" event pretends that these searches were allowed.
    allowed = _events(world.colleague.user, "fhir.search").filter(outcome="allowed")
    assert allowed.count() == len(searches)  # the unknown-patient searches only
    assert set(allowed.values_list("patient_id", flat=True)) == {None}


def test_other_clinic_and_unknown_ids_are_probes_without_a_patient(fhir: Any) -> None:
    world = fhir.world
    api = fhir.bearer(world.colleague.user)
    other = fhir.other_patient
    other_alert = Alert.objects.get(patient=other)
    assert api.get(f"/fhir/Flag/{other_alert.pk}").status_code == 404
    assert api.get(f"/fhir/Patient/{other.pk}").status_code == 404
    assert api.get(f"/fhir/Flag/{uuid.uuid4()}").status_code == 404
    _empty_bundle(api.get("/fhir/Flag", {"patient": str(other.pk)}))
    reads = list(_events(world.colleague.user, "fhir.read"))
    assert [(e.patient_id, e.outcome, e.reason) for e in reads] == [
        (None, "denied", "other_clinic"),
        (None, "denied", "other_clinic"),
        (None, "denied", "not_found"),
    ]
    search = _events(world.colleague.user, "fhir.search").get()
    assert (search.patient_id, search.outcome, search.reason) == (None, "denied", "other_clinic")
    assert not AccessEvent.objects.filter(patient=other, actor=world.colleague.user).exists()


def test_integration_client_of_another_clinic_probes_without_a_patient(fhir: Any) -> None:
    world = fhir.world
    theirs = client_token(*fhir.other_clinic_client_secret)
    assert theirs.get(f"/fhir/Flag/{fhir.alert_a.pk}").status_code == 404
    _empty_bundle(theirs.get("/fhir/Observation", {"patient": str(world.patient_a.pk)}))
    events = AccessEvent.objects.filter(action__in=["fhir.read", "fhir.search"], outcome="denied")
    assert {(e.action, e.patient_id, e.reason) for e in events} == {
        ("fhir.read", None, "other_clinic"),
        ("fhir.search", None, "other_clinic"),
    }
    # The clinic's own client sees its whole clinic: its reads are allowed, as before.
    mine = client_token(*fhir.clinic_client_secret)
    assert mine.get(f"/fhir/Flag/{fhir.alert_a.pk}").status_code == 200
    assert not AccessEvent.objects.filter(reason="not_in_care_team").exists()


def test_treating_clinician_reads_and_searches_are_unchanged(fhir: Any) -> None:
    world = fhir.world
    api = fhir.bearer(world.clinician.user)
    assert api.get(f"/fhir/Flag/{fhir.alert_a.pk}").status_code == 200
    assert api.get(f"/fhir/Observation/qr-{fhir.qr_a.pk}-total").status_code == 200
    response = api.get("/fhir/Flag", {"patient": str(world.patient_a.pk)})
    assert response.status_code == 200 and response.json()["entry"]
    events = AccessEvent.objects.filter(
        actor=world.clinician.user, action__in=["fhir.read", "fhir.search"]
    )
    assert events.count() == 3
    assert {(e.patient_id, e.outcome, e.reason) for e in events} == {
        (world.patient_a.pk, "allowed", ""),
        (world.patient_a.pk, "allowed", "results:1"),
    }


def test_refused_attempts_show_in_the_access_log_and_the_auditors_view(
    fhir: Any, client_a: APIClient
) -> None:
    world = fhir.world
    api = fhir.bearer(world.colleague.user)
    api.get(f"/fhir/Flag/{fhir.alert_a.pk}")
    api.get("/fhir/Observation", {"patient": str(world.patient_a.pk)})
    rows = client_a.get("/api/v1/access-log", {"page_size": 200}).json()["results"]
    assert sorted(
        (r["action"], r["outcome"], r["role"]) for r in rows if r["action"].startswith("fhir.")
    ) == [("fhir.read", "denied", "clinician"), ("fhir.search", "denied", "clinician")]
    auditor = world.client_for(world.auditor.user)
    found = auditor.get(
        "/api/v1/audit/events", {"patient": world.patient_a.pseudonym, "page_size": 200}
    ).json()["results"]
    assert sorted(
        (r["action"], r["outcome"], r["reason"], r["actor"])
        for r in found
        if r["action"].startswith("fhir.")
    ) == [
        ("fhir.read", "denied", "not_in_care_team", world.colleague.user.username),
        ("fhir.search", "denied", "not_in_care_team", world.colleague.user.username),
    ]


def test_anonymous_refusals_are_audit_events_every_clinics_auditor_reads(
    fhir: Any, anon: APIClient
) -> None:
    """A caller that was not signed in belongs to no clinic: its refusals show to every clinic's
    auditor and audit client, as in the audit API and the portal's console, with its address
    (all that tells one prober from another), never as the system."""
    response = anon.get("/fhir/Observation", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 401
    event = AccessEvent.objects.get(actor__isnull=True, ip_address="203.0.113.9")
    assert event.actor_role == "anonymous" and event.patient_id is None
    readers = [
        fhir.bearer(fhir.world.auditor.user),
        client_token(*fhir.clinic_client_secret),
        client_token(*fhir.other_clinic_client_secret),
    ]
    for api in readers:
        body = api.get("/fhir/AuditEvent", {"_id": str(event.pk)}).json()
        assert [e["resource"]["id"] for e in body.get("entry", [])] == [str(event.pk)]
        resource = body["entry"][0]["resource"]
        validate(resource)
        agent = resource["agent"][0]
        assert agent["who"]["identifier"]["value"] == "anonymous"
        assert agent["network"] == {"address": "203.0.113.9", "type": "2"}
    # A signed-in actor's address stays in the log: it is not shown.
    fhir.bearer(fhir.world.clinician.user).get(f"/fhir/Patient/{fhir.world.patient_a.pk}")
    staff = AccessEvent.objects.filter(actor=fhir.world.clinician.user, action="fhir.read").last()
    assert staff is not None
    body = readers[0].get("/fhir/AuditEvent", {"_id": str(staff.pk)}).json()
    assert "network" not in body["entry"][0]["resource"]["agent"][0]
