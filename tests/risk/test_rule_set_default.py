"""A wrong ``VIGIL_RISK_RULE_SET_DEFAULT`` never starts, and never costs an alert at run time."""

from __future__ import annotations

import logging

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from privacy.audit import Actor
from risk import services
from risk.checks import RULE_SET_DEFAULT_UNKNOWN, rule_set_default_check
from risk.choices import Tier
from risk.models import Alert, RuleSetSelection
from risk.rules.loader import rule_set_newest, rule_sets
from screening.models import QuestionnaireResponse
from screening.services.help import help_request_create
from tests.conftest import new_key, now_iso

WRONG = ["V3", "v9", "", "v3 "]


# --- start-up ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", WRONG)
def test_the_system_check_refuses_an_unknown_default(settings, value):
    settings.VIGIL_RISK_RULE_SET_DEFAULT = value
    errors = rule_set_default_check()
    assert [e.id for e in errors] == [RULE_SET_DEFAULT_UNKNOWN]
    with pytest.raises(SystemCheckError, match=RULE_SET_DEFAULT_UNKNOWN):
        call_command("check")


def test_the_system_check_passes_a_shipped_default(settings):
    for version in rule_sets():
        settings.VIGIL_RISK_RULE_SET_DEFAULT = version
        assert rule_set_default_check() == []
    call_command("check")


@pytest.mark.parametrize("value", ["V3", "v9"])
def test_no_process_starts_with_an_unknown_default(settings, value):
    # RiskConfig.ready runs in web processes, management commands, beat and Celery workers
    # (which run the system checks but ignore their result).
    settings.VIGIL_RISK_RULE_SET_DEFAULT = value
    with pytest.raises(ImproperlyConfigured, match="VIGIL_RISK_RULE_SET_DEFAULT"):
        apps.get_app_config("risk").ready()


def test_the_shipped_default_starts(settings):
    apps.get_app_config("risk").ready()  # the test settings' default (v3) is shipped


# --- run time: defence in depth ------------------------------------------------------------------
def test_newest_orders_versions_by_number():
    sets = rule_sets()
    assert rule_set_newest(sets).version == max(sets, key=lambda v: int(v[1:].split(".")[0]))
    fake = {v: sets["v1"] for v in ("v2", "v10", "v9", "v10.1")}
    assert rule_set_newest(fake) is sets["v1"]  # the value under "v10.1"


@pytest.mark.parametrize("value", ["V3", "v9"])
def test_an_unknown_default_falls_back_to_the_newest_shipped_set(rw, settings, caplog, value):
    settings.VIGIL_RISK_RULE_SET_DEFAULT = value
    with caplog.at_level(logging.ERROR, logger="vigil.risk"):
        chosen = services.rule_set_for(organisation=rw.world.clinic)
    assert chosen.version == rule_set_newest(rule_sets()).version
    assert any("does not load" in r.getMessage() for r in caplog.records)


def test_a_broken_selection_with_a_broken_default_falls_back_to_the_newest(rw, settings, caplog):
    RuleSetSelection.objects.create(organisation=rw.world.clinic, version="v7")
    settings.VIGIL_RISK_RULE_SET_DEFAULT = "v9"
    with caplog.at_level(logging.ERROR, logger="vigil.risk"):
        chosen = services.rule_set_for(organisation=rw.world.clinic)
    assert chosen.version == rule_set_newest(rule_sets()).version
    messages = [r.getMessage() for r in caplog.records]
    assert any("'v7'" in m for m in messages) and any("'v9'" in m for m in messages)


def test_a_broken_selection_falls_back_to_a_working_default(rw, settings):
    RuleSetSelection.objects.create(organisation=rw.world.clinic, version="v7")
    settings.VIGIL_RISK_RULE_SET_DEFAULT = "v1"
    assert services.rule_set_for(organisation=rw.world.clinic).version == "v1"


def test_with_an_unknown_default_a_press_raises_its_red_alert_and_item9_is_kept(
    rw, settings, client_a
):
    settings.VIGIL_RISK_RULE_SET_DEFAULT = "V3"
    help_request_create(actor=Actor(user_id=rw.patient.user_id, role="patient"), patient=rw.patient)
    assert Alert.objects.filter(patient=rw.patient, tier=Tier.RED).count() == 1

    response = client_a.post(
        "/api/v1/questionnaires",
        {
            "idempotency_key": new_key(),
            "client_timestamp": now_iso(),
            "instrument": "phq9",
            "answers": [0] * 8 + [3],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert QuestionnaireResponse.objects.filter(patient=rw.patient).count() == 1
