"""Risk engine benchmarks: the help button under concurrency, rule evaluation, the escalation sweep.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/vigil_bench \\
        .venv/bin/python -m bench.risk_bench [--clients 50] [--presses 20] \\
        [--evaluations 100000] [--sweep-patients 10000]

Uses the same database and environment as ``bench.api_latency`` (var/bench.sqlite3 without
BENCH_DATABASE_URL; the figures in docs/benchmarks.md are PostgreSQL), seeds the demo clinic and:

1. starts gunicorn on 127.0.0.1 (a free port; 2 workers x 8 threads, stopped in a ``finally``)
   and drives it with ``--clients`` concurrent patients over keep-alive HTTP, each pressing help
   ``--presses`` times, then the same number of ``POST /api/v1/diary-entries`` as the comparison;
   then, open loop, the same patients at fixed total arrival rates (``--rates``, Poisson, latency
   from the scheduled arrival, so queueing counts): the realistic case of many patients who each
   press rarely, as opposed to the closed loop's saturation;
   then checks in the database that every press has its HelpRequest, that each patient has
   exactly one open red alert, and counts the outbox rows. The alert relay on commit is off
   (``VIGIL_ALERT_RELAY_ON_COMMIT=false``): the notification is *queued* (outbox rows committed
   with the press); delivering it is the beat relay's job and is not measured.
2. times the pure engine (``risk.rules.engine.evaluate``) per event kind with the v1 rule set.
3. times ``escalation_sweep`` over ``--sweep-patients`` patients, each with one open red alert
   past its deadline. The patients are made with ``patient_create`` (login, data key, record;
   reused by later runs); the alerts with ``Alert.objects.bulk_create`` (evidence encrypted per
   patient by the field), not through ``alert_raise``, so no raise-time outbox rows or
   transitions exist for them. Any other open alert in the database is parked
   (``next_escalation_at`` cleared) so that the sweep sees only these.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.api_latency import ROOT, _configure, _percentile

SWEEP_PREFIX = "bench_sweep_"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("gunicorn did not become ready")


def _drive(
    port: int, tokens: list[str], count: int, path: str, body: Callable[[], dict]
) -> tuple[list[float], float, list[str]]:
    """One thread per patient, one keep-alive connection each, ``count`` requests in a row.
    Returns the latencies (ms), the wall time (s) and any errors."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(len(tokens) + 1)

    def client(token: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        mine: list[float] = []
        start_gate.wait()
        for _ in range(count):
            payload = json.dumps(body()).encode()
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=payload, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                with lock:
                    errors.append(type(exc).__name__)
                continue
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 201:
                with lock:
                    errors.append(str(response.status))
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    start_gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started, errors


def _drive_open(
    port: int,
    tokens: list[str],
    rate: float,
    seconds: float,
    path: str,
    body: Callable[[], dict],
    seed: int = 7,
) -> tuple[list[float], float, list[str]]:
    """Open loop: requests arrive at ``rate`` per second in all (Poisson, spread over the patients,
    each on its own keep-alive connection), for ``seconds``. A request's latency runs from its
    *scheduled* arrival, so time spent waiting behind a slow previous request of the same patient
    counts (no coordinated omission). Returns the latencies (ms), the wall time (s), any errors."""
    import random

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    per_client = rate / len(tokens)
    start_gate = threading.Barrier(len(tokens) + 1)
    t0: list[float] = []

    def client(index: int, token: str) -> None:
        rng = random.Random(seed * 1000 + index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        mine: list[float] = []
        start_gate.wait()
        scheduled = t0[0] + rng.expovariate(per_client)
        end = t0[0] + seconds
        while scheduled < end:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            payload = json.dumps(body()).encode()
            try:
                conn.request("POST", path, body=payload, headers=headers)
                response = conn.getresponse()
                response.read()
                done = time.perf_counter()
                mine.append((done - scheduled) * 1000)
                if response.status != 201:
                    with lock:
                        errors.append(str(response.status))
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                with lock:
                    errors.append(type(exc).__name__)
            scheduled += rng.expovariate(per_client)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i, t)) for i, t in enumerate(tokens)]
    for thread in threads:
        thread.start()
    t0.append(time.perf_counter() + 0.05)
    start_gate.wait()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - t0[0], errors


def _row(name: str, latencies: list[float], wall: float) -> str:
    return (
        f"{name:<28} {len(latencies):>6} {_percentile(latencies, 0.5):>8.1f} "
        f"{_percentile(latencies, 0.99):>8.1f} {statistics.fmean(latencies):>8.1f} "
        f"{len(latencies) / wall:>8.0f}"
    )


def bench_concurrency(args: argparse.Namespace) -> None:
    from django.db.models import Count, Q
    from django.utils import timezone

    from privacy.auth import token_issue
    from risk.models import Alert, OutboxMessage
    from screening.models import HelpRequest, Patient
    from screening.services.people import patient_create

    seed = Patient.objects.select_related("organisation", "treating_clinician", "care_team").get(
        user__username="patient_alex"
    )
    run = uuid.uuid4().hex[:8]
    patients = [
        patient_create(
            organisation=seed.organisation,
            treating_clinician=seed.treating_clinician,
            care_team=seed.care_team,
            username=f"bench_help_{run}_{i:03d}",
            password=None,
        )
        for i in range(args.clients)
    ]
    tokens = [token_issue(user=p.user, name="bench")[1] for p in patients]
    ids = [p.pk for p in patients]

    port = _free_port()
    env = dict(os.environ)
    log = Path(tempfile.mkdtemp(prefix="vigil-bench-gunicorn-")) / "gunicorn.log"
    with log.open("w") as log_handle:
        proc = subprocess.Popen(  # noqa: S603 (a fixed argv, no shell)
            [
                str(ROOT / ".venv" / "bin" / "gunicorn"),
                "config.wsgi:application",
                "--workers",
                "2",
                "--threads",
                "8",
                "--bind",
                f"127.0.0.1:{port}",
                "--keep-alive",
                "30",
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(port, proc)

        def diary_body() -> dict:
            return {
                "idempotency_key": str(uuid.uuid4()),
                "client_timestamp": timezone.now().isoformat(),
                "text": "Slept badly, but the walk helped a little.",
                "self_rated_mood": 5,
            }

        # Warm both workers (imports, connections, caches) with a few diary entries.
        _drive(port, tokens[:16], 3, "/api/v1/diary-entries", diary_body)
        diary, diary_wall, diary_errors = _drive(
            port, tokens, args.presses, "/api/v1/diary-entries", diary_body
        )
        helps, help_wall, help_errors = _drive(port, tokens, args.presses, "/api/v1/help", dict)
        open_rows = []
        for rate in args.rates:
            for name, path, body in (
                ("POST /api/v1/diary-entries", "/api/v1/diary-entries", diary_body),
                ("POST /api/v1/help", "/api/v1/help", dict),
            ):
                lat, wall, errs = _drive_open(port, tokens, rate, args.open_seconds, path, body)
                open_rows.append((rate, name, lat, wall, errs))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    print()
    print(
        f"1. Help press vs diary entry over HTTP: gunicorn 2 workers x 8 threads on 127.0.0.1, "
        f"{args.clients} concurrent patients x {args.presses} requests (keep-alive)"
    )
    print(f"{'request':<28} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'req/s':>8}")
    print(_row("POST /api/v1/diary-entries", diary, diary_wall))
    print(_row("POST /api/v1/help", helps, help_wall))
    print(
        f"help / diary: p50 x{_percentile(helps, 0.5) / _percentile(diary, 0.5):.2f}, "
        f"p99 x{_percentile(helps, 0.99) / _percentile(diary, 0.99):.2f}, "
        f"mean x{statistics.fmean(helps) / statistics.fmean(diary):.2f}"
    )
    if diary_errors or help_errors:
        print(
            f"errors: diary {diary_errors[:10]} ({len(diary_errors)}), help "
            f"{help_errors[:10]} ({len(help_errors)}); server log: {log}"
        )

    if open_rows:
        print()
        print(
            f"1b. Open loop: {args.clients} patients, Poisson arrivals at a fixed total rate for "
            f"{args.open_seconds:.0f} s each; latency from the scheduled arrival"
        )
        print(
            f"{'rate/s':>6} {'request':<28} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'mean ms':>8} {'errors':>6}"
        )
        for rate, name, lat, _wall, errs in open_rows:
            print(
                f"{rate:>6.0f} {name:<28} {len(lat):>6} {_percentile(lat, 0.5):>8.1f} "
                f"{_percentile(lat, 0.99):>8.1f} {statistics.fmean(lat):>8.1f} {len(errs):>6}"
            )

    presses = HelpRequest.objects.filter(patient_id__in=ids).count()
    per_patient = Patient.objects.filter(pk__in=ids).annotate(
        red=Count("alerts", filter=Q(alerts__state="open", alerts__tier="red"))
    )
    one_red = sum(1 for p in per_patient if p.red == 1)
    outbox = OutboxMessage.objects.filter(alert__patient_id__in=ids).count()
    alerts = Alert.objects.filter(patient_id__in=ids).count()
    expected = args.clients * args.presses + sum(
        len(lat) + len(errs) for _r, name, lat, _w, errs in open_rows if name.endswith("help")
    )
    ok = presses == expected and one_red == args.clients and outbox > 0 and not help_errors
    print(
        f"checks: {presses}/{expected} presses have a HelpRequest; "
        f"{one_red}/{args.clients} patients have exactly one open red alert "
        f"({alerts} alerts in all); {outbox} outbox rows queued for them -> "
        f"{'OK' if ok else 'FAILED'}"
    )


def bench_engine(args: argparse.Namespace) -> None:
    from risk.rules import engine as e
    from risk.rules.loader import rule_sets

    rule_set = rule_sets()["v1"]
    day = dt.date(2026, 11, 20)
    moods = {
        day - dt.timedelta(days=i): e.MoodRef(day - dt.timedelta(days=i), -7.0, 0.9)
        for i in range(1, 3)
    }
    crisis = (e.SignalRef("crisis_language", "text:d1", "passive_ideation"),)
    corroboration = (e.SignalRef("media_distress", "v1", "video", 0.8),)
    state = e.PatientState(moods=moods, crisis=crisis, corroboration=corroboration)
    events = [
        e.HelpPressed(local_date=day, help_request_id="h1", emergency_id="em1"),
        e.QuestionnaireScored(
            local_date=day, response_id="r1", instrument="phq9", total=21, item9=2
        ),
        e.CrisisLanguage(
            local_date=day,
            category="active_ideation",
            source="text",
            source_ref="d2",
            span_ids=("s1", "s2"),
        ),
        e.DailyMood(local_date=day, score=-7.5, confidence=0.8),
        e.MediaDistress(local_date=day, video_id="v2", score=0.9),
        e.BaselineDrop(local_date=day, signal="voice", z=-3.1, source_ref="v3"),
        e.Adherence(
            local_date=day,
            days_silent=6,
            active_days_before=10,
            last_input_date=day - dt.timedelta(days=6),
        ),
        e.ModelAssessment(
            local_date=day,
            model="fusion",
            model_version="1",
            source_ref="x1",
            suggested_tier="orange",
            score=0.7,
        ),
    ]
    n = args.evaluations
    print()
    print(
        f"2. Pure rule evaluation (risk.rules.engine.evaluate, rule set v1), {n:,} evaluations "
        f"per event kind, one process"
    )
    print(f"{'event kind':<22} {'rules':>5} {'firings':>7} {'us/event':>9}")
    for event in events:
        firings = e.evaluate(rule_set, event, state)
        started = time.perf_counter()
        for _ in range(n):
            e.evaluate(rule_set, event, state)
        per = (time.perf_counter() - started) / n * 1e6
        rules = len(rule_set.rules_for(event.kind))
        print(f"{event.kind:<22} {rules:>5} {len(firings):>7} {per:>9.2f}")


def bench_sweep(args: argparse.Namespace) -> None:
    from django.db import transaction
    from django.utils import timezone

    from risk.choices import AlertState
    from risk.models import Alert, OutboxMessage
    from risk.services import escalation_sweep
    from screening.models import Patient
    from screening.services.people import patient_create

    seed = Patient.objects.select_related("organisation", "treating_clinician", "care_team").get(
        user__username="patient_alex"
    )
    existing = list(
        Patient.objects.filter(user__username__startswith=SWEEP_PREFIX)
        .order_by("user__username")
        .values_list("pk", flat=True)[: args.sweep_patients]
    )
    started = time.perf_counter()
    missing = args.sweep_patients - len(existing)
    offset = Patient.objects.filter(user__username__startswith=SWEEP_PREFIX).count()
    for batch in range(0, missing, 500):
        with transaction.atomic():
            for i in range(batch, min(missing, batch + 500)):
                existing.append(
                    patient_create(
                        organisation=seed.organisation,
                        treating_clinician=seed.treating_clinician,
                        care_team=seed.care_team,
                        username=f"{SWEEP_PREFIX}{offset + i:06d}",
                        password=None,
                    ).pk
                )
    made_patients = time.perf_counter() - started

    now = timezone.now()
    past = now - dt.timedelta(hours=1)
    # Earlier runs' alerts for these patients are closed; any other open alert is parked.
    Alert.objects.filter(patient_id__in=existing, state__in=["open", "acknowledged"]).update(
        state=AlertState.RESOLVED, next_escalation_at=None, resolved_at=now
    )
    Alert.objects.filter(state=AlertState.OPEN, next_escalation_at__isnull=False).update(
        next_escalation_at=None
    )
    started = time.perf_counter()
    Alert.objects.bulk_create(
        [
            Alert(
                patient_id=pk,
                organisation_id=seed.organisation_id,
                tier="red",
                rule_set_version="v1",
                rule_set_hash="0" * 64,
                rule_id="help_button",
                evidence={"rule_id": "help_button", "bench": True},
                local_date=now.date(),
                assigned_to_id=seed.treating_clinician_id,
                ack_deadline=past,
                next_escalation_at=past,
            )
            for pk in existing
        ],
        batch_size=500,
    )
    made_alerts = time.perf_counter() - started
    outbox_before = OutboxMessage.objects.count()

    calls: list[tuple[int, float]] = []
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        result = escalation_sweep(now=now, limit=args.sweep_limit)
        calls.append((result["escalated"], time.perf_counter() - t0))
        if result["failed"]:
            print(f"sweep failures: {result}")
        if result["due"] == 0:
            break
    total = time.perf_counter() - started
    escalated = sum(c for c, _ in calls)
    full = [s for c, s in calls if c == args.sweep_limit]
    outbox = OutboxMessage.objects.count() - outbox_before
    print()
    print(
        f"3. escalation_sweep over {len(existing):,} open red alerts past their deadline "
        f"(limit {args.sweep_limit} per call, one process; setup: patients "
        f"{made_patients:.1f} s for {max(missing, 0):,} new, alerts bulk-created in "
        f"{made_alerts:.1f} s)"
    )
    print(
        f"{'calls':>5} {'escalated':>9} {'s/call (full)':>13} {'total s':>8} {'alerts/s':>9} "
        f"{'ms/alert':>8} {'outbox rows':>11}"
    )
    print(
        f"{len(calls):>5} {escalated:>9} {statistics.fmean(full) if full else 0:>13.2f} "
        f"{total:>8.1f} {escalated / total:>9.0f} {total / max(escalated, 1) * 1000:>8.2f} "
        f"{outbox:>11}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument(
        "--rates",
        type=float,
        nargs="*",
        default=[10.0, 25.0],
        help="open-loop total arrival rates (requests/s) to measure after the closed loop",
    )
    parser.add_argument("--open-seconds", type=float, default=20.0)
    parser.add_argument("--evaluations", type=int, default=100_000)
    parser.add_argument("--sweep-patients", type=int, default=10_000)
    parser.add_argument("--sweep-limit", type=int, default=500)
    parser.add_argument("--only", choices=["http", "engine", "sweep"])
    args = parser.parse_args()
    label = _configure()
    os.environ["VIGIL_RATE_USER"] = "10000000/min"

    import django

    django.setup()
    from django.core.management import call_command

    from privacy.keys import create_local_keyring

    create_local_keyring(Path(os.environ["VIGIL_KEYRING_FILE"]))
    call_command("migrate", verbosity=0)
    credentials = Path(tempfile.mkdtemp()) / "creds.json"
    call_command("seed_demo", "--credentials", str(credentials), verbosity=0)

    print(
        f"Vigil risk engine benchmark, {label}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    if args.only in (None, "http"):
        bench_concurrency(args)
    if args.only in (None, "engine"):
        bench_engine(args)
    if args.only in (None, "sweep"):
        bench_sweep(args)


if __name__ == "__main__":
    main()
