"""Private servers and worker processes for the reliability suite.

Nothing here touches the machine's shared PostgreSQL, Redis or RabbitMQ: every fault is injected
into a server this suite started itself (a private ``redis-server`` on a free port, a private
PostgreSQL cluster in a temporary folder) or into a Celery worker process it started. Everything
is bounded by count and time so the folder stays within its CI budget.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, *, timeout: float, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


# --- a private Redis ------------------------------------------------------------------------------
class PrivateRedis:
    """A ``redis-server`` on a free loopback port, no persistence; stop/start to fake an outage.

    The port stays the same across restarts, so clients configured with the URL reconnect.
    """

    def __init__(self, folder: Path) -> None:
        if not Path(REDIS_SERVER).exists():
            pytest.skip(f"redis-server not installed ({REDIS_SERVER}): broker faults need it")
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, timeout=10, what="private redis to answer")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # an outage, not a clean shutdown
            self.process.wait(timeout=10)
        self.process = None

    def llen(self, queue: str) -> int:
        import redis

        return int(redis.Redis.from_url(self.url).llen(queue))


@contextlib.contextmanager
def private_redis(folder: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def celery_publishing_to(broker_url: str) -> Iterator[Any]:
    """Make this (test) process publish to ``broker_url``; restore the configured broker after.

    Celery caches its connection pool and producer pool; both are dropped so the next publish
    connects to the new URL.
    """
    from config.celery import app

    # Celery's ``broker_url`` prefers the CELERY_BROKER_URL environment variable over its
    # configuration (CI sets it), so the read and write URLs, which the configuration does
    # override, are set as well.
    keys = ("broker_url", "broker_read_url", "broker_write_url", "broker_transport_options")
    saved = {key: app.conf.get(key) for key in keys}
    app.conf.broker_url = broker_url
    app.conf.broker_read_url = broker_url
    app.conf.broker_write_url = broker_url
    app.conf.broker_transport_options = {"visibility_timeout": 2 * 60 * 60}
    _reset_pools(app)
    try:
        yield app
    finally:
        for key, value in saved.items():
            app.conf[key] = value
        _reset_pools(app)


def _reset_pools(app: Any) -> None:
    from kombu import pools

    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()  # closes every cached connection and forgets the (now closed) pools


# --- a private PostgreSQL ---------------------------------------------------------------------
class PrivatePostgres:
    """A throw-away PostgreSQL 15 cluster on a free port (trust auth on loopback only).

    As root, ``initdb`` refuses to run: the cluster is then created and run as ``postgres``.
    """

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                pytest.skip("running as root without runuser: cannot start a private cluster")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        # Not under pytest's tmp_path: that is private to root, and the server may run as postgres.
        self.folder = Path(tempfile.mkdtemp(prefix="vigil-reliability-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self.prefix, *args], capture_output=True, timeout=120, check=False, cwd="/"
        )

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.prefix:
            shutil.chown(self.folder, user="postgres", group="postgres")
        result = self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-N"
        )
        if result.returncode != 0:
            pytest.skip(f"initdb failed: {result.stderr.decode(errors='replace')[-300:]}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        result = self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "start",
        )
        if result.returncode != 0:
            pytest.fail(f"pg_ctl start failed: {result.stderr.decode(errors='replace')[-300:]}")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def createdb(self, name: str) -> None:
        self._run(
            str(PG_BIN / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            name,
        )

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


# --- worker processes -------------------------------------------------------------------------
def database_env() -> dict[str, str | None]:
    """Point a child process at the test database (not the development one)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"VIGIL_SQLITE_PATH": str(db["NAME"]), "DATABASE_URL": None}
    if connection.vendor == "postgresql":
        user = quote(str(db.get("USER") or ""), safe="")
        password = quote(str(db.get("PASSWORD") or ""), safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = quote(str(db.get("HOST") or "localhost"), safe="")
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return {"DATABASE_URL": f"postgres://{auth}{host}{port}/{quote(str(db['NAME']), safe='')}"}
    pytest.skip(f"no worker database mapping for {connection.vendor}")
    return {}


def child_env(settings: Any, **extra: str | None) -> dict[str, str]:
    env = dict(os.environ)
    overrides: dict[str, str | None] = {
        "VIGIL_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
        "VIGIL_VAR_DIR": str(settings.VAR_DIR),
        "VIGIL_MEDIA_ROOT": str(settings.VIGIL_MEDIA_ROOT),
        "VIGIL_WORK_DIR": str(settings.VIGIL_WORK_DIR),
        # Delivery, not models: see worker_entry (VIGIL_RELIABILITY_REAL_ANALYSIS=1 runs them).
        "VIGIL_TEST_FAST_ANALYSIS": "0"
        if os.environ.get("VIGIL_RELIABILITY_REAL_ANALYSIS")
        else "1",
        **database_env(),
        **extra,
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def start_worker(
    *,
    env: dict[str, str],
    log_path: Path,
    pool: str = "prefork",
    queues: str = "media,default,alerts",
    concurrency: int = 1,
) -> subprocess.Popen[bytes]:
    """A real worker, started through ``tests/reliability/worker_entry.py`` (see there)."""
    command = [
        sys.executable,
        "-m",
        "tests.reliability.worker_entry",
        "worker",
        "-Q",
        queues,
        "-P",
        pool,
        "-c",
        str(concurrency),
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        "INFO",
        "-n",
        f"reliability-{os.getpid()}-{time.monotonic_ns()}@%h",
    ]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """Stop a worker this suite started (its own process group: children included)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # orphans of a killed parent


def kill_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole worker: the parent and its pool children, with no chance to clean up."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def record_figures(name: str, figures: dict[str, Any]) -> None:
    """Append this run's figures to ``$VIGIL_VAR_DIR/reliability-figures.jsonl`` (one JSON line
    per test; docs/reliability.md quotes the last run)."""
    import json

    from django.conf import settings

    path = Path(settings.VAR_DIR) / "reliability-figures.jsonl"
    line = json.dumps({"test": name, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures})
    with path.open("a") as out:
        out.write(line + "\n")
