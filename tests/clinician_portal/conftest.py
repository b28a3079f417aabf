"""Portal personas: the shared ``world`` with TOTP secrets, signed-in browsers (Django test
clients) for each persona, and an alert raised through the real help-button service."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from django.test import Client

from clinician_portal.access import SESSION_LAST_SEEN, SESSION_MFA
from clinician_portal.services import totp_secret_set
from privacy.audit import Actor
from risk.models import Alert
from screening.models import Patient, User
from screening.services.help import help_request_create
from tests.factories import PASSWORD


@dataclass
class Portal:
    world: Any
    secrets: dict[int, str]

    def code(self, user: User, *, offset_steps: int = 0) -> str:
        return pyotp.TOTP(self.secrets[user.pk]).at(time.time() + 30 * offset_steps)

    def sign_in(self, user: User, client: Client | None = None) -> Client:
        """A client signed in as ``user`` (both factors done), without spending a TOTP step."""
        client = client or Client()
        client.force_login(user)
        session = client.session
        session[SESSION_MFA] = True
        session[SESSION_LAST_SEEN] = time.time()
        session.save()
        return client

    def login_flow(self, user: User, client: Client | None = None, **kwargs: Any) -> Client:
        """The real two-step sign-in (password, then a current TOTP code)."""
        client = client or Client(**kwargs)
        response = client.post("/portal/login/", {"username": user.username, "password": PASSWORD})
        assert response.status_code == 302, response.content[:300]
        response = client.post("/portal/login/verify/", {"code": self.code(user)})
        assert response.status_code == 302, response.content[:300]
        return client


@pytest.fixture
def portal(world: Any) -> Portal:
    secrets: dict[int, str] = {}
    for user in (world.clinician.user, world.colleague.user, world.auditor.user):
        secret = pyotp.random_base32()
        totp_secret_set(user=user, secret=secret, confirmed=True)
        secrets[user.pk] = secret
    return Portal(world=world, secrets=secrets)


@pytest.fixture
def treating(portal: Portal) -> Client:
    return portal.sign_in(portal.world.clinician.user)


@pytest.fixture
def colleague(portal: Portal) -> Client:
    return portal.sign_in(portal.world.colleague.user)


@pytest.fixture
def auditor(portal: Portal) -> Client:
    return portal.sign_in(portal.world.auditor.user)


@pytest.fixture
def patient_client(portal: Portal) -> Client:
    """A patient's session (they can never pass the portal's sign-in, but try anyway)."""
    client = Client()
    client.force_login(portal.world.patient_a.user)
    return client


def raise_help_alert(patient: Patient) -> Alert:
    """A red alert through the real help button service (and the risk engine behind it)."""
    help_request_create(actor=Actor(user_id=patient.user_id, role="patient"), patient=patient)
    return Alert.objects.filter(patient=patient).order_by("-created_at").first()  # type: ignore[return-value]


@pytest.fixture
def red_alert(world: Any) -> Alert:
    alert = raise_help_alert(world.patient_a)
    assert alert is not None and alert.tier == "red"
    return alert


#: SQL of the audit trail's appends (and the savepoints they run in): a page that lists patients
#: writes one event per patient shown, on top of its reads.
_AUDIT_SQL = ("privacy_accessevent", "privacy_auditchainhead", "SAVEPOINT")


def non_audit_queries(captured: Any) -> list[str]:
    """The SQL of a ``CaptureQueriesContext`` other than the audit trail's."""
    return [
        q["sql"] for q in captured.captured_queries if not any(t in q["sql"] for t in _AUDIT_SQL)
    ]


def new_events(before: set[int]) -> list[Any]:
    """The access events recorded since ``before`` (their ids), in chain order."""
    from privacy.models import AccessEvent

    return list(AccessEvent.objects.exclude(pk__in=before).order_by("seq"))


def event_ids() -> set[int]:
    from privacy.models import AccessEvent

    return set(AccessEvent.objects.values_list("pk", flat=True))
