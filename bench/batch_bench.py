"""The gpu queue's batches: diary entries scored by a real worker, batch 1 vs batch 32.

    .venv/bin/python -m bench.batch_bench [--entries 64] [--batches 1 32] [--wait 0.5]
                                          [--sentences 4] [--repeats 3] [--device cpu]
                                          [--broker redis|filesystem]

Everything runs in a private folder (``VIGIL_VAR_DIR``): its own SQLite database and keyring, and
a private broker: a ``redis-server`` on a free loopback port (``--broker redis``, the default when
one is installed) or kombu's filesystem broker in that folder (``--broker filesystem``, what
``make run`` uses). Nothing is sent to the development queue a ``make run`` worker serves. For
each batch size it starts a real Celery worker the way production runs the gpu worker
(``-Q gpu --concurrency 1 --prefetch-multiplier <batch>``, ``VIGIL_GPU_BATCH_SIZE=<batch>``,
the real text scorer on ``--device``), scores one entry so that the scorer is loaded, then
commits ``--entries`` diary entries of the demo patients (``seed_demo``) in one transaction (one
message each, published after the commit) and times the wall clock from the commit until every
entry has its text analysis in the database; ``--repeats`` times per worker (new entries each
time), the median is reported. The scorer calls are counted from the worker's log lines
(``text scoring batch: jobs=N``). Batch 1 is the old behaviour: one scorer call per entry.

Texts: ``--sentences`` consecutive GoEmotions dev comments joined into one entry when
../shared/datasets is present, else generated diary sentences (``bench.text_bench``). The
machine's load average is printed: other processes on a shared machine slow every row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BATCH_LINE = re.compile(r"text scoring batch: jobs=(\d+)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    process = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


def _environment(var: Path, device: str, broker_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
    env.update(
        {
            "VIGIL_ENV": "local",
            "VIGIL_VAR_DIR": str(var),
            "VIGIL_SQLITE_PATH": str(var / "bench.sqlite3"),
            "VIGIL_KEYRING_FILE": str(var / "keys.json"),
            "VIGIL_MEDIA_ROOT": str(var / "media"),
            "VIGIL_WORK_DIR": str(var / "work"),
            "VIGIL_TEXT_DEVICE": device,
            "VIGIL_WORKER_WARMUP": "false",
            "VIGIL_ALERT_RELAY_ON_COMMIT": "false",
            "VIGIL_LOG_LEVEL": "INFO",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
    )
    return env


def _worker(env: dict[str, str], batch: int, wait: float, log: Path) -> subprocess.Popen[bytes]:
    env = {**env, "VIGIL_GPU_BATCH_SIZE": str(batch), "VIGIL_GPU_BATCH_WAIT_SECONDS": str(wait)}
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        "gpu",
        "--concurrency",
        "1",
        "--prefetch-multiplier",
        str(batch),
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        "INFO",
        "--hostname",
        f"bench-{batch}@%h",
    ]
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--entries", type=int, default=64)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--wait", type=float, default=0.5)
    parser.add_argument("--sentences", type=int, default=4, help="sentences per diary entry")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--broker",
        choices=["redis", "filesystem"],
        default="redis" if shutil.which("redis-server") else "filesystem",
    )
    args = parser.parse_args(argv)

    var = Path(tempfile.mkdtemp(prefix="vigil-batch-bench-"))
    redis, broker_url = _redis() if args.broker == "redis" else (None, None)
    env = _environment(var, args.device, broker_url)
    os.environ.update(env)
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        if name not in env:
            os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from bench.text_bench import _texts
    from privacy.audit import Actor
    from privacy.choices import ConsentScope
    from privacy.consent import consent_has
    from privacy.keys import create_local_keyring
    from screening.models import Patient, TextAnalysis
    from screening.services.diary import diary_entry_create

    create_local_keyring(Path(env["VIGIL_KEYRING_FILE"]))
    call_command("migrate", verbosity=0)
    # the demo clinic: its patients consent to text analysis
    call_command("seed_demo", "--credentials", str(var / "creds.json"), verbosity=0)
    patients = [
        p
        for p in Patient.objects.order_by("pk")
        if consent_has(patient=p, scope=ConsentScope.TEXT_ANALYSIS)
    ]
    if not patients:
        raise SystemExit("seed_demo made no patient with text-analysis consent")
    per_worker = 1 + args.entries * args.repeats
    sentences, source = _texts(per_worker * len(args.batches) * args.sentences)
    texts = [
        " ".join(sentences[i : i + args.sentences])
        for i in range(0, len(sentences), args.sentences)
    ]
    mean_chars = statistics.mean(len(t) for t in texts)
    pool = iter(texts)

    def commit(n: int) -> list[uuid.UUID]:
        ids = []
        with transaction.atomic():  # one commit: the messages are published together after it
            for i in range(n):
                patient = patients[i % len(patients)]
                entry, _ = diary_entry_create(
                    actor=Actor(user_id=patient.user_id, role="patient"),
                    patient=patient,
                    idempotency_key=uuid.uuid4(),
                    text=next(pool),
                    client_timestamp=timezone.now(),
                )
                ids.append(entry.pk)
        return ids

    def wait_scored(ids: list[uuid.UUID], worker: subprocess.Popen[bytes], log: Path) -> None:
        deadline = time.monotonic() + args.timeout
        while TextAnalysis.objects.filter(diary_entry_id__in=ids).count() < len(ids):
            if worker.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"worker failed or timed out; its log:\n{tail}")
            time.sleep(0.02)

    print(f"# gpu-queue batch bench {dt.date.today().isoformat()} on {platform.node()}")
    print(
        f"# {args.entries} diary entries of {args.sentences} sentences ({source}; mean "
        f"{mean_chars:.0f} chars) of {len(patients)} patients, committed together, median of "
        f"{args.repeats}; one worker -Q gpu --concurrency 1 (prefork), scorer on {args.device}, "
        f"wait {args.wait} s; SQLite + {args.broker} broker; {os.cpu_count()} CPUs; "
        f"load average before {os.getloadavg()[0]:.2f}"
    )
    rows: list[tuple[Any, ...]] = []
    try:
        for batch in args.batches:
            log = var / f"worker-{batch}.log"
            worker = _worker(env, batch, args.wait, log)
            try:
                wait_scored(commit(1), worker, log)  # the scorer is loaded now
                time.sleep(0.2)
                walls = []
                for _ in range(args.repeats):
                    before = len(BATCH_LINE.findall(log.read_text(errors="replace")))
                    start = time.perf_counter()  # before: batch 1 starts during the commit
                    ids = commit(args.entries)
                    wait_scored(ids, worker, log)
                    walls.append(time.perf_counter() - start)
                    time.sleep(0.2)  # the last batch's log line
                sizes = [
                    int(n) for n in BATCH_LINE.findall(log.read_text(errors="replace"))[before:]
                ]
            finally:
                _stop(worker)
            wall = statistics.median(walls)
            rows.append((batch, wall, args.entries / wall, len(sizes), sizes, walls))
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
        shutil.rmtree(var, ignore_errors=True)
    print()
    print(
        "| batch size (= prefetch) | wall s (median) | runs | entries/s | scorer calls "
        "(last run) | batch sizes (last run) |"
    )
    print("|---:|---:|---|---:|---:|---|")
    for batch, wall, rate, calls, sizes, walls in rows:
        seen = ", ".join(str(s) for s in sizes[:8]) + (" ..." if len(sizes) > 8 else "")
        runs = " / ".join(f"{w:.2f}" for w in walls)
        print(f"| {batch} | {wall:.2f} | {runs} | {rate:.1f} | {calls} | {seen} |")
    if len(rows) >= 2:
        print(f"\nspeed-up {rows[0][0]} -> {rows[-1][0]}: {rows[0][1] / rows[-1][1]:.2f}x")
    print(f"# load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
