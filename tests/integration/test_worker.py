"""A real Celery worker process picks up an uploaded video from the real broker and finishes it.

Runs on whatever the test process uses: SQLite + kombu's filesystem broker by default, PostgreSQL
and Redis when ``DATABASE_URL`` / ``CELERY_BROKER_URL`` are set. The worker is told to use the
test database and this test's media folders; the test keyring is deterministic, so the worker
decrypts what this process wrote.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from screening.models import VideoSubmission
from tests.conftest import new_key, now_iso
from tests.media import make_mp4
from tests.reliability.helpers import database_env, stop_worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WORKER_CMD = [
    sys.executable,
    "-m",
    "celery",
    "-A",
    "config",
    "worker",
    "-Q",
    "media,default,gpu,alerts",
    "-P",
    "solo",
    "-c",
    "1",
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
    "-l",
    "INFO",
]
DEADLINE_SECONDS = 60


def worker_env(settings: Any) -> dict[str, str]:
    env = dict(os.environ)
    overrides: dict[str, str | None] = {
        "VIGIL_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
        # The same var/ folder means the same filesystem broker folders as this process.
        "VIGIL_VAR_DIR": str(settings.VAR_DIR),
        "VIGIL_MEDIA_ROOT": str(settings.VIGIL_MEDIA_ROOT),
        "VIGIL_WORK_DIR": str(settings.VIGIL_WORK_DIR),
        "CELERY_BROKER_URL": (
            None if settings.CELERY_BROKER_URL == "filesystem://" else settings.CELERY_BROKER_URL
        ),
        **database_env(),
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # warm shutdown
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def test_real_worker_processes_an_uploaded_video(
    client_a: Any, world: Any, settings: Any, tmp_path: Path
) -> None:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    video_file = make_mp4(tmp_path / "clip.mp4", seconds=1.0)
    log_path = tmp_path / "worker.log"

    with log_path.open("wb") as log:
        worker = subprocess.Popen(  # started first: its start-up overlaps the upload
            WORKER_CMD, cwd=ROOT, env=worker_env(settings), stdout=log, stderr=subprocess.STDOUT
        )

    def worker_output() -> str:
        return log_path.read_text(errors="replace")[-6000:]

    try:
        with video_file.open("rb") as handle:
            response = client_a.post(
                "/api/v1/videos",
                {"file": handle, "idempotency_key": new_key(), "client_timestamp": now_iso()},
                format="multipart",
            )
        assert response.status_code == 201, response.content
        video_id = response.json()["id"]
        # A transactional test really commits, so the on-commit hook really published the job.
        assert VideoSubmission.objects.get(pk=video_id).enqueued_at is not None

        deadline = time.monotonic() + DEADLINE_SECONDS
        status = "queued"
        while time.monotonic() < deadline:
            status = VideoSubmission.objects.values_list("status", flat=True).get(pk=video_id)
            if status in ("done", "failed"):
                break
            assert worker.poll() is None, (
                f"worker exited with {worker.returncode}:\n{worker_output()}"
            )
            time.sleep(0.2)

        video = VideoSubmission.objects.get(pk=video_id)
        assert video.status == "done", (
            f"video ended {video.status!r} ({video.failure_reason!r}) after "
            f"{DEADLINE_SECONDS}s; worker output:\n{worker_output()}"
        )
        assert (video.stage, video.percent, video.attempts) == ("complete", 100, 1)
        assert client_a.get(f"/api/v1/videos/{video_id}").json()["status"] == "done"
        work = Path(settings.VIGIL_WORK_DIR)
        assert not work.exists() or list(work.iterdir()) == [], "plaintext left in the work dir"
        assert (Path(settings.VIGIL_MEDIA_ROOT) / video.storage_name).exists()
    finally:
        stop(worker)
    assert "screening.tasks.video_process" in worker_output(), worker_output()


def test_real_workers_hand_prosody_to_the_gpu_queue_in_batches(
    world: Any, settings: Any, tmp_path: Path
) -> None:
    """VIGIL_PROSODY_QUEUE=gpu with a media worker and a gpu worker, as `make run` starts them:
    the media worker stores each video's voice and moves on; the gpu worker computes the queued
    voices in batches (one prosody call each) and finishes the jobs."""
    from django.utils import timezone

    from privacy.audit import Actor
    from screening.models import MediaAnalysis
    from screening.services.videos import video_submission_create

    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    env = worker_env(settings)
    env.update(
        {
            "VIGIL_PROSODY_QUEUE": "gpu",
            "VIGIL_GPU_BATCH_SIZE": "4",
            "VIGIL_GPU_BATCH_WAIT_SECONDS": "8",  # long enough for the media worker's four
            "VIGIL_TRANSCRIBE": "false",
            "VIGIL_WORKER_WARMUP": "false",
        }
    )
    clip = make_mp4(tmp_path / "clip.mp4", seconds=1.0)
    patient = world.patient_a
    ids = []
    for _ in range(4):  # queued before the workers start
        video, _created = video_submission_create(
            actor=Actor(user_id=patient.user_id, role="patient"),
            patient=patient,
            idempotency_key=new_key(),
            upload_path=clip,
            client_timestamp=timezone.now(),
        )
        ids.append(video.pk)
    common = ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
    base = [sys.executable, "-m", "celery", "-A", "config", "worker"]
    media_cmd = [*base, "-Q", "media,default,alerts", "-P", "solo", "-n", "media@%h", *common]
    gpu_cmd = [*base, "-Q", "gpu", "-c", "1", "--prefetch-multiplier", "4", "-n", "gpu@%h", *common]
    logs = {"media": tmp_path / "media.log", "gpu": tmp_path / "gpu.log"}
    workers = []
    for name, command in (("media", media_cmd), ("gpu", gpu_cmd)):
        with logs[name].open("wb") as log:
            workers.append(
                subprocess.Popen(  # own process group: stopping it stops the pool children too
                    command,
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def output() -> str:
        return "\n".join(
            f"--- {n}:\n{p.read_text(errors='replace')[-4000:]}" for n, p in logs.items()
        )

    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            states = set(
                VideoSubmission.objects.filter(pk__in=ids).values_list("status", flat=True)
            )
            if states <= {"done", "failed"}:
                break
            for worker in workers:
                assert worker.poll() is None, f"a worker exited:\n{output()}"
            time.sleep(0.2)
        videos = list(VideoSubmission.objects.filter(pk__in=ids))
        assert {(v.status, v.failure_reason) for v in videos} == {("done", "")}, output()
        analyses = list(MediaAnalysis.objects.filter(video_id__in=ids))
        assert len(analyses) == 4, output()
        for analysis in analyses:
            assert analysis.models_info[0]["name"].startswith("vigil-prosody-torch")
            assert "prosody_queue_wait" in analysis.timings_ms
    finally:
        for worker in workers:
            stop_worker(worker)
    gpu_log = logs["gpu"].read_text(errors="replace")
    # the voice batches only: the gpu queue may also hold text jobs other tests left in a
    # shared broker (they are skipped: their entries no longer exist)
    voice_lines = [line for line in gpu_log.splitlines() if "voice batch:" in line]
    sizes = [
        int(part.split("=")[1])
        for line in voice_lines
        for part in line.split()
        if part.startswith("jobs=")
    ]
    assert sum(sizes) == 4 and max(sizes) > 1, output()  # batches, not one call per video
    assert "Task screening.tasks.video_process[" not in gpu_log  # each queue on its own worker
