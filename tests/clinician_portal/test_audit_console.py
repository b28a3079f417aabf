"""The auditor console: access log, consent ledger (and CSV), break-glass reviews, chain."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client

from privacy.audit import Actor
from privacy.breakglass import break_glass_open
from privacy.models import AccessEvent, BreakGlassReview
from tests.clinician_portal.conftest import Portal, raise_help_alert
from tests.factories import CareTeamFactory, OrganisationFactory, make_auditor


def _open_glass(portal: Portal) -> Any:
    world = portal.world
    return break_glass_open(
        actor=Actor(user_id=world.colleague.user_id, role="clinician"),
        clinician=world.colleague,
        patient=world.patient_a,
        reason="Covering the on-call rota for a patient in distress.",
    )


def test_access_log_filters(portal: Portal, auditor: Client) -> None:
    world = portal.world
    raise_help_alert(world.patient_a)
    _open_glass(portal)
    response = auditor.get("/portal/audit/events/")
    assert response.status_code == 200
    actions = {e.action for e in response.context["events"]}
    assert {"alert.raise", "break_glass.open"} <= actions
    only_bg = auditor.get("/portal/audit/events/?break_glass=1").context["events"]
    assert only_bg and all(e.break_glass for e in only_bg)
    assert b"break-glass" in auditor.get("/portal/audit/events/?break_glass=1").content
    by_patient = auditor.get(f"/portal/audit/events/?patient={world.patient_b.pseudonym}").context[
        "events"
    ]
    assert by_patient and all(e.patient_id == world.patient_b.pk for e in by_patient)
    by_actor = auditor.get(f"/portal/audit/events/?actor={world.colleague.user.username}").context[
        "events"
    ]
    assert by_actor and all(e.actor_id == world.colleague.user_id for e in by_actor)
    by_action = auditor.get("/portal/audit/events/?action=alert.raise").context["events"]
    assert [e.action for e in by_action] == ["alert.raise"]
    assert auditor.get("/portal/audit/events/?since=2999-01-01").context["events"] == []


def test_access_log_never_shows_clinical_content(portal: Portal, auditor: Client) -> None:
    alert = raise_help_alert(portal.world.patient_a)
    body = auditor.get("/portal/audit/events/").content.decode()
    assert "Alice Example" not in body
    assert str(alert.evidence) not in body
    assert auditor.get(f"/portal/alerts/{alert.pk}").status_code == 403


def test_other_clinics_events_are_not_listed(portal: Portal, db: Any) -> None:
    other = OrganisationFactory()
    CareTeamFactory(organisation=other)
    stranger = make_auditor(organisation=other)
    client = portal.sign_in(stranger.user)
    raise_help_alert(portal.world.patient_a)
    events = client.get("/portal/audit/events/").context["events"]
    assert all(e.patient_id is None or e.patient_id != portal.world.patient_a.pk for e in events)


def test_consent_ledger_and_csv(portal: Portal, auditor: Client) -> None:
    world = portal.world
    response = auditor.get(f"/portal/audit/consents/?patient={world.patient_a.pseudonym}")
    assert response.status_code == 200
    records = response.context["records"]
    assert len(records) == 3 and all(r.patient_id == world.patient_a.pk for r in records)
    export = auditor.get(f"/portal/audit/consents/?patient={world.patient_a.pseudonym}&export=csv")
    assert export.status_code == 200
    assert export["Content-Type"].startswith("text/csv")
    text = b"".join(export.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3
    assert {r["patient"] for r in rows} == {world.patient_a.pseudonym}
    assert {r["decision"] for r in rows} == {"grant"}
    assert all(r["document_version"] == "1" and len(r["document_sha256"]) == 64 for r in rows)
    scoped = auditor.get("/portal/audit/consents/?scope=text_analysis").context["records"]
    assert len(scoped) == 2
    assert AccessEvent.objects.filter(action="audit.consents").count() == 3


def test_break_glass_review(portal: Portal, auditor: Client) -> None:
    access = _open_glass(portal)
    page = auditor.get("/portal/audit/break-glass/?reviewed=0")
    assert [a.pk for a in page.context["accesses"]] == [access.pk]
    bad = auditor.post(
        f"/portal/audit/break-glass/{access.pk}/review", {"verdict": "inappropriate"}
    )
    assert bad.status_code == 400  # a note is required for "not appropriate"
    ok = auditor.post(
        f"/portal/audit/break-glass/{access.pk}/review",
        {"verdict": "appropriate", "note": "On-call cover confirmed."},
    )
    assert ok.status_code == 302
    review = BreakGlassReview.objects.get(access=access)
    assert review.appropriate and review.reviewer_id == portal.world.auditor.user_id
    assert auditor.get("/portal/audit/break-glass/?reviewed=0").context["accesses"] == []


def test_clinician_cannot_review_or_use_the_console(portal: Portal, treating: Client) -> None:
    access = _open_glass(portal)
    for path in (
        "/portal/audit/events/",
        "/portal/audit/consents/",
        "/portal/audit/break-glass/",
        "/portal/audit/chain/",
    ):
        assert treating.get(path).status_code == 403
    response = treating.post(
        f"/portal/audit/break-glass/{access.pk}/review", {"verdict": "appropriate"}
    )
    assert response.status_code == 403
    assert not BreakGlassReview.objects.exists()


def test_other_clinics_auditor_gets_404_on_review(portal: Portal) -> None:
    access = _open_glass(portal)
    other = OrganisationFactory()
    client = portal.sign_in(make_auditor(organisation=other).user)
    response = client.post(
        f"/portal/audit/break-glass/{access.pk}/review", {"verdict": "appropriate"}
    )
    assert response.status_code == 404
    assert not BreakGlassReview.objects.exists()


def test_chain_verification(portal: Portal, auditor: Client) -> None:
    raise_help_alert(portal.world.patient_a)
    first = auditor.get("/portal/audit/chain/")
    assert first.status_code == 200
    assert first.context["result"] is None
    ran = auditor.post("/portal/audit/chain/")
    assert ran.status_code == 200
    result = ran.context["result"]
    assert result.ok and result.events_checked > 0
    assert result.head_hash.encode() in ran.content
    again = auditor.get("/portal/audit/chain/")
    assert again.context["result"].head_seq == result.head_seq


def test_chain_break_is_shown(portal: Portal, auditor: Client) -> None:
    from django.db import connection

    raise_help_alert(portal.world.patient_a)
    victim = AccessEvent.objects.order_by("seq").first()
    assert victim is not None
    with connection.cursor() as cursor:  # tamper behind the append-only model's back
        cursor.execute(
            f"UPDATE {AccessEvent._meta.db_table} SET action = %s WHERE id = %s",  # noqa: S608
            ["tampered", victim.pk],
        )
    response = auditor.post("/portal/audit/chain/")
    assert not response.context["result"].ok
    assert b"Break found" in response.content


@pytest.mark.parametrize(
    "path", ["/portal/audit/events/", "/portal/audit/consents/", "/portal/audit/chain/"]
)
def test_console_query_counts(
    portal: Portal, auditor: Client, path: str, django_assert_max_num_queries: Any
) -> None:
    for _ in range(5):
        raise_help_alert(portal.world.patient_a)
    with django_assert_max_num_queries(16):
        assert auditor.get(path).status_code == 200


# --- callers that were not signed in --------------------------------------------------------------
PROBER = "203.0.113.7"


def _anonymous_refusals(portal: Portal) -> list[AccessEvent]:
    """A patient API call, a FHIR read with a pseudonym in its path, and a portal sign-in with an
    unknown username, all from PROBER without signing in."""
    world = portal.world
    anon = Client(REMOTE_ADDR=PROBER)
    assert anon.get("/api/v1/me").status_code == 401
    assert anon.get(f"/fhir/Patient/{world.patient_a.pseudonym}").status_code == 401
    anon.post("/portal/login/", {"username": "no-such-user-x7", "password": "nope"})
    events = list(AccessEvent.objects.filter(actor__isnull=True, actor_role="anonymous"))
    assert len(events) == 3 and all(e.ip_address == PROBER for e in events)
    return events


def test_access_log_shows_anonymous_refusals_with_the_callers_address(
    portal: Portal, auditor: Client
) -> None:
    world = portal.world
    refused = _anonymous_refusals(portal)
    raise_help_alert(world.patient_a)
    response = auditor.get("/portal/audit/events/")
    assert {e.pk for e in refused} <= {e.pk for e in response.context["events"]}
    body = response.content.decode()
    assert PROBER in body and "anonymous" in body
    only = auditor.get("/portal/audit/events/?role=anonymous").context["events"]
    assert {e.pk for e in only} == {e.pk for e in refused}
    by_ip = auditor.get(f"/portal/audit/events/?ip={PROBER}&action=fhir.request").context["events"]
    assert [(e.action, e.resource_type, e.status_code) for e in by_ip] == [
        ("fhir.request", "Patient", 401)
    ]
    # Nothing a prober typed is shown: not the pseudonym in a path, not the username tried.
    assert (
        "no-such-user-x7"
        not in auditor.get("/portal/audit/events/?role=anonymous").content.decode()
    )


def test_access_log_names_patients_by_pseudonym_and_shows_no_signed_in_address(
    portal: Portal, auditor: Client
) -> None:
    world = portal.world
    assert world.client_for(world.patient_a.user).get("/api/v1/me", REMOTE_ADDR=PROBER).status_code
    assert AccessEvent.objects.filter(actor_id=world.patient_a.user_id, ip_address=PROBER).exists()
    body = auditor.get("/portal/audit/events/?role=patient").content.decode()
    assert world.patient_a.pseudonym in body
    assert world.patient_a.user.username not in body
    assert PROBER not in body
    assert auditor.get(f"/portal/audit/events/?ip={PROBER}").context["events"] == []


def test_another_clinics_auditor_sees_the_anonymous_refusals_but_no_patient(
    portal: Portal, db: Any
) -> None:
    refused = _anonymous_refusals(portal)
    stranger = make_auditor(organisation=OrganisationFactory())
    response = portal.sign_in(stranger.user).get("/portal/audit/events/?role=anonymous")
    assert {e.pk for e in response.context["events"]} == {e.pk for e in refused}
    body = response.content.decode()
    assert portal.world.patient_a.pseudonym not in body
    assert portal.world.patient_a.user.username not in body


@pytest.mark.parametrize(
    ("bad", "label"),
    [
        ("role=superuser", "Actor role"),
        ("ip=not-an-address", "Client IP (not signed in)"),
        ("since=garbage", "Since"),
        ("until=2025-13-45", "Until"),
        ("outcome=maybe", "Outcome"),
        ("break_glass=2", "Break glass"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it_with_nothing_listed(
    portal: Portal, auditor: Client, bad: str, label: str
) -> None:
    world = portal.world
    raise_help_alert(world.patient_a)
    raise_help_alert(world.patient_b)
    before = set(AccessEvent.objects.values_list("pk", flat=True))
    # With a valid patient filter next to the bad one: neither filter may be dropped.
    response = auditor.get(f"/portal/audit/events/?patient={world.patient_b.pseudonym}&{bad}")
    assert response.status_code == 400
    body = response.content.decode()
    assert 'role="alert"' in body and f"{label}:" in body
    assert "events" not in response.context  # nothing listed
    assert world.patient_a.pseudonym not in body and "alert.raise" not in body
    assert not AccessEvent.objects.exclude(pk__in=before).exists()  # nothing was read


def test_a_bad_consent_filter_is_a_400_and_exports_nothing(portal: Portal, auditor: Client) -> None:
    world = portal.world
    for extra in ("", "&export=csv"):
        response = auditor.get(
            f"/portal/audit/consents/?patient={world.patient_b.pseudonym}&since=garbage{extra}"
        )
        assert response.status_code == 400
        assert not response.streaming and not response["Content-Type"].startswith("text/csv")
        body = response.content.decode()
        assert 'role="alert"' in body and "Since:" in body
        assert "records" not in response.context
        assert world.patient_a.pseudonym not in body
        assert "export=csv" not in body  # no export link either


def test_the_actor_filter_never_matches_a_patients_username(
    portal: Portal, auditor: Client
) -> None:
    world = portal.world
    assert world.client_for(world.patient_a.user).get("/api/v1/me").status_code == 200
    assert AccessEvent.objects.filter(actor_id=world.patient_a.user_id).exists()
    response = auditor.get(f"/portal/audit/events/?actor={world.patient_a.user.username}")
    assert response.status_code == 200
    assert response.context["events"] == []
    assert world.patient_a.pseudonym not in response.content.decode()
    # A patient is found by pseudonym, as the log names them; staff by username.
    by_pseudonym = auditor.get(f"/portal/audit/events/?actor={world.patient_a.pseudonym}")
    events = by_pseudonym.context["events"]
    assert events and all(e.actor_id == world.patient_a.user_id for e in events)
