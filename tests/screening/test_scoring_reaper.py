"""The scoring reaper: work lost to a broker outage is sent again, once, and never scored twice.

The broker is simulated at the publish call (``apply_async``): "down" raises kombu's
OperationalError as a real publish does; "up" records the message and runs the real task
in-process. The text scorer is the small fake of test_scoring.py (the reaper does not care which
scorer runs).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
import zoneinfo
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from freezegun import freeze_time
from kombu.exceptions import OperationalError

from privacy.audit import Actor
from privacy.choices import ConsentScope
from privacy.consent import consent_change
from risk.models import AlertEvidence
from screening import tasks
from screening.choices import VideoStatus
from screening.models import (
    DailyMoodScore,
    DiaryEntry,
    MediaAnalysis,
    TextAnalysis,
    VideoSubmission,
)
from screening.services import scoring
from screening.services.questionnaires import questionnaire_submit
from tests.screening.test_scoring import CRISIS, FakeScorer

TASKS = ("text_scoring_batch", "daily_mood_recompute")


class Broker:
    """``apply_async`` of the scoring tasks: down (raises) or up (records, runs the task)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.up = True
        self.run = True
        self.sent: list[tuple[str, list[str], str]] = []
        self.refused = 0
        for name in TASKS:
            task = getattr(tasks, name)
            monkeypatch.setattr(task, "apply_async", self._publisher(name, task))

    def _publisher(self, name: str, task: Any) -> Any:
        def apply_async(*, args: list[str], queue: str) -> None:
            if not self.up:
                self.refused += 1
                raise OperationalError("[Errno 111] Connection refused")
            self.sent.append((name, list(args), queue))
            if self.run:
                task.apply(args=args).get()

        return apply_async


@pytest.fixture
def scorer(monkeypatch: pytest.MonkeyPatch) -> FakeScorer:
    fake = FakeScorer()
    monkeypatch.setattr(scoring, "text_scorer", lambda: fake)
    return fake


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    cache.clear()  # the "sent recently" marks of other tests
    return Broker(monkeypatch)


def later(minutes: float = 2) -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=minutes)


def post_diary(client: Any, capture: Any, text: str = CRISIS, **extra: Any) -> str:
    body = {
        "idempotency_key": str(uuid.uuid4()),
        "text": text,
        "client_timestamp": timezone.now().isoformat(),
        **extra,
    }
    with capture(execute=True):
        response = client.post("/api/v1/diary-entries", body, format="json")
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def crisis_evidence(patient: Any) -> int:
    return AlertEvidence.objects.filter(patient=patient, event_kind="crisis_language").count()


def test_diary_is_stored_with_the_broker_down_and_scored_once_when_it_returns(
    world: Any,
    client_a: Any,
    scorer: FakeScorer,
    broker: Broker,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker.up = False
    with caplog.at_level(logging.WARNING):
        entry_id = post_diary(client_a, django_capture_on_commit_callbacks, self_rated_mood=2)
    assert broker.refused == 1  # the after-commit publish was tried, failed, and was swallowed
    assert DiaryEntry.objects.filter(pk=entry_id).exists()
    assert not TextAnalysis.objects.exists() and scorer.calls == 0

    # still down: the reaper logs (ids only) and leaves it for the next tick
    with caplog.at_level(logging.WARNING):
        counts = scoring.scoring_jobs_reap(now=later())
    assert counts["failed"] == 1 and counts["text"] == 0
    assert entry_id in caplog.text
    assert "better off" not in caplog.text and "awful" not in caplog.text
    assert not TextAnalysis.objects.exists()

    # the broker is back: one run sends exactly the missing work (the text analysis also
    # recomputes the day's mood, so no separate mood job is sent for that day)
    broker.up = True
    counts = scoring.scoring_jobs_reap(now=later())
    assert broker.sent == [("text_scoring_batch", ["diary", entry_id], "gpu")]
    assert counts == {"text": 1, "transcript": 0, "mood": 0, "skipped": 0, "failed": 0}
    analysis = TextAnalysis.objects.get()
    assert str(analysis.diary_entry_id) == entry_id
    assert analysis.crisis_category == "passive_ideation"
    assert crisis_evidence(world.patient_a) == 1
    mood = DailyMoodScore.objects.get(patient=world.patient_a)
    assert mood.score is not None and set(mood.inputs) == {"diary_text", "self_rated"}

    # running it again (and again, later) sends nothing and scores nothing twice
    for minutes in (3, 30):
        counts = scoring.scoring_jobs_reap(now=later(minutes))
        assert counts["text"] == counts["transcript"] == counts["mood"] == 0
    assert len(broker.sent) == 1 and scorer.calls == 1
    assert TextAnalysis.objects.count() == 1
    assert crisis_evidence(world.patient_a) == 1


def test_the_task_runs_the_reaper(world: Any, scorer: FakeScorer, broker: Broker) -> None:
    broker.up = False
    entry = DiaryEntry.objects.create(
        patient=world.patient_a,
        idempotency_key=uuid.uuid4(),
        text="a quiet day",
        client_timestamp=timezone.now(),
        timezone=world.patient_a.timezone,
        local_date=timezone.localdate(),
    )
    broker.up = True
    # five minutes on (an entry aged by hand would predate the fixture's consent grant)
    with freeze_time(later(5)):
        counts = tasks.scoring_jobs_reap.apply().get()
    assert counts["text"] == 1
    assert TextAnalysis.objects.filter(diary_entry=entry).exists()


def test_young_old_unconsented_and_erased_work_is_left_alone(
    world: Any,
    client_a: Any,
    client_b: Any,
    scorer: FakeScorer,
    broker: Broker,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    settings.VIGIL_SCORING_REAP_DAYS = 7
    broker.up = False
    fresh = post_diary(client_a, django_capture_on_commit_callbacks, text="a quiet day")
    ancient = post_diary(client_a, django_capture_on_commit_callbacks, text="a quiet day")
    DiaryEntry.objects.filter(pk=ancient).update(created_at=timezone.now() - dt.timedelta(days=9))
    no_consent = post_diary(client_b, django_capture_on_commit_callbacks, text="a quiet day")
    consent_change(
        actor=Actor(user_id=world.patient_b.user_id, role="patient"),
        patient=world.patient_b,
        scope=ConsentScope.TEXT_ANALYSIS,
        granted=False,
    )
    broker.up = True
    # under a minute old: presumably still being published or queued
    counts = scoring.scoring_jobs_reap(now=timezone.now() + dt.timedelta(seconds=30))
    assert broker.sent == [] and counts["text"] == 0
    # two minutes on: only the fresh, consented entry is sent (the 9-day-old one is out of the
    # window, patient B withdrew text consent)
    scoring.scoring_jobs_reap(now=later())
    assert broker.sent == [("text_scoring_batch", ["diary", fresh], "gpu")]
    assert not TextAnalysis.objects.filter(diary_entry_id__in=[ancient, no_consent]).exists()


def test_work_waiting_in_a_busy_queue_is_not_sent_again(
    world: Any,
    client_a: Any,
    scorer: FakeScorer,
    broker: Broker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    broker.run = False  # published fine, but no worker has picked it up yet
    entry_id = post_diary(client_a, django_capture_on_commit_callbacks, text="a quiet day")
    assert broker.sent == [("text_scoring_batch", ["diary", entry_id], "gpu")]
    counts = scoring.scoring_jobs_reap(now=later())
    assert counts["skipped"] == 1 and counts["text"] == 0
    assert len(broker.sent) == 1
    # once the "sent" mark expires (the cooldown), it is sent again: a lost message is not lost
    cache.clear()
    counts = scoring.scoring_jobs_reap(now=later())
    assert counts["text"] == 1 and len(broker.sent) == 2


def test_a_lost_mood_recompute_is_sent_again(
    world: Any, scorer: FakeScorer, broker: Broker, django_capture_on_commit_callbacks: Any
) -> None:
    broker.up = False
    with django_capture_on_commit_callbacks(execute=True):
        response, _ = questionnaire_submit(
            actor=Actor(user_id=world.patient_a.user_id, role="patient"),
            patient=world.patient_a,
            idempotency_key=uuid.uuid4(),
            instrument="phq9",
            answers=[3, 3, 3, 2, 2, 2, 2, 1, 0],
            client_timestamp=timezone.now(),
        )
    assert not DailyMoodScore.objects.exists()
    broker.up = True
    counts = scoring.scoring_jobs_reap(now=later())
    day = response.local_date.isoformat()
    assert broker.sent == [("daily_mood_recompute", [str(world.patient_a.pk), day], "default")]
    assert counts["mood"] == 1
    mood = DailyMoodScore.objects.get()
    assert mood.score is not None and "phq9" in mood.inputs
    assert scoring.scoring_jobs_reap(now=later(5))["mood"] == 0
    assert len(broker.sent) == 1


def test_a_mood_older_than_its_inputs_is_recomputed(
    world: Any, scorer: FakeScorer, broker: Broker
) -> None:
    entry = DiaryEntry.objects.create(
        patient=world.patient_a,
        idempotency_key=uuid.uuid4(),
        text="a great day",
        client_timestamp=timezone.now(),
        timezone=world.patient_a.timezone,
        local_date=timezone.localdate(),
        self_rated_mood=8,
    )
    scoring.text_analysis_run(entry_id=entry.pk)
    mood = DailyMoodScore.objects.get()
    # the mood predates a later input of the same day (its recompute was lost)
    DailyMoodScore.objects.filter(pk=mood.pk).update(
        updated_at=timezone.now() - dt.timedelta(minutes=10)
    )
    counts = scoring.scoring_jobs_reap(now=later())
    assert counts["mood"] == 1 and counts["text"] == 0
    assert broker.sent == [
        ("daily_mood_recompute", [str(world.patient_a.pk), entry.local_date.isoformat()], "default")
    ]
    assert DailyMoodScore.objects.get().updated_at > mood.updated_at


def _done_video_with_transcript(patient: Any) -> VideoSubmission:
    now = timezone.now()
    video = VideoSubmission.objects.create(
        patient=patient,
        idempotency_key=uuid.uuid4(),
        client_timestamp=now,
        timezone=patient.timezone,
        local_date=timezone.localdate(),
        storage_name=f"{patient.pk}/{uuid.uuid4()}",
        size_bytes=1234,
        duration_seconds=3.0,
        container="mp4",
        video_codec="h264",
        width=320,
        height=240,
        status=VideoStatus.DONE,
        finished_at=now - dt.timedelta(minutes=3),
    )
    MediaAnalysis.objects.create(
        patient=patient,
        video=video,
        local_date=video.local_date,
        transcript="Honestly everyone would be better off without me.",
    )
    return video


def test_a_lost_transcript_analysis_is_sent_again(
    world: Any, scorer: FakeScorer, broker: Broker
) -> None:
    video = _done_video_with_transcript(world.patient_a)
    counts = scoring.scoring_jobs_reap(now=later())
    assert counts["transcript"] == 1
    assert broker.sent[0] == ("text_scoring_batch", ["transcript", str(video.pk)], "gpu")
    analysis = TextAnalysis.objects.get(video=video)
    assert analysis.crisis_category == "passive_ideation"
    assert scoring.scoring_jobs_reap(now=later(5))["transcript"] == 0
    assert TextAnalysis.objects.filter(video=video).count() == 1


def test_the_limit_bounds_a_run(world: Any, scorer: FakeScorer, broker: Broker) -> None:
    broker.run = False
    for _ in range(5):
        DiaryEntry.objects.create(
            patient=world.patient_a,
            idempotency_key=uuid.uuid4(),
            text="a quiet day",
            client_timestamp=timezone.now(),
            timezone=world.patient_a.timezone,
            local_date=timezone.localdate(),
        )
    counts = scoring.scoring_jobs_reap(now=later(), limit=2)
    assert counts["text"] == 2 and len(broker.sent) == 2
    counts = scoring.scoring_jobs_reap(now=later(), limit=10)
    assert counts["text"] == 3 and counts["skipped"] == 2  # the first two are marked as sent


def test_beat_runs_the_reaper_every_minute() -> None:
    from config.celery import app

    entry = next(
        e
        for e in app.conf.beat_schedule.values()
        if e["task"] == "screening.tasks.scoring_jobs_reap"
    )
    assert entry["schedule"] == 60.0
    assert entry["options"]["expires"] == 55
    assert tasks.scoring_jobs_reap.name in app.tasks
    route = app.amqp.router.route({}, tasks.scoring_jobs_reap.name)
    assert route["queue"].name == "default"


def test_a_lost_batch_is_sent_again_on_the_next_tick_once_then_after_the_cooldown(
    world: Any,
    client_a: Any,
    scorer: FakeScorer,
    broker: Broker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The batch holding the entry lost its process: the reaper's next tick sends it again
    (not after the 10-minute cooldown). Lost a second time, it waits for the cooldown: a text
    that kills its process is not sent every minute."""
    from screening import batching

    broker.run = False
    entry_id = post_diary(client_a, django_capture_on_commit_callbacks, text="a quiet day")
    lost = [
        batching.BatchRequest(
            id=str(uuid.uuid4()),
            name="screening.tasks.text_scoring_batch",
            args=["diary", entry_id],
            kwargs={},
            delivery_info={},
            hostname="h",
        )
    ]
    assert scoring.scoring_jobs_reap(now=later())["text"] == 0  # sent a moment ago
    batching.lost_handle("screening.tasks.text_scoring_batch", lost)
    assert scoring.scoring_jobs_reap(now=later())["text"] == 1  # the next tick, not the cooldown
    batching.lost_handle("screening.tasks.text_scoring_batch", lost)  # lost again
    assert scoring.scoring_jobs_reap(now=later())["text"] == 0
    assert len(broker.sent) == 2


def test_a_transcript_is_not_sent_again_once_voice_consent_is_withdrawn(
    world: Any, scorer: FakeScorer, broker: Broker
) -> None:
    video = _done_video_with_transcript(world.patient_a)
    consent_change(  # text consent still held; the transcript data is kept (no deletion)
        actor=Actor(user_id=world.patient_a.user_id, role="patient"),
        patient=world.patient_a,
        scope=ConsentScope.VOICE_ANALYSIS,
        granted=False,
    )
    counts = scoring.scoring_jobs_reap(now=later())
    assert counts["transcript"] == 0
    assert ("text_scoring_batch", ["transcript", str(video.pk)], "gpu") not in broker.sent
    assert not TextAnalysis.objects.filter(video=video).exists()


def test_a_lost_recompute_of_the_days_after_a_backdated_phq9_is_sent_again(
    world: Any, scorer: FakeScorer, broker: Broker, django_capture_on_commit_callbacks: Any
) -> None:
    patient = world.patient_a
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(patient.timezone))
    scored = {}
    for days_ago in (4, 2, 0):  # days with a mood before the PHQ-9 arrived
        day = today - dt.timedelta(days=days_ago)
        scored[days_ago] = scoring.daily_mood_recompute(patient=patient, local_date=day)
    DailyMoodScore.objects.update(updated_at=timezone.now() - dt.timedelta(minutes=10))
    broker.up = False
    with django_capture_on_commit_callbacks(execute=True):
        response, _ = questionnaire_submit(  # answered offline three days ago
            actor=Actor(user_id=patient.user_id, role="patient"),
            patient=patient,
            idempotency_key=uuid.uuid4(),
            instrument="phq9",
            answers=[3] * 9,
            client_timestamp=timezone.now() - dt.timedelta(days=3),
        )
    assert broker.refused >= 1
    broker.up = True
    counts = scoring.scoring_jobs_reap(now=later())
    sent = sorted(args[1] for name, args, _ in broker.sent if name == "daily_mood_recompute")
    # its own day (no mood yet) and the two later days that have one; not the day before it
    assert sent == sorted(
        [response.local_date.isoformat(), scored[2].local_date.isoformat(), today.isoformat()]
    )
    assert counts["mood"] == 3
    assert "phq9" in DailyMoodScore.objects.get(pk=scored[2].pk).inputs
    assert scoring.scoring_jobs_reap(now=later(5))["mood"] == 0  # done: nothing stale is left


def _consent(patient: Any, scope: str, *, granted: bool, delete_derived: bool = False) -> None:
    consent_change(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        scope=scope,
        granted=granted,
        document_version="1" if granted else None,
        delete_derived=delete_derived,
    )


def test_entries_that_may_not_be_scored_do_not_crowd_out_a_lost_crisis_entry(
    world: Any,
    client_a: Any,
    client_b: Any,
    scorer: FakeScorer,
    broker: Broker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Patient B, without text consent, has as many unscored entries in the window as the
    reaper's limit; they are older than A's crisis entry, lost to the broker. A's entry is sent
    (consent is filtered in the query, before the limit, not after it)."""
    limit = 5
    _consent(world.patient_b, ConsentScope.TEXT_ANALYSIS, granted=False)
    broker.up = False
    for _ in range(limit):
        post_diary(
            client_b, django_capture_on_commit_callbacks, text="a quiet day", self_rated_mood=5
        )
    crisis = post_diary(client_a, django_capture_on_commit_callbacks)
    broker.up = True
    counts = scoring.scoring_jobs_reap(now=later(), limit=limit)
    assert counts["text"] == 1
    assert broker.sent[0] == ("text_scoring_batch", ["diary", crisis], "gpu")
    assert TextAnalysis.objects.get().diary_entry_id == uuid.UUID(crisis)
    assert crisis_evidence(world.patient_a) == 1


def test_transcripts_that_may_not_be_scored_do_not_crowd_out_a_lost_one(
    world: Any, scorer: FakeScorer, broker: Broker
) -> None:
    limit = 3
    _consent(world.patient_b, ConsentScope.VOICE_ANALYSIS, granted=False)
    for _ in range(limit):  # finished before A's video: first in the reaper's order
        _done_video_with_transcript(world.patient_b)
    video = _done_video_with_transcript(world.patient_a)
    counts = scoring.scoring_jobs_reap(now=later(), limit=limit)
    assert counts["transcript"] == 1
    assert broker.sent[0] == ("text_scoring_batch", ["transcript", str(video.pk)], "gpu")
    assert TextAnalysis.objects.get().video_id == video.pk


def test_a_regrant_does_not_score_what_was_sent_before_it(
    world: Any,
    client_a: Any,
    scorer: FakeScorer,
    broker: Broker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Consent is prospective: after withdrawal with deletion and a new grant, neither the entry
    whose analysis was deleted nor the one written while withdrawn is scored (by the reaper or
    by a job delivered late); an entry written after the new grant is."""
    patient = world.patient_a
    first = post_diary(client_a, django_capture_on_commit_callbacks)  # scored at once
    assert TextAnalysis.objects.filter(diary_entry_id=first).exists()
    _consent(patient, ConsentScope.TEXT_ANALYSIS, granted=False, delete_derived=True)
    assert not TextAnalysis.objects.exists()
    second = post_diary(client_a, django_capture_on_commit_callbacks, self_rated_mood=2)
    _consent(patient, ConsentScope.TEXT_ANALYSIS, granted=True)
    evidence, calls = crisis_evidence(patient), scorer.calls

    cache.clear()  # past the cooldown
    sent_before = len(broker.sent)
    counts = scoring.scoring_jobs_reap(now=later(30))
    assert counts["text"] == 0
    assert all(name != "text_scoring_batch" for name, _, _ in broker.sent[sent_before:])
    assert scoring.text_analysis_run(entry_id=uuid.UUID(second)) is None
    jobs = [("diary", uuid.UUID(first)), ("diary", uuid.UUID(second))]
    assert scoring.text_analyses_run_batch(jobs=jobs) == {
        "jobs": 2,
        "scored": 0,
        "skipped": 2,
        "failed": 0,
    }
    assert not TextAnalysis.objects.exists()
    assert scorer.calls == calls and crisis_evidence(patient) == evidence
    for mood in DailyMoodScore.objects.filter(patient=patient):
        assert "diary_text" not in mood.inputs

    broker.up = False
    third = post_diary(client_a, django_capture_on_commit_callbacks, text="a quiet day")
    broker.up = True
    sent_before = len(broker.sent)
    counts = scoring.scoring_jobs_reap(now=later(30))
    assert counts["text"] == 1
    assert broker.sent[sent_before] == ("text_scoring_batch", ["diary", third], "gpu")
    assert [str(a.diary_entry_id) for a in TextAnalysis.objects.all()] == [third]


def test_accepting_a_newer_document_while_granted_keeps_earlier_entries_in_scope(
    world: Any,
    client_a: Any,
    scorer: FakeScorer,
    broker: Broker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A second grant (a newer consent document accepted while granted) continues the consent
    period: a crisis entry lost to a broker outage a moment before it is still re-sent and
    scored. Only a withdrawal ends a period."""
    from privacy.consent import consent_document_publish

    patient = world.patient_a
    broker.up = False
    lost = post_diary(client_a, django_capture_on_commit_callbacks)
    broker.up = True
    consent_document_publish(scope=ConsentScope.TEXT_ANALYSIS, version="2", text="Version 2.")
    consent_change(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        scope=ConsentScope.TEXT_ANALYSIS,
        granted=True,
        document_version="2",
    )
    cache.clear()
    sent_before = len(broker.sent)
    counts = scoring.scoring_jobs_reap(now=later(30))
    assert counts["text"] == 1
    assert broker.sent[sent_before] == ("text_scoring_batch", ["diary", lost], "gpu")
    scoring.text_analyses_run_batch(jobs=[("diary", uuid.UUID(lost))])
    assert TextAnalysis.objects.filter(diary_entry_id=lost).exists()
    assert crisis_evidence(patient) == 1


def test_a_regrant_does_not_score_a_transcript_of_a_video_sent_before_it(
    world: Any, scorer: FakeScorer, broker: Broker
) -> None:
    patient = world.patient_a
    before = _done_video_with_transcript(patient)
    _consent(patient, ConsentScope.VOICE_ANALYSIS, granted=False)  # transcript kept
    _consent(patient, ConsentScope.VOICE_ANALYSIS, granted=True)
    counts = scoring.scoring_jobs_reap(now=later())
    assert counts["transcript"] == 0
    assert scoring.transcript_analysis_run(video_id=before.pk) is None
    after = _done_video_with_transcript(patient)
    counts = scoring.scoring_jobs_reap(now=later())
    assert counts["transcript"] == 1
    assert ("text_scoring_batch", ["transcript", str(after.pk)], "gpu") in broker.sent
    assert list(TextAnalysis.objects.values_list("video_id", flat=True)) == [after.pk]


def test_a_lost_mood_of_a_backdated_self_rating_is_recomputed(
    world: Any,
    client_a: Any,
    scorer: FakeScorer,
    broker: Broker,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    """A self-rating written offline 20 days ago (within VIGIL_CLIENT_BACKDATE_DAYS) arrives
    during an outage: its day lies outside the reaper's window, its arrival does not."""
    settings.VIGIL_SCORING_REAP_DAYS = 7
    patient = world.patient_a
    _consent(patient, ConsentScope.TEXT_ANALYSIS, granted=False)  # the mood is the only job
    broker.up = False
    entry_id = post_diary(
        client_a,
        django_capture_on_commit_callbacks,
        text="a quiet day",
        self_rated_mood=2,
        client_timestamp=(timezone.now() - dt.timedelta(days=20)).isoformat(),
    )
    assert broker.refused == 1
    day = DiaryEntry.objects.get(pk=entry_id).local_date
    assert day < timezone.localdate() - dt.timedelta(days=10)
    broker.up = True
    counts = scoring.scoring_jobs_reap(now=later())
    assert broker.sent == [("daily_mood_recompute", [str(patient.pk), day.isoformat()], "default")]
    assert counts["mood"] == 1
    mood = DailyMoodScore.objects.get(patient=patient, local_date=day)
    assert mood.score is not None and set(mood.inputs) == {"self_rated"}
    assert scoring.scoring_jobs_reap(now=later(5))["mood"] == 0
