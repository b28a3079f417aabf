"""Consent: the state of every scope, grants tied to a published document, append-only history."""

from __future__ import annotations

import hashlib

import pytest
from django.db import transaction

from privacy.choices import ConsentScope
from privacy.consent import consent_document_publish, consent_has
from privacy.models import AccessEvent, AppendOnlyError, ConsentRecord
from tests.conftest import assert_error

URL = "/api/v1/consents"
HISTORY = "/api/v1/consents/history"
GRANTED_BY_WORLD = {"text_analysis", "voice_analysis", "face_analysis"}


def _state(client) -> dict[str, dict]:
    return {row["scope"]: row for row in client.get(URL).json()["scopes"]}


def test_get_shows_every_scope_with_its_state(world, client_a):
    response = client_a.get(URL)
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"scopes", "documents"}
    state = {row["scope"]: row for row in data["scopes"]}
    assert set(state) == set(ConsentScope.values)
    for scope, row in state.items():
        assert row["label"] == ConsentScope(scope).label
        if scope in GRANTED_BY_WORLD:
            assert row["granted"] is True
            assert row["document_version"] == "1"
            assert row["decided_at"]
        else:
            assert row["granted"] is False
            assert row["decided_at"] is None
            assert row["document_version"] == ""
    documents = {d["scope"]: d for d in data["documents"]}
    assert set(documents) == set(ConsentScope.values)
    for scope, document in documents.items():
        assert document["version"] == "1"
        assert document["text"] == f"Consent text for {scope}."
        assert document["sha256"] == hashlib.sha256(document["text"].encode()).hexdigest()


def test_grant_names_the_published_document_version(world, client_a):
    response = client_a.post(
        URL, {"scope": "research", "granted": True, "document_version": "1"}, format="json"
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == {
        "id",
        "scope",
        "granted",
        "document_version",
        "document_sha256",
        "created_at",
    }
    assert (data["scope"], data["granted"], data["document_version"]) == ("research", True, "1")
    assert data["document_sha256"] == hashlib.sha256(b"Consent text for research.").hexdigest()
    record = ConsentRecord.objects.get(pk=data["id"])
    assert record.patient_id == world.patient_a.pk
    assert record.actor_id == world.patient_a.user_id
    assert record.document.version == "1"
    assert record.source == "api"
    assert _state(client_a)["research"]["granted"] is True
    event = AccessEvent.objects.get(request_id=response["X-Request-ID"])
    assert (event.action, event.outcome, event.patient_id, event.resource_id) == (
        "consent.grant",
        "allowed",
        world.patient_a.pk,
        str(record.pk),
    )


def test_a_newer_document_is_shown_and_can_be_granted(world, client_a):
    consent_document_publish(scope="research", version="2", text="Research consent, revised.")
    documents = {d["scope"]: d for d in client_a.get(URL).json()["documents"]}
    assert documents["research"]["version"] == "2"
    response = client_a.post(
        URL, {"scope": "research", "granted": True, "document_version": "2"}, format="json"
    )
    assert response.status_code == 201
    assert _state(client_a)["research"]["document_version"] == "2"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "research", "granted": True, "document_version": "99"}, "document_version"),
        ({"scope": "research", "granted": True}, "document_version"),
        ({"scope": "research", "granted": True, "document_version": ""}, "document_version"),
        # A version that exists, but for another scope.
        ({"scope": "research", "granted": True, "document_version": "x"}, "document_version"),
        ({"scope": "mind_reading", "granted": True, "document_version": "1"}, "scope"),
        ({"scope": "research", "document_version": "1"}, "granted"),
        ({"scope": "research", "granted": "maybe", "document_version": "1"}, "granted"),
        # A decision is a JSON boolean: DRF would read "yes", "true", "1" and 1 as a grant.
        ({"scope": "research", "granted": "yes", "document_version": "1"}, "granted"),
        ({"scope": "research", "granted": "true", "document_version": "1"}, "granted"),
        ({"scope": "research", "granted": 1, "document_version": "1"}, "granted"),
        ({"scope": "research", "granted": True, "document_version": "1", "grant": True}, "grant"),
        ({"granted": True, "document_version": "1"}, "scope"),
        ({"scope": "research", "granted": True, "document_version": "1" * 33}, "document_version"),
    ],
)
def test_invalid_changes_are_400_and_store_nothing(world, client_a, body, field):
    consent_document_publish(scope="text_analysis", version="x", text="Only for text analysis.")
    before = ConsentRecord.objects.count()
    error = assert_error(client_a.post(URL, body, format="json"), 400, "validation_failed")
    assert field in error["fields"]
    assert ConsentRecord.objects.count() == before
    assert not consent_has(patient=world.patient_a, scope="research")


def test_withdrawal_is_a_new_row_and_the_grant_is_unchanged(world, client_a):
    grant = ConsentRecord.objects.filter(patient=world.patient_a, scope="text_analysis").get()
    grant_before = ConsentRecord.objects.filter(pk=grant.pk).values().get()
    count_before = ConsentRecord.objects.count()
    response = client_a.post(URL, {"scope": "text_analysis", "granted": False}, format="json")
    assert response.status_code == 201
    data = response.json()
    assert data["id"] != grant.pk
    assert (data["granted"], data["document_version"], data["document_sha256"]) == (False, "", "")
    assert ConsentRecord.objects.count() == count_before + 1
    assert ConsentRecord.objects.filter(pk=grant.pk).values().get() == grant_before
    assert _state(client_a)["text_analysis"]["granted"] is False
    assert not consent_has(patient=world.patient_a, scope="text_analysis")
    event = AccessEvent.objects.get(request_id=response["X-Request-ID"])
    assert event.action == "consent.withdraw"
    # Granting again is a third row; the history keeps all three.
    again = client_a.post(
        URL, {"scope": "text_analysis", "granted": True, "document_version": "1"}, format="json"
    )
    assert again.status_code == 201
    assert _state(client_a)["text_analysis"]["granted"] is True
    assert ConsentRecord.objects.filter(patient=world.patient_a, scope="text_analysis").count() == 3


def test_history_pages_newest_first_and_only_own(world, client_a, client_b):
    for granted in (False, True, False):
        body = {"scope": "research", "granted": granted, "document_version": "1"}
        assert client_a.post(URL, body, format="json").status_code == 201
    client_b.post(URL, {"scope": "research", "granted": False}, format="json")
    expected = list(
        ConsentRecord.objects.filter(patient=world.patient_a)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )
    assert len(expected) == 6
    page = client_a.get(HISTORY, {"page_size": 4})
    assert page.status_code == 200
    data = page.json()
    seen = [row["id"] for row in data["results"]]
    assert len(seen) == 4
    assert [row["granted"] for row in data["results"][:3]] == [False, True, False]
    assert data["results"][0]["scope"] == "research"
    data = client_a.get(data["next"]).json()
    seen += [row["id"] for row in data["results"]]
    assert data["next"] is None
    assert seen == expected
    created = [row["created_at"] for row in client_a.get(HISTORY).json()["results"]]
    assert created == sorted(created, reverse=True)


# --- append-only at the model level ----------------------------------------------------------
def test_consent_records_refuse_to_change_or_disappear(world):
    record = ConsentRecord.objects.filter(patient=world.patient_a).first()
    assert record is not None
    record.granted = not record.granted
    with pytest.raises(AppendOnlyError):
        record.save()
    with pytest.raises(AppendOnlyError):
        record.delete()
    with pytest.raises(AppendOnlyError):
        ConsentRecord.objects.filter(pk=record.pk).update(granted=False)
    with pytest.raises(AppendOnlyError):
        ConsentRecord.objects.filter(pk=record.pk).delete()
    with pytest.raises(AppendOnlyError):
        ConsentRecord.objects.update(granted=False)
    with pytest.raises(AppendOnlyError):
        ConsentRecord.objects.all().delete()
    with pytest.raises(AppendOnlyError), transaction.atomic():
        ConsentRecord.objects.bulk_update([record], ["granted"])
    fresh = ConsentRecord.objects.get(pk=record.pk)
    assert fresh.granted is not record.granted


def test_access_events_are_append_only_too(world, client_a):
    client_a.get("/api/v1/me")
    event = AccessEvent.objects.first()
    assert event is not None
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AccessEvent.objects.filter(pk=event.pk).update(outcome="denied")
    with pytest.raises(AppendOnlyError):
        AccessEvent.objects.all().delete()


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ("/api/v1/consents", "consent.read"),
        ("/api/v1/consents/history", "consent.history"),
        ("/api/v1/me", "profile.read"),
    ],
)
def test_reads_of_consent_and_profile_are_access_events(world, client_a, path, action):
    before = AccessEvent.objects.filter(action=action).count()
    assert client_a.get(path).status_code == 200
    event = AccessEvent.objects.filter(action=action).order_by("-id").first()
    assert AccessEvent.objects.filter(action=action).count() == before + 1
    assert event.patient_id == world.patient_a.pk
    assert event.outcome == "allowed"
