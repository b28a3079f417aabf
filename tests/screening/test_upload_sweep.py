"""Plaintext upload temporary files left by a killed web process are swept; nothing else is.

``screening.services.uploads.upload_tempfiles_sweep`` (beat every 10 minutes, worker start-up, and
the web process when an upload begins) removes Django's upload files older than
``VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS`` from ``FILE_UPLOAD_TEMP_DIR``; an upload in progress, a
symlink (and what it points to), a sub-folder and any other file stay. An upload request that
fails part-way leaves no temporary file at all.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import FakePayload

from config.celery import app
from screening import tasks
from screening.models import VideoSubmission
from screening.services import uploads as upload_services
from screening.services import videos as video_services
from screening.services.uploads import upload_tempfiles_sweep, upload_tmp_name_matches
from tests.conftest import new_key, now_iso
from tests.media import MediaSet, shared_media

URL = "/api/v1/videos"
HOUR = 60 * 60
NONE_REMOVED = {"removed": 0, "fresh": 0, "skipped": 0, "errors": 0}


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaSet:
    return shared_media(tmp_path_factory)


@pytest.fixture(autouse=True)
def folder(settings: Any, tmp_path: Path) -> Path:
    upload_tmp = tmp_path / "upload-tmp"
    upload_tmp.mkdir(mode=0o700)
    settings.FILE_UPLOAD_TEMP_DIR = str(upload_tmp)
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    settings.VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS = HOUR
    return upload_tmp


@pytest.fixture(autouse=True)
def _no_throttle_history() -> Any:
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def plant(folder: Path, name: str, *, age_seconds: float, data: bytes = b"plaintext") -> Path:
    path = folder / name
    path.write_bytes(data)
    path.chmod(0o600)
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- the service ---------------------------------------------------------------------------------
def test_an_old_upload_file_goes_and_an_upload_in_progress_stays(folder: Path) -> None:
    old = plant(folder, "tmpk3j9x_a1.upload.mp4", age_seconds=HOUR + 60)
    fresh = plant(folder, "tmpq8w2m0zz.upload.webm", age_seconds=5)
    assert upload_tempfiles_sweep() == {**NONE_REMOVED, "removed": 1, "fresh": 1}
    assert not old.exists()
    assert fresh.read_bytes() == b"plaintext"


def test_the_bound_is_the_setting(folder: Path, settings: Any) -> None:
    settings.VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS = 600
    old = plant(folder, "tmpaaaaaaaa.upload.mp4", age_seconds=700)
    young = plant(folder, "tmpbbbbbbbb.upload.mp4", age_seconds=500)
    assert upload_tempfiles_sweep()["removed"] == 1
    assert (old.exists(), young.exists()) == (False, True)


def test_only_djangos_upload_files_are_removed(folder: Path) -> None:
    kept = [
        plant(folder, name, age_seconds=30 * 24 * HOUR)
        for name in ("notes.txt", "tmpshort.upload.mp4", "xtmpaaaaaaaa.upload.mp4", ".hidden")
    ]
    assert upload_tempfiles_sweep() == {**NONE_REMOVED, "skipped": len(kept)}
    assert all(path.exists() for path in kept)


def test_a_symlink_is_not_followed_and_its_target_survives(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = plant(outside, "tmpzzzzzzzz.upload.mp4", age_seconds=2 * HOUR, data=b"keep me")
    link = folder / "tmplink0000.upload.mp4"
    link.symlink_to(target)
    folder_link = folder / "tmplinkdir0.upload"
    folder_link.symlink_to(outside, target_is_directory=True)
    for path in (link, folder_link):
        then = time.time() - 2 * HOUR
        os.utime(path, (then, then), follow_symlinks=False)

    assert upload_tempfiles_sweep() == {**NONE_REMOVED, "skipped": 2}
    assert target.read_bytes() == b"keep me"
    assert files_in(outside) == ["tmpzzzzzzzz.upload.mp4"]
    assert link.is_symlink() and folder_link.is_symlink()


def test_a_sub_folder_is_neither_entered_nor_removed(folder: Path) -> None:
    sub = folder / "tmpsubdir00.upload"
    sub.mkdir(mode=0o700)
    inner = plant(sub, "tmpinner000.upload.mp4", age_seconds=2 * HOUR)
    then = time.time() - 2 * HOUR
    os.utime(sub, (then, then))
    assert upload_tempfiles_sweep() == {**NONE_REMOVED, "skipped": 1}
    assert inner.exists()


def test_a_folder_others_may_write_to_is_never_swept(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = plant(folder, "tmpaaaaaaaa.upload.mp4", age_seconds=2 * HOUR)
    folder.chmod(0o1777)  # what /tmp looks like
    try:
        with caplog.at_level(logging.WARNING, logger="vigil.uploads"):
            assert upload_tempfiles_sweep() == {**NONE_REMOVED, "errors": 1}
    finally:
        folder.chmod(0o700)
    assert old.exists()
    assert "VIGIL_UPLOAD_TMP_DIR" in caplog.text


def test_a_missing_folder_is_nothing_to_do(folder: Path) -> None:
    folder.rmdir()
    assert upload_tempfiles_sweep() == NONE_REMOVED


def test_the_sweep_is_bounded_and_idempotent(folder: Path) -> None:
    for i in range(5):
        plant(folder, f"tmp{i:08d}.upload.mp4", age_seconds=2 * HOUR)
    assert upload_tempfiles_sweep(max_entries=2)["removed"] == 2
    assert len(files_in(folder)) == 3
    assert upload_tempfiles_sweep()["removed"] == 3
    assert upload_tempfiles_sweep() == NONE_REMOVED
    assert files_in(folder) == []


@pytest.mark.parametrize("seconds", [-1, 0, 60, 599, 86_401, 10**9])
def test_the_bound_is_validated(seconds: int, settings: Any, folder: Path) -> None:
    old = plant(folder, "tmpaaaaaaaa.upload.mp4", age_seconds=2 * HOUR)
    with pytest.raises(ValueError):
        upload_tempfiles_sweep(older_than_seconds=seconds)
    settings.VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS = seconds
    with pytest.raises(ValueError):
        upload_tempfiles_sweep()
    assert old.exists()


@pytest.mark.parametrize("value", ["5", "599", "86401", "-1"])
def test_settings_refuse_a_bound_out_of_range(value: str) -> None:
    env = {**os.environ, "VIGIL_ENV": "test", "VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS": value}
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS must be between 600 and 86400" in result.stderr


def test_the_default_bound_is_an_hour() -> None:
    from django.conf import settings

    if "VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS" not in os.environ:
        assert settings.VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS == HOUR


def test_logs_carry_counts_only(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    plant(folder, "tmpsecret00.upload.mp4", age_seconds=2 * HOUR)
    with caplog.at_level(logging.DEBUG, logger="vigil.uploads"):
        upload_tempfiles_sweep()
    assert "removed=1" in caplog.text
    assert "tmpsecret00" not in caplog.text
    assert str(folder) not in caplog.text


# --- the task, beat and worker start ------------------------------------------------------------
def test_the_task_is_idempotent(folder: Path) -> None:
    plant(folder, "tmpaaaaaaaa.upload.mp4", age_seconds=2 * HOUR)
    assert tasks.upload_tempfiles_sweep.apply().get()["removed"] == 1
    assert tasks.upload_tempfiles_sweep.apply().get() == NONE_REMOVED
    assert tasks.upload_tempfiles_sweep.time_limit == 60
    assert tasks.upload_tempfiles_sweep.soft_time_limit == 50


def test_beat_sweeps_every_ten_minutes() -> None:
    app.loader.import_default_modules()
    entries = [
        entry
        for entry in app.conf.beat_schedule.values()
        if entry["task"] == "screening.tasks.upload_tempfiles_sweep"
    ]
    assert len(entries) == 1
    assert entries[0]["schedule"] == 10 * 60
    assert entries[0]["options"]["expires"] < entries[0]["schedule"]
    assert "screening.tasks.upload_tempfiles_sweep" in app.tasks
    # light work: the default queue (not routed to media or gpu)
    assert "screening.tasks.upload_tempfiles_sweep" not in app.conf.task_routes


def test_worker_start_sweeps_the_upload_folder(folder: Path) -> None:
    from celery.signals import worker_ready

    old = plant(folder, "tmpaaaaaaaa.upload.mp4", age_seconds=2 * HOUR)
    fresh = plant(folder, "tmpbbbbbbbb.upload.mp4", age_seconds=1)
    worker_ready.send(sender=None)
    assert (old.exists(), fresh.exists()) == (False, True)


def test_a_sweep_failure_never_stops_a_worker_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    from celery.signals import worker_ready

    monkeypatch.setattr(upload_services, "upload_tmp_dir", mock.Mock(side_effect=RuntimeError()))
    worker_ready.send(sender=None)  # logged, not raised


# --- real upload requests -----------------------------------------------------------------------
def _upload(client: Any, path: Path, data: bytes | None = None) -> Any:
    body = {
        "file": SimpleUploadedFile(path.name, data or path.read_bytes(), "video/mp4"),
        "idempotency_key": new_key(),
        "client_timestamp": now_iso(),
    }
    return client.post(URL, body, format="multipart")


def test_the_web_process_keeps_an_upload_in_progress_and_sweeps_abandoned_ones(
    client_a: Any, media: MediaSet, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    abandoned = plant(folder, "tmpkilled00.upload.mp4", age_seconds=2 * HOUR)
    monkeypatch.setattr(upload_services, "_last_sweep_at", None)  # this process's sweep is due
    seen: dict[str, Any] = {}
    real_create = video_services.video_submission_create

    def create(**kwargs: Any) -> Any:
        path = kwargs["upload_path"]
        seen["name"] = path.name
        seen["during"] = upload_tempfiles_sweep()  # a beat tick while the upload is being stored
        seen["kept"] = path.exists()
        return real_create(**kwargs)

    with mock.patch("screening.api.views.video_submission_create", side_effect=create):
        response = _upload(client_a, media.good_mp4)
    assert response.status_code == 201, response.content[:300]
    assert not abandoned.exists()  # swept by the web process as the upload began
    assert upload_tmp_name_matches(name=seen["name"])  # Django's name is the one swept
    assert seen["during"] == {**NONE_REMOVED, "fresh": 1}
    assert seen["kept"] is True
    assert files_in(folder) == []  # and the request removed its own file

    # Within the interval the web process does not sweep again (beat and workers still do).
    later = plant(folder, "tmpkilled01.upload.mp4", age_seconds=2 * HOUR)
    assert _upload(client_a, media.good_mp4).status_code == 201
    assert later.exists()


def test_an_upload_over_the_cap_leaves_no_temporary_file(
    client_a: Any, media: MediaSet, folder: Path, settings: Any
) -> None:
    settings.VIGIL_VIDEO_MAX_BYTES = 10_000
    gc.disable()  # removal must not wait for the garbage collector
    try:
        response = _upload(client_a, media.good_mp4)
    finally:
        gc.enable()
    assert response.status_code == 413
    assert files_in(folder) == []
    assert not VideoSubmission.objects.exists()


def test_an_invalid_upload_leaves_no_temporary_file(
    client_a: Any, media: MediaSet, folder: Path
) -> None:
    response = _upload(client_a, media.text_mp4)
    assert response.status_code == 415
    assert files_in(folder) == []


def test_a_client_that_disconnects_mid_upload_leaves_no_temporary_file(
    client_a: Any, media: MediaSet, folder: Path
) -> None:
    """The body stops arriving part-way (the read fails): Django closes only the files it
    finished; the one being received used to stay until the garbage collector found it (and
    the request was a 500)."""
    real_read = FakePayload.read
    reads = {"n": 0}
    seen: list[list[str]] = []

    def read(self: FakePayload, size: int = -1) -> bytes:
        reads["n"] += 1
        if reads["n"] > 3:
            seen.append(files_in(folder))
            raise OSError("connection reset by peer")
        return real_read(self, 16_384 if size is None or size < 0 else min(size, 16_384))

    client_a.raise_request_exception = False
    gc.disable()
    try:
        with mock.patch.object(FakePayload, "read", read):
            response = _upload(client_a, media.long_mp4, media.long_mp4.read_bytes() * 4)
    finally:
        gc.enable()
    assert seen and len(seen[0]) == 1  # the upload was being written when the client went away
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert files_in(folder) == []
    assert not VideoSubmission.objects.exists()


def test_a_failure_while_storing_leaves_no_temporary_file(
    client_a: Any, media: MediaSet, folder: Path
) -> None:
    client_a.raise_request_exception = False
    with mock.patch(
        "screening.api.views.video_submission_create", side_effect=RuntimeError("boom")
    ):
        response = _upload(client_a, media.good_mp4)
    assert response.status_code == 500
    assert files_in(folder) == []
