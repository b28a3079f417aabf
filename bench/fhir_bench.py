"""FHIR API benchmark: search latency and bulk-export throughput on demo-like data.

    .venv/bin/python -m bench.fhir_bench [--patients 1000] [--days 90] [--searches 200]

Builds a throwaway SQLite database in a temporary folder (never var/), with one clinic, 10 care
teams, 10 clinicians and ``--patients`` patients, each with one questionnaire per day for
``--days`` days (PHQ-9 and GAD-7 on alternate days; answers encrypted with the patient's key,
inserted with ``bulk_create``), which is 1.5 Observations per patient-day. Then:

1. ``--searches`` times, a random patient's last 90 days of Observations as their treating
   clinician: ``GET /fhir/Observation?patient=<id>&date=ge<today-90d>&_count=200`` through the
   full Django stack in-process (auth, scopes, visibility, mapping, access-log writes), and
   reports p50/p99 in milliseconds;
2. a system-level ``$export`` of Patient, QuestionnaireResponse and Observation by an
   integration client, in-process (``VIGIL_FHIR_EXPORT_EAGER``), and reports resources/s.

Login passwords use a fast hasher here (throwaway data); nothing else differs from production
code paths.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="vigil-fhir-bench-"))
    os.environ.pop("DATABASE_URL", None)
    os.environ["VIGIL_ENV"] = "local"
    os.environ["VIGIL_VAR_DIR"] = str(folder)
    os.environ["VIGIL_SQLITE_PATH"] = str(folder / "bench.sqlite3")
    os.environ["VIGIL_KEYRING_FILE"] = str(folder / "keys.json")
    os.environ["VIGIL_MEDIA_ROOT"] = str(folder / "media")
    os.environ["VIGIL_ALERT_RELAY_ON_COMMIT"] = "false"
    os.environ.setdefault("VIGIL_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    try:
        _run(args, folder)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def _run(args: argparse.Namespace, folder: Path) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ALLOWED_HOSTS = ["*"]
    settings.VIGIL_FHIR_EXPORT_EAGER = True
    settings.VIGIL_FHIR_EXPORT_DIR = str(folder / "export")

    from clinician_portal.fhir.services import fhir_client_create
    from privacy.auth import token_issue
    from privacy.keys import create_local_keyring
    from screening.instruments import score
    from screening.models import CareTeam, Organisation, QuestionnaireResponse
    from screening.services.people import clinician_create, patient_create

    create_local_keyring(Path(os.environ["VIGIL_KEYRING_FILE"]))
    call_command("migrate", verbosity=0)

    started = time.perf_counter()
    rng = random.Random(7)
    clinic = Organisation.objects.create(name="Bench clinic", slug="bench-clinic")
    teams = [CareTeam.objects.create(organisation=clinic, name=f"Team {i}") for i in range(10)]
    clinicians = [
        clinician_create(
            organisation=clinic, username=f"bench-clin-{i}", password="x" * 12, care_teams=[t]
        )
        for i, t in enumerate(teams)
    ]
    today = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    patients = []
    for n in range(args.patients):
        team = teams[n % len(teams)]
        patient = patient_create(
            organisation=clinic,
            treating_clinician=clinicians[n % len(teams)],
            care_team=team,
            username=f"bench-pat-{n}",
            password="x" * 12,
            display_name=f"Bench Patient {n}",
            timezone="UTC",
            locale="en-US",
        )
        patients.append(patient)
        rows = []
        for day in range(args.days):
            when = today - dt.timedelta(days=day)
            instrument = "phq9" if day % 2 == 0 else "gad7"
            answers = [rng.randint(0, 3) for _ in range(9 if instrument == "phq9" else 7)]
            result = score(instrument, answers)
            rows.append(
                QuestionnaireResponse(
                    patient=patient,
                    idempotency_key=uuid.uuid4(),
                    client_timestamp=when,
                    timezone="UTC",
                    local_date=when.date(),
                    instrument=instrument,
                    answers=answers,
                    total=result.total,
                    severity=result.severity,
                    item9=result.item9,
                )
            )
        QuestionnaireResponse.objects.bulk_create(rows, batch_size=500)
    seeded = time.perf_counter() - started
    qr_count = QuestionnaireResponse.objects.count()
    print(f"seeded {args.patients} patients x {args.days} days ({qr_count} responses)")
    print(f"seeding took {seeded:.0f} s")

    # 1. search latency
    tokens = {}
    for clinician in clinicians:
        _, raw = token_issue(user=clinician.user, name="bench")
        tokens[clinician.pk] = raw
    http = Client()
    since = (today - dt.timedelta(days=90)).date().isoformat()
    latencies: list[float] = []
    counts: list[int] = []
    for patient in patients[:5]:  # warm-up (imports, caches), not timed
        http.get(
            "/fhir/Observation",
            {"patient": str(patient.pk), "date": f"ge{since}", "_count": "200"},
            HTTP_AUTHORIZATION=f"Bearer {tokens[patient.treating_clinician_id]}",
        )
    for _ in range(args.searches):
        patient = rng.choice(patients)
        t0 = time.perf_counter()
        response = http.get(
            "/fhir/Observation",
            {"patient": str(patient.pk), "date": f"ge{since}", "_count": "200"},
            HTTP_AUTHORIZATION=f"Bearer {tokens[patient.treating_clinician_id]}",
        )
        body = response.json()
        latencies.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.content[:300]
        counts.append(len(body.get("entry", [])))
    print(
        f"search last 90 days of Observations ({statistics.mean(counts):.0f} per patient): "
        f"p50 {_percentile(latencies, 0.5):.1f} ms, p99 {_percentile(latencies, 0.99):.1f} ms "
        f"over {len(latencies)} searches"
    )

    # 2. bulk export throughput
    client, secret = fhir_client_create(organisation=clinic, name="bench")
    token_response = http.post(
        "/fhir/auth/token",
        {
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": secret,
        },
    )
    access = token_response.json()["access_token"]
    t0 = time.perf_counter()
    kick = http.get(
        "/fhir/$export",
        {"_type": "Patient,QuestionnaireResponse,Observation"},
        HTTP_AUTHORIZATION=f"Bearer {access}",
        HTTP_PREFER="respond-async",
    )
    assert kick.status_code == 202, kick.content[:300]
    status_url = kick["Content-Location"].split("/fhir/", 1)[1]
    manifest = http.get(f"/fhir/{status_url}", HTTP_AUTHORIZATION=f"Bearer {access}").json()
    elapsed = time.perf_counter() - t0
    total = sum(item["count"] for item in manifest["output"])
    detail = ", ".join(f"{o['type']} {o['count']}" for o in manifest["output"])
    print(
        f"bulk export: {total} resources ({detail}) in {elapsed:.1f} s = "
        f"{total / elapsed:.0f} resources/s"
    )
    cpus = os.cpu_count()
    print(f"machine: {platform.machine()}, {cpus} CPUs, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
