"""Seed a demo clinic: two clinicians, an auditor, three patients with API tokens, and some data.

Idempotent: running it again keeps what exists. Demo passwords are random, generated on first run
and kept (with the patients' API tokens) in ``var/demo-credentials.json`` (0600), which the run
command prints. Never run in production.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from privacy.audit import Actor
from privacy.auth import token_hash, token_issue
from privacy.choices import ConsentScope
from privacy.consent import consent_change, consent_document_publish, consent_state
from privacy.models import ApiToken
from privacy.storage import private_text_open
from risk.models import EscalationPolicy
from screening.models import CareTeam, Clinician, DiaryEntry, Organisation, Patient, User
from screening.services.diary import diary_entry_create
from screening.services.people import (
    auditor_create,
    clinician_create,
    emergency_contact_set,
    patient_create,
)
from screening.services.questionnaires import questionnaire_submit

CONSENT_TEXT = {
    ConsentScope.TEXT_ANALYSIS: "Vigil may analyse the words of your diary to estimate your mood "
    "and to notice language that suggests you may be at risk, so that your care team can help.",
    ConsentScope.VOICE_ANALYSIS: "Vigil may analyse the sound of your voice in your videos "
    "(pitch, loudness, pauses, speed) to estimate your mood.",
    ConsentScope.FACE_ANALYSIS: "Vigil may analyse your facial expressions in your videos to "
    "estimate your mood.",
    ConsentScope.CARE_TEAM_SHARING: "Your care team may see your diary, videos, questionnaires "
    "and the scores Vigil computes from them.",
    ConsentScope.EMERGENCY_CONTACT: "If your care team believes you may be at risk, Vigil may "
    "tell the person you designated that you need support.",
    ConsentScope.RESEARCH: "De-identified data may be used for research approved by an ethics "
    "committee.",
}

PATIENTS: list[dict[str, Any]] = [
    {
        "username": "patient_alex",
        "display_name": "Alex Morgan",
        "timezone": "America/New_York",
        "locale": "en-US",
        "team": 0,
        "clinician": 0,
        "contact": True,
    },
    {
        "username": "patient_sam",
        "display_name": "Sam Okafor",
        "timezone": "Europe/London",
        "locale": "en-GB",
        "team": 0,
        "clinician": 0,
        "contact": False,
    },
    {
        "username": "patient_jo",
        "display_name": "Jo Tanaka",
        "timezone": "America/Los_Angeles",
        "locale": "en-US",
        "team": 1,
        "clinician": 1,
        "contact": False,
    },
]

DIARY = [
    ("Slept badly again. Work felt heavy and I skipped lunch.", 3),
    ("Went for a walk with my sister, felt a bit lighter afterwards.", 6),
    ("Nothing much happened. Tired all day.", 4),
    ("Good session with my therapist, I have a plan for the week.", 7),
]


class Command(BaseCommand):
    help = "Seed the demo clinic, accounts, tokens and data (idempotent; not for production)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--credentials",
            default=None,
            help="Where to keep demo passwords and tokens (default var/).",
        )
        parser.add_argument(
            "--summary",
            metavar="BASE_URL",
            default=None,
            help="Print where to look, the logins and a curl example.",
        )
        parser.add_argument(
            "--no-seed",
            action="store_true",
            help="Only print the --summary of an earlier run (reads the credentials file; "
            "touches no data, so it is safe beside running workers).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.IS_PRODUCTION:
            raise CommandError("seed_demo refuses to run with VIGIL_ENV=production")
        path = Path(options["credentials"] or Path(settings.VAR_DIR) / "demo-credentials.json")
        creds: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        creds.setdefault("passwords", {})
        creds.setdefault("tokens", {})
        if options["no_seed"]:
            if not options["summary"] or not path.exists():
                raise CommandError("--no-seed needs --summary and the credentials of a seeded run")
            self.stdout.write(summary(creds, options["summary"].rstrip("/")))
            return
        with transaction.atomic():
            self._seed(creds)
        path.parent.mkdir(parents=True, exist_ok=True)
        with private_text_open(path) as handle:
            json.dump(creds, handle, indent=2)
        if options["verbosity"] > 0:
            self.stdout.write(self.style.SUCCESS(f"demo data ready; credentials in {path}"))
        if options["summary"]:
            self.stdout.write(summary(creds, options["summary"].rstrip("/")))

    def _password(self, creds: dict[str, Any], username: str) -> str:
        return creds["passwords"].setdefault(username, "demo-" + secrets.token_urlsafe(12))

    def _seed(self, creds: dict[str, Any]) -> None:
        org, _ = Organisation.objects.get_or_create(
            slug="riverside",
            defaults={
                "name": "Riverside Community Mental Health",
                "timezone": "America/New_York",
                "default_locale": "en-US",
            },
        )
        teams = [
            CareTeam.objects.get_or_create(organisation=org, name=name)[0]
            for name in ("Mood Disorders Team", "Anxiety Clinic Team")
        ]
        clinicians: list[Clinician] = []
        for index, (username, first, last) in enumerate(
            [("dr_rivera", "Maya", "Rivera"), ("dr_chen", "Wei", "Chen")]
        ):
            existing = Clinician.objects.filter(user__username=username).first()
            clinicians.append(
                existing
                or clinician_create(
                    organisation=org,
                    username=username,
                    password=self._password(creds, username),
                    title="MD",
                    care_teams=[teams[index]],
                    first_name=first,
                    last_name=last,
                )
            )
        for clinician in clinicians:  # e-mail notifications (printed by the local mail backend)
            if not clinician.user.email:
                clinician.user.email = f"{clinician.user.username}@riverside.example"
                clinician.user.save(update_fields=["email"])
        # Alerts escalate from the treating clinician to the on-call clinician and the lead.
        EscalationPolicy.objects.get_or_create(
            organisation=org,
            defaults={"on_call": clinicians[1], "clinical_lead": clinicians[0]},
        )
        if not User.objects.filter(username="auditor_lee").exists():
            auditor_create(
                organisation=org,
                username="auditor_lee",
                password=self._password(creds, "auditor_lee"),
            )
        # The portal's second factor: demo staff get a known TOTP secret (kept across runs).
        from clinician_portal.services import portal_demo_totp_ensure

        totp = creds.setdefault("totp", {})
        for username in ("dr_rivera", "dr_chen", "auditor_lee"):
            totp[username] = portal_demo_totp_ensure(User.objects.get(username=username))
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "", self._password(creds, "admin"), role="admin")
        for scope, text in CONSENT_TEXT.items():
            consent_document_publish(scope=scope, version="1", text=text)
        for spec in PATIENTS:
            patient = Patient.objects.filter(user__username=spec["username"]).first()
            if patient is None:
                patient = patient_create(
                    organisation=org,
                    treating_clinician=clinicians[spec["clinician"]],
                    care_team=teams[spec["team"]],
                    username=spec["username"],
                    password=self._password(creds, spec["username"]),
                    display_name=spec["display_name"],
                    timezone=spec["timezone"],
                    locale=spec["locale"],
                )
            self._patient_data(patient, spec)
            self._token(creds, patient.user)

    def _patient_data(self, patient: Patient, spec: dict[str, Any]) -> None:
        actor = Actor(user_id=patient.user_id, role="patient")
        state = consent_state(patient=patient)
        scopes = [
            ConsentScope.TEXT_ANALYSIS,
            ConsentScope.VOICE_ANALYSIS,
            ConsentScope.FACE_ANALYSIS,
            ConsentScope.CARE_TEAM_SHARING,
        ]
        if spec["contact"]:
            scopes.append(ConsentScope.EMERGENCY_CONTACT)
            emergency_contact_set(
                patient=patient, name="Jamie Morgan", phone="+1 555 0100", relationship="sibling"
            )
        for scope in scopes:
            if state.get(scope) is None:
                consent_change(
                    actor=actor,
                    patient=patient,
                    scope=scope,
                    granted=True,
                    document_version="1",
                    source="demo",
                )
        if DiaryEntry.objects.filter(patient=patient).exists():
            return
        now = timezone.now()
        for days_ago, (text, mood) in enumerate(DIARY):
            diary_entry_create(
                actor=actor,
                patient=patient,
                idempotency_key=uuid.uuid4(),
                text=text,
                client_timestamp=now - dt.timedelta(days=days_ago, hours=2),
                self_rated_mood=mood,
            )
        questionnaire_submit(
            actor=actor,
            patient=patient,
            idempotency_key=uuid.uuid4(),
            instrument="phq9",
            answers=[1, 2, 1, 2, 1, 1, 1, 0, 0],
            client_timestamp=now - dt.timedelta(days=1),
        )
        questionnaire_submit(
            actor=actor,
            patient=patient,
            idempotency_key=uuid.uuid4(),
            instrument="gad7",
            answers=[1, 1, 2, 1, 0, 1, 1],
            client_timestamp=now - dt.timedelta(days=1),
        )

    def _token(self, creds: dict[str, Any], user: User) -> None:
        raw = creds["tokens"].get(user.username)
        if raw:
            token = ApiToken.objects.filter(key_hash=token_hash(raw)).first()
            if token is not None and token.is_active:
                return
        _, raw = token_issue(user=user, name="demo")
        creds["tokens"][user.username] = raw


def summary(creds: dict[str, Any], base: str) -> str:
    token = creds["tokens"].get("patient_alex", "")
    stamp = timezone.now().replace(microsecond=0).isoformat()
    lines = [
        "",
        "Vigil is running (embedded profile: SQLite + filesystem broker, three workers and beat).",
        f"  API            {base}/api/v1/",
        f"  API docs       {base}/api/docs/",
        f"  OpenAPI schema {base}/api/schema/",
        f"  Clinician portal and auditor console {base}/portal/",
        f"  FHIR R4B       {base}/fhir/metadata",
        f"  Admin          {base}/admin/",
        f"  Health         {base}/readyz",
        "",
        "Logins (demo only; passwords are random and kept in var/demo-credentials.json):",
    ]
    for username, password in creds["passwords"].items():
        lines.append(f"  {username:<14} {password}")
    if creds.get("totp"):
        lines += ["", "Portal second factor (TOTP secrets; add one to an authenticator app, or):"]
        for username, secret in creds["totp"].items():
            lines.append(f"  {username:<14} {secret}")
        lines.append(
            "  current code:  .venv/bin/python -c "
            "\"import pyotp; print(pyotp.TOTP('SECRET').now())\""
        )
    lines += ["", "Patient API tokens:"]
    for username, raw in creds["tokens"].items():
        lines.append(f"  {username:<14} {raw}")
    body = json.dumps(
        {
            "idempotency_key": str(uuid.uuid4()),
            "client_timestamp": stamp,
            "text": "Felt calmer after a walk today.",
            "self_rated_mood": 6,
        }
    )
    lines += [
        "",
        "Try it: create a diary entry as patient_alex, then list the entries:",
        f"  curl -s -X POST {base}/api/v1/diary-entries \\",
        f"       -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\",
        f"       -d '{body}'",
        f"  curl -s {base}/api/v1/diary-entries -H 'Authorization: Bearer {token}'",
        "",
        "Press Ctrl-C to stop the web server, the workers and the scheduler.",
    ]
    return "\n".join(lines)
