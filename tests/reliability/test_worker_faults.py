"""Workers killed mid-task: every media job ends done or failed with a reason, none is lost, none
is left "processing", nothing is duplicated, and the worker (or its replacement) keeps serving.

Real processes: a private ``redis-server`` as the broker, real Celery workers (prefork pool, the
production task code and Celery configuration) started through ``worker_entry`` so each media job
takes ~0.5 s, and the test database. The test process plays ``beat``: it runs the reaper
(``media_jobs_reap``) once a second. Kill counts: ``VIGIL_RELIABILITY_KILLS`` (child kills,
default 20) and ``VIGIL_RELIABILITY_WORKER_KILLS`` (whole-worker kills, default 3).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from privacy.audit import Actor
from privacy.models import AccessEvent
from risk.models import Alert
from screening.models import VideoSubmission
from screening.services.videos import media_jobs_reap, video_submission_create
from tests.media import make_mp4
from tests.reliability.helpers import (
    celery_publishing_to,
    child_env,
    children_of,
    kill_worker,
    private_redis,
    record_figures,
    start_worker,
    stop_worker,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CHILD_KILLS = int(os.environ.get("VIGIL_RELIABILITY_KILLS", "20"))
WORKER_KILLS = int(os.environ.get("VIGIL_RELIABILITY_WORKER_KILLS", "3"))
JOB_SECONDS = 0.4
STUCK_SECONDS = 2
MAX_ATTEMPTS = 3
#: Figures of the last run, printed by the summary test (docs/reliability.md quotes them).
FIGURES: dict[str, Any] = {}


@pytest.fixture
def rig(settings: Any, tmp_path: Path) -> Any:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    settings.VIGIL_MEDIA_JOB_STUCK_SECONDS = STUCK_SECONDS
    settings.VIGIL_MEDIA_JOB_MAX_ATTEMPTS = MAX_ATTEMPTS
    clip = make_mp4(tmp_path / "clip.mp4", seconds=0.5)
    with private_redis(tmp_path / "redis") as redis, celery_publishing_to(redis.url):
        env = child_env(
            settings,
            CELERY_BROKER_URL=redis.url,
            VIGIL_TEST_MEDIA_SLEEP=str(JOB_SECONDS),
            VIGIL_MEDIA_JOB_STUCK_SECONDS=str(STUCK_SECONDS),
            VIGIL_MEDIA_JOB_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        )
        yield {"env": env, "clip": clip, "log": tmp_path / "worker.log", "redis": redis}


def _upload(world: Any, clip: Path, count: int) -> list[uuid.UUID]:
    ids = []
    for _ in range(count):
        video, created = video_submission_create(
            actor=Actor(user_id=world.patient_a.user_id, role="patient"),
            patient=world.patient_a,
            idempotency_key=uuid.uuid4(),
            upload_path=clip,
            client_timestamp=timezone.now() - dt.timedelta(seconds=5),
        )
        assert created
        ids.append(video.pk)
    return ids


def _statuses(ids: list[uuid.UUID]) -> dict[str, str]:
    return {
        str(pk): status
        for pk, status in VideoSubmission.objects.filter(pk__in=ids).values_list("pk", "status")
    }


def _drain(ids: list[uuid.UUID], worker: Any, log: Path, *, timeout: float) -> None:
    """Run the reaper like beat (every second) until every job is finished."""
    deadline = time.monotonic() + timeout
    while True:
        media_jobs_reap()
        statuses = _statuses(ids)
        if all(s in ("done", "failed") for s in statuses.values()):
            return
        assert worker.poll() is None, log.read_text(errors="replace")[-4000:]
        if time.monotonic() > deadline:
            pytest.fail(
                f"jobs unfinished after {timeout}s: {statuses}\n"
                + log.read_text(errors="replace")[-4000:]
            )
        time.sleep(1.0)


def _processing_now(ids: list[uuid.UUID]) -> bool:
    fresh = timezone.now() - dt.timedelta(seconds=JOB_SECONDS)
    return VideoSubmission.objects.filter(
        pk__in=ids, status="processing", processing_started_at__gte=fresh
    ).exists()


def _check_outcomes(ids: list[uuid.UUID], world: Any) -> dict[str, int]:
    videos = list(VideoSubmission.objects.filter(patient=world.patient_a))
    assert len(videos) == len(ids), "a job was duplicated or lost"
    outcome = {"done": 0, "failed": 0}
    for video in videos:
        assert video.status in ("done", "failed"), (video.pk, video.status)
        outcome[video.status] += 1
        assert video.attempts <= MAX_ATTEMPTS
        if video.status == "failed":
            assert video.failure_reason in ("too_many_attempts", "timed_out"), video.failure_reason
            assert video.failure_message
        else:
            assert (video.stage, video.percent) == ("complete", 100)
        decrypts = AccessEvent.objects.filter(
            action="video.decrypt", resource_id=str(video.pk)
        ).count()
        assert decrypts <= video.attempts, "a job ran without claiming it"
    assert not Alert.objects.filter(patient=world.patient_a).exists(), "a video raised an alert"
    return outcome


def test_killing_pool_children_mid_task_loses_no_job(world: Any, rig: Any) -> None:
    rng = random.Random(20260)  # seeded: a reproducible run
    # Two pool children: while one is being replaced the other keeps taking jobs.
    worker = start_worker(env=rig["env"], log_path=rig["log"], concurrency=2)
    try:
        ids = _upload(world, rig["clip"], 12)
        kills = landed = 0
        deadline = time.monotonic() + 90
        last_reap = time.monotonic()
        while kills < CHILD_KILLS and time.monotonic() < deadline:
            if time.monotonic() - last_reap > 1:
                media_jobs_reap()
                last_reap = time.monotonic()
            if not _processing_now(ids):
                if all(s in ("done", "failed") for s in _statuses(ids).values()):
                    ids += _upload(world, rig["clip"], 4)  # keep the worker busy
                time.sleep(0.05)
                continue
            time.sleep(rng.uniform(0.0, JOB_SECONDS))
            children = children_of(worker.pid)
            if not children:
                continue
            busy = _processing_now(ids)
            try:
                os.kill(rng.choice(children), signal.SIGKILL)
            except ProcessLookupError:
                continue  # that child exited between the listing and the kill: choose again
            landed += busy
            kills += 1
            # The pool replaces the child; wait for it before the next kill.
            wait_for(lambda: children_of(worker.pid), timeout=20, what="a new pool child")
        assert kills == CHILD_KILLS, f"only {kills} kills in the time box"
        killing_took = time.monotonic() - (deadline - 90)
        _drain(ids, worker, rig["log"], timeout=90)
        outcome = _check_outcomes(ids, world)
        assert outcome["done"] > 0
        assert worker.poll() is None, "the worker did not survive its children's deaths"
        # The same worker still serves new work after the faults.
        after = _upload(world, rig["clip"], 1)
        _drain(after, worker, rig["log"], timeout=30)
        assert _statuses(after) == {str(after[0]): "done"}
    finally:
        stop_worker(worker)
    leftovers = sorted(p.name for p in Path(rig["env"]["VIGIL_WORK_DIR"]).glob("dec-*"))
    FIGURES["child"] = {
        "kills": kills,
        "landed_mid_job": landed,
        "jobs": len(ids),
        "after_faults": "done",
        **outcome,
        "plaintext_leftovers": len(leftovers),
        "killing_seconds": round(killing_took, 1),
    }


def test_killing_the_whole_worker_mid_task_loses_no_job(world: Any, rig: Any) -> None:
    ids = _upload(world, rig["clip"], WORKER_KILLS + 2)
    worker = start_worker(env=rig["env"], log_path=rig["log"])
    kills = 0
    try:
        for _ in range(WORKER_KILLS):
            wait_for(lambda: _processing_now(ids), timeout=60, what="a job in progress")
            time.sleep(JOB_SECONDS / 3)
            kill_worker(worker)
            kills += 1
            worker = start_worker(env=rig["env"], log_path=rig["log"])
        _drain(ids, worker, rig["log"], timeout=90)
        outcome = _check_outcomes(ids, world)
        assert outcome["done"] > 0
    finally:
        stop_worker(worker)
    leftovers = sorted(p.name for p in Path(rig["env"]["VIGIL_WORK_DIR"]).glob("dec-*"))
    FIGURES["whole"] = {
        "kills": kills,
        "jobs": len(ids),
        **outcome,
        "plaintext_leftovers": len(leftovers),
    }


def test_killed_workers_leave_no_plaintext_in_the_work_dir() -> None:
    if not FIGURES:
        pytest.skip("the kill tests did not run")
    left = {case: figures["plaintext_leftovers"] for case, figures in FIGURES.items()}
    assert sum(left.values()) == 0, f"decrypted video files left behind: {left}"


def test_print_kill_figures() -> None:
    """Not a check: records the figures of the kill tests above for docs/reliability.md."""
    record_figures("worker_faults", FIGURES)
