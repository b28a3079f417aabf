"""Plaintext upload temporary files: removing those a killed web process left behind.

An uploaded video is streamed by :class:`screening.api.uploads.CappedTemporaryFileUploadHandler`
into ``settings.FILE_UPLOAD_TEMP_DIR`` (``VIGIL_UPLOAD_TMP_DIR``, a private 0700 folder) as a
0600 file that Django names ``tmpXXXXXXXX.upload<ext>`` (``tempfile.NamedTemporaryFile``). The
request removes it whatever happens, but only while its process lives: a web process killed
mid-request (OOM, SIGKILL, gunicorn's ``--timeout`` abort, a deploy) leaves the patient's video
on disk in plaintext. :func:`upload_tempfiles_sweep` removes such files once they are older than
``VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS`` (default 1 hour; far longer than any request may last, and a
file still being written has a fresh modification time).

It runs on beat (``screening.tasks.upload_tempfiles_sweep``, every 10 minutes), when a Celery
worker starts (``screening.worker``), and from the web process itself at most every 10 minutes
when an upload begins (:func:`upload_tempfiles_sweep_if_due`), so each web host sweeps its own
folder even where no worker runs beside it.

What it removes, and nothing else: regular files (never a symlink, which is not followed, nor a
folder, which is not entered) directly in that folder, owned by this process's user, named like
Django's upload files, older than the bound. It refuses a folder that is not a directory owned by
this user or that others may write to (``/tmp`` by mistake, say): it is never swept. Logs carry
counts only, never a file name.

The Celery worker's decrypted copies live in their own private folder (``VIGIL_WORK_DIR``, see
:func:`privacy.storage.decrypted_tempfile`), swept by
:func:`screening.services.videos.decrypted_files_sweep`.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import time
from pathlib import Path

from django.conf import settings

logger = logging.getLogger("vigil.uploads")

#: The bounds ``VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS`` must lie within (config/settings.py checks them
#: at start-up too). Below 10 minutes a slow upload still being probed and encrypted could go;
#: above a day the sweep no longer does its job.
UPLOAD_TMP_MAX_AGE_MIN_SECONDS = 10 * 60
UPLOAD_TMP_MAX_AGE_MAX_SECONDS = 24 * 60 * 60
#: How many folder entries one sweep looks at, at most (the worker start-up sweep is bounded; a
#: folder holding more is finished by the next runs).
UPLOAD_TMP_SWEEP_MAX_ENTRIES = 10_000
#: How often a web process sweeps its own host's folder when uploads begin.
UPLOAD_TMP_SWEEP_INTERVAL_SECONDS = 10 * 60

#: Django's names: ``tempfile`` prefix ``tmp`` + 8 characters, then ``.upload`` + the extension.
_UPLOAD_NAME = re.compile(r"^tmp[a-z0-9_]{8}\.upload")

_due_lock = threading.Lock()
_last_sweep_at: float | None = None  # time.monotonic() of this process's last sweep when due


def upload_tmp_dir() -> Path:
    return Path(str(settings.FILE_UPLOAD_TEMP_DIR))


def upload_tmp_max_age_seconds() -> int:
    """``VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS``, checked against its bounds."""
    value: int = settings.VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS
    _check_max_age(value)
    return value


def _check_max_age(seconds: float) -> None:
    if not UPLOAD_TMP_MAX_AGE_MIN_SECONDS <= seconds <= UPLOAD_TMP_MAX_AGE_MAX_SECONDS:
        raise ValueError(
            "the upload temporary file age bound must be between "
            f"{UPLOAD_TMP_MAX_AGE_MIN_SECONDS} and {UPLOAD_TMP_MAX_AGE_MAX_SECONDS} seconds"
        )


def upload_tmp_name_matches(*, name: str) -> bool:
    """True for a name Django gives an upload's temporary file."""
    return _UPLOAD_NAME.match(name) is not None


def _is_private_dir(dir_fd: int) -> bool:
    """True for a folder owned by this user that no one else may write to (never ``/tmp``)."""
    info = os.fstat(dir_fd)
    return info.st_uid == os.geteuid() and not stat.S_IMODE(info.st_mode) & 0o022


def upload_tempfiles_sweep(
    *,
    older_than_seconds: float | None = None,
    max_entries: int = UPLOAD_TMP_SWEEP_MAX_ENTRIES,
) -> dict[str, int]:
    """Remove upload temporary files older than ``older_than_seconds`` (default:
    ``VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS``) from the upload temporary folder.

    Returns counts: ``removed``; ``fresh`` (uploads younger than the bound, kept); ``skipped``
    (anything else in the folder: other names, folders, symlinks, other owners); ``errors``
    (the folder could not be read, or is not private; nothing removed). Looks at ``max_entries``
    entries at most. Idempotent; raises only for a bound outside its limits (``ValueError``).
    """
    max_age = upload_tmp_max_age_seconds() if older_than_seconds is None else older_than_seconds
    _check_max_age(max_age)
    if max_entries < 1:
        raise ValueError("max_entries must be positive")
    counts = {"removed": 0, "fresh": 0, "skipped": 0, "errors": 0}
    try:
        dir_fd = os.open(upload_tmp_dir(), os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return counts  # no upload has arrived on this host yet
    except OSError as exc:
        logger.warning("upload temporary folder not swept: %s", type(exc).__name__)
        counts["errors"] += 1
        return counts
    if not _is_private_dir(dir_fd):
        os.close(dir_fd)
        logger.warning(
            "upload temporary folder not swept: VIGIL_UPLOAD_TMP_DIR must be a private folder "
            "of the service user"
        )
        counts["errors"] += 1
        return counts
    try:
        _sweep_entries(dir_fd, max_age=max_age, max_entries=max_entries, counts=counts)
    except OSError as exc:  # the folder became unreadable: the next run tries again
        logger.warning("upload temporary folder sweep stopped: %s", type(exc).__name__)
        counts["errors"] += 1
    finally:
        os.close(dir_fd)
    if counts["removed"] or counts["errors"]:
        logger.warning(
            "upload temporary files left by killed web processes: removed=%d fresh=%d "
            "skipped=%d errors=%d",
            counts["removed"],
            counts["fresh"],
            counts["skipped"],
            counts["errors"],
        )
    return counts


def _sweep_entries(
    dir_fd: int, *, max_age: float, max_entries: int, counts: dict[str, int]
) -> None:
    """Remove the old upload files among the folder's entries (never following a link: entries
    are examined with ``lstat`` and unlinked by name relative to the folder's descriptor)."""
    uid = os.geteuid()
    now = time.time()
    seen = 0
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            seen += 1
            if seen > max_entries:
                break
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # its request ended meanwhile
            if (
                not stat.S_ISREG(info.st_mode)
                or info.st_uid != uid
                or not upload_tmp_name_matches(name=entry.name)
            ):
                counts["skipped"] += 1
                continue
            if now - info.st_mtime <= max_age:
                counts["fresh"] += 1  # an upload in progress, or one being probed and stored
                continue
            try:
                os.unlink(entry.name, dir_fd=dir_fd)
            except FileNotFoundError:
                continue  # its request (or another sweep) removed it meanwhile
            counts["removed"] += 1


def upload_tempfiles_sweep_if_due() -> dict[str, int] | None:
    """Sweep from the web process when its last sweep is ``UPLOAD_TMP_SWEEP_INTERVAL_SECONDS``
    old (None: not due, or another thread is sweeping). Never raises."""
    global _last_sweep_at
    if not _due_lock.acquire(blocking=False):
        return None
    try:
        now = time.monotonic()
        if _last_sweep_at is not None and now - _last_sweep_at < UPLOAD_TMP_SWEEP_INTERVAL_SECONDS:
            return None
        _last_sweep_at = now
        try:
            return upload_tempfiles_sweep()
        except Exception as exc:  # never fail an upload because of the sweep
            logger.warning("upload temporary folder not swept: %s", type(exc).__name__)
            return None
    finally:
        _due_lock.release()
