"""Portal page benchmark: render time and query count per page on the demo clinic scaled to
1,000 patients.

    .venv/bin/python -m bench.portal_bench [--patients 1000] [--repeat 20]
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/vigil_portal_bench \\
        .venv/bin/python -m bench.portal_bench

SQLite by default, in its own file (``var/portal-bench.sqlite3``; a later run reuses the
patients it made). Seeds the demo clinic (``seed_demo``), then adds patients (``patient_create``
without a password) up to ``--patients``, spread over the two care teams, each with 90 days of
fused daily scores (a tenth of the days abstained), a few diary entries, a PHQ-9 total and, for
one patient in ten, a red alert raised through the real help-button service.

Each page is requested ``--repeat`` times in process through Django's test client (the whole
middleware stack, sessions, templates; no network), as dr_rivera (clinical pages) or auditor_lee
(console), and the median and p95 wall time and the number of SQL queries are printed. Every
page view also appends its access event to the audit chain, which is part of what is timed.
Goal: every page under 300 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.api_latency import ROOT, _configure, _percentile

PREFIX = "bench_portal_"
GOAL_MS = 300.0


def _setup() -> str:
    label = _configure()
    if label == "SQLite":
        os.environ["VIGIL_SQLITE_PATH"] = str(ROOT / "var" / "portal-bench.sqlite3")
    import django

    django.setup()
    from django.core.management import call_command

    from privacy.keys import create_local_keyring, keyring

    create_local_keyring(Path(os.environ["VIGIL_KEYRING_FILE"]))
    keyring.cache_clear()
    call_command("migrate", verbosity=0, interactive=False)
    credentials = ROOT / "var" / "portal-bench-credentials.json"
    call_command("seed_demo", verbosity=0, credentials=str(credentials))
    return label


def _scale(patients: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from privacy.audit import Actor
    from screening.models import CareTeam, Clinician, DiaryEntry, Organisation, Patient
    from screening.services.help import help_request_create
    from screening.services.people import patient_create

    rng = random.Random(7)
    org = Organisation.objects.get(slug="riverside")
    teams = list(CareTeam.objects.filter(organisation=org).order_by("pk"))
    clinicians = [Clinician.objects.get(user__username=name) for name in ("dr_rivera", "dr_chen")]
    have = Patient.objects.filter(organisation=org).count()
    missing = max(0, patients - have)
    started = time.perf_counter()
    created: list[Patient] = []
    for i in range(missing):
        index = rng.randrange(2)
        with transaction.atomic():
            created.append(
                patient_create(
                    organisation=org,
                    treating_clinician=clinicians[index],
                    care_team=teams[index],
                    username=f"{PREFIX}{uuid.uuid4().hex[:10]}",
                    password=None,
                    display_name=f"Bench Patient {have + i}",
                    timezone="America/New_York",
                )
            )
    if not created:
        print(f"reusing {have} patients")
        return
    from screening.models import DailyMoodScore

    today = timezone.now().date()
    scores, diaries = [], []
    for patient in created:
        for ago in range(90):
            abstained = rng.random() < 0.1
            scores.append(
                DailyMoodScore(
                    patient=patient,
                    local_date=today - dt.timedelta(days=ago),
                    score=None if abstained else round(rng.uniform(-6, 6), 2),
                    confidence=0.0 if abstained else round(rng.uniform(0.3, 0.95), 2),
                    abstained=abstained,
                    reason="insufficient_signal" if abstained else "",
                    explanation="" if abstained else "Mostly from the diary's words.",
                    fusion_version="fusion-1.0",
                )
            )
        for ago in rng.sample(range(30), 5):
            moment = timezone.now() - dt.timedelta(days=ago)
            diaries.append(
                DiaryEntry(
                    patient=patient,
                    idempotency_key=uuid.uuid4(),
                    client_timestamp=moment,
                    timezone="America/New_York",
                    local_date=moment.date(),
                    text="A benchmark diary entry about an ordinary day.",
                    self_rated_mood=rng.randrange(1, 10),
                )
            )
    DailyMoodScore.objects.bulk_create(scores, batch_size=2000)
    DiaryEntry.objects.bulk_create(diaries, batch_size=1000)
    for patient in created[:: max(1, len(created) // max(1, patients // 10))]:
        help_request_create(actor=Actor(user_id=patient.user_id, role="patient"), patient=patient)
    print(
        f"made {len(created)} patients, {len(scores)} daily scores, {len(diaries)} diary "
        f"entries in {time.perf_counter() - started:.0f} s"
    )


def _client(username: str) -> Any:
    from django.test import Client

    from clinician_portal.access import SESSION_LAST_SEEN, SESSION_MFA
    from screening.models import User

    client = Client()
    client.force_login(User.objects.get(username=username))
    session = client.session
    session[SESSION_MFA] = True
    session[SESSION_LAST_SEEN] = time.time() + 3600  # the run must not idle out
    session.save()
    return client


def _measure(client: Any, path: str, repeat: int, **headers: str) -> tuple[float, float, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries, status = [], 0, 0
    for i in range(repeat + 1):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
        status = response.status_code
        if i:  # the first request warms caches (templates, keys)
            times.append(elapsed)
            queries = len(captured)
    return statistics.median(times), _percentile(times, 0.95), queries, status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    label = _setup()
    _scale(args.patients)

    from risk.models import Alert
    from screening.models import Clinician, Patient

    rivera = Clinician.objects.get(user__username="dr_rivera")
    total = Patient.objects.filter(organisation=rivera.organisation).count()
    caseload = Patient.objects.filter(treating_clinician=rivera).count()
    alert = Alert.objects.filter(assigned_to=rivera, state="open").order_by("-created_at").first()
    patient = (
        Patient.objects.filter(treating_clinician=rivera, user__username__startswith=PREFIX)
        .order_by("pk")
        .first()
    )
    if alert is None or patient is None:
        sys.exit("no bench alert or patient: run with --patients >= 20")
    open_alerts = Alert.objects.filter(organisation=rivera.organisation, state="open").count()
    clinician, auditor = _client("dr_rivera"), _client("auditor_lee")
    pages = [
        ("alert queue", clinician, "/portal/alerts/", {}),
        ("queue refresh (fragment)", clinician, "/portal/alerts/rows/", {"X-Portal-Poll": "1"}),
        ("alert detail", clinician, f"/portal/alerts/{alert.pk}", {}),
        ("caseload (first page, 50 rows)", clinician, "/portal/patients/", {}),
        ("patient timeline (90 days)", clinician, f"/portal/patients/{patient.pseudonym}/", {}),
        ("auditor: access log", auditor, "/portal/audit/events/", {}),
        ("auditor: access log, break-glass", auditor, "/portal/audit/events/?break_glass=1", {}),
        ("auditor: consent ledger", auditor, "/portal/audit/consents/", {}),
        ("auditor: chain status", auditor, "/portal/audit/chain/", {}),
    ]
    print(
        f"\n{label}: {total} patients in the clinic, {caseload} treated by dr_rivera, "
        f"{open_alerts} open alerts; {args.repeat} requests per page\n"
    )
    print(f"{'page':36} {'median ms':>10} {'p95 ms':>8} {'queries':>8} {'status':>7}")
    worst = 0.0
    for name, client, path, headers in pages:
        median, p95, queries, status = _measure(client, path, args.repeat, **headers)
        worst = max(worst, p95)
        print(f"{name:36} {median:10.1f} {p95:8.1f} {queries:8d} {status:7d}")
    verdict = "met" if worst < GOAL_MS else "NOT met"
    print(f"\ngoal: every page under {GOAL_MS:.0f} ms (p95): {verdict} (worst p95 {worst:.1f} ms)")


if __name__ == "__main__":
    main()
