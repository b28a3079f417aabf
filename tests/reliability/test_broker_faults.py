"""Broker down: patients keep writing diary entries, uploading videos and pressing the help button;
every submission is stored and answered at once (the help button's red alert is raised in the
request), and the queued work and the notifications go out when the broker returns, once per
idempotency key, with nobody replaying anything.

The broker is a private ``redis-server`` killed and restarted on the same port; the app publishes
to it (``celery_publishing_to``); a real worker consumes from it after the outage. The test plays
``beat``: it publishes the periodic reaper and relay tasks, as beat would on its next ticks.
"""

from __future__ import annotations

import collections
import re
import time
from pathlib import Path
from typing import Any

import pytest

from risk.choices import OutboxState
from risk.models import Alert, EscalationPolicy, OutboxMessage
from screening.models import DiaryEntry, HelpRequest, VideoSubmission
from tests.conftest import new_key, now_iso
from tests.factories import make_clinician
from tests.media import make_mp4
from tests.reliability.helpers import (
    celery_publishing_to,
    child_env,
    private_redis,
    record_figures,
    start_worker,
    stop_worker,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DIARY_TEXT = "Broker outage diary line {n}: walked the dog, felt flat."
#: A request during the outage must still be answered promptly (shared CI cores: generous).
MAX_SECONDS_DURING_OUTAGE = 3.0
FIGURES: dict[str, Any] = {}


def _timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_broker_outage_loses_nothing_and_delivers_once(
    world: Any, client_a: Any, client_b: Any, settings: Any, tmp_path: Path
) -> None:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    settings.VIGIL_ALERT_RELAY_ON_COMMIT = True  # the production path: kick the relay after commit
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    for clinician, address in ((world.clinician, "treating@clinic.test"),):
        clinician.user.email = address
        clinician.user.save(update_fields=["email"])
    team = world.colleague.care_teams.get()
    on_call = make_clinician(team=team)
    on_call.user.email = "oncall@clinic.test"
    on_call.user.save(update_fields=["email"])
    EscalationPolicy.objects.create(organisation=world.clinic, on_call=on_call)
    clip = make_mp4(tmp_path / "clip.mp4", seconds=0.5)
    log = tmp_path / "worker.log"

    with private_redis(tmp_path / "redis") as redis, celery_publishing_to(redis.url):
        redis.stop()  # the outage starts before the traffic
        slowest = 0.0
        diary_keys = [new_key() for _ in range(10)]
        for n, key in enumerate(diary_keys):
            body = {"idempotency_key": key, "text": DIARY_TEXT.format(n=n)}
            body["client_timestamp"] = now_iso()
            response, took = _timed(lambda b=body: client_a.post("/api/v1/diary-entries", b))
            assert response.status_code == 201, response.content
            slowest = max(slowest, took)
            # The app's retry of the same submission is a replay, not a second entry.
            replay = client_a.post("/api/v1/diary-entries", body)
            assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
        video_keys = [new_key() for _ in range(2)]
        for key in video_keys:
            with clip.open("rb") as handle:
                response, took = _timed(
                    lambda h=handle, k=key: client_a.post(
                        "/api/v1/videos",
                        {"file": h, "idempotency_key": k, "client_timestamp": now_iso()},
                        format="multipart",
                    )
                )
            assert response.status_code == 201, response.content
            slowest = max(slowest, took)
        help_ids = []
        for client in (client_a, client_a, client_b):
            response, took = _timed(lambda c=client: c.post("/api/v1/help"))
            assert response.status_code == 201, response.content
            assert response.json()["crisis"]["resources"], "crisis lines in the same response"
            help_ids.append(response.json()["help_request_id"])
            slowest = max(slowest, took)
        assert slowest < MAX_SECONDS_DURING_OUTAGE, f"a request waited {slowest:.2f}s on the broker"

        # Everything is stored, and the red alerts exist already: no broker involved.
        assert DiaryEntry.objects.filter(patient=world.patient_a).count() == len(diary_keys)
        videos = list(VideoSubmission.objects.filter(patient=world.patient_a))
        assert len(videos) == len(video_keys)
        assert all(v.status == "queued" and v.enqueued_at is None for v in videos)
        assert HelpRequest.objects.count() == 3
        red = Alert.objects.filter(tier="red")
        assert set(red.values_list("patient_id", flat=True)) == {
            world.patient_a.pk,
            world.patient_b.pk,
        }
        pending = OutboxMessage.objects.filter(state=OutboxState.PENDING)
        assert pending.exists(), "the red alerts queued no notification"
        keys = list(OutboxMessage.objects.values_list("idempotency_key", flat=True))
        assert len(keys) == len(set(keys))

        # The broker returns. Beat's next ticks publish the reaper and relay; a worker runs them.
        redis.start()
        env = child_env(
            settings,
            CELERY_BROKER_URL=redis.url,
            EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
        )
        worker = start_worker(env=env, log_path=log, pool="solo")
        try:
            # The reaper sends jobs that were never sent once they are a minute old.
            VideoSubmission.objects.filter(patient=world.patient_a).update(
                created_at=videos[0].created_at.replace(year=videos[0].created_at.year - 1)
            )
            from risk.tasks import outbox_relay
            from screening.tasks import media_jobs_reap

            for _ in range(2):  # two ticks: the second must change nothing
                media_jobs_reap.apply_async()
                outbox_relay.apply_async()

            def finished() -> bool:
                statuses = set(
                    VideoSubmission.objects.filter(patient=world.patient_a).values_list(
                        "status", flat=True
                    )
                )
                unsent = OutboxMessage.objects.filter(
                    state__in=[OutboxState.PENDING, OutboxState.SENDING]
                ).exists()
                return statuses <= {"done"} and not unsent

            wait_for(finished, timeout=60, interval=0.25, what="the backlog to drain")
            time.sleep(1.0)  # let the second ticks finish too
        finally:
            stop_worker(worker)

    output = log.read_text(errors="replace")
    sent = OutboxMessage.objects.filter(state=OutboxState.SENT)
    assert sent.count() == OutboxMessage.objects.count(), list(
        OutboxMessage.objects.values_list("state", "last_error")
    )
    # Exactly one e-mail per idempotency key, found in what the worker's mail backend wrote.
    message_ids = collections.Counter(re.findall(r"^Message-ID: <([^>]+)>", output, re.M))
    assert len(message_ids) == sent.count(), output[-3000:]
    assert set(message_ids.values()) == {1}, message_ids
    for text in (DIARY_TEXT.format(n=0)[:30], "Alice Example", "Bob Example"):
        assert text not in output, "patient text in the worker's output"
    assert VideoSubmission.objects.filter(status="done", attempts=1).count() == len(video_keys)
    FIGURES.update(
        diary=len(diary_keys),
        videos=len(video_keys),
        help=len(help_ids),
        notifications=sent.count(),
        slowest_request_s=round(slowest, 3),
    )
    record_figures("broker_outage", FIGURES)
