"""The gpu queue's batches: the batch service, the batch task, its ack/reject policy, and a real
worker that gathers diary entries into batches (see docs/batching.md).

The services run with the small fake scorer of test_scoring.py; the real worker runs the same
fake (installed in the worker process by ``WORKER_ENTRY``), which also writes how many texts each
of its calls scored, so the test can count the scorer calls of a real worker.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import cache
from django.db import OperationalError, transaction
from django.utils import timezone

from privacy.choices import ConsentScope
from privacy.consent import consent_change
from risk.models import Alert, AlertEvidence
from screening import batching, tasks
from screening.models import DiaryEntry, Patient, TextAnalysis
from screening.services import scoring
from tests.screening.test_scoring import CRISIS, FakeScore, FakeScorer, patient_actor, write


class SpyScorer(FakeScorer):
    """The fake scorer, recording how many texts each call scored."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def score(self, texts: list[str]) -> list[FakeScore]:
        self.sizes.append(len(texts))
        return super().score(texts)


@pytest.fixture
def scorer(monkeypatch: pytest.MonkeyPatch) -> SpyScorer:
    spy = SpyScorer()
    monkeypatch.setattr(scoring, "text_scorer", lambda: spy)
    return spy


def diary_jobs(entries: list[DiaryEntry]) -> list[tuple[str, uuid.UUID]]:
    return [("diary", entry.pk) for entry in entries]


def withdraw_text_consent(patient: Any) -> None:
    consent_change(
        actor=patient_actor(patient),
        patient=patient,
        scope=ConsentScope.TEXT_ANALYSIS,
        granted=False,
    )


# --- the batch service ---------------------------------------------------------------------------
def test_a_batch_is_scored_in_one_scorer_call(world: Any, scorer: SpyScorer) -> None:
    from tests.screening.test_scoring_reaper import _done_video_with_transcript

    entries = [write(world, f"day {n}: awful") for n in range(5)] + [write(world, CRISIS)]
    video = _done_video_with_transcript(world.patient_b)
    jobs = [*diary_jobs(entries), ("transcript", video.pk)]

    counts = scoring.text_analyses_run_batch(jobs=jobs)

    assert counts == {"jobs": 7, "scored": 7, "skipped": 0, "failed": 0}
    assert scorer.sizes == [7]
    assert TextAnalysis.objects.filter(diary_entry__in=entries).count() == 6
    transcript = TextAnalysis.objects.get(video=video)
    assert transcript.source == "transcript" and transcript.crisis_category == "passive_ideation"
    crisis = TextAnalysis.objects.get(diary_entry=entries[-1])
    assert crisis.crisis_category == "passive_ideation" and crisis.at_risk
    assert crisis.evidence[0]["excerpt"] == "better off without me"
    # every scored text reached risk like a single run: both crisis texts raised an alert
    assert Alert.objects.filter(patient=world.patient_a).exists()
    assert Alert.objects.filter(patient=world.patient_b).exists()


def test_the_batch_skips_what_a_single_run_would_skip(world: Any, scorer: SpyScorer) -> None:
    kept = write(world, "a great day")
    no_consent = write(world, "awful", patient=world.patient_b)
    withdraw_text_consent(world.patient_b)
    jobs = [
        ("diary", kept.pk),
        ("diary", no_consent.pk),
        ("diary", uuid.uuid4()),  # deleted (or never existed)
        ("transcript", uuid.uuid4()),  # no media analysis
    ]

    counts = scoring.text_analyses_run_batch(jobs=jobs)

    assert counts == {"jobs": 4, "scored": 1, "skipped": 3, "failed": 0}
    assert scorer.sizes == [1]  # only the allowed text went to the scorer
    assert list(TextAnalysis.objects.values_list("diary_entry_id", flat=True)) == [kept.pk]


def test_an_erased_patient_is_skipped(world: Any, scorer: SpyScorer) -> None:
    entry = write(world, "awful", patient=world.patient_b)
    Patient.objects.filter(pk=world.patient_b.pk).update(erased_at=timezone.now())
    counts = scoring.text_analyses_run_batch(jobs=diary_jobs([entry]))
    assert counts == {"jobs": 1, "scored": 0, "skipped": 1, "failed": 0}
    assert scorer.sizes == [] and not TextAnalysis.objects.exists()


def test_withdrawal_or_erasure_while_the_batch_is_scored_wins(
    world: Any, scorer: SpyScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = write(world, "awful")
    b = write(world, "awful", patient=world.patient_b)
    real = scorer.score

    def meanwhile(texts: list[str]) -> list[FakeScore]:
        withdraw_text_consent(world.patient_a)
        Patient.objects.filter(pk=world.patient_b.pk).update(erased_at=timezone.now())
        return real(texts)

    monkeypatch.setattr(scorer, "score", meanwhile)
    counts = scoring.text_analyses_run_batch(jobs=diary_jobs([a, b]))
    assert counts == {"jobs": 2, "scored": 0, "skipped": 2, "failed": 0}
    assert not TextAnalysis.objects.exists()


def test_one_failing_item_loses_only_itself_and_is_left_to_the_reaper(
    world: Any,
    scorer: SpyScorer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entries = [write(world, f"awful {n}") for n in range(3)] + [write(world, CRISIS)]
    bad = entries[1]
    real_signal = scoring.signal_received

    def signal_fails_for_bad(*, patient: Any, event: Any) -> Any:
        if getattr(event, "source_ref", None) == str(bad.pk):
            raise RuntimeError("database write failed")
        return real_signal(patient=patient, event=event)

    monkeypatch.setattr(scoring, "signal_received", signal_fails_for_bad)
    real_assessed = scoring.text_risk_assessed

    def assessed_fails_for_bad(**kw: Any) -> Any:
        if kw.get("source_ref") == str(bad.pk):
            raise RuntimeError("database write failed")
        return real_assessed(**kw)

    monkeypatch.setattr(scoring, "text_risk_assessed", assessed_fails_for_bad)
    with caplog.at_level(logging.WARNING, logger="vigil.scoring"):
        counts = scoring.text_analyses_run_batch(jobs=diary_jobs(entries))

    assert counts == {"jobs": 4, "scored": 3, "skipped": 0, "failed": 1}
    assert scorer.sizes == [4]
    stored = set(TextAnalysis.objects.values_list("diary_entry_id", flat=True))
    assert stored == {e.pk for e in entries} - {bad.pk}  # its own transaction rolled back
    assert str(bad.pk) in caplog.text and "RuntimeError" in caplog.text
    assert "awful" not in caplog.text and "better off" not in caplog.text

    # the reaper finds it (no analysis) and sends it again, once the entry has settled
    monkeypatch.setattr(scoring, "signal_received", real_signal)
    monkeypatch.setattr(scoring, "text_risk_assessed", real_assessed)
    # (five minutes on, rather than an entry aged by hand: one aged to before the consent grant
    # of the fixture would lie outside the current consent period, and rightly not be sent)
    cache.clear()
    resent: list[uuid.UUID] = []
    monkeypatch.setattr(
        scoring, "text_analysis_enqueue", lambda *, entry_id: resent.append(entry_id)
    )
    monkeypatch.setattr(scoring, "daily_mood_enqueue", lambda **kw: None)
    scoring.scoring_jobs_reap(now=timezone.now() + dt.timedelta(minutes=5))
    assert resent == [bad.pk]


def test_a_text_the_scorer_cannot_handle_fails_alone(
    world: Any,
    scorer: SpyScorer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entries = [write(world, f"awful {n}") for n in range(2)] + [write(world, "poison awful")]
    real = scorer.score

    def chokes_on_poison(texts: list[str]) -> list[FakeScore]:
        if any("poison" in t for t in texts):
            raise ValueError("the scorer choked on poison awful")  # messages may quote input
        return real(texts)

    monkeypatch.setattr(scorer, "score", chokes_on_poison)
    with caplog.at_level(logging.WARNING, logger="vigil.scoring"):
        counts = scoring.text_analyses_run_batch(jobs=diary_jobs(entries))

    assert counts == {"jobs": 3, "scored": 2, "skipped": 0, "failed": 1}
    stored = set(TextAnalysis.objects.values_list("diary_entry_id", flat=True))
    assert stored == {entries[0].pk, entries[1].pk}
    assert str(entries[2].pk) in caplog.text and "ValueError" in caplog.text
    assert "poison" not in caplog.text and "awful" not in caplog.text


def test_a_batch_out_of_time_stops_at_once(
    world: Any, scorer: SpyScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery.exceptions import SoftTimeLimitExceeded

    entries = [write(world, f"awful {n}") for n in range(3)]
    calls: list[int] = []

    def out_of_time(texts: list[str]) -> list[FakeScore]:
        calls.append(len(texts))
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(scorer, "score", out_of_time)
    with pytest.raises(SoftTimeLimitExceeded):
        scoring.text_analyses_run_batch(jobs=diary_jobs(entries))
    assert calls == [3]  # not scored again text by text
    assert not TextAnalysis.objects.exists()


def test_a_passing_database_error_is_retried_within_the_batch(
    world: Any, scorer: SpyScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's "database is locked" between two workers: the job is stored on a retry."""
    monkeypatch.setattr(scoring, "DB_RETRY_DELAYS", (0.0, 0.0, 0.0))
    entries = [write(world, "awful"), write(world, CRISIS)]
    real_signal = scoring.signal_received
    failures = {"left": 2}

    def locked_twice(*, patient: Any, event: Any) -> Any:
        if getattr(event, "source_ref", None) == str(entries[1].pk) and failures["left"]:
            failures["left"] -= 1
            raise OperationalError("database is locked")
        return real_signal(patient=patient, event=event)

    monkeypatch.setattr(scoring, "signal_received", locked_twice)
    counts = scoring.text_analyses_run_batch(jobs=diary_jobs(entries))
    assert counts == {"jobs": 2, "scored": 2, "skipped": 0, "failed": 0}
    assert failures["left"] == 0 and scorer.sizes == [2]
    assert TextAnalysis.objects.get(diary_entry=entries[1]).crisis_category == "passive_ideation"


def test_database_retries_are_bounded_per_batch(
    world: Any, scorer: SpyScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the database down, a batch gives up after its retry budget (the reaper takes over)."""
    monkeypatch.setattr(scoring, "DB_RETRY_DELAYS", (0.0, 0.0, 0.0))
    monkeypatch.setattr(scoring, "DB_RETRY_BUDGET", 4)
    entries = [write(world, f"awful {n}") for n in range(5)]
    calls = {"n": 0}

    def always_down(**kwargs: Any) -> Any:
        calls["n"] += 1
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(scoring, "text_analysis_record", always_down)
    counts = scoring.text_analyses_run_batch(jobs=diary_jobs(entries))
    assert counts == {"jobs": 5, "scored": 0, "skipped": 0, "failed": 5}
    assert calls["n"] == 5 + 4  # one try each, plus the batch's four retries
    assert not TextAnalysis.objects.exists()


def test_a_batch_run_twice_changes_nothing(world: Any, scorer: SpyScorer) -> None:
    entries = [write(world, CRISIS), write(world, "great")]
    scoring.text_analyses_run_batch(jobs=diary_jobs(entries))
    first = dict(TextAnalysis.objects.values_list("diary_entry_id", "pk"))
    evidence = AlertEvidence.objects.filter(event_kind="crisis_language").count()

    counts = scoring.text_analyses_run_batch(jobs=diary_jobs(entries))  # a redelivered batch

    assert counts["scored"] == 2
    assert dict(TextAnalysis.objects.values_list("diary_entry_id", "pk")) == first
    assert AlertEvidence.objects.filter(event_kind="crisis_language").count() == evidence == 1
    assert scorer.sizes == [2, 2]


def test_a_job_given_twice_in_one_batch_is_scored_once(world: Any, scorer: SpyScorer) -> None:
    entry = write(world, CRISIS)
    counts = scoring.text_analyses_run_batch(jobs=diary_jobs([entry, entry]))
    assert counts == {"jobs": 1, "scored": 1, "skipped": 0, "failed": 0}
    assert scorer.sizes == [1]


def test_an_empty_batch_does_not_call_the_scorer(db: Any, scorer: SpyScorer) -> None:
    assert scoring.text_analyses_run_batch(jobs=[])["jobs"] == 0
    assert scorer.sizes == []


def test_single_runs_share_the_batch_code(world: Any, scorer: SpyScorer) -> None:
    entry = write(world, CRISIS)
    assert scoring.text_analysis_run(entry_id=entry.pk) is not None
    withdraw_text_consent(world.patient_a)
    other = write(world, "awful")
    assert scoring.text_analysis_run(entry_id=other.pk) is None
    assert scorer.sizes == [1]


def test_the_scorer_is_loaded_by_one_thread_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's warm-up thread and the first batch load the scorer at the same moment."""
    from screening.ml.text import scorer as scorer_module

    inside, most = [0], [0]

    def slow_loader(**kwargs: Any) -> object:
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        inside[0] -= 1
        return object()

    monkeypatch.setattr(scorer_module, "TextScorer", slow_loader)
    scorer_module.get_text_scorer.cache_clear()
    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(scoring.text_scorer())) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert most[0] == 1
        assert len(got) == 4 and all(g is got[0] for g in got)  # loaded once, then shared
    finally:
        scorer_module.get_text_scorer.cache_clear()


# --- the task and the enqueue functions ----------------------------------------------------------
def test_enqueue_publishes_the_batch_task(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, list[str], str]] = []
    for name in ("text_scoring_batch", "text_analysis_run", "transcript_analysis_run"):
        task = getattr(tasks, name)
        monkeypatch.setattr(
            task,
            "apply_async",
            lambda *, args, queue, _n=name: sent.append((_n, list(args), queue)),
        )
    entry_id, video_id = uuid.uuid4(), uuid.uuid4()
    scoring.text_analysis_enqueue(entry_id=entry_id)
    scoring.transcript_analysis_enqueue(video_id=video_id)
    assert sent == [
        ("text_scoring_batch", ["diary", str(entry_id)], "gpu"),
        ("text_scoring_batch", ["transcript", str(video_id)], "gpu"),
    ]


def test_eager_call_runs_a_batch_of_one(world: Any, scorer: SpyScorer) -> None:
    entry = write(world, CRISIS)
    result = tasks.text_scoring_batch.apply(args=["diary", str(entry.pk)]).get()
    assert result == {"jobs": 1, "scored": 1, "skipped": 0, "failed": 0}
    assert TextAnalysis.objects.get().diary_entry_id == entry.pk
    # a malformed message is dropped, never scored
    bad = tasks.text_scoring_batch.apply(args=["photo", "not-an-id"]).get()
    assert bad["jobs"] == 0 and scorer.sizes == [1]


def test_old_single_tasks_are_still_registered_and_work(world: Any, scorer: SpyScorer) -> None:
    from config.celery import app

    for name in ("text_analysis_run", "transcript_analysis_run", "text_scoring_batch"):
        assert f"screening.tasks.{name}" in app.tasks
        assert app.conf.task_routes[f"screening.tasks.{name}"]["queue"] == "gpu"
    entry = write(world, "awful")
    tasks.text_analysis_run.apply(args=[str(entry.pk)]).get()  # a message queued before upgrade
    assert TextAnalysis.objects.get().diary_entry_id == entry.pk


def test_batch_size_and_wait_follow_the_settings(settings: Any) -> None:
    task = tasks.text_scoring_batch
    settings.VIGIL_GPU_BATCH_SIZE = 7
    settings.VIGIL_GPU_BATCH_WAIT_SECONDS = 1.5
    assert (task.flush_every, task.flush_interval) == (7, 1.5)
    settings.VIGIL_GPU_BATCH_SIZE = 0
    settings.VIGIL_GPU_BATCH_WAIT_SECONDS = 0.0
    assert (task.flush_every, task.flush_interval) == (1, 0.01)


def test_settings_defaults() -> None:
    from django.conf import settings

    if "VIGIL_GPU_BATCH_SIZE" not in os.environ:
        assert settings.VIGIL_GPU_BATCH_SIZE == 32
    if "VIGIL_GPU_BATCH_WAIT_SECONDS" not in os.environ:
        assert settings.VIGIL_GPU_BATCH_WAIT_SECONDS == 0.5


# --- the worker's side: time limits and acknowledgements (a stand-in pool) -----------------------
class FakeRequest:
    def __init__(self, task: Any, args: list[str]) -> None:
        self.task = task
        self.id = str(uuid.uuid4())
        self.name = task.name
        self._payload = (args, {}, {})
        self.delivery_info = {"routing_key": "gpu"}
        self.hostname = "test@host"
        self.outcome: str | None = None

    def acknowledge(self) -> None:
        self.outcome = "ack"

    def reject(self, requeue: bool = False) -> None:
        self.outcome = f"reject(requeue={requeue})"


class FakePool:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []

    def apply_async(self, target: Any, args: tuple[Any, ...], **options: Any) -> None:
        self.calls.append((target, args, options))


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> FakePool:
    fake = FakePool()
    monkeypatch.setattr(tasks.text_scoring_batch, "_pool", fake)
    return fake


def test_a_batch_runs_with_the_tasks_time_limits(pool: FakePool) -> None:
    task = tasks.text_scoring_batch
    requests = [FakeRequest(task, ["diary", str(uuid.uuid4())]) for _ in range(3)]
    task.flush(requests)
    [(target, args, options)] = pool.calls
    assert target is batching.batch_run
    assert options["timeout"] == task.time_limit == 600
    assert options["soft_timeout"] == task.soft_time_limit == 540
    sent = args[1]
    assert [r.args for r in sent] == [tuple(r._payload[0]) for r in requests]
    assert all(isinstance(r, batching.BatchRequest) for r in sent)


class FakeTimerEntry:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def test_a_flush_splits_what_waits_into_batches_and_an_idle_flush_stops_the_timer(
    pool: FakePool, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = tasks.text_scoring_batch
    settings.VIGIL_GPU_BATCH_SIZE = 2
    timer = FakeTimerEntry()
    monkeypatch.setattr(task, "_tref", timer)
    for _ in range(5):  # more than a batch waiting (the timer fired late)
        task._buffer.put(FakeRequest(task, ["diary", str(uuid.uuid4())]))
    task._do_flush()
    assert [len(args[1]) for _, args, _ in pool.calls] == [2, 2, 1]
    assert not timer.cancelled  # messages were waiting: the timer keeps running
    task._do_flush()  # nothing waiting any more
    assert timer.cancelled and task._tref is None
    assert len(pool.calls) == 3


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (lambda o: o["callback"](batching.BATCH_OK), "ack"),
        (lambda o: o["callback"](batching.BATCH_FAILED), "reject(requeue=False)"),
        # hard time limit or a lost pool process: billiard calls the error callback
        (
            lambda o: o["error_callback"](SimpleNamespace(exception=RuntimeError("lost"))),
            "reject(requeue=False)",
        ),
    ],
    ids=["returned", "raised", "lost"],
)
def test_messages_are_acked_or_rejected_never_left_waiting(
    pool: FakePool, report: Any, expected: str
) -> None:
    from django.core.cache import cache

    cache.clear()
    task = tasks.text_scoring_batch
    requests = [FakeRequest(task, ["diary", str(uuid.uuid4())]) for _ in range(2)]
    task.flush(requests)
    options = pool.calls[0][2]
    options["accept_callback"](123, time.monotonic())
    assert [r.outcome for r in requests] == [None, None]  # acks_late: nothing before the end
    report(options)
    assert [r.outcome for r in requests] == [expected, expected]
    # a rejected batch's jobs are remembered: next time each runs alone
    as_batch = [batching.BatchRequest.from_request(r) for r in requests]
    groups = [len(g) for g in batching.batches_isolating_lost(as_batch)]
    assert groups == ([2] if expected == "ack" else [1, 1])


def test_a_batch_that_raises_reports_failure_without_patient_text(
    world: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    entry = write(world, CRISIS)

    def broken_loader() -> Any:  # the model cannot be loaded: the whole batch fails
        raise ValueError(f"cannot load a scorer for {entry.text!r}")

    monkeypatch.setattr(scoring, "text_scorer", broken_loader)
    request = batching.BatchRequest(
        id="t1",
        name=tasks.text_scoring_batch.name,
        args=["diary", str(entry.pk)],
        kwargs={},
        delivery_info={},
        hostname="h",
    )
    with caplog.at_level(logging.ERROR, logger="vigil.batching"):
        outcome = batching.batch_run(tasks.text_scoring_batch, [request])
    assert outcome == batching.BATCH_FAILED
    assert "ValueError" in caplog.text and "better off" not in caplog.text
    assert not TextAnalysis.objects.exists()


# --- a real worker -------------------------------------------------------------------------------
# The worker process: the fake scorer (writing each call's size to VIGIL_TEST_SCORER_LOG, and
# killing its pool process on a text with CRASH-NOW), then Celery's own worker.
WORKER_ENTRY = """
import sys
import django
django.setup()
from tests.screening.test_batching import worker_scorer_install
worker_scorer_install()
from config.celery import app
app.worker_main(sys.argv[1:])
"""


def worker_scorer_install() -> None:
    log = Path(os.environ["VIGIL_TEST_SCORER_LOG"])

    class LoggingScorer(FakeScorer):
        def score(self, texts: list[str]) -> list[FakeScore]:
            if any("CRASH-NOW" in t for t in texts):
                os._exit(3)  # the pool process dies mid-batch
            with log.open("a") as handle:
                handle.write(f"{len(texts)}\n")
            return super().score(texts)

    scorer = LoggingScorer()
    scoring.text_scorer = lambda: scorer  # type: ignore[assignment]


BATCH = 4


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_gathers_entries_into_batches(
    world: Any, settings: Any, tmp_path: Path
) -> None:
    from tests.integration.test_worker import ROOT, stop, worker_env

    scorer_log = tmp_path / "scorer.log"
    worker_log = tmp_path / "worker.log"
    env = worker_env(settings)
    env.update(
        {
            "VIGIL_GPU_BATCH_SIZE": str(BATCH),
            "VIGIL_GPU_BATCH_WAIT_SECONDS": "0.5",
            "VIGIL_WORKER_WARMUP": "false",
            "VIGIL_TEST_SCORER_LOG": str(scorer_log),
        }
    )
    # queued before the worker starts: it finds 12 jobs waiting (as after a burst)
    entries = [write(world, f"entry {n}: awful") for n in range(12)]
    command = [
        sys.executable,
        "-c",
        WORKER_ENTRY,
        "worker",
        "-Q",
        "gpu",
        "-c",
        "1",
        "--prefetch-multiplier",
        str(BATCH),  # as in production: the window is one batch
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        "INFO",
    ]
    with worker_log.open("wb") as out:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def output() -> str:
        return worker_log.read_text(errors="replace")[-6000:]

    def wait_for(condition: Any, what: str, seconds: float = 45) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            assert worker.poll() is None, f"worker exited with {worker.returncode}:\n{output()}"
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; worker output:\n{output()}")

    def analysed(batch: list[DiaryEntry]) -> int:
        return TextAnalysis.objects.filter(diary_entry__in=batch).count()

    try:
        wait_for(lambda: analysed(entries) == 12, "12 analyses")
        sizes = [int(line) for line in scorer_log.read_text().split()]
        assert sum(sizes) == 12
        assert len(sizes) < 12 and max(sizes) > 1, sizes  # batches, not one call per entry
        assert len(sizes) <= 12 // BATCH + 2, sizes

        # A batch whose pool process dies is rejected (not requeued, not left unacknowledged:
        # with a one-batch window the worker would take nothing more), and the worker goes on.
        with transaction.atomic():  # published together, after the commit
            doomed = write(world, "CRASH-NOW")
            for n in range(BATCH - 1):
                write(world, f"doomed {n}")
        wait_for(lambda: "rejected without requeue" in output(), "the lost batch's rejection")
        with transaction.atomic():
            later = [write(world, f"later {n}: great") for n in range(BATCH)]
        wait_for(lambda: analysed(later) == BATCH, "the next batch after a lost one")
        # left to the scoring reaper (after its cooldown), never retried in a loop
        assert not TextAnalysis.objects.filter(diary_entry=doomed).exists()
    finally:
        stop(worker)
    assert "text scoring batch: jobs=" in output()
    assert "awful" not in output() and "CRASH-NOW" not in output()


# --- jobs of a lost batch run alone next time ---------------------------------------------------
def _request(*args: Any) -> batching.BatchRequest:
    return batching.BatchRequest(
        id=str(uuid.uuid4()),
        name="screening.tasks.text_scoring_batch",
        args=list(args),
        kwargs={},
        delivery_info={},
        hostname="h",
    )


def test_jobs_of_a_lost_batch_are_isolated_next_time() -> None:
    from django.core.cache import cache

    cache.clear()
    lost = [_request("diary", str(uuid.uuid4())) for _ in range(3)]
    fresh = [_request("diary", str(uuid.uuid4())) for _ in range(2)]
    assert batching.batches_isolating_lost(lost + fresh) == [lost + fresh]  # nothing lost yet
    batching.lost_mark("screening.tasks.text_scoring_batch", lost)
    groups = batching.batches_isolating_lost(fresh[:1] + lost + fresh[1:])
    assert groups[0] == fresh  # the others first, together
    assert sorted(g[0].id for g in groups[1:]) == sorted(r.id for r in lost)
    assert all(len(g) == 1 for g in groups[1:])  # then each lost one alone


def test_the_batch_task_runs_a_lost_job_in_its_own_scorer_call(
    world: Any, scorer: SpyScorer
) -> None:
    from django.core.cache import cache

    cache.clear()
    entries = [write(world, f"entry {n}") for n in range(4)]
    requests = [_request("diary", str(e.pk)) for e in entries]
    batching.lost_mark("screening.tasks.text_scoring_batch", requests[:1])
    counts = tasks.text_scoring_batch.run(requests)
    assert counts["jobs"] == 4 and counts["scored"] == 4
    assert scorer.sizes == [3, 1]  # the three others together, then the marked one alone


def test_only_jobs_lost_for_the_first_time_go_to_the_task_s_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.core.cache import cache

    cache.clear()
    seen: list[list[list[Any]]] = []
    monkeypatch.setitem(batching._lost_handlers, "screening.tasks.text_scoring_batch", seen.append)
    first = [_request("diary", str(uuid.uuid4())) for _ in range(2)]
    batching.lost_handle("screening.tasks.text_scoring_batch", first)
    again = [*first[:1], _request("diary", str(uuid.uuid4()))]
    batching.lost_handle("screening.tasks.text_scoring_batch", again)
    batching.lost_handle("screening.tasks.text_scoring_batch", first)  # nothing new: no call
    assert seen == [[list(r.args) for r in first], [list(again[1].args)]]


def test_a_failing_lost_handler_or_cache_never_breaks_the_rejection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from django.core.cache import cache

    cache.clear()

    def broken(jobs: list[list[Any]]) -> None:
        raise RuntimeError("cache down")

    monkeypatch.setitem(batching._lost_handlers, "screening.tasks.text_scoring_batch", broken)
    batching.lost_handle("screening.tasks.text_scoring_batch", [_request("diary", "x")])
    assert "lost-batch handler of screening.tasks.text_scoring_batch failed" in caplog.text
    monkeypatch.setattr(cache, "get_many", broken)
    assert batching.lost_mark("screening.tasks.text_scoring_batch", [_request("diary", "y")]) == []


def test_a_message_revoked_or_expired_while_it_waits_is_not_run(
    pool: FakePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like Celery's own strategy: Request.revoked() acknowledges and reports a revoked or
    expired message; the batch runs the others. A check that fails keeps the message."""
    task = tasks.text_scoring_batch
    monkeypatch.setattr(task, "_tref", FakeTimerEntry())
    live = FakeRequest(task, ["diary", str(uuid.uuid4())])
    gone = FakeRequest(task, ["diary", str(uuid.uuid4())])
    odd = FakeRequest(task, ["diary", str(uuid.uuid4())])

    def revoked() -> bool:
        gone.outcome = "ack"  # what Celery's Request.revoked() does before answering True
        return True

    def broken() -> bool:
        raise RuntimeError("state unavailable")

    gone.revoked = revoked  # type: ignore[attr-defined]
    odd.revoked = broken  # type: ignore[attr-defined]
    for request in (live, gone, odd):
        task._buffer.put(request)
    task._do_flush()
    [(_, args, _)] = pool.calls
    assert [r.id for r in args[1]] == [live.id, odd.id]
    assert gone.outcome == "ack"


# --- real Celery requests through the batch task's strategy --------------------------------------
class _Channel:
    """The part of a kombu channel a message's ack/reject touches."""

    no_ack_consumers = None

    def __init__(self) -> None:
        self.acked: list[str] = []
        self.rejected: list[str] = []

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        self.acked.append(delivery_tag)

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        self.rejected.append(delivery_tag)


def _message(channel: _Channel, *, task_id: str, expires: dt.datetime | None = None) -> Any:
    """A protocol-2 message as the broker hands it to the worker (celery's own encoding)."""
    from kombu import serialization
    from kombu.message import Message

    task = tasks.text_scoring_batch
    sent = task.app.amqp.as_task_v2(
        task_id, task.name, args=("diary", str(uuid.uuid4())), expires=expires
    )
    content_type, encoding, body = serialization.dumps(sent.body, serializer="json")
    return Message(
        body=body,
        channel=channel,
        delivery_tag=task_id,
        content_type=content_type,
        content_encoding=encoding,
        headers=sent.headers,
        properties=sent.properties,
        delivery_info={"routing_key": "gpu", "exchange": ""},
    )


def test_real_requests_revoked_or_expired_are_acknowledged_and_never_batched(
    pool: FakePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Celery's own Request (not a stand-in) through the strategy and the flush: a message past
    its ``expires`` or revoked by id is acknowledged (the broker forgets it) and never reaches
    the pool, whether it was revoked before it arrived or while it waited for its batch."""
    from celery.worker import state

    task = tasks.text_scoring_batch
    channel = _Channel()
    consumer = SimpleNamespace(
        hostname="test@host",
        event_dispatcher=SimpleNamespace(enabled=False, groups=(), send=lambda *a, **k: None),
        connection_errors=(),
        timer=SimpleNamespace(call_repeatedly=lambda *a: FakeTimerEntry()),
        pool=pool,
    )
    handler = task.Strategy(task, task.app, consumer)
    ids = {name: str(uuid.uuid4()) for name in ("live", "expired", "revoked", "revoked_later")}
    state.revoked.add(ids["revoked"])
    past = timezone.now() - dt.timedelta(minutes=1)
    try:
        for name, task_id in ids.items():
            message = _message(
                channel, task_id=task_id, expires=past if name == "expired" else None
            )
            handler(message, None, message.ack_log_error, message.reject_log_error, [])
        assert sorted(channel.acked) == sorted([ids["expired"], ids["revoked"]])
        state.revoked.add(ids["revoked_later"])  # revoked while it waits in the buffer
        task._do_flush()
    finally:
        state.revoked.discard(ids["revoked"])
        state.revoked.discard(ids["revoked_later"])
        monkeypatch.setattr(task, "_tref", None)
        batching._drain(task._buffer)
    [(_, args, _)] = pool.calls
    assert [r.id for r in args[1]] == [ids["live"]]
    assert ids["revoked_later"] in channel.acked and ids["live"] not in channel.acked
    assert channel.rejected == []
