"""The embedded profile's SQLite under the concurrency of ``make run`` (web, workers, beat).

Uses its own database file with the settings' options (whatever database the suite runs on)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from django.db import connections, transaction
from django.db.backends.sqlite3.base import DatabaseWrapper

from config.settings import SQLITE_OPTIONS


def _connection(path: Path, alias: str) -> DatabaseWrapper:
    settings = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": dict(SQLITE_OPTIONS),
        "ATOMIC_REQUESTS": False,
        "AUTOCOMMIT": True,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "TIME_ZONE": None,
        "USER": "",
        "PASSWORD": "",
        "HOST": "",
        "PORT": "",
        "TEST": {},
    }
    wrapper = DatabaseWrapper(settings, alias=alias)
    connections[alias] = wrapper  # so that transaction.atomic(using=alias) finds it
    return wrapper


def test_a_transaction_that_reads_then_writes_waits_for_another_writer(
    tmp_path: Path, django_db_blocker: Any
) -> None:
    """Read, another process writes and commits, then write: with SQLite's deferred transactions
    the last write fails at once ("database is locked": the snapshot is stale, no busy wait),
    which is how ``make run``'s demo seeding failed beside the workers scoring its data. With
    the settings' BEGIN IMMEDIATE, the other writer waits for this transaction instead."""
    with django_db_blocker.unblock():  # its own file, not the test database
        try:
            _read_then_write(tmp_path / "embedded.sqlite3")
        finally:
            for alias in ("first", "other"):
                if alias in connections:
                    connections[alias].close()
                    del connections[alias]


def _read_then_write(path: Path) -> None:
    first = _connection(path, "first")
    with first.cursor() as cursor:
        cursor.execute("CREATE TABLE counter (n INTEGER)")
        cursor.execute("INSERT INTO counter VALUES (0)")
    read_done = threading.Event()
    errors: list[BaseException] = []

    def other_writer() -> None:
        other = _connection(path, "other")
        try:
            read_done.wait(5)
            with transaction.atomic(using="other"), other.cursor() as cursor:
                cursor.execute("UPDATE counter SET n = n + 10")
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            other.close()

    thread = threading.Thread(target=other_writer)
    thread.start()
    try:
        with transaction.atomic(using="first"), first.cursor() as cursor:
            cursor.execute("SELECT n FROM counter")
            (n,) = cursor.fetchone()
            read_done.set()
            thread.join(0.5)  # the other writer either waits for us or has committed meanwhile
            cursor.execute("UPDATE counter SET n = ?", [n + 1])
    finally:
        thread.join(30)
    assert not errors, errors
    with first.cursor() as cursor:
        cursor.execute("SELECT n FROM counter")
        assert cursor.fetchone() == (11,)
    first.close()
