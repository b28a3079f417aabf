"""A clinic's day under load, end to end, on loopback: PostgreSQL + Redis + gunicorn + Celery.

    .venv/bin/python -m bench.load [--patients 40] [--clinicians 4] [--duration 30] \\
        [--think 1.0] [--media-workers 1] [--web-workers 2] [--drain 120]

Starts a private PostgreSQL cluster (``initdb``/``pg_ctl`` on a free port, as ``postgres`` when
run as root) and a private ``redis-server``, migrates, seeds one clinic (clinicians, patients with
consent and API tokens), starts gunicorn (``--web-workers`` x 4 threads) and ``--media-workers``
Celery worker processes (queues media, default, gpu; prefetch 1), then for ``--duration`` seconds
runs ``--patients`` patients (asyncio + httpx, each waits an exponential think time of mean
``--think`` s between actions: diary entry 55 %, diary list 15 %, video upload 12 %, PHQ-9 8 %,
help press 2 %, consent read 8 %) and ``--clinicians`` clinicians polling ``GET /fhir/Patient``
every 5 s. Every second it samples the media backlog (Redis queue length and the videos queued or
processing in the database). After the load it waits up to ``--drain`` s for the backlog to empty,
stops everything (``finally``) and prints throughput, p50/p99 per endpoint, the backlog over time
and the sizing arithmetic for a 100,000-patient network. Nothing listens beyond 127.0.0.1; the run
is bounded by ``--duration`` + ``--drain`` and the number of patients.

Figures in docs/reliability.md. They are from a shared 2-core machine: other work ran at the same
time, so read them as a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")

SEED = """
import json, django
django.setup()
from privacy.audit import Actor
from privacy.auth import token_issue
from privacy.choices import ConsentScope
from privacy.consent import consent_change, consent_document_publish
from tests.factories import CareTeamFactory, OrganisationFactory, make_clinician, make_patient
n_patients, n_clinicians = {patients}, {clinicians}
clinic = OrganisationFactory()
team = CareTeamFactory(organisation=clinic)
clinicians = [make_clinician(team=team) for _ in range(max(1, n_clinicians))]
for scope in ConsentScope.values:
    consent_document_publish(scope=scope, version="1", text="Consent text.")
patients = []
for i in range(n_patients):
    p = make_patient(team=team, clinician=clinicians[i % len(clinicians)], display_name="Load")
    for scope in (ConsentScope.TEXT_ANALYSIS, ConsentScope.VOICE_ANALYSIS,
                  ConsentScope.FACE_ANALYSIS):
        consent_change(actor=Actor(user_id=p.user_id, role="patient"), patient=p, scope=scope,
                       granted=True, document_version="1")
    patients.append(token_issue(user=p.user, name="load")[1])
staff = [token_issue(user=c.user, name="load")[1] for c in clinicians[:n_clinicians]]
print(json.dumps({{"patients": patients, "clinicians": staff}}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Stack:
    """The private servers and processes of one run; ``close`` stops all of them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.folder = Path(tempfile.mkdtemp(prefix="vigil-load-"))
        self.processes: list[subprocess.Popen[bytes]] = []
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.pg_port = _free_port()
        self.redis_port = _free_port()
        self.web_port = _free_port()
        self.pg_data = self.folder / "pg" / "data"

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/vigil"

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "VIGIL_ENV": "test",  # the deterministic test keyring; no secrets needed on loopback
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.broker_url,
            "VIGIL_VAR_DIR": str(self.folder / "var"),
            "VIGIL_RATE_USER": "1000000/min",
            "VIGIL_RATE_UPLOAD": "1000000/hour",
            "VIGIL_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }

    def _run(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own fixed command lines
            command, capture_output=True, text=True, check=True, **kwargs
        )

    def start(self) -> dict[str, list[str]]:
        pg_folder = self.pg_data.parent
        pg_folder.mkdir(parents=True)
        if self.prefix:
            shutil.chown(self.folder, "postgres", "postgres")
            shutil.chown(pg_folder, "postgres", "postgres")
        self._run(
            [
                *self.prefix,
                str(PG_BIN / "initdb"),
                "-D",
                str(self.pg_data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-N",
            ],
            cwd="/",
        )
        options = (
            f"-p {self.pg_port} -k {pg_folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        self._run(
            [
                *self.prefix,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.pg_data),
                "-o",
                options,
                "-l",
                str(pg_folder / "server.log"),
                "-w",
                "start",
            ],
            cwd="/",
        )
        self._run(
            [
                *self.prefix,
                str(PG_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.pg_port),
                "-U",
                "postgres",
                "vigil",
            ],
            cwd="/",
        )
        redis = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.processes.append(
            subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
                [
                    redis,
                    "--port",
                    str(self.redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        env = self.env()
        self._run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env)
        seeded = self._run(
            [
                sys.executable,
                "-c",
                SEED.format(patients=self.args.patients, clinicians=self.args.clinicians),
            ],
            cwd=ROOT,
            env=env,
        )
        log = (self.folder / "services.log").open("ab")
        self.processes.append(
            subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{self.web_port}",
                    "--workers",
                    str(self.args.web_workers),
                    "--threads",
                    "4",
                    "--timeout",
                    "120",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        for index in range(self.args.media_workers):
            self.processes.append(
                subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "config",
                        "worker",
                        "-Q",
                        "media,default,gpu,alerts",
                        "-c",
                        "1",
                        "--prefetch-multiplier",
                        "1",
                        "--without-gossip",
                        "--without-mingle",
                        "-n",
                        f"load{index}@%h",
                        "-l",
                        "WARNING",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        return json.loads(seeded.stdout.strip().splitlines()[-1])

    def close(self) -> None:
        log = self.folder / "services.log"
        if log.exists():  # kept for a look after the run; its errors are summarised
            kept = Path(tempfile.gettempdir()) / "vigil-load-services.log"
            shutil.copyfile(log, kept)
            errors = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "Error" in line or "error" in line.split(" ", 3)[-1][:40]
            ]
            print(f"services log: {kept} ({len(errors)} error lines)")
            for line in errors[:15]:
                print("  " + line[:220])
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.pg_data.exists():
            subprocess.run(  # noqa: S603 - a fixed argv, no shell
                [
                    *self.prefix,
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.pg_data),
                    "-m",
                    "immediate",
                    "stop",
                ],
                capture_output=True,
                check=False,
                cwd="/",
            )
        shutil.rmtree(self.folder, ignore_errors=True)


def _clip(folder: Path, seconds: float = 2.0) -> Path:
    """A small H.264 + AAC clip (320x240, 10 fps, a 220 Hz tone): what a phone would send."""
    from fractions import Fraction

    import av
    import numpy as np

    path = folder / "clip.mp4"
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        sound = container.add_stream("aac", rate=16_000)
        for index in range(round(seconds * 10)):
            image = np.full((240, 320, 3), (index * 12) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 10)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = np.arange(int(seconds * 16_000)) / 16_000
        tone = (0.2 * np.sin(2 * np.pi * 220 * samples)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            chunk = tone[start : start + 1024].reshape(1, -1)
            audio = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            audio.sample_rate, audio.pts = 16_000, start
            audio.time_base = Fraction(1, 16_000)
            container.mux(sound.encode(audio))
        container.mux(sound.encode(None))
    return path


async def _run_load(
    args: argparse.Namespace, stack: Stack, tokens: dict[str, list[str]], clip: bytes
) -> dict[str, Any]:
    import httpx
    import psycopg
    import redis

    base = f"http://127.0.0.1:{stack.web_port}"
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    backlog: list[tuple[float, int, int]] = []
    stop_at = time.monotonic() + args.duration
    rng = random.Random(7)  # the load mix, not security
    now_iso = lambda: time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())  # noqa: E731

    async def timed(
        client: httpx.AsyncClient, name: str, method: str, path: str, **kwargs: Any
    ) -> None:
        started = time.perf_counter()
        try:
            response = await client.request(method, path, **kwargs)
            status = response.status_code
        except httpx.HTTPError:
            status = -1
        latencies[name].append((time.perf_counter() - started) * 1000)
        statuses[name][status] += 1

    async def patient(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
            while time.monotonic() < stop_at:
                await asyncio.sleep(rng.expovariate(1 / args.think))
                roll = rng.random()
                key = str(uuid.uuid4())
                if roll < 0.55:
                    await timed(
                        client,
                        "POST diary",
                        "POST",
                        "/api/v1/diary-entries",
                        json={
                            "idempotency_key": key,
                            "client_timestamp": now_iso(),
                            "text": "Load test entry: slept badly, walked, felt a bit better.",
                        },
                    )
                elif roll < 0.70:
                    await timed(client, "GET diary", "GET", "/api/v1/diary-entries?page_size=20")
                elif roll < 0.82:
                    await timed(
                        client,
                        "POST video",
                        "POST",
                        "/api/v1/videos",
                        data={"idempotency_key": key, "client_timestamp": now_iso()},
                        files={"file": ("clip.mp4", clip, "video/mp4")},
                    )
                elif roll < 0.90:
                    await timed(
                        client,
                        "POST phq9",
                        "POST",
                        "/api/v1/questionnaires",
                        json={
                            "idempotency_key": key,
                            "client_timestamp": now_iso(),
                            "instrument": "phq9",
                            "answers": [1, 1, 0, 1, 0, 1, 0, 0, 0],
                        },
                    )
                elif roll < 0.92:
                    await timed(client, "POST help", "POST", "/api/v1/help")
                else:
                    await timed(client, "GET consents", "GET", "/api/v1/consents")

    async def clinician(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
            while time.monotonic() < stop_at:
                await timed(client, "GET fhir Patient", "GET", "/fhir/Patient?_count=20")
                await asyncio.sleep(5)

    queue = redis.Redis(port=stack.redis_port)
    sql = (
        "SELECT count(*) FILTER (WHERE status IN ('queued','processing')), "
        "count(*) FILTER (WHERE status='done'), count(*) FILTER (WHERE status='failed'), "
        "count(*) FROM screening_videosubmission"
    )
    started = time.monotonic()

    async def sampler(until: Any) -> None:
        with psycopg.connect(stack.database_url, autocommit=True) as db:
            while not until():
                pending = db.execute(sql).fetchone()[0]  # type: ignore[index]
                backlog.append(
                    (round(time.monotonic() - started, 1), int(queue.llen("media")), int(pending))
                )
                await asyncio.sleep(1)

    load_done = False
    sampling = asyncio.create_task(
        sampler(
            lambda: (
                load_done
                and (not backlog or backlog[-1][2] == 0 or time.monotonic() > stop_at + args.drain)
            )
        )
    )
    await asyncio.gather(
        *(patient(t) for t in tokens["patients"]), *(clinician(t) for t in tokens["clinicians"])
    )
    load_seconds = time.monotonic() - started
    load_done = True
    await sampling
    with psycopg.connect(stack.database_url, autocommit=True) as db:
        pending, done, failed, total = db.execute(sql).fetchone()  # type: ignore[misc]
        reasons = db.execute(
            "SELECT failure_reason, count(*) FROM screening_videosubmission "
            "WHERE status='failed' GROUP BY 1"
        ).fetchall()
    return {
        "latencies": latencies,
        "statuses": statuses,
        "backlog": backlog,
        "load_seconds": load_seconds,
        "drain_seconds": time.monotonic() - started,
        "videos": {
            "total": total,
            "done": done,
            "failed": failed,
            "pending": pending,
            "failure_reasons": dict(reasons),
        },
    }


def _report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    latencies, statuses = result["latencies"], result["statuses"]
    total = sum(len(v) for v in latencies.values())
    print(
        f"\nload: {args.patients} patients, {args.clinicians} clinicians, {args.duration}s, "
        f"{args.web_workers} gunicorn workers x 4 threads, {args.media_workers} media worker(s)"
    )
    print(
        f"requests: {total} in {result['load_seconds']:.1f}s = "
        f"{total / result['load_seconds']:.1f} req/s"
    )
    print(f"{'endpoint':<18}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}  statuses")
    for name in sorted(latencies):
        values = latencies[name]
        print(
            f"{name:<18}{len(values):>6}{_percentile(values, 0.5):>9.0f}"
            f"{_percentile(values, 0.99):>9.0f}{statistics.fmean(values):>9.0f}  "
            f"{dict(statuses[name])}"
        )
    videos = result["videos"]
    print(f"videos: {videos}")
    print("backlog (t s, redis media queue, db queued+processing):")
    step = max(1, len(result["backlog"]) // 20)
    print("  " + " ".join(f"{t:.0f}:{q}/{p}" for t, q, p in result["backlog"][::step]))
    finished = videos["done"] + videos["failed"]
    # Worker time: from the first sample with work waiting to the last one (the workers were busy
    # all along in between), per finished video.
    busy = [t for t, _, pending in result["backlog"] if pending]
    span = (busy[-1] - busy[0] + 1.0) if busy else 0.0
    per_video = span * args.media_workers / finished if finished and span else None
    # Sizing for 100,000 patients (stated assumptions; linear scaling).
    patients = 100_000
    per_day = {"diary": 1.0, "video": 1.0, "reads": 4.0, "questionnaire": 1 / 7, "help": 0.01}
    requests_day = patients * sum(per_day.values())
    peak_rps = requests_day / (16 * 3600) * 3  # a 16-hour waking day, peak 3x the mean
    measured_rps = total / result["load_seconds"]
    print(
        "\nsizing for 100,000 patients (assumptions: per patient per day 1 diary entry, 1 video "
        "of ~30 s, 4 reads, 1 questionnaire a week; 16-h day, peak 3x mean):"
    )
    print(
        f"  web: {requests_day:,.0f} requests/day, peak {peak_rps:.0f} req/s; measured here "
        f"{measured_rps:.0f} req/s on 2 shared cores -> "
        f"{peak_rps / max(measured_rps, 1e-9) * 2:.0f} cores for the web tier at peak"
    )
    if per_video:
        scale = 30 / 2.0  # measured on 2-s clips; analysis cost grows with duration
        core_seconds = patients * per_day["video"] * per_video * scale
        cores = core_seconds / (20 * 3600 * 0.7)  # processed within 20 h at 70 % utilisation
        print(
            f"  media: measured {per_video:.2f} worker-seconds per 2-s video -> ~"
            f"{per_video * scale:.0f} s per 30-s video; {core_seconds / 3600:,.0f} core-hours/"
            f"day -> {cores:.0f} media worker processes (cores) = {cores / 16:.1f} 16-core "
            "machines"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--clinicians", type=int, default=4)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--media-workers", type=int, default=1)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--drain", type=float, default=120.0)
    args = parser.parse_args()
    for binary in (PG_BIN / "initdb", Path(shutil.which("redis-server") or "/nonexistent")):
        if not binary.exists():
            raise SystemExit(f"needs {binary}")
    stack = Stack(args)
    try:
        tokens = stack.start()
        clip = _clip(stack.folder).read_bytes()
        deadline = time.monotonic() + 60
        while True:  # wait for gunicorn
            try:
                with socket.create_connection(("127.0.0.1", stack.web_port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.3)
        result = asyncio.run(_run_load(args, stack, tokens, clip))
        _report(args, result)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"{exc.cmd[:3]} failed: {exc.stderr[-1500:]}") from None
    finally:
        stack.close()


if __name__ == "__main__":
    main()
