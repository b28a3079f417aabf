"""The portal in a real (headless) browser against a live server: a clinician signs in with a
TOTP code, sees the help button's red alert, opens it, acknowledges and resolves it while a
second tab's queue updates by itself; an auditor filters the access log and verifies the chain.
Screenshots of the main pages go to ``test-artifacts/screenshots/``."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pyotp
import pytest

from privacy.audit import Actor
from privacy.auth import token_issue
from risk.models import Alert
from screening.services.help import help_request_create
from tests.browser.conftest import screenshot
from tests.clinician_portal.conftest import Portal
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_MS = 15_000


def _press_help(base_url: str, token: str) -> int:
    """The patient app's help button, over HTTP (the test thread keeps off the ORM)."""
    request = urllib.request.Request(  # noqa: S310 (the live server's http URL)
        f"{base_url}/api/v1/help",
        data=json.dumps({}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (live server)
        return int(response.status)


def _sign_in(page: Any, base: str, username: str, secret: str) -> None:
    page.goto(f"{base}/portal/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Sign in").click()


def test_clinician_handles_an_alert_and_auditor_checks(
    portal: Portal, live_server: Any, chromium: Any, settings: Any
) -> None:
    from playwright.sync_api import expect

    settings.VIGIL_PORTAL_QUEUE_REFRESH_SECONDS = 2
    world = portal.world
    base = live_server.url
    # Database work first (see browser_factory): a red alert through the real help button
    # service, and a token for the second patient's app.
    help_request_create(
        actor=Actor(user_id=world.patient_a.user_id, role="patient"), patient=world.patient_a
    )
    alert = Alert.objects.get(patient=world.patient_a)
    _, token_b = token_issue(user=world.patient_b.user, name="browser-test")
    clinician, auditor = world.clinician.user, world.auditor.user
    pseudonym_a, pseudonym_b = world.patient_a.pseudonym, world.patient_b.pseudonym
    secrets = portal.secrets

    browser = chromium.start()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    queue = context.new_page()
    _sign_in(queue, base, clinician.username, secrets[clinician.pk])
    expect(queue.get_by_role("heading", name="Alert queue")).to_be_visible()
    row_a = queue.locator(f'tr[data-alert-id="{alert.pk}"]')
    expect(row_a).to_contain_text(pseudonym_a)
    expect(row_a).to_contain_text("Red")
    expect(row_a.locator(".countdown")).to_contain_text("left")
    screenshot(queue, "portal-queue")

    # A second patient presses the help button: the open queue shows it without a reload.
    assert _press_help(base, token_b) == 201
    expect(queue.locator("#queue-rows")).to_have_attribute("data-count", "2", timeout=WAIT_MS)
    expect(queue.locator("#queue-rows")).to_contain_text(pseudonym_b)

    # Open the alert in another tab, acknowledge: the queue tab updates by itself.
    detail = context.new_page()
    detail.goto(f"{base}/portal/alerts/{alert.pk}")
    expect(detail.locator("#alert-state")).to_have_text("Open")
    expect(detail.locator(".evidence h3").first).to_contain_text("help_pressed")
    screenshot(detail, "portal-alert-detail")
    detail.get_by_role("button", name="Acknowledge").click()
    expect(detail.get_by_text("Alert acknowledged.")).to_be_visible()
    expect(row_a.locator(".state")).to_have_text("Acknowledged", timeout=WAIT_MS)

    # Resolving needs a disposition and a note (the browser refuses an empty form; the server
    # refuses it too, see tests/clinician_portal/test_alerts.py).
    detail.get_by_role("button", name="Resolve alert").click()
    expect(detail.get_by_label("Disposition (required)")).to_have_attribute("required", "")
    expect(detail.locator("#alert-state")).to_have_text("Acknowledged")
    detail.get_by_label("Disposition (required)").select_option("contacted_patient")
    detail.get_by_label("Note (required)").fill("Called the patient; safe, plan reviewed.")
    detail.get_by_role("button", name="Resolve alert").click()
    expect(detail.get_by_text("Alert resolved.")).to_be_visible()
    expect(detail.locator("#alert-state")).to_contain_text("Resolved")
    expect(queue.locator("#queue-rows")).to_have_attribute("data-count", "1", timeout=WAIT_MS)
    expect(row_a).to_have_count(0)

    # The patient's timeline and the caseload.
    detail.goto(f"{base}/portal/patients/{pseudonym_a}/")
    expect(detail.get_by_role("heading", name="Alerts")).to_be_visible()
    screenshot(detail, "portal-patient-timeline")
    detail.goto(f"{base}/portal/patients/")
    expect(detail.get_by_role("heading", name="Caseload")).to_be_visible()
    screenshot(detail, "portal-caseload")

    # Phone width for on-call use: no sideways scrolling.
    phone = browser.new_context(viewport={"width": 375, "height": 740})
    phone_page = phone.new_page()
    for cookie in context.cookies():
        phone.add_cookies([cookie])
    phone_page.goto(f"{base}/portal/alerts/")
    expect(phone_page.get_by_role("heading", name="Alert queue")).to_be_visible()
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 380, width
    screenshot(phone_page, "portal-queue-phone")
    phone.close()

    detail.get_by_role("button", name="Sign out").click()
    expect(detail.get_by_role("heading", name="Sign in to the clinician portal")).to_be_visible()
    context.close()

    # The auditor: access log filtered by action, then the chain verified.
    audit = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    _sign_in(audit, base, auditor.username, secrets[auditor.pk])
    expect(audit.get_by_role("heading", name="Access log")).to_be_visible()
    audit.get_by_label("Action").fill("alert.resolve")
    audit.get_by_role("button", name="Filter").click()
    rows = audit.locator("table.events tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("alert.resolve")
    expect(rows.first).to_contain_text(clinician.username)
    expect(audit.locator("body")).not_to_contain_text("Called the patient")  # no clinical text
    screenshot(audit, "portal-audit-access-log")
    audit.get_by_role("link", name="Audit chain").click()
    audit.get_by_role("button", name="Verify the chain now").click()
    expect(audit.locator("#chain-status")).to_contain_text("Verified")
    screenshot(audit, "portal-audit-chain")

    chromium.stop()  # Playwright's loop is gone: the ORM may be used again
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert alert.disposition == "contacted_patient"
    assert alert.resolution_note == "Called the patient; safe, plan reviewed."
