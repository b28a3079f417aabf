"""The FHIR API over HTTP: metadata, read and search for every persona, OperationOutcome errors,
auditing, scopes, break-glass, and keyset paging while rows are inserted."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clinician_portal.fhir.services import token_scopes_set
from clinician_portal.fhir.sources import registry
from privacy.audit import Actor
from privacy.auth import token_issue
from privacy.breakglass import break_glass_open
from privacy.models import AccessEvent
from risk.models import Alert
from tests.clinician_portal.fhir.conftest import client_token, submit, validate

CLINICAL = [
    "Patient",
    "QuestionnaireResponse",
    "Observation",
    "RiskAssessment",
    "Flag",
    "CommunicationRequest",
    "Communication",
    "Consent",
    "Provenance",
]


def outcome(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    validate(body)
    if code is not None:
        assert body["issue"][0]["code"] == code, body
    return body


def bundle_ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    validate(body)
    assert body["type"] == "searchset"
    for entry in body.get("entry", []):
        validate(entry["resource"])
    return [e["resource"]["id"] for e in body.get("entry", [])]


def patient_refs(response: Any) -> set[str]:
    refs = set()
    for entry in response.json().get("entry", []):
        resource = entry["resource"]
        for key in ("subject", "patient"):
            if key in resource:
                refs.add(resource[key]["reference"].split("/")[1])
        if resource["resourceType"] == "Patient":
            refs.add(resource["id"])
    return refs


# --- metadata ------------------------------------------------------------------------------------
def test_metadata_lists_exactly_what_is_implemented(db: Any, anon: APIClient) -> None:
    response = anon.get("/fhir/metadata")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    statement = response.json()
    validate(statement)
    assert statement["fhirVersion"] == "4.3.0"
    assert "R4" in statement["description"]
    listed = {r["type"]: r for r in statement["rest"][0]["resource"]}
    specs = registry()
    assert set(listed) == set(specs)
    for name, spec in specs.items():
        assert {p["name"] for p in listed[name]["searchParam"]} == spec.param_names_raw
        assert {i["code"] for i in listed[name]["interaction"]} == {"read", "search-type"}
    # A parameter the statement does not list is refused, so the statement is complete.
    assert "_include" not in {p["name"] for r in listed.values() for p in r["searchParam"]}


def test_format_json_and_xml(db: Any, anon: APIClient) -> None:
    assert anon.get("/fhir/metadata?_format=json")["Content-Type"].startswith("application/json")
    outcome(anon.get("/fhir/metadata?_format=xml"), 406, "not-supported")


# --- personas ------------------------------------------------------------------------------------
def test_treating_clinician_sees_own_patients_everything(fhir: Any) -> None:
    api = fhir.bearer(fhir.world.clinician.user)
    world = fhir.world
    mine = {str(world.patient_a.pk), str(world.patient_b.pk)}
    for resource_type in CLINICAL:
        response = api.get(f"/fhir/{resource_type}")
        bundle_ids(response)
        assert patient_refs(response) <= mine, resource_type
    obs = bundle_ids(api.get("/fhir/Observation", {"patient": str(world.patient_a.pk)}))
    assert set(obs) == {
        f"qr-{fhir.qr_a.pk}-total",
        f"qr-{fhir.qr_a.pk}-item9",
        f"qr-{fhir.qr_a_gad.pk}-total",
    }
    item9 = api.get(f"/fhir/Observation/qr-{fhir.qr_a.pk}-item9").json()
    assert item9["id"] == f"qr-{fhir.qr_a.pk}-item9"
    assert item9["code"]["coding"][0]["code"] == "44260-8"
    risk = api.get(f"/fhir/RiskAssessment/{fhir.alert_a.pk}").json()
    assert f"QuestionnaireResponse/{fhir.qr_a.pk}" in {b["reference"] for b in risk["basis"]}
    assert risk["method"]["coding"][0]["code"] == fhir.alert_a.rule_set_version
    flag = api.get(f"/fhir/Flag/{fhir.alert_a.pk}").json()
    assert flag["status"] == "active"
    patient = api.get(f"/fhir/Patient/{world.patient_a.pk}").json()
    assert "name" not in patient
    assert patient["identifier"][0]["value"] == world.patient_a.pseudonym
    assert patient["generalPractitioner"] == [{"reference": f"Practitioner/{world.clinician.pk}"}]
    # Raw diary text and display names never appear.
    assert "Alice" not in api.get("/fhir/Patient").content.decode()


def test_search_parameters(fhir: Any) -> None:
    api = fhir.bearer(fhir.world.clinician.user)
    pid = str(fhir.world.patient_a.pk)
    totals = bundle_ids(api.get("/fhir/Observation", {"code": "http://loinc.org|44261-6"}))
    assert set(totals) == {f"qr-{fhir.qr_a.pk}-total", f"qr-{fhir.qr_b.pk}-total"}
    assert bundle_ids(api.get("/fhir/Observation", {"code": "70274-6", "patient": pid})) == [
        f"qr-{fhir.qr_a_gad.pk}-total"
    ]
    survey = bundle_ids(api.get("/fhir/Observation", {"category": "survey"}))
    assert len(survey) == 5
    assert bundle_ids(api.get("/fhir/Observation", {"category": "laboratory"})) == []
    today = timezone.now().date()
    future = (today + dt.timedelta(days=2)).isoformat()
    past = (today - dt.timedelta(days=2)).isoformat()
    assert len(bundle_ids(api.get("/fhir/Observation", {"date": f"ge{past}"}))) == 5
    assert bundle_ids(api.get("/fhir/Observation", {"date": f"ge{future}"})) == []
    assert len(bundle_ids(api.get("/fhir/Observation", {"date": f"le{future}"}))) == 5
    assert (
        len(bundle_ids(api.get("/fhir/QuestionnaireResponse", {"_lastUpdated": f"ge{past}"}))) == 3
    )
    assert bundle_ids(api.get("/fhir/QuestionnaireResponse", {"_lastUpdated": f"le{past}"})) == []
    assert bundle_ids(api.get("/fhir/Flag", {"status": "active"})) == [str(fhir.alert_a.pk)]
    assert bundle_ids(api.get("/fhir/Flag", {"status": "inactive"})) == []
    qr_id = str(fhir.qr_b.pk)
    assert bundle_ids(api.get("/fhir/QuestionnaireResponse", {"_id": qr_id})) == [qr_id]
    consents = bundle_ids(api.get("/fhir/Consent", {"patient": pid, "status": "active"}))
    assert len(consents) == 3
    assert len(bundle_ids(api.get("/fhir/Observation", {"_count": "1"}))) == 1
    outcome(api.get("/fhir/Observation", {"_include": "Observation:patient"}), 400, "not-supported")
    outcome(api.get("/fhir/Observation", {"date": "yesterday"}), 400, "invalid")
    outcome(api.get("/fhir/Observation", {"_count": "many"}), 400, "invalid")
    # POST _search behaves like GET
    response = api.post(
        "/fhir/Observation/_search",
        f"code=44260-8&patient={pid}",
        content_type="application/x-www-form-urlencoded",
    )
    assert bundle_ids(response) == [f"qr-{fhir.qr_a.pk}-item9"]
    outcome(api.post("/fhir/Observation/_search", {"code": "x"}, format="json"), 415)


def test_consent_history(fhir: Any) -> None:
    from privacy.choices import ConsentScope
    from privacy.consent import consent_change

    patient = fhir.world.patient_a
    consent_change(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        scope=ConsentScope.VOICE_ANALYSIS,
        granted=False,
    )
    api = fhir.bearer(fhir.world.clinician.user)
    body = api.get("/fhir/Consent", {"patient": str(patient.pk)}).json()
    voice = [
        e["resource"]
        for e in body["entry"]
        if e["resource"]["provision"]["purpose"][0]["code"] == "voice_analysis"
    ]
    assert [(c["status"], c["provision"]["type"]) for c in voice] == [
        ("inactive", "permit"),
        ("active", "deny"),
    ]


def test_colleague_outside_care_team_sees_nothing_until_break_glass(fhir: Any) -> None:
    world = fhir.world
    api = fhir.bearer(world.colleague.user)
    for resource_type in CLINICAL:
        assert bundle_ids(api.get(f"/fhir/{resource_type}")) == [], resource_type
    assert bundle_ids(api.get("/fhir/Observation", {"patient": str(world.patient_a.pk)})) == []
    outcome(api.get(f"/fhir/Patient/{world.patient_a.pk}"), 404, "not-found")
    outcome(api.get(f"/fhir/RiskAssessment/{fhir.alert_a.pk}"), 404, "not-found")
    outcome(api.get(f"/fhir/Observation/qr-{fhir.qr_a.pk}-total"), 404, "not-found")
    denied = AccessEvent.objects.filter(
        actor=world.colleague.user, action="fhir.read", outcome="denied"
    )
    assert denied.count() == 3
    break_glass_open(
        actor=Actor(user_id=world.colleague.user_id, role="clinician"),
        clinician=world.colleague,
        patient=world.patient_a,
        reason="On call: patient A unreachable after a red alert",
    )
    response = api.get(f"/fhir/Observation/qr-{fhir.qr_a.pk}-total")
    assert response.status_code == 200
    event = AccessEvent.objects.filter(actor=world.colleague.user, action="fhir.read").first()
    assert (
        event.outcome == "allowed" and event.break_glass and event.patient_id == world.patient_a.pk
    )
    assert patient_refs(api.get("/fhir/Patient")) == {str(world.patient_a.pk)}  # not B


def test_auditor_sees_consent_and_audit_only(fhir: Any) -> None:
    world = fhir.world
    api = fhir.bearer(world.auditor.user)
    for resource_type in CLINICAL:
        if resource_type == "Consent":
            continue
        outcome(api.get(f"/fhir/{resource_type}"), 403, "forbidden")
    outcome(api.get(f"/fhir/Patient/{world.patient_a.pk}"), 403, "forbidden")
    assert len(bundle_ids(api.get("/fhir/Consent"))) == 6
    fhir.bearer(world.clinician.user).get(f"/fhir/Patient/{world.patient_a.pk}")
    events = api.get("/fhir/AuditEvent", {"patient": str(world.patient_a.pk), "_count": "500"})
    bundle_ids(events)
    subtypes = {e["resource"]["subtype"][0]["code"] for e in events.json()["entry"]}
    assert "fhir.read" in subtypes
    # Other clinics' events do not show.
    all_events = api.get("/fhir/AuditEvent", {"_count": "1000"}).json()
    other = str(fhir.other_patient.pk)
    assert other not in str(all_events)
    # The auditor's own refusals were logged.
    assert AccessEvent.objects.filter(
        actor=world.auditor.user, action="fhir.request", outcome="denied", status_code=403
    ).exists()


def test_audit_event_free_text_is_deidentified(fhir: Any) -> None:
    world = fhir.world
    break_glass_open(
        actor=Actor(user_id=world.colleague.user_id, role="clinician"),
        clinician=world.colleague,
        patient=world.patient_a,
        reason="Alice Example did not answer, call 555-123-4567",
    )
    api = fhir.bearer(world.auditor.user)
    text = api.get("/fhir/AuditEvent", {"patient": str(world.patient_a.pk), "_count": "500"})
    content = text.content.decode()
    assert "break_glass.open" in content
    assert "Alice" not in content and "555-123-4567" not in content


def test_resolution_note_is_deidentified(fhir: Any) -> None:
    Alert.objects.filter(pk=fhir.alert_a.pk).update(state="resolved")
    alert = Alert.objects.get(pk=fhir.alert_a.pk)
    alert.resolution_note = "Spoke with Alice Example, safe, follow-up booked."
    alert.save(update_fields=["resolution_note"])
    api = fhir.bearer(fhir.world.clinician.user)
    body = api.get(f"/fhir/RiskAssessment/{alert.pk}").json()
    assert body["note"] and "Alice" not in body["note"][0]["text"]
    assert "follow-up" in body["note"][0]["text"]
    assert api.get(f"/fhir/Flag/{alert.pk}").json()["status"] == "inactive"


def test_integration_client_is_limited_to_its_clinic(fhir: Any) -> None:
    world = fhir.world
    mine = client_token(*fhir.clinic_client_secret)
    theirs = client_token(*fhir.other_clinic_client_secret)
    pids = {str(world.patient_a.pk), str(world.patient_b.pk)}
    assert patient_refs(mine.get("/fhir/Patient")) == pids
    assert patient_refs(theirs.get("/fhir/Patient")) == {str(fhir.other_patient.pk)}
    for resource_type in CLINICAL:
        assert patient_refs(theirs.get(f"/fhir/{resource_type}")).isdisjoint(pids), resource_type
    for resource_type in ("Organization", "Practitioner", "CareTeam"):
        ours = set(bundle_ids(mine.get(f"/fhir/{resource_type}")))
        assert ours and ours.isdisjoint(bundle_ids(theirs.get(f"/fhir/{resource_type}")))
    outcome(theirs.get(f"/fhir/Organization/{world.clinic.pk}"), 404, "not-found")
    outcome(theirs.get(f"/fhir/Practitioner/{world.clinician.pk}"), 404, "not-found")
    outcome(theirs.get(f"/fhir/Patient/{world.patient_a.pk}"), 404, "not-found")
    outcome(theirs.get(f"/fhir/Flag/{fhir.alert_a.pk}"), 404, "not-found")
    assert bundle_ids(mine.get("/fhir/AuditEvent", {"_count": "5"}))
    event = AccessEvent.objects.filter(
        action="fhir.search", actor__fhir_client__isnull=False
    ).first()
    assert event is not None and event.actor_role == "fhir_client"


def test_client_scopes_are_narrowed(fhir: Any) -> None:
    api = client_token(*fhir.clinic_client_secret, scope="system/Observation.rs")
    assert bundle_ids(api.get("/fhir/Observation"))
    outcome(api.get("/fhir/Patient"), 403, "forbidden")
    outcome(api.get("/fhir/AuditEvent"), 403, "forbidden")


def test_token_endpoint_errors(fhir: Any) -> None:
    client_id, secret = fhir.clinic_client_secret
    api = APIClient()
    bad = api.post(
        "/fhir/auth/token",
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": "nope"},
        format="multipart",
    )
    assert bad.status_code == 401 and bad.json() == {"error": "invalid_client"}
    wrong = api.post("/fhir/auth/token", {"grant_type": "password"}, format="multipart")
    assert wrong.status_code == 400 and wrong.json()["error"] == "unsupported_grant_type"
    import base64

    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    ok = api.post(
        "/fhir/auth/token",
        {"grant_type": "client_credentials"},
        format="multipart",
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert ok.status_code == 200 and ok.json()["scope"] == "system/*.rs"
    assert AccessEvent.objects.filter(action="fhir.token", outcome="denied").exists()


def test_clinician_token_scopes(fhir: Any) -> None:
    token, raw = token_issue(user=fhir.world.clinician.user, name="fhir")
    token_scopes_set(token=token, scopes="user/Observation.rs user/AuditEvent.rs")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert bundle_ids(api.get("/fhir/Observation"))
    outcome(api.get("/fhir/Flag"), 403, "forbidden")
    # The role caps the scopes: a clinician never reads the audit log through FHIR.
    outcome(api.get("/fhir/AuditEvent"), 403, "forbidden")


def test_patient_and_anonymous_are_refused(fhir: Any, client_a: APIClient, anon: APIClient) -> None:
    pid = fhir.world.patient_a.pk
    for path in ("/fhir/Observation", f"/fhir/Patient/{pid}", "/fhir/AuditEvent"):
        body = outcome(anon.get(path), 401, "login")
        assert "Alice" not in str(body)
        outcome(client_a.get(path), 403, "forbidden")
    assert anon.get("/fhir/Observation")["WWW-Authenticate"].startswith("Bearer")
    bogus = APIClient()
    bogus.credentials(HTTP_AUTHORIZATION="Bearer vgl_not-a-token")
    outcome(bogus.get("/fhir/Observation"), 401, "login")
    assert AccessEvent.objects.filter(action="fhir.request", status_code=401).exists()


def test_unknown_routes_and_methods_are_operation_outcomes(fhir: Any) -> None:
    api = fhir.bearer(fhir.world.clinician.user)
    outcome(api.get("/fhir/Medication"), 404, "not-supported")
    outcome(api.get("/fhir/Patient/not-a-real-id"), 404, "not-found")
    outcome(api.get("/fhir/totally/unknown/path"), 404, "not-found")
    outcome(api.delete(f"/fhir/Patient/{fhir.world.patient_a.pk}"), 405, "not-supported")


def test_every_read_and_search_is_audited(fhir: Any) -> None:
    world = fhir.world
    api = fhir.bearer(world.clinician.user)
    before = AccessEvent.objects.count()
    api.get(f"/fhir/QuestionnaireResponse/{fhir.qr_a.pk}")
    read = AccessEvent.objects.order_by("-seq").first()
    assert (read.action, read.patient_id, read.resource_type, read.outcome) == (
        "fhir.read",
        world.patient_a.pk,
        "QuestionnaireResponse",
        "allowed",
    )
    api.get("/fhir/Observation")
    events = AccessEvent.objects.filter(action="fhir.search").order_by("-seq")[:2]
    assert {e.patient_id for e in events} == {world.patient_a.pk, world.patient_b.pk}
    assert AccessEvent.objects.count() == before + 3


# --- paging --------------------------------------------------------------------------------------
def _all_pages(api: APIClient, url: str, params: dict[str, str], between: Any = None) -> list[str]:
    ids: list[str] = []
    response = api.get(url, params)
    pages = 0
    while True:
        ids.extend(bundle_ids(response))
        pages += 1
        links = {link["relation"]: link["url"] for link in response.json()["link"]}
        if "next" not in links:
            return ids
        if between is not None:  # rows inserted while a client pages
            between(pages)
        assert "_cursor=" in links["next"]
        response = api.get(links["next"].replace("http://testserver", ""))


@pytest.mark.parametrize("page", [1, 2, 3, 7])
def test_paging_has_no_duplicates_or_gaps_while_rows_are_inserted(fhir: Any, page: int) -> None:
    world = fhir.world
    api = fhir.bearer(world.clinician.user)
    for i in range(6):
        submit(world.patient_b, "gad7", [i % 4, 0, 0, 0, 0, 0, 0])
    before = set(_all_pages(api, "/fhir/Observation", {"_count": "50"}))
    inserted: list[str] = []

    def insert(n: int) -> None:
        if n <= 3:
            qr = submit(world.patient_b, "phq9", [1] * 9)
            inserted.extend([f"qr-{qr.pk}-total", f"qr-{qr.pk}-item9"])

    ids = _all_pages(api, "/fhir/Observation", {"_count": str(page)}, between=insert)
    assert len(ids) == len(set(ids)), "duplicates across pages"
    assert before <= set(ids), "rows present before the search were skipped"
    # Rows inserted while paging come after the cursor: they appear, at the end, once.
    assert set(ids) - before == set(inserted)


def test_cursor_is_opaque_and_bound_to_its_query(fhir: Any) -> None:
    api = fhir.bearer(fhir.world.clinician.user)
    first = api.get("/fhir/Observation", {"_count": "1"}).json()
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    cursor = next_url.split("_cursor=")[1]
    outcome(api.get("/fhir/Observation", {"_count": "1", "_cursor": cursor + "x"}), 400, "invalid")
    outcome(api.get("/fhir/Flag", {"_count": "1", "_cursor": cursor}), 400, "invalid")
