"""privacy.storage.decrypted_tempfiles_sweep: plaintext left by a killed process is removed; a file
still in use is kept. Files get controlled modification times (os.utime); the kill is real."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from privacy import storage
from tests.privacy.test_storage import PLAINTEXT, store

pytestmark = pytest.mark.django_db

MAX_AGE = 20 * 60

#: A stand-in for a worker inside decrypted_tempfile: holds the file's lock until it is killed.
HOLDER = """
import fcntl, sys, time
handle = open(sys.argv[1], "rb")
fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(120)
"""


@pytest.fixture(autouse=True)
def folders(settings: Any, tmp_path: Path) -> Any:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    settings.VIGIL_MEDIA_CHUNK_BYTES = 1024
    return settings


@pytest.fixture
def work(settings: Any) -> Path:
    path = Path(settings.VIGIL_WORK_DIR)
    path.mkdir(mode=0o700)
    return path


def plant(work: Path, name: str, *, age_seconds: float) -> Path:
    path = work / name
    path.write_bytes(b"plaintext")
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def hold(path: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "locked"
    return child


def test_abandoned_files_go_whatever_their_age(work: Path) -> None:
    fresh = plant(work, "dec-fresh.media", age_seconds=1)
    old = plant(work, "dec-old.media", age_seconds=MAX_AGE + 1)
    assert storage.decrypted_tempfiles_sweep(older_than_seconds=MAX_AGE) == 2
    assert not fresh.exists() and not old.exists()
    assert storage.decrypted_tempfiles_sweep(older_than_seconds=MAX_AGE) == 0


def test_a_file_held_by_a_live_process_stays_until_it_is_killed(work: Path) -> None:
    path = plant(work, "dec-held.media", age_seconds=60)
    child = hold(path)
    try:
        assert storage.decrypted_tempfiles_sweep(older_than_seconds=MAX_AGE) == 0
        assert path.exists()
        os.kill(child.pid, signal.SIGKILL)  # no cleanup runs; the kernel drops the lock
        child.wait(timeout=10)
        assert storage.decrypted_tempfiles_sweep(older_than_seconds=MAX_AGE) == 1
        assert not path.exists()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_held_file_older_than_the_limit_goes_anyway(work: Path) -> None:
    path = plant(work, "dec-hung.media", age_seconds=MAX_AGE + 5)
    child = hold(path)
    try:
        assert storage.decrypted_tempfiles_sweep(older_than_seconds=MAX_AGE) == 1
        assert not path.exists()
    finally:
        child.kill()
        child.wait()


def test_pending_files_go_by_age_only_and_others_are_left_alone(work: Path) -> None:
    young_pending = plant(work, "new-young.media", age_seconds=5)
    old_pending = plant(work, "new-old.media", age_seconds=MAX_AGE + 5)
    other = plant(work, "keep-me.txt", age_seconds=MAX_AGE * 10)
    folder = work / "dec-folder"
    folder.mkdir()
    target = plant(work.parent, "elsewhere.bin", age_seconds=1)
    link = work / "dec-link.media"
    link.symlink_to(target)
    removed = storage.decrypted_tempfiles_sweep(older_than_seconds=MAX_AGE)
    assert young_pending.exists() and other.exists() and folder.is_dir()
    assert not old_pending.exists()
    assert target.exists()  # a symlink is never followed; a young one is left to the age rule
    assert link.is_symlink()
    assert removed == 1
    old = time.time() - MAX_AGE - 5
    os.utime(link, (old, old), follow_symlinks=False)
    assert storage.decrypted_tempfiles_sweep(older_than_seconds=MAX_AGE) == 1
    assert not link.is_symlink() and target.exists()


def test_no_work_directory_is_nothing_to_do(settings: Any) -> None:
    assert not Path(settings.VIGIL_WORK_DIR).exists()
    assert storage.decrypted_tempfiles_sweep(older_than_seconds=MAX_AGE) == 0


def test_a_file_in_use_survives_a_sweep_and_is_private(
    tmp_path: Path, settings: Any, work: Path
) -> None:
    work.chmod(0o755)  # an existing directory with loose permissions is tightened
    patient_id = uuid.uuid4()
    name, object_id, _ = store(tmp_path, patient_id)
    with storage.decrypted_tempfile(name=name, patient_id=patient_id, object_id=object_id) as path:
        assert path.name.startswith(storage.DECRYPTED_PREFIX)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(work.stat().st_mode) == 0o700
        assert sorted(p.name for p in work.iterdir()) == [path.name]  # no pending file left
        assert storage.decrypted_tempfiles_sweep(older_than_seconds=MAX_AGE) == 0
        assert path.read_bytes() == PLAINTEXT
    assert list(work.iterdir()) == []
