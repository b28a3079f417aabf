"""The admin: rule-set selection with threshold overrides and the escalation policy are validated
and every change is audited; alerts and the outbox are read-only and show no encrypted content."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from privacy.models import AccessEvent
from risk.models import Alert, EscalationPolicy, RuleSetChange, RuleSetSelection
from screening.models import User
from tests.risk.conftest import phq9, submit_phq9


@pytest.fixture
def admin_client(rw: Any) -> tuple[Client, User]:
    user = User.objects.create_superuser(
        username="root-admin", email="root@clinic.test", password="x" * 16, role="admin"
    )
    client = Client()
    client.force_login(user)
    return client, user


def _selection_form(clinic_id: int, overrides: str, version: str = "v1") -> dict[str, Any]:
    return {"organisation": clinic_id, "version": version, "threshold_overrides": overrides}


def test_a_rule_set_change_in_the_admin_is_validated_and_audited(rw, admin_client):
    client, user = admin_client
    clinic = rw.world.clinic
    url = "/admin/risk/rulesetselection/add/"
    assert client.get(url).status_code == 200

    refused = client.post(url, _selection_form(clinic.pk, '{"phq9_item9": {"item9_at_least": 2}}'))
    assert refused.status_code == 200 and b"may not be overridden" in refused.content
    assert not RuleSetSelection.objects.exists()
    assert not AccessEvent.objects.filter(action="risk.ruleset_change").exists()

    saved = client.post(url, _selection_form(clinic.pk, '{"phq9_total": {"total_at_least": 18}}'))
    assert saved.status_code == 302, saved.content[:500]
    selection = RuleSetSelection.objects.get()
    assert selection.threshold_overrides == {"phq9_total": {"total_at_least": 18}}
    assert selection.updated_by == user
    event = AccessEvent.objects.get(action="risk.ruleset_change")
    assert (event.actor_id, event.resource_id) == (user.pk, str(selection.pk))

    change_url = f"/admin/risk/rulesetselection/{selection.pk}/change/"
    page = client.get(change_url)
    assert page.status_code == 200 and b"total_at_least" in page.content
    assert client.post(change_url, _selection_form(clinic.pk, "{}")).status_code == 302
    assert AccessEvent.objects.filter(action="risk.ruleset_change").count() == 2
    assert [c.after["threshold_overrides"] for c in RuleSetChange.objects.order_by("id")] == [
        {"phq9_total": {"total_at_least": 18}},
        {},
    ]

    # The clinic's new threshold is what the engine uses.
    submit_phq9(rw.patient, phq9(18, 0))
    assert not Alert.objects.exists()  # back to the default of 20 after the second change


def test_an_escalation_policy_change_is_audited(rw, admin_client):
    client, user = admin_client
    policy = rw.policy
    url = f"/admin/risk/escalationpolicy/{policy.pk}/change/"
    assert client.get(url).status_code == 200
    form = {
        "organisation": rw.world.clinic.pk,
        "red_ack_minutes": 3,
        "orange_ack_minutes": 20,
        "yellow_ack_time": "09:30",
        "working_weekdays": "[0, 1, 2, 3, 4, 5]",
        "non_working_dates": '["2025-12-25"]',
        "chain": '[{"target": "care_team", "delay_minutes": 5, "repeat": 1}]',
        "on_call": rw.on_call.pk,
        "clinical_lead": rw.lead.pk,
        "page_tiers": '["red"]',
        "emergency_contact_tiers": '["orange"]',
        "emergency_contact_message": "Please call {clinic}.",
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content[:800]
    policy = EscalationPolicy.objects.get()
    assert (policy.red_ack_minutes, policy.chain[0]["target"]) == (3, "care_team")
    assert AccessEvent.objects.filter(action="risk.policy_change", actor=user).count() == 1

    bad = client.post(url, {**form, "chain": '[{"target": "nobody"}]'})
    assert bad.status_code == 200
    assert AccessEvent.objects.filter(action="risk.policy_change").count() == 1


def test_alerts_are_read_only_in_the_admin_and_show_no_encrypted_content(rw, admin_client):
    client, _ = admin_client
    submit_phq9(rw.patient, phq9(3, 1))
    alert = Alert.objects.get()
    assert client.get("/admin/risk/alert/").status_code == 200
    page = client.get(f"/admin/risk/alert/{alert.pk}/change/")
    assert page.status_code == 200
    assert b"phq9_item9" in page.content
    assert b"response_id" not in page.content  # the evidence is not rendered
    assert client.get("/admin/risk/alert/add/").status_code == 403
    assert client.get("/admin/risk/outboxmessage/").status_code == 200


def _policy_form(rw: Any, **changes: Any) -> dict[str, Any]:
    return {
        "organisation": rw.world.clinic.pk,
        "red_ack_minutes": 5,
        "orange_ack_minutes": 30,
        "yellow_ack_time": "10:00",
        "working_weekdays": "[0, 1, 2, 3, 4]",
        "non_working_dates": "[]",
        "chain": '[{"target": "care_team", "delay_minutes": 5, "repeat": 1}]',
        "on_call": rw.on_call.pk,
        "clinical_lead": rw.lead.pk,
        "page_tiers": '["red", "orange"]',
        "emergency_contact_tiers": '["orange"]',
        "emergency_contact_message": "Please call {clinic}.",
        **changes,
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("red_ack_minutes", 1_000_000, b"less than or equal to 15"),
        ("red_ack_minutes", 0, b"greater than or equal to 1"),
        ("orange_ack_minutes", 241, b"less than or equal to 240"),
        ("orange_ack_minutes", 4, b"greater than or equal to 5"),
        ("yellow_ack_time", "03:00", b"06:00 to 20:00"),
        (
            "chain",
            '[{"target": "care_team", "delay_minutes": 241, "repeat": 1}]',
            b"delay_minutes must be 1 to 240",
        ),
    ],
)
def test_the_admin_refuses_a_policy_out_of_bounds(rw, admin_client, field, value, message):
    from risk.models import PolicyChange

    client, _ = admin_client
    url = f"/admin/risk/escalationpolicy/{rw.policy.pk}/change/"
    response = client.post(url, _policy_form(rw, **{field: value}))
    assert response.status_code == 200 and message in response.content
    rw.policy.refresh_from_db()
    assert (rw.policy.red_ack_minutes, rw.policy.orange_ack_minutes) == (5, 30)
    assert not PolicyChange.objects.exists()
    assert not AccessEvent.objects.filter(action="risk.policy_change").exists()


def test_an_admin_policy_change_is_recorded_and_shown_to_auditors(rw, admin_client):
    from risk.models import PolicyChange

    client, user = admin_client
    url = f"/admin/risk/escalationpolicy/{rw.policy.pk}/change/"
    assert client.post(url, _policy_form(rw, red_ack_minutes=10)).status_code == 302
    change = PolicyChange.objects.get()
    assert change.actor == user and change.organisation == rw.world.clinic
    assert (change.before["red_ack_minutes"], change.after["red_ack_minutes"]) == (5, 10)
    assert change.after["chain"] == [{"target": "care_team", "delay_minutes": 5, "repeat": 1}]
    assert client.get("/admin/risk/policychange/").status_code == 200
    page = client.get(f"/admin/risk/policychange/{change.pk}/change/")
    assert page.status_code == 200 and b"red_ack_minutes" in page.content
    assert client.get(f"/admin/risk/escalationpolicy/{rw.policy.pk}/delete/").status_code == 403


def test_a_clinician_named_in_the_policy_cannot_be_deleted(rw, admin_client):
    from django.db.models import ProtectedError

    from risk.models import PolicyChange

    client, _ = admin_client
    for clinician in (rw.on_call, rw.lead):
        url = f"/admin/screening/clinician/{clinician.pk}/delete/"
        assert client.get(url).status_code == 403
        assert client.post(url, {"post": "yes"}).status_code == 403
        # No other path clears the policy silently either: a clinician it names is protected.
        with pytest.raises(ProtectedError):
            clinician.delete()
    policy = EscalationPolicy.objects.get(pk=rw.policy.pk)
    assert (policy.on_call_id, policy.clinical_lead_id) == (rw.on_call.pk, rw.lead.pk)
    assert not PolicyChange.objects.exists()


def test_alerts_shown_in_the_admin_are_access_events(rw, admin_client):
    client, user = admin_client
    submit_phq9(rw.patient, phq9(3, 1))
    alert = Alert.objects.get()
    assert client.get(f"/admin/risk/alert/{alert.pk}/change/").status_code == 200
    [view] = AccessEvent.objects.filter(action="admin.alert.view")
    assert (view.actor_id, view.patient_id) == (user.pk, rw.patient.pk)
    assert (view.resource_type, view.resource_id) == ("Alert", str(alert.pk))
    assert client.get("/admin/risk/alert/").status_code == 200
    [listed] = AccessEvent.objects.filter(action="admin.alert.list")
    assert listed.patient_id == rw.patient.pk  # the only alert shown is this patient's
    assert client.get("/admin/risk/outboxmessage/").status_code == 200
    assert AccessEvent.objects.filter(action="admin.outboxmessage.list", actor=user).exists()
