"""Play a patient's two weeks through the real API and workers, and print the alert timeline.

``manage.py demo_scenario [--inline | --wait] [--timeout S]``

A fresh patient (``scenario_<timestamp>``, all consents, an emergency contact with an e-mail,
treated by dr_rivera of the Riverside demo clinic; ``seed_demo`` runs first when the clinic is
missing) sends, through the REST API with its own token: ordinary diary days; three low days in a
row (yellow ``low_mood_streak``); a PHQ-9 with item 9 = 0; on one day a synthetic distressed
video and then crisis wording (orange ``crisis_double_verified``, which notifies the consented
emergency contact); then the help button (red ``help_button``). The red alert is left
unacknowledged past its deadline (``escalation_sweep`` on a simulated clock), then dr_rivera
acknowledges and resolves it. Notifications are relayed from the outbox by ``outbox_relay``.

Work runs on the real worker (``--wait``: the command polls the database until the analyses
exist) or in-process (``--inline``, the default when no worker answers a ping): Celery's
``task_always_eager`` makes ``apply_async`` run the real task code in this process.

The timeline carries ids, tiers, rule ids, times and scores only: never the patient's words.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import uuid
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from privacy.audit import Actor
from privacy.auth import token_issue
from privacy.choices import ConsentScope
from privacy.consent import consent_change
from risk.models import Alert, AlertEvidence, AlertTransition, OutboxMessage
from risk.rules.engine import MediaDistress
from risk.services import alert_acknowledge, alert_resolve, escalation_sweep, outbox_relay
from screening.models import (
    CareTeam,
    Clinician,
    MediaAnalysis,
    Organisation,
    Patient,
    TextAnalysis,
    User,
    VideoSubmission,
)
from screening.services.people import emergency_contact_set, patient_create

TZ = "America/New_York"
#: the orange rule's distress threshold is read from the rule set; this is only the fallback
DISTRESS_RULE = "crisis_double_verified"
ORDINARY = [
    ("Worked from home, cooked a proper dinner, watched a film.", 6),
    ("Coffee with a friend, a walk by the river. A decent day.", 7),
    ("Busy at work but fine. Slept well.", 6),
    ("Quiet Sunday, tidied the flat and called my brother.", 6),
    ("Gym in the morning, felt good afterwards.", 7),
]
LOW = [
    ("I feel empty and exhausted. I cried most of the afternoon and everything feels grey.", 1),
    ("Couldn't get out of bed. I feel worthless and alone, nothing helps.", 1),
    ("Another awful day. I feel hopeless and numb, I just sat in the dark.", 1),
]
CRISIS = (
    "I can't see the point of anything anymore. Honestly everyone would be better off without me."
)
PHQ9 = [2, 2, 2, 2, 2, 2, 1, 1, 0]  # total 14, item 9 ("better off dead") = 0


class ScenarioFailed(CommandError):
    pass


class Command(BaseCommand):
    help = "Play a demo patient's two weeks through the API and workers; print the alert timeline."

    def add_arguments(self, parser: Any) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--inline", action="store_true", help="Run the tasks in-process.")
        mode.add_argument("--wait", action="store_true", help="Use the running worker; poll.")
        parser.add_argument("--timeout", type=float, default=600.0, help="--wait: seconds per step")

    # --- output ----------------------------------------------------------------------------------
    def say(self, line: str) -> None:
        self.stdout.write(line)

    def event(self, label: str, **fields: Any) -> None:
        parts = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        self.say(f"  {label:<22} {parts}")

    # --- entry -----------------------------------------------------------------------------------
    def handle(self, *args: Any, **options: Any) -> None:
        if settings.IS_PRODUCTION:
            raise CommandError("demo_scenario refuses to run with VIGIL_ENV=production")
        if not Clinician.objects.filter(user__username="dr_rivera").exists():
            call_command("seed_demo", verbosity=0)
        inline = options["inline"] or (not options["wait"] and not _worker_answers())
        self.timeout = float(options["timeout"])
        self.inline = inline
        self.say(f"demo_scenario: work runs {'in-process (eager)' if inline else 'on the worker'}")
        with _eager(inline):
            self._play()

    # --- the scenario ----------------------------------------------------------------------------
    def _play(self) -> None:
        patient, token = self._patient()
        self.patient = patient
        self.seen_alerts: set[uuid.UUID] = set()
        self.seen_transitions: set[int] = set()
        self.seen_evidence: set[uuid.UUID] = set()
        self.seen_messages: set[uuid.UUID] = set()
        client = APIClient(HTTP_HOST=_host())
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        self.client = client
        tz = zoneinfo.ZoneInfo(TZ)
        now = timezone.now()
        today = now.astimezone(tz).date()

        def at(days_ago: int, hour: int) -> dt.datetime:
            local = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(hour), tz)
            return min(local, now - dt.timedelta(minutes=1))

        self.say(f"patient {patient.pk} (user {patient.user.username}), time zone {TZ}")
        self.say("phase 1: ordinary days")
        for i, (text, mood) in enumerate(ORDINARY):
            self._diary(at(13 - i, 20), text, mood)
        self._report()

        self.say("phase 2: three low days in a row, PHQ-9 (item 9 = 0)")
        for i, (text, mood) in enumerate(LOW):
            self._diary(at(6 - i, 21), text, mood)
        self._questionnaire(at(4, 21))
        self._report()

        self.say("phase 3: a distressed video, then crisis wording, the same day")
        video_id = self._video(at(2, 19))
        distress = MediaAnalysis.objects.filter(video_id=uuid.UUID(video_id)).values_list(
            "distress", "distress_confidence"
        )
        score, confidence = distress.first() or (None, 0.0)
        threshold = _distress_threshold()
        verdict = "meets" if score is not None and score >= threshold else "is BELOW"
        self.event(
            "video distress",
            video=video_id,
            distress=_fmt(score),
            confidence=_fmt(confidence),
            threshold=threshold,
            verdict=f"{verdict} the {DISTRESS_RULE} threshold",
        )
        self._diary(at(2, 21), CRISIS, None)
        self._relay()
        self._report()
        orange = self._alert("orange", "crisis_double_verified")
        if orange is None:
            self.say(
                "  NOTE: no orange alert: the video's distress did not corroborate the crisis "
                "wording (see the verdict above)"
            )
        else:
            kinds = sorted(
                {
                    key.split("+", 1)[1].split(":", 1)[0]
                    for key in AlertEvidence.objects.filter(alert=orange).values_list(
                        "dedupe_key", flat=True
                    )
                    if "+" in key
                }
            )
            self.event("orange corroborated by", alert=orange.pk, signals=",".join(kinds) or "-")
            if MediaDistress.kind not in kinds:
                self.say(
                    "  NOTE: the orange alert was not corroborated by the video's distress "
                    f"(distress {_fmt(score)} vs threshold {threshold})"
                )

        self.say("phase 4: the help button")
        response = client.post("/api/v1/help", {"idempotency_key": str(uuid.uuid4())}, "json")
        _expect(response, 201, "help")
        self.event("help pressed", emergency=response.json().get("emergency_id"))
        self._relay()
        self._report()
        red = self._alert("red", "help_button")
        if red is None:
            raise ScenarioFailed("the help button raised no red alert")

        self.say("phase 5: nobody acknowledges the red alert")
        red.refresh_from_db()
        future = (red.next_escalation_at or red.ack_deadline) + dt.timedelta(seconds=1)
        minutes = max(0, round((future - timezone.now()).total_seconds() / 60))
        self.say(f"  simulated clock +{minutes} min ({future.isoformat(timespec='seconds')})")
        swept = escalation_sweep(now=future)
        self.event("escalation sweep", **swept)
        self._relay(now=future)
        self._report()

        self.say("phase 6: dr_rivera acknowledges and resolves")
        rivera = Clinician.objects.select_related("user").get(user__username="dr_rivera")
        actor = Actor(user_id=rivera.user_id, role="clinician")
        alert_acknowledge(actor=actor, alert_id=red.pk)
        alert_resolve(
            actor=actor,
            alert_id=red.pk,
            disposition=_disposition(),
            note="Called the patient; safety plan reviewed; follow-up booked (demo scenario).",
        )
        self._relay(now=future)
        self._report()
        self._summary()

    # --- set-up ----------------------------------------------------------------------------------
    def _patient(self) -> tuple[Patient, str]:
        org = Organisation.objects.get(slug="riverside")
        rivera = Clinician.objects.get(user__username="dr_rivera")
        team = rivera.care_teams.first() or CareTeam.objects.filter(organisation=org).first()
        if team is None:
            raise CommandError("the demo clinic has no care team: run seed_demo")
        stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")
        patient = patient_create(
            organisation=org,
            treating_clinician=rivera,
            care_team=team,
            username=f"scenario_{stamp}",
            password=None,
            display_name="Scenario Patient",
            timezone=TZ,
        )
        actor = Actor(user_id=patient.user_id, role="patient")
        for scope in (
            ConsentScope.TEXT_ANALYSIS,
            ConsentScope.VOICE_ANALYSIS,
            ConsentScope.FACE_ANALYSIS,
            ConsentScope.CARE_TEAM_SHARING,
            ConsentScope.EMERGENCY_CONTACT,
        ):
            consent_change(
                actor=actor,
                patient=patient,
                scope=scope,
                granted=True,
                document_version="1",
                source="demo",
            )
        emergency_contact_set(
            patient=patient,
            name="Scenario Contact",
            email=f"contact+{stamp}@scenario.example",
            relationship="friend",
        )
        _, raw = token_issue(user=patient.user, name="demo_scenario")
        return patient, raw

    # --- inputs through the API ------------------------------------------------------------------
    def _diary(self, when: dt.datetime, text: str, mood: int | None) -> None:
        body: dict[str, Any] = {
            "idempotency_key": str(uuid.uuid4()),
            "text": text,
            "client_timestamp": when.isoformat(),
            "timezone": TZ,
        }
        if mood is not None:
            body["self_rated_mood"] = mood
        response = self.client.post("/api/v1/diary-entries", body, format="json")
        _expect(response, 201, "diary entry")
        entry_id = response.json()["id"]
        self._until(
            lambda: TextAnalysis.objects.filter(diary_entry_id=entry_id).exists(), "text analysis"
        )
        analysis = TextAnalysis.objects.get(diary_entry_id=entry_id)
        self.event(
            "diary entry",
            day=when.date(),
            entry=entry_id,
            mood=mood,
            valence=_fmt(analysis.valence),
            crisis=analysis.crisis_category,
        )
        self._report(quiet=True)

    def _questionnaire(self, when: dt.datetime) -> None:
        body = {
            "idempotency_key": str(uuid.uuid4()),
            "instrument": "phq9",
            "answers": PHQ9,
            "client_timestamp": when.isoformat(),
            "timezone": TZ,
        }
        response = self.client.post("/api/v1/questionnaires", body, format="json")
        _expect(response, 201, "questionnaire")
        data = response.json()
        self.event(
            "PHQ-9",
            day=when.date(),
            response=data.get("id"),
            total=data.get("total"),
            item9=PHQ9[8],
        )

    def _video(self, when: dt.datetime) -> str:
        from risk.management.commands._distressed_video import write_distressed_video

        with tempfile.TemporaryDirectory(prefix="vigil-scenario-") as folder:
            path = write_distressed_video(Path(folder) / "scenario.mp4")
            with path.open("rb") as handle:
                response = self.client.post(
                    "/api/v1/videos",
                    {
                        "idempotency_key": str(uuid.uuid4()),
                        "client_timestamp": when.isoformat(),
                        "timezone": TZ,
                        "file": handle,
                    },
                    format="multipart",
                )
        _expect(response, 201, "video upload", also=(202,))
        video_id = str(response.json()["id"])

        def finished() -> bool:
            status = VideoSubmission.objects.filter(pk=video_id).values_list("status", flat=True)
            return status.first() in ("done", "failed")

        self._until(finished, "video processing")
        video = VideoSubmission.objects.get(pk=video_id)
        self.event("video", day=when.date(), video=video_id, status=video.status)
        if video.status != "done":
            raise ScenarioFailed(f"the video failed: {video.failure_reason}")
        self._report(quiet=True)
        return video_id

    # --- waiting, relaying, reporting ------------------------------------------------------------
    def _until(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + (5.0 if self.inline else self.timeout)
        while not ready():
            if time.monotonic() > deadline:
                raise ScenarioFailed(f"timed out waiting for the {what}")
            time.sleep(0.05 if self.inline else 1.0)

    def _relay(self, now: dt.datetime | None = None) -> None:
        counts = outbox_relay(now=now, budget_seconds=30.0)
        if any(counts.values()):
            self.event("outbox relay", **counts)

    def _alert(self, tier: str, rule_id: str) -> Alert | None:
        return (
            Alert.objects.filter(patient=self.patient, tier=tier, rule_id=rule_id)
            .order_by("created_at")
            .first()
        )

    def _report(self, *, quiet: bool = False) -> None:
        """Print the alerts, transitions and notifications not printed yet."""
        for alert in Alert.objects.filter(patient=self.patient).order_by("created_at"):
            if alert.pk not in self.seen_alerts:
                self.seen_alerts.add(alert.pk)
                self.event(
                    "ALERT",
                    alert=alert.pk,
                    tier=alert.tier,
                    rule=alert.rule_id,
                    day=alert.local_date,
                    at=_time(alert.created_at),
                    ack_by=_time(alert.ack_deadline),
                )
        evidence = AlertEvidence.objects.filter(alert__patient=self.patient).order_by("created_at")
        for item in evidence:
            if item.pk in self.seen_evidence:
                continue
            self.seen_evidence.add(item.pk)
            self.event(
                "evidence",
                alert=item.alert_id,
                tier=item.tier,
                rule=item.rule_id,
                signal=item.event_kind,
                day=item.local_date,
            )
        transitions = AlertTransition.objects.filter(alert__patient=self.patient).order_by("pk")
        for row in transitions:
            if row.pk in self.seen_transitions:
                continue
            self.seen_transitions.add(row.pk)
            if row.note_code == "raised":
                continue  # printed as the ALERT line
            self.event(
                "transition",
                alert=row.alert_id,
                change=f"{row.from_state or '-'}->{row.to_state}",
                code=row.note_code,
                level=row.level,
                at=_time(row.at),
            )
        if quiet:
            return
        messages = OutboxMessage.objects.filter(alert__patient=self.patient).order_by("created_at")
        for message in messages:
            if message.pk in self.seen_messages or message.state == "pending":
                continue
            self.seen_messages.add(message.pk)
            self.event(
                "notification",
                message=message.pk,
                alert=message.alert_id,
                channel=message.channel,
                to=_recipient_role(message),
                level=f"{message.level}.{message.repeat}",
                status=message.state,
                sent=_time(message.sent_at),
            )

    def _summary(self) -> None:
        self.say("summary")
        for alert in Alert.objects.filter(patient=self.patient).order_by("created_at"):
            escalations = AlertTransition.objects.filter(
                alert=alert, note_code__startswith="escalated"
            ).count()
            self.event(
                "alert",
                alert=alert.pk,
                tier=alert.tier,
                rule=alert.rule_id,
                state=alert.state,
                escalations=escalations,
            )
        contact = OutboxMessage.objects.filter(
            alert__patient=self.patient, recipient_kind="emergency_contact"
        )
        self.event(
            "emergency contact",
            messages=contact.count(),
            sent=contact.filter(state="sent").count(),
        )


# --- helpers -------------------------------------------------------------------------------------
def _worker_answers() -> bool:
    try:
        from config.celery import app

        return bool(app.control.ping(timeout=1.0))
    except Exception:
        return False


@contextmanager
def _eager(inline: bool) -> Iterator[None]:
    """Inline: ``apply_async`` runs the real task in this process; the relay is called here."""
    if not inline:
        yield
        return
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with override_settings(VIGIL_ALERT_RELAY_ON_COMMIT=False):
            yield
    finally:
        app.conf.task_always_eager = before


def _host() -> str:
    for host in settings.ALLOWED_HOSTS:
        if host and host != "*" and not host.startswith("."):
            return str(host)
    return "localhost"


def _expect(response: Any, status: int, what: str, also: tuple[int, ...] = ()) -> None:
    if response.status_code != status and response.status_code not in also:
        raise ScenarioFailed(f"{what}: HTTP {response.status_code}")


def _fmt(value: float | None) -> str | None:
    return None if value is None else f"{value:.3f}"


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _distress_threshold() -> float:
    from risk.services import rule_set_for

    try:
        org = Organisation.objects.get(slug="riverside")
        rule = rule_set_for(organisation=org).rule(DISTRESS_RULE)
        return float(rule.params["distress_at_or_above"])
    except Exception:
        return 0.7


def _disposition() -> str:
    from risk.choices import Disposition

    return str(Disposition.SAFETY_PLAN_REVIEWED)


def _recipient_role(message: OutboxMessage) -> str:
    if message.recipient_kind != "user":
        return str(message.recipient_kind)
    user = User.objects.filter(pk=message.recipient_id).values_list("role", "username").first()
    return f"{user[0]}:{user[1]}" if user else "user"
