"""The database restarts during traffic: requests fail cleanly (503 in the error shape, never a
stack trace or a 500), the service recovers by itself, and no row is half-written or lost (every
201 is readable afterwards; every key that got a 503 is retried and stored exactly once).

A private PostgreSQL cluster (``initdb`` + ``pg_ctl`` on a free port), migrated, served by a real
gunicorn process; the test's own database is not involved.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.helpers import ROOT, PrivatePostgres, free_port, record_figures, wait_for

pytestmark = pytest.mark.integration

SEED = """
import django; django.setup()
from privacy.auth import token_issue
from tests.factories import CareTeamFactory, OrganisationFactory, make_clinician, make_patient
team = CareTeamFactory(organisation=OrganisationFactory())
patient = make_patient(team=team, clinician=make_clinician(team=team))
print(token_issue(user=patient.user, name="restart")[1])
"""
FIGURES: dict[str, Any] = {}


def _request(port: int, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connection.request(method, path, json.dumps(body) if body else None, headers)
        response = connection.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw[:300]
    finally:
        connection.close()


@pytest.fixture
def server(tmp_path: Path) -> Any:
    if sys.platform != "linux":
        pytest.skip("needs Linux")
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        pg.createdb("vigil")
        env = {
            **os.environ,
            "VIGIL_ENV": "test",
            "DATABASE_URL": pg.url("vigil"),
            "DATABASE_CONN_MAX_AGE": "60",
            "VIGIL_VAR_DIR": str(tmp_path / "var"),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "CELERY_BROKER_URL": "memory://",
            "VIGIL_RATE_USER": "100000/min",
        }
        env.pop("CACHE_URL", None)
        for command in (
            [sys.executable, "manage.py", "migrate", "-v0"],
            [sys.executable, "-c", SEED],
        ):
            done = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
            )
            assert done.returncode == 0, done.stderr[-2000:]
        token = done.stdout.strip().splitlines()[-1]
        port = free_port()
        log = tmp_path / "gunicorn.log"
        with log.open("wb") as out:
            web = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                    "--timeout",
                    "30",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:

            def up() -> bool:
                try:
                    return _request(port, "GET", "/healthz", token)[0] == 200
                except OSError:
                    return False

            wait_for(up, timeout=30, interval=0.2, what="gunicorn")
            yield {"pg": pg, "port": port, "token": token, "log": log}
        finally:
            web.terminate()
            web.wait(timeout=20)
    finally:
        pg.remove()


def test_database_restart_during_traffic_fails_cleanly_and_recovers(server: Any) -> None:
    port, token, pg = server["port"], server["token"], server["pg"]
    outcomes: list[tuple[str, int, Any]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            key = str(uuid.uuid4())
            body = {
                "idempotency_key": key,
                "client_timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                "text": "restart traffic entry",
            }
            try:
                status, data = _request(port, "POST", "/api/v1/diary-entries", token, body)
            except OSError as exc:
                status, data = -1, repr(exc)
            with lock:
                outcomes.append((key, status, data))
            time.sleep(0.02)

    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        restart_at = len(outcomes)
        pg.stop("fast")
        time.sleep(1.5)  # traffic meets a database that is down
        pg.start()
        restarted_at = len(outcomes)
        wait_for(
            lambda: any(s == 201 for _, s, _ in outcomes[restarted_at:]),
            timeout=30,
            what="a successful request after the restart",
        )
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    statuses = [status for _, status, _ in outcomes]
    bad = [(s, d) for _, s, d in outcomes if s not in (201, 503)]
    assert not bad, f"unclean answers: {bad[:5]}"
    unavailable = [d for _, s, d in outcomes if s == 503]
    assert unavailable, "the restart was not noticed (no 503): the fault did not land"
    for data in unavailable:
        assert isinstance(data, dict) and data["error"]["code"] == "service_unavailable", data
    assert "Traceback" not in server["log"].read_text(errors="replace")
    # Recovery: every key that got a 503 is retried by the app and stored exactly once.
    for key, status, _ in outcomes:
        if status == 503:
            body = {
                "idempotency_key": key,
                "client_timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                "text": "restart traffic entry",
            }
            retry, data = _request(port, "POST", "/api/v1/diary-entries", token, body)
            assert retry in (200, 201), (retry, data)
    stored: set[str] = set()
    path = "/api/v1/diary-entries?page_size=100"
    while path:
        status, page = _request(port, "GET", path, token)
        assert status == 200, page
        stored |= {row["id"] for row in page["results"] if row["text"] == "restart traffic entry"}
        path = (
            page["next"].split("127.0.0.1", 1)[-1].split("localhost", 1)[-1] if page["next"] else ""
        )
        if path and not path.startswith("/"):
            path = "/" + path.split("/", 1)[-1]
    created = {data["id"] for _, s, data in outcomes if s == 201}
    assert created <= stored, "a 201 entry is missing or unreadable"
    assert len(stored) == len({key for key, _, _ in outcomes}), "an entry was lost or duplicated"
    FIGURES.update(
        requests=len(outcomes),
        during_outage=len(outcomes) - restart_at,
        answered_503=statuses.count(503),
        ok_201=statuses.count(201),
        stored=len(stored),
    )
    record_figures("database_restart", FIGURES)
