"""Patient API latency, in process (Django test client, no network), on the configured database.

    .venv/bin/python -m bench.api_latency [--requests 200]

The help press includes what it does in production: the HelpRequest, the Emergency, the red alert
(or the evidence joining it) and its outbox rows, in one transaction.

Uses its own database: var/bench.sqlite3 (SQLite), or the database named by BENCH_DATABASE_URL
(e.g. postgres://postgres@127.0.0.1:5432/vigil_bench, created if missing). Prints a table of
p50 / p99 / mean milliseconds per endpoint. Video uploads are probed and encrypted for real; the
enqueue after commit is replaced by a no-op so that no broker is needed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _configure() -> str:
    os.environ.setdefault("VIGIL_ENV", "local")
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        os.environ["DATABASE_URL"] = url
        label = "PostgreSQL"
    else:
        os.environ.pop("DATABASE_URL", None)
        os.environ["VIGIL_SQLITE_PATH"] = str(ROOT / "var" / "bench.sqlite3")
        label = "SQLite"
    os.environ["VIGIL_KEYRING_FILE"] = str(ROOT / "var" / "bench-keys.json")
    os.environ["VIGIL_MEDIA_ROOT"] = tempfile.mkdtemp(prefix="vigil-bench-media-")
    os.environ["VIGIL_RATE_USER"] = "1000000/min"
    os.environ["VIGIL_RATE_UPLOAD"] = "1000000/hour"
    # Measure the request, not a broker: the beat relay delivers the outbox in production.
    os.environ["VIGIL_ALERT_RELAY_ON_COMMIT"] = "false"
    # Work enqueued after commit (text scoring of the bench's diary entries) goes to an in-process
    # broker nobody consumes, never to the development queue a `make run` worker serves.
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ.setdefault("VIGIL_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    return label


def _video(path: Path) -> Path:
    import av
    import numpy as np

    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    for i in range(20):
        frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), i * 10, np.uint8), format="rgb24")
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    label = _configure()

    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone
    from rest_framework.test import APIClient

    from privacy.auth import token_issue
    from privacy.keys import create_local_keyring
    from screening.models import Patient
    from screening.services import videos

    create_local_keyring(Path(os.environ["VIGIL_KEYRING_FILE"]))
    call_command("migrate", verbosity=0)
    credentials = Path(tempfile.mkdtemp()) / "creds.json"
    call_command("seed_demo", "--credentials", str(credentials), verbosity=0)
    videos.video_enqueue = lambda *, video_id: None

    patient = Patient.objects.get(user__username="patient_alex")
    _, raw = token_issue(user=patient.user, name="bench")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    clip = _video(Path(tempfile.mkdtemp()) / "clip.mp4")

    def diary() -> int:
        return client.post(
            "/api/v1/diary-entries",
            {
                "idempotency_key": str(uuid.uuid4()),
                "client_timestamp": timezone.now().isoformat(),
                "text": "Slept badly, but the walk helped a little.",
                "self_rated_mood": 5,
            },
            format="json",
        ).status_code

    def diary_list() -> int:
        return client.get("/api/v1/diary-entries?page_size=20").status_code

    def help_press() -> int:
        return client.post("/api/v1/help", {}, format="json").status_code

    def video() -> int:
        with clip.open("rb") as handle:
            return client.post(
                "/api/v1/videos",
                {
                    "file": handle,
                    "idempotency_key": str(uuid.uuid4()),
                    "client_timestamp": timezone.now().isoformat(),
                },
                format="multipart",
            ).status_code

    cases = [
        ("POST /diary-entries", diary, args.requests, 201),
        ("GET /diary-entries (20)", diary_list, args.requests, 200),
        ("POST /help", help_press, args.requests, 201),
        ("POST /videos (2 s, 320x240)", video, max(10, args.requests // 10), 201),
    ]
    print(
        f"Vigil patient API, in-process, {label}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print(f"{'endpoint':<30} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, call, count, expected in cases:
        for _ in range(5):
            call()  # warm up
        timings = []
        for _ in range(count):
            start = time.perf_counter()
            status = call()
            timings.append((time.perf_counter() - start) * 1000)
            if status != expected:
                sys.exit(f"{name}: unexpected status {status}")
        print(
            f"{name:<30} {count:>5} {_percentile(timings, 0.5):>8.1f} "
            f"{_percentile(timings, 0.99):>8.1f} {statistics.fmean(timings):>8.1f}"
        )


if __name__ == "__main__":
    main()
