"""The access matrix, generated from the URL configuration: every route x persona x method.

Every route in ``get_resolver().url_patterns`` must have a rule below, so a new route without one
fails ``test_every_route_has_a_rule``. For each API route, each persona (patient A and B, the
treating clinician, a colleague outside the care team, a clinician of another clinic, an auditor,
anonymous, an expired token and a revoked token) and each method, the matrix checks:

- the status code (B owns the objects in the URLs: A gets 404 for them, staff 403, bad tokens 401);
- that no response to anyone but B contains B's data (pseudonym, ids, diary text, name);
- that every refusal (401, 403, and 404 on another patient's object) adds a denied AccessEvent.

Portal routes are checked for the callers without a portal session (they are sent to the portal's
login, nothing else); Django admin routes (one rule for everything under ``admin/``) send every
caller without a staff session to the admin login. The signed-in portal roles are the portal's
own tests (``tests/clinician_portal/``). FHIR routes are checked for every persona above plus two
integration clients (client-credentials tokens): one of the patients' clinic, which may read its
clinic's records, and one of another clinic, which must never see patient B's data.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from clinician_portal.fhir.services import fhir_client_create
from privacy.audit import Actor
from privacy.auth import token_issue
from privacy.models import AccessEvent, ApiToken
from screening.models import VideoSubmission
from screening.services.diary import diary_entry_create
from screening.services.questionnaires import questionnaire_submit
from tests.factories import CareTeamFactory, OrganisationFactory, make_clinician
from tests.reliability.helpers import record_figures

pytestmark = pytest.mark.django_db

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
B_DIARY_TEXT = "Matrix secret diary of patient B: the lighthouse keeper's cat."
FIGURES: dict[str, int] = {}


@dataclass(frozen=True)
class Rule:
    """Who a route is for, and what its rightful caller gets per method (others: 405)."""

    audience: str  # patient | auditor | public | open | portal | portal_login | admin
    ok: dict[str, int] = field(default_factory=dict)
    owned: str = ""  # the kind of B's object the URL names (A gets 404 for it)


API = "api/v1/"
RULES: dict[str, Rule] = {
    # patient API (B is the rightful caller; A sees only their own rows)
    f"{API}auth/login": Rule("public", {"POST": 400}),
    f"{API}auth/logout": Rule("authenticated", {"POST": 204}),
    f"{API}auth/tokens": Rule("authenticated", {"GET": 200}),
    f"{API}auth/tokens/<uuid:pk>": Rule("authenticated", {"DELETE": 204}, owned="token"),
    f"{API}me": Rule("patient", {"GET": 200}),
    f"{API}diary-entries": Rule("patient", {"GET": 200, "POST": 400}),
    f"{API}diary-entries/<uuid:pk>": Rule("patient", {"GET": 200}, owned="diary"),
    f"{API}videos": Rule("patient", {"GET": 200, "POST": 400}),
    f"{API}videos/<uuid:pk>": Rule("patient", {"GET": 200}, owned="video"),
    f"{API}questionnaires": Rule("patient", {"GET": 200, "POST": 400}),
    f"{API}questionnaires/<uuid:pk>": Rule("patient", {"GET": 200}, owned="questionnaire"),
    f"{API}help": Rule("patient", {"GET": 200, "POST": 201}),
    f"{API}consents": Rule("patient", {"GET": 200, "POST": 400}),
    f"{API}consents/history": Rule("patient", {"GET": 200}),
    f"{API}access-log": Rule("patient", {"GET": 200}),
    # auditor API
    f"{API}audit/events": Rule("auditor", {"GET": 200}),
    f"{API}audit/consents": Rule("auditor", {"GET": 200}),
    f"{API}audit/break-glass": Rule("auditor", {"GET": 200}),
    f"{API}audit/break-glass/<uuid:pk>/reviews": Rule("auditor", {"POST": 400}),
    f"{API}audit/chain": Rule("auditor", {"GET": 200}),
    f"{API}audit/chain/verify": Rule("auditor", {"POST": 200}),
    # open: schema, docs and probes (no patient data in them)
    "api/schema/": Rule("open", {"GET": 200}),
    "api/docs/": Rule("open", {"GET": 200}),
    "healthz": Rule("open", {"GET": 200}),
    "readyz": Rule("open", {"GET": 200}),
    "": Rule("open", {"GET": 200}),
    # clinician portal: session + second factor; without a portal session, the login page
    "portal/": Rule("portal"),
    "portal/login/": Rule("portal_login", {"GET": 200, "POST": 400}),
    "portal/login/verify/": Rule("portal"),
    "portal/logout/": Rule("portal"),
    "portal/alerts/": Rule("portal"),
    "portal/alerts/rows/": Rule("portal"),
    "portal/alerts/<uuid:alert_id>": Rule("portal"),
    "portal/alerts/<uuid:alert_id>/acknowledge": Rule("portal"),
    "portal/alerts/<uuid:alert_id>/escalate": Rule("portal"),
    "portal/alerts/<uuid:alert_id>/reassign": Rule("portal"),
    "portal/alerts/<uuid:alert_id>/resolve": Rule("portal"),
    "portal/patients/": Rule("portal"),
    "portal/patients/<str:pseudonym>/": Rule("portal"),
    "portal/patients/<str:pseudonym>/break-glass": Rule("portal"),
    "portal/audit/events/": Rule("portal"),
    "portal/audit/consents/": Rule("portal"),
    "portal/audit/break-glass/": Rule("portal"),
    "portal/audit/break-glass/<uuid:access_id>/review": Rule("portal"),
    "portal/audit/chain/": Rule("portal"),
    # FHIR (bearer tokens of clinicians and integration clients; patients and auditors refused)
    "fhir/metadata": Rule("open_fhir", {"GET": 200}),
    "fhir/auth/token": Rule("fhir_token", {"POST": 400}),
    "fhir/$export": Rule("fhir", {"GET": 400, "POST": 400}),
    "fhir/Patient/$export": Rule("fhir", {"GET": 400, "POST": 400}),
    r"fhir/^Group/(?P<group_id>[0-9]{1,12})/\$export$": Rule("fhir", {"GET": 400, "POST": 400}),
    r"fhir/^\$export-status/(?P<job_id>[0-9a-f\-]{36})$": Rule("fhir", {"GET": 404}),
    r"fhir/^\$export-file/(?P<job_id>[0-9a-f\-]{36})/(?P<name>[A-Za-z]+\.ndjson)$": Rule(
        "fhir", {"GET": 404}
    ),
    "fhir/^(?P<resource_type>[A-Z][A-Za-z]+)/_search$": Rule("fhir", {"GET": 200, "POST": 200}),
    "fhir/^(?P<resource_type>[A-Z][A-Za-z]+)$": Rule("fhir", {"GET": 200, "POST": 200}),
    r"fhir/^(?P<resource_type>[A-Z][A-Za-z]+)/(?P<resource_id>[A-Za-z0-9\-\.]{1,64})$": Rule(
        "fhir", {"GET": 200}
    ),
    "fhir/^(?P<rest>.*)$": Rule("fhir_catch_all"),
}
ADMIN_RULE = Rule("admin")


def rule_for(route: str) -> Rule | None:
    if route.startswith("admin/"):
        return ADMIN_RULE
    return RULES.get(route)


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def routes() -> list[tuple[str, Any]]:
    return list(_walk(get_resolver().url_patterns))


def test_every_route_has_a_rule() -> None:
    missing = sorted({route for route, _ in routes() if rule_for(route) is None})
    assert not missing, (
        "routes without an access rule (add them to RULES in tests/reliability/"
        f"test_access_matrix.py): {missing}"
    )
    stale = sorted(set(RULES) - {route for route, _ in routes()})
    assert not stale, f"rules for routes that no longer exist: {stale}"


# --- personas -------------------------------------------------------------------------------------
def _client(raw: str | None) -> APIClient:
    client = APIClient()
    if raw is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def cast(world: Any) -> dict[str, Any]:
    other_clinic = OrganisationFactory()
    stranger = make_clinician(team=CareTeamFactory(organisation=other_clinic))
    _, expired_raw = token_issue(user=world.patient_a.user, name="expired")
    ApiToken.objects.filter(key_prefix=expired_raw[:12]).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    revoked_token, revoked_raw = token_issue(user=world.patient_a.user, name="revoked")
    ApiToken.objects.filter(pk=revoked_token.pk).update(revoked_at=timezone.now())
    people = {
        "patient_a": world.patient_a.user,
        "patient_b": world.patient_b.user,
        "clinician": world.clinician.user,
        "colleague": world.colleague.user,
        "other_clinic": stranger.user,
        "auditor": world.auditor.user,
    }
    clients = {name: _client(token_issue(user=user, name="m")[1]) for name, user in people.items()}
    clients.update(
        anonymous=_client(None), expired=_client(expired_raw), revoked=_client(revoked_raw)
    )
    b = world.patient_b
    actor_b = Actor(user_id=b.user_id, role="patient")
    diary, _ = diary_entry_create(
        actor=actor_b,
        patient=b,
        idempotency_key=uuid.uuid4(),
        text=B_DIARY_TEXT,
        client_timestamp=timezone.now() - dt.timedelta(minutes=3),
    )
    questionnaire, _ = questionnaire_submit(
        actor=actor_b,
        patient=b,
        idempotency_key=uuid.uuid4(),
        instrument="gad7",
        answers=[1, 0, 1, 0, 1, 0, 1],
        client_timestamp=timezone.now() - dt.timedelta(minutes=3),
    )
    video = VideoSubmission.objects.create(
        patient=b,
        idempotency_key=uuid.uuid4(),
        client_timestamp=timezone.now() - dt.timedelta(minutes=3),
        timezone="UTC",
        local_date=timezone.now().date(),
        storage_name=f"videos/{b.pk}/missing",
        size_bytes=1,
        duration_seconds=1.0,
        container="mp4",
        video_codec="h264",
        width=160,
        height=120,
    )
    spare_token, _ = token_issue(user=b.user, name="spare")
    objects = {
        "diary": diary.pk,
        "questionnaire": questionnaire.pk,
        "video": video.pk,
        "token": spare_token.pk,
        "random": uuid.uuid4(),
    }
    secrets = [
        B_DIARY_TEXT[:30],
        str(b.pseudonym),
        str(b.pk),
        "Bob Example",
        str(diary.pk),
        str(questionnaire.pk),
        str(video.pk),
        str(spare_token.pk),
    ]
    return {
        "clients": clients,
        "objects": objects,
        "secrets": secrets,
        "users": people,
        "pseudonym": str(b.pseudonym),
        "world": world,
    }


def expected(rule: Rule, persona: str, method: str) -> int | set[int]:
    """The status a persona must get (patient B owns the objects named in URLs)."""
    bad_token = persona in ("expired", "revoked")
    allowed = method in rule.ok
    if rule.audience == "public":
        return rule.ok[method] if allowed else 405  # login authenticates nobody by token
    if persona == "anonymous" or bad_token:
        return 401
    audience_roles = {
        "patient": {"patient_a", "patient_b"},
        "auditor": {"auditor"},
        "authenticated": {
            "patient_a",
            "patient_b",
            "clinician",
            "colleague",
            "other_clinic",
            "auditor",
        },
    }[rule.audience]
    if persona not in audience_roles:
        return 403
    if not allowed:
        return 405
    if rule.owned and persona != "patient_b":
        return 404  # somebody else's object: not found, and logged as denied
    return rule.ok[method]


def _path(route: str, objects: dict[str, Any], rule: Rule) -> str:
    value = str(objects.get(rule.owned, uuid.uuid4()))
    return "/" + re.sub(r"<[^>]+>", value, route)


def test_api_access_matrix(cast: dict[str, Any], throttle_rates: Any, settings: Any) -> None:
    throttle_rates(login="100000/min", login_user="100000/hour", user="100000/min")
    # every anonymous cell must leave its own event: the flood limit (one address sending more
    # than VIGIL_RATE_ANON_REFUSALS) has its own tests (tests/privacy/test_audit_refusal_flood.py)
    settings.VIGIL_RATE_ANON_REFUSALS = (100000, 60)
    clients, objects, secrets = cast["clients"], cast["objects"], cast["secrets"]
    users = cast["users"]
    failures: list[str] = []
    requests = denials = 0
    order = [p for p in clients if p != "patient_b"] + ["patient_b"]  # B's DELETE goes last
    for route, _ in routes():
        rule = rule_for(route)
        if rule is None or rule.audience not in ("public", "authenticated", "patient", "auditor"):
            continue
        for persona in order:
            for method in METHODS:
                client = clients[persona]
                if (route, method) == (f"{API}auth/logout", "POST") and persona in users:
                    client = _client(token_issue(user=users[persona], name="bye")[1])
                want = expected(rule, persona, method)
                before = AccessEvent.objects.filter(outcome="denied").count()
                response = getattr(client, method.lower())(_path(route, objects, rule))
                requests += 1
                got = response.status_code
                label = f"{method} /{route} as {persona}"
                if got != want:
                    failures.append(f"{label}: {got}, expected {want}: {response.content[:160]!r}")
                    continue
                body = response.content.decode(errors="replace")
                if persona != "patient_b":
                    # Auditors filter the clinic's trail by pseudonym: that one they may see.
                    hidden = secrets[1:] if persona != "auditor" else secrets[2:]
                    leaked = [s for s in [secrets[0], *hidden] if s in body]
                    if leaked:
                        failures.append(f"{label}: body contains patient B's data {leaked}")
                # 404 on another patient's record or another user's token id is a denial.
                denied = got in (401, 403) or (got == 404 and rule.owned != "")
                if denied:
                    denials += 1
                    after = AccessEvent.objects.filter(outcome="denied").count()
                    if after <= before:
                        failures.append(f"{label}: {got} but no denied AccessEvent")
    FIGURES.update(api_requests=requests, api_denials=denials)
    assert not failures, f"{len(failures)} of {requests} cells wrong:\n" + "\n".join(failures)


def test_open_portal_and_admin_routes(cast: dict[str, Any]) -> None:
    """No portal or admin page answers a caller without the right session; probes answer all."""
    clients = cast["clients"]
    failures: list[str] = []
    requests = 0
    callers = ("anonymous", "patient_a", "clinician", "expired")
    for route, pattern in routes():
        rule = rule_for(route)
        assert rule is not None
        if rule.audience == "open":
            for persona in clients:
                response = clients[persona].get("/" + route)
                requests += 1
                # The schema views run DRF's authentication: a bad token is refused there too.
                refused = route.startswith("api/") and persona in ("expired", "revoked")
                if response.status_code != (401 if refused else 200):
                    failures.append(f"GET /{route} as {persona}: {response.status_code}")
                elif any(s in response.content.decode(errors="replace") for s in cast["secrets"]):
                    failures.append(f"GET /{route} as {persona}: patient B's data in the body")
            continue
        if rule.audience in ("portal", "portal_login"):
            path = "/" + re.sub(r"<[^>]+>", str(uuid.uuid4()), route)
            for persona in callers:
                for method in ("GET", "POST"):
                    response = getattr(clients[persona], method.lower())(path)
                    requests += 1
                    got = response.status_code
                    if rule.audience == "portal_login" and got == rule.ok.get(method):
                        continue
                    if got == 405:
                        continue  # the method guard answers before the login redirect: no data
                    if got != 302 or not response["Location"].startswith("/portal/login/"):
                        failures.append(f"{method} {path} as {persona}: {got}")
            continue
        if rule.audience == "admin":
            path = _admin_path(route, pattern)
            if path is None:
                continue
            for persona in ("anonymous", "patient_a"):
                response = clients[persona].get(path)
                requests += 1
                got = response.status_code
                if path in ("/admin/login/",) and got == 200:
                    continue
                if got != 302 or "/admin/login/" not in response["Location"]:
                    failures.append(f"GET {path} as {persona}: {got}")
    FIGURES.update(other_requests=requests)
    assert not failures, "\n".join(failures)


FHIR_STAFF_STATUSES = {200, 400, 403, 404, 405, 415}


def _fhir_path(route: str, pseudonym: str) -> str:
    concrete = {
        "fhir/^Group/": "/fhir/Group/1/$export",
        "fhir/^\\$export-status/": f"/fhir/$export-status/{uuid.uuid4()}",
        "fhir/^\\$export-file/": f"/fhir/$export-file/{uuid.uuid4()}/Patient.ndjson",
        "fhir/^(?P<resource_type>[A-Z][A-Za-z]+)/_search$": "/fhir/Patient/_search",
        "fhir/^(?P<resource_type>[A-Z][A-Za-z]+)$": "/fhir/Patient",
        "fhir/^(?P<resource_type>[A-Z][A-Za-z]+)/(?P<resource_id>": f"/fhir/Patient/{pseudonym}",
        "fhir/^(?P<rest>.*)$": "/fhir/NoSuchThing/at/all",
    }
    for prefix, path in concrete.items():
        if route.startswith(prefix):
            return path
    return "/" + route


def test_fhir_access_matrix(cast: dict[str, Any]) -> None:
    """FHIR: bad or missing tokens 401, patients 403, staff never a server error, and only the
    treating clinician may see patient B's data."""
    clients, secrets = dict(cast["clients"]), cast["secrets"]
    # Integration clients (client-credentials tokens with system scopes): one of the patients'
    # clinic, which may read its clinic's records, and one of another clinic, which may not.
    clinic = cast["world"].patient_b.organisation
    for persona, organisation in (
        ("integration", clinic),
        ("other_integration", OrganisationFactory()),
    ):
        fhir_client, secret = fhir_client_create(organisation=organisation, name=persona)
        token = APIClient().post(
            "/fhir/auth/token",
            {
                "grant_type": "client_credentials",
                "client_id": fhir_client.client_id,
                "client_secret": secret,
            },
            format="multipart",
        )
        assert token.status_code == 200, token.content
        clients[persona] = _client(token.json()["access_token"])
    failures: list[str] = []
    requests = 0
    for route, _ in routes():
        rule = rule_for(route)
        if rule is None or not rule.audience.startswith(("fhir", "open_fhir")):
            continue
        path = _fhir_path(route, cast["pseudonym"])
        for persona, client in clients.items():
            for method in ("GET", "POST"):
                response = getattr(client, method.lower())(path)
                requests += 1
                got = response.status_code
                allowed = method in rule.ok
                if rule.audience == "open_fhir":
                    want: set[int] = {200} if allowed else {405}
                elif rule.audience == "fhir_token":
                    want = {400} if allowed else {405}
                elif rule.audience == "fhir_catch_all":
                    want = {404}
                elif not allowed:
                    want = (
                        {405, 401} if persona in ("anonymous", "expired", "revoked") else {405, 403}
                    )
                elif persona in ("anonymous", "expired", "revoked"):
                    want = {401}
                elif persona in ("patient_a", "patient_b"):
                    want = {403}
                else:
                    want = FHIR_STAFF_STATUSES
                label = f"{method} {path} as {persona}"
                if got not in want:
                    failures.append(f"{label}: {got}, expected {sorted(want)}")
                    continue
                body = response.content.decode(errors="replace")
                # The pseudonym is in the URL of the read (an OperationOutcome may echo it).
                others = [s for s in secrets if s != cast["pseudonym"]]
                may_see_b = ("patient_b", "clinician", "integration")
                if persona not in may_see_b and any(s in body for s in others):
                    failures.append(f"{label}: body contains patient B's data")
    FIGURES.update(fhir_requests=requests, fhir_personas=len(clients))
    assert not failures, "\n".join(failures)


def _admin_path(route: str, pattern: Any) -> str | None:
    """A concrete URL for an admin route (model admin routes are regular expressions)."""
    labels = sorted({model._meta.app_label for model in admin.site._registry})
    text = route.replace("^", "").replace("$", "").replace("\\Z", "")
    text = re.sub(r"\(\?P<app_label>[^)]*\)", labels[0], text)
    text = re.sub(r"\(\?P<[a-z_]+>[^)]*\)", "1", text)
    text = re.sub(r"<[^>]+>", "1", text)
    if "(" in text or "logout" in text:
        return None  # logout is POST-only and signs nobody in; nothing to reach
    return "/" + text


def test_print_matrix_figures() -> None:
    """Not a check: records the figures of this module for docs/reliability.md."""
    record_figures("access_matrix", FIGURES)


def test_fhir_export_status_with_a_malformed_job_id_is_not_a_server_error(
    cast: dict[str, Any],
) -> None:
    response = cast["clients"]["clinician"].get("/fhir/$export-status/" + "a" * 36)
    assert response.status_code == 404, response.status_code
