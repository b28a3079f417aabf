"""Shared fixtures: the personas every endpoint is tested with, and API clients for them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import freezegun
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from privacy import datakeys
from privacy.audit import Actor
from privacy.auth import token_issue
from privacy.choices import ConsentScope
from privacy.consent import consent_change, consent_document_publish
from screening.models import Auditor, Clinician, Organisation, Patient
from tests.factories import (
    CareTeamFactory,
    OrganisationFactory,
    make_auditor,
    make_clinician,
    make_patient,
)

# freezegun reads every attribute of every loaded module when it starts. transformers' lazy
# modules import each model's code on attribute access (some of it pulls pandas/pyarrow, which then
# crash in the garbage collector): big ML libraries hold no clocks worth freezing, so skip them.
freezegun.configure(
    extend_ignore_list=[
        "transformers",
        "sentence_transformers",
        "torch",
        "spacy",
        "thinc",
        "librosa",
        "numba",
        "mediapipe",
        "cv2",
        "faster_whisper",
        "ctranslate2",
        "sklearn",
        "scipy",
        "pandas",
        "pyarrow",
        "presidio_analyzer",
        "presidio_anonymizer",
    ]
)


@dataclass
class World:
    clinic: Organisation
    patient_a: Patient
    patient_b: Patient
    clinician: Clinician  # treats A and B
    colleague: Clinician  # same clinic, outside the care team
    auditor: Auditor

    def client_for(self, user: Any) -> APIClient:
        _, raw = token_issue(user=user, name="test")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client


@pytest.fixture(autouse=True)
def _fresh_key_cache() -> None:
    datakeys.cache_clear()


@pytest.fixture
def world(db: Any) -> World:
    clinic = OrganisationFactory()
    team = CareTeamFactory(organisation=clinic)
    other_team = CareTeamFactory(organisation=clinic)
    clinician = make_clinician(team=team)
    colleague = make_clinician(team=other_team)
    patient_a = make_patient(team=team, clinician=clinician, display_name="Alice Example")
    patient_b = make_patient(team=team, clinician=clinician, display_name="Bob Example")
    for scope in ConsentScope.values:
        consent_document_publish(scope=scope, version="1", text=f"Consent text for {scope}.")
    for patient in (patient_a, patient_b):
        for scope in (
            ConsentScope.TEXT_ANALYSIS,
            ConsentScope.VOICE_ANALYSIS,
            ConsentScope.FACE_ANALYSIS,
        ):
            consent_change(
                actor=Actor(user_id=patient.user_id, role="patient"),
                patient=patient,
                scope=scope,
                granted=True,
                document_version="1",
            )
    return World(
        clinic=clinic,
        patient_a=patient_a,
        patient_b=patient_b,
        clinician=clinician,
        colleague=colleague,
        auditor=make_auditor(organisation=clinic),
    )


@pytest.fixture
def client_a(world: World) -> APIClient:
    return world.client_for(world.patient_a.user)


@pytest.fixture
def client_b(world: World) -> APIClient:
    return world.client_for(world.patient_b.user)


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def now_iso() -> str:
    return timezone.now().replace(microsecond=0).isoformat()


def new_key() -> str:
    return str(uuid.uuid4())


# --- shared helpers for the API tests ------------------------------------------------------------
ERROR_KEYS = {"code", "message", "status", "request_id"}


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert the one JSON error shape and return the inner ``error`` object."""
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) >= ERROR_KEYS, error
    assert error["status"] == status
    assert error["request_id"] == response["X-Request-ID"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    """Rate-limit counters live in the cache; no test inherits another's request history."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def throttle_rates(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set DRF throttle rates for one test: ``throttle_rates(user="2/min")``.

    DRF reads the rates once, into a class attribute, so overriding settings is not enough.
    """
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    def apply(**rates: str) -> None:
        merged = {**api_settings.DEFAULT_THROTTLE_RATES, **rates}
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", merged)

    return apply


@pytest.fixture(autouse=True)
def _private_audit_anchor_file(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Each test anchors the audit chain in its own file: anchors of another test's (rolled back)
    database would otherwise read as a truncated chain."""
    path = tmp_path_factory.mktemp("anchors") / "audit-anchors.jsonl"
    settings.VIGIL_AUDIT_ANCHOR_FILE = path
    settings.VIGIL_AUDIT_ANCHOR_WEBHOOK = None
    return path


@pytest.fixture(scope="session", autouse=True)
def _no_stray_sessions_at_teardown(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """Close other sessions on the PostgreSQL test database before it is dropped.

    The integration and reliability tests start real Celery workers and web servers and some
    SIGKILL them; PostgreSQL notices their connections a moment later, so the final DROP DATABASE
    could fail with "is being accessed by other users" and leave the database behind. Torn down
    before ``django_db_setup`` (it was set up after it), this ends those sessions first.
    """
    yield
    from django.db import DatabaseError, connection

    if connection.vendor != "postgresql":
        return
    try:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    except DatabaseError:  # a role without the right to end sessions: Django's own drop decides
        pass
