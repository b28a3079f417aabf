"""The privacy admin: consent documents are published (hashed) and never changed or deleted;
consent records shown in the admin are access events."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.test import Client

from privacy.models import AccessEvent, ConsentDocument, ConsentRecord
from screening.models import User

TEXT = "We analyse the words of your diary to estimate your mood.\nYou may withdraw at any time."


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


def test_a_consent_document_added_in_the_admin_is_published_with_its_hash(
    world, staff, admin_client
):
    url = "/admin/privacy/consentdocument/add/"
    assert admin_client.get(url).status_code == 200
    form = {"scope": "text_analysis", "version": "2", "text": TEXT}
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content[:800]
    document = ConsentDocument.objects.get(scope="text_analysis", version="2")
    assert document.text == TEXT
    assert document.sha256 == hashlib.sha256(TEXT.encode("utf-8")).hexdigest()
    (event,) = AccessEvent.objects.filter(action="consent.document_publish")
    assert (event.actor_id, event.resource_id) == (staff.pk, str(document.pk))
    assert TEXT not in event.purpose and document.sha256[:16] in event.purpose


def test_a_published_version_cannot_be_published_again_with_other_text(world, admin_client):
    before = ConsentDocument.objects.get(scope="text_analysis", version="1")
    form = {"scope": "text_analysis", "version": "1", "text": "Other words."}
    response = admin_client.post("/admin/privacy/consentdocument/add/", form)
    assert response.status_code == 200 and b"already exists" in response.content
    after = ConsentDocument.objects.get(scope="text_analysis", version="1")
    assert (after.text, after.sha256) == (before.text, before.sha256)


def test_a_published_consent_document_cannot_be_changed_or_deleted(world, admin_client):
    document = ConsentDocument.objects.get(scope="text_analysis", version="1")
    url = f"/admin/privacy/consentdocument/{document.pk}/"
    page = admin_client.get(f"{url}change/")
    assert page.status_code == 200  # shown read-only
    assert b'name="text"' not in page.content and document.text.encode() in page.content

    form = {"scope": document.scope, "version": document.version, "text": "Edited in place."}
    assert admin_client.post(f"{url}change/", form).status_code == 403
    assert admin_client.get(f"{url}delete/").status_code == 403
    assert admin_client.post(f"{url}delete/", {"post": "yes"}).status_code == 403
    admin_client.post(
        "/admin/privacy/consentdocument/",
        {"action": "delete_selected", "_selected_action": [str(document.pk)], "post": "yes"},
    )
    stored = ConsentDocument.objects.get(pk=document.pk)
    assert (stored.text, stored.sha256) == (document.text, document.sha256)
    # The records that name it still point at the text the patients saw.
    record = ConsentRecord.objects.filter(document=document).first()
    assert record is not None and record.document_sha256 == stored.sha256


def test_consent_records_shown_in_the_admin_are_access_events(world, staff, admin_client):
    record = ConsentRecord.objects.filter(patient=world.patient_b).first()
    assert record is not None
    url = f"/admin/privacy/consentrecord/{record.pk}/change/"
    assert admin_client.get(url).status_code == 200
    [view] = AccessEvent.objects.filter(action="admin.consentrecord.view")
    assert (view.actor_id, view.patient_id) == (staff.pk, world.patient_b.pk)
    assert (view.resource_type, view.resource_id) == ("ConsentRecord", str(record.pk))

    assert admin_client.get("/admin/privacy/consentrecord/").status_code == 200
    listed = AccessEvent.objects.filter(action="admin.consentrecord.list")
    assert {(e.actor_id, e.patient_id) for e in listed} == {
        (staff.pk, world.patient_a.pk),
        (staff.pk, world.patient_b.pk),
    }  # both patients listed, each in their own trail
    filtered = f"/admin/privacy/consentrecord/?patient__id__exact={world.patient_a.pk}"
    assert admin_client.get(filtered).status_code == 200
    latest = AccessEvent.objects.filter(action="admin.consentrecord.list").order_by("-seq")[0]
    assert latest.patient_id == world.patient_a.pk
