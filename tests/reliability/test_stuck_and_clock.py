"""Stuck jobs and clocks.

- The periodic reaper finds media jobs stuck past their time limit and sends them again, or fails
  them with the reason ``timed_out`` once they are out of attempts; jobs that were never sent
  (broker down at upload) are sent; fresh jobs are left alone.
- A red alert's acknowledgement deadline is an absolute time: raised minutes before a
  daylight-saving jump it is still due 5 real minutes later, and a sweep on a worker whose clock is
  a minute fast or slow escalates it no more than that minute early or late (yellow deadlines
  across DST: tests/risk/test_escalation.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.utils import timezone
from freezegun import freeze_time

from privacy.audit import Actor
from risk import services as risk_services
from risk.models import Alert, EscalationPolicy
from screening.models import VideoSubmission
from screening.services import videos
from screening.services.help import help_request_create
from tests.reliability.helpers import celery_publishing_to

pytestmark = pytest.mark.django_db


def _video(world: Any, **fields: Any) -> VideoSubmission:
    defaults = {
        "patient": world.patient_a,
        "idempotency_key": uuid.uuid4(),
        "client_timestamp": timezone.now(),
        "timezone": "UTC",
        "local_date": timezone.now().date(),
        "storage_name": "videos/none",
        "size_bytes": 1,
        "duration_seconds": 1.0,
        "container": "mp4",
        "video_codec": "h264",
        "width": 16,
        "height": 16,
    }
    return VideoSubmission.objects.create(**{**defaults, **fields})


def test_reaper_retries_or_fails_stuck_jobs_with_a_reason(world: Any, settings: Any) -> None:
    settings.VIGIL_MEDIA_JOB_STUCK_SECONDS = 600
    settings.VIGIL_MEDIA_JOB_MAX_ATTEMPTS = 3
    long_ago = timezone.now() - dt.timedelta(hours=1)
    stuck_retry = _video(world, status="processing", attempts=1, processing_started_at=long_ago)
    stuck_out = _video(world, status="processing", attempts=3, processing_started_at=long_ago)
    never_sent = _video(world, status="queued")
    VideoSubmission.objects.filter(pk=never_sent.pk).update(created_at=long_ago)
    lost_in_queue = _video(world, status="queued", enqueued_at=long_ago)
    running = _video(world, status="processing", attempts=1, processing_started_at=timezone.now())
    fresh = _video(world, status="queued", enqueued_at=timezone.now())
    with celery_publishing_to("memory://"):
        counts = videos.media_jobs_reap()
        assert counts == {"requeued": 3, "failed": 1}
        # The next tick re-sends nothing it already sent: the stuck "processing" row was put back
        # to "queued" when it was re-sent, and waits a whole stuck interval before another send.
        assert videos.media_jobs_reap() == {"requeued": 0, "failed": 0}
    out = VideoSubmission.objects.get(pk=stuck_out.pk)
    assert (out.status, out.failure_reason) == ("failed", "timed_out") and out.failure_message
    for video in (stuck_retry, never_sent, lost_in_queue):
        assert VideoSubmission.objects.get(pk=video.pk).enqueued_at > long_ago
    assert VideoSubmission.objects.get(pk=running.pk).status == "processing"
    assert VideoSubmission.objects.get(pk=fresh.pk).status == "queued"
    # The redelivered stuck job is claimed again and counts an attempt.
    claimed = videos._claim(stuck_retry.pk)
    assert claimed is not None and claimed.attempts == 2


@pytest.mark.parametrize("skew_seconds", [-60, 0, 60])
def test_red_deadline_holds_across_dst_and_a_skewed_worker_clock(
    world: Any, skew_seconds: int
) -> None:
    world.clinic.timezone = "America/New_York"
    world.clinic.save(update_fields=["timezone"])
    EscalationPolicy.objects.create(organisation=world.clinic, red_ack_minutes=5)
    # an address to reach: a level with nobody reachable is skipped (risk.services._reachable)
    world.clinician.user.email = "clinician@clinic.example"
    world.clinician.user.save(update_fields=["email"])
    # 01:58 EST on 8 March 2026; at 02:00 the clocks jump to 03:00 EDT.
    raised = dt.datetime(2026, 3, 8, 6, 58, tzinfo=dt.UTC)
    with freeze_time(raised):
        help_request_create(
            actor=Actor(user_id=world.patient_a.user_id, role="patient"), patient=world.patient_a
        )
    alert = Alert.objects.get(patient=world.patient_a, tier="red")
    deadline = raised + dt.timedelta(minutes=5)  # 03:03 EDT: five real minutes, not 65
    assert alert.ack_deadline == deadline
    skew = dt.timedelta(seconds=skew_seconds)

    def sweep_at(real: dt.datetime) -> int:
        with freeze_time(real + skew):  # the worker reads its own (skewed) clock
            return int(risk_services.escalation_sweep()["escalated"])

    # Never more than the skew early ...
    assert sweep_at(deadline - dt.timedelta(seconds=abs(skew_seconds) + 1)) == 0
    # ... and at most the skew late.
    assert sweep_at(deadline + dt.timedelta(seconds=abs(skew_seconds))) == 1
    alert.refresh_from_db()
    assert alert.escalation_level == 1
