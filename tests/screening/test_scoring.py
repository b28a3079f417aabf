"""Text scoring, the daily mood and their hand-over to risk (services called directly; the text
scorer is a small fake here, the real one runs in test_scoring_integration.py)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from privacy.audit import Actor
from privacy.choices import ConsentScope
from privacy.consent import consent_change
from privacy.erasure import patient_erase
from risk.models import Alert, AlertEvidence
from risk.selectors import alerts_visible_to
from screening import selectors, tasks
from screening.choices import VideoStatus
from screening.ml.artifacts import ModelInfo
from screening.ml.fusion import fusion as fu
from screening.ml.fusion.fusion import FUSION_VERSION
from screening.models import (
    DailyMoodScore,
    DiaryEntry,
    MediaAnalysis,
    TextAnalysis,
    VideoSubmission,
)
from screening.services import scoring
from screening.services.diary import diary_entry_create
from screening.services.questionnaires import questionnaire_submit


@dataclass
class FakeSpan:
    start: int
    end: int
    category: str
    rule_id: str


@dataclass
class FakeCrisis:
    category: str = "none"
    spans: tuple[FakeSpan, ...] = ()
    flags: tuple[str, ...] = ()


@dataclass
class FakeScore:
    valence: float
    valence_probs: dict[str, float] = field(
        default_factory=lambda: {"negative": 0.8, "neutral": 0.15, "positive": 0.05}
    )
    at_risk: bool = False
    at_risk_probability: float = 0.1
    crisis: FakeCrisis = field(default_factory=FakeCrisis)
    models: tuple[ModelInfo, ...] = (ModelInfo(name="fake-text", version="1", sha256="ab" * 32),)


class FakeScorer:
    """Valence from marker words; 'better off without me' is passive ideation."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, texts: list[str]) -> list[FakeScore]:
        self.calls += 1
        out = []
        for text in texts:
            valence = -0.9 if "awful" in text else 0.6 if "great" in text else 0.0
            crisis = FakeCrisis()
            at_risk = False
            phrase = "better off without me"
            if phrase in text:
                start = text.index(phrase)
                crisis = FakeCrisis(
                    "passive_ideation",
                    (FakeSpan(start, start + len(phrase), "passive_ideation", "r1"),),
                )
                at_risk = True
            out.append(
                FakeScore(
                    valence=valence,
                    crisis=crisis,
                    at_risk=at_risk,
                    at_risk_probability=0.8 if at_risk else 0.1,
                )
            )
        return out


@pytest.fixture
def scorer(monkeypatch: pytest.MonkeyPatch) -> FakeScorer:
    fake = FakeScorer()
    monkeypatch.setattr(scoring, "text_scorer", lambda: fake)
    return fake


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], str]]:
    """Scoring tasks run in-process when enqueued (no broker); records what was sent."""
    sent: list[tuple[str, list[str], str]] = []
    for name in ("text_scoring_batch", "daily_mood_recompute"):
        task = getattr(tasks, name)

        def run(*, args: list[str], queue: str, _task: Any = task, _name: str = name) -> None:
            sent.append((_name, args, queue))
            _task.apply(args=args).get()

        monkeypatch.setattr(task, "apply_async", run)
    return sent


def patient_actor(patient: Any) -> Actor:
    return Actor(user_id=patient.user_id, role="patient")


def write(
    world: Any,
    text: str,
    *,
    mood: int | None = None,
    patient: Any = None,
    when: dt.datetime | None = None,
) -> DiaryEntry:
    patient = patient or world.patient_a
    entry, _ = diary_entry_create(
        actor=patient_actor(patient),
        patient=patient,
        idempotency_key=uuid.uuid4(),
        text=text,
        client_timestamp=when or timezone.now(),
        self_rated_mood=mood,
    )
    return entry


CRISIS = "Today was awful. Honestly everyone would be better off without me."


# --- text analysis -------------------------------------------------------------------------------
def test_diary_post_scores_after_commit_and_reaches_risk(
    world: Any,
    client_a: Any,
    scorer: FakeScorer,
    eager: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(
            "/api/v1/diary-entries",
            {
                "idempotency_key": str(uuid.uuid4()),
                "text": CRISIS,
                "client_timestamp": timezone.now().isoformat(),
                "self_rated_mood": 2,
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    assert ("text_scoring_batch", ["diary", response.json()["id"]], "gpu") in eager
    analysis = TextAnalysis.objects.get(diary_entry_id=response.json()["id"])
    assert analysis.crisis_category == "passive_ideation" and analysis.at_risk
    assert analysis.valence == pytest.approx(-0.9)
    # the crisis language reached risk: the treating clinician sees an alert
    alerts = list(alerts_visible_to(clinician=world.clinician))
    assert alerts and alerts[0].patient_id == world.patient_a.pk
    kinds = set(
        AlertEvidence.objects.filter(patient=world.patient_a).values_list("event_kind", flat=True)
    )
    assert "crisis_language" in kinds
    # the evidence spans keep the excerpt, encrypted (never in clear in the database)
    assert analysis.evidence[0]["excerpt"] == "better off without me"
    assert analysis.evidence[0]["id"] == f"{analysis.pk}:0"
    sealed, raw_scores = TextAnalysis.objects.values_list("evidence", "scores").get()
    assert b"better off" not in sealed.blob
    assert "better off" not in str(raw_scores) and "awful" not in str(raw_scores)
    # and the day's mood exists, explained in plain words without the patient's text
    mood = DailyMoodScore.objects.get(patient=world.patient_a)
    assert mood.score is not None and mood.score < -3
    assert "diary text strongly negative" in mood.explanation
    assert "self-rated mood 2/10" in mood.explanation
    assert "awful" not in mood.explanation and "better off" not in mood.explanation
    assert mood.fusion_version == FUSION_VERSION
    assert set(mood.inputs) == {"diary_text", "self_rated"}


def test_running_twice_gives_one_row_and_one_evidence(world: Any, scorer: FakeScorer) -> None:
    entry = write(world, CRISIS)
    scoring.text_analysis_run(entry_id=entry.pk)
    first = TextAnalysis.objects.get()
    evidence_before = AlertEvidence.objects.filter(event_kind="crisis_language").count()
    tasks.text_analysis_run.apply(args=[str(entry.pk)]).get()  # a redelivered message
    assert TextAnalysis.objects.count() == 1
    assert TextAnalysis.objects.get().pk == first.pk
    assert evidence_before == 1
    assert AlertEvidence.objects.filter(event_kind="crisis_language").count() == 1
    assert DailyMoodScore.objects.count() == 1
    assert scorer.calls == 2


def test_consent_is_checked_when_scoring(world: Any, scorer: FakeScorer) -> None:
    entry = write(world, CRISIS)
    consent_change(
        actor=patient_actor(world.patient_a),
        patient=world.patient_a,
        scope=ConsentScope.TEXT_ANALYSIS,
        granted=False,
    )
    assert scoring.text_analysis_run(entry_id=entry.pk) is None
    assert scorer.calls == 0
    assert not TextAnalysis.objects.exists()
    assert not Alert.objects.filter(patient=world.patient_a).exists()


def test_withdrawal_during_scoring_wins(
    world: Any, scorer: FakeScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = write(world, CRISIS)
    real = scorer.score

    def withdraw_meanwhile(texts: list[str]) -> list[FakeScore]:
        consent_change(
            actor=patient_actor(world.patient_a),
            patient=world.patient_a,
            scope=ConsentScope.TEXT_ANALYSIS,
            granted=False,
        )
        return real(texts)

    monkeypatch.setattr(scorer, "score", withdraw_meanwhile)
    assert scoring.text_analysis_run(entry_id=entry.pk) is None
    assert not TextAnalysis.objects.exists()


def test_vanished_entry_is_a_no_op(db: Any, scorer: FakeScorer) -> None:
    assert scoring.text_analysis_run(entry_id=uuid.uuid4()) is None


def test_neutral_text_sends_low_risk_model_opinion_only(world: Any, scorer: FakeScorer) -> None:
    entry = write(world, "A quiet day, nothing much happened.")
    scoring.text_analysis_run(entry_id=entry.pk)
    assert not Alert.objects.exists()  # a "low risk" opinion fires nothing
    assert TextAnalysis.objects.get().crisis_category == "none"


# --- the day's mood ------------------------------------------------------------------------------
def test_questionnaire_recomputes_the_day(
    world: Any, scorer: FakeScorer, eager: list, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        questionnaire_submit(
            actor=patient_actor(world.patient_a),
            patient=world.patient_a,
            idempotency_key=uuid.uuid4(),
            instrument="phq9",
            answers=[3, 3, 3, 2, 2, 2, 2, 1, 1],
            client_timestamp=timezone.now(),
        )
    assert [e[0] for e in eager] == ["daily_mood_recompute"]
    mood = DailyMoodScore.objects.get()
    assert mood.score is not None and mood.score < -4
    assert "PHQ-9 total 19, item 9 = 1" in mood.explanation


def test_more_negative_diaries_lower_the_mood(world: Any, scorer: FakeScorer) -> None:
    good = write(world, "A great day with friends.", patient=world.patient_a)
    bad = write(world, "An awful day, from start to end.", patient=world.patient_b)
    for entry in (good, bad):
        scoring.text_analysis_run(entry_id=entry.pk)
    mood_a = DailyMoodScore.objects.get(patient=world.patient_a)
    mood_b = DailyMoodScore.objects.get(patient=world.patient_b)
    assert mood_b.score < mood_a.score  # type: ignore[operator]


def test_abstains_when_nothing_reliable(world: Any) -> None:
    row = scoring.daily_mood_recompute(patient=world.patient_a, local_date=timezone.localdate())
    assert row.abstained and row.score is None and row.reason == "insufficient signal"


def test_mood_uses_only_consented_modalities(world: Any, scorer: FakeScorer) -> None:
    entry = write(world, "An awful day.", mood=8)
    scoring.text_analysis_run(entry_id=entry.pk)
    consent_change(
        actor=patient_actor(world.patient_a),
        patient=world.patient_a,
        scope=ConsentScope.TEXT_ANALYSIS,
        granted=False,
    )
    row = scoring.daily_mood_recompute(patient=world.patient_a, local_date=entry.local_date)
    assert set(row.inputs) == {"self_rated"} and row.score == pytest.approx(6.0)


def test_low_mood_days_raise_a_streak_alert(world: Any, scorer: FakeScorer) -> None:
    today = timezone.now()
    for days_ago in (2, 1, 0):
        entry = write(world, "An awful day.", mood=0, when=today - dt.timedelta(days=days_ago))
        scoring.text_analysis_run(entry_id=entry.pk)
    assert Alert.objects.filter(patient=world.patient_a, rule_id="low_mood_streak").exists()


def test_selectors(world: Any, scorer: FakeScorer) -> None:
    entry = write(world, "An awful day.", mood=3)
    scoring.text_analysis_run(entry_id=entry.pk)
    actor = Actor(user_id=world.clinician.user_id, role="clinician")
    moods = list(selectors.daily_mood_for(actor=actor, patient=world.patient_a, days=30))
    assert len(moods) == 1 and moods[0].local_date == entry.local_date
    assert (
        selectors.text_analysis_for_entry(actor=actor, entry_id=entry.pk).pk
        == TextAnalysis.objects.get().pk
    )
    recent = selectors.patient_scores_recent(actor=actor, patient=world.patient_a)
    assert [m.pk for m in recent["moods"]] == [moods[0].pk] and len(recent["texts"]) == 1
    assert list(selectors.daily_mood_for(actor=actor, patient=world.patient_b)) == []


# --- consent withdrawal and erasure --------------------------------------------------------------
def test_withdrawal_with_delete_derived_removes_text_scores(world: Any, scorer: FakeScorer) -> None:
    entry = write(world, "An awful day.", mood=4)
    scoring.text_analysis_run(entry_id=entry.pk)
    other = write(world, "An awful day.", patient=world.patient_b)
    scoring.text_analysis_run(entry_id=other.pk)
    consent_change(
        actor=patient_actor(world.patient_a),
        patient=world.patient_a,
        scope=ConsentScope.TEXT_ANALYSIS,
        granted=False,
        delete_derived=True,
    )
    assert not TextAnalysis.objects.filter(patient=world.patient_a).exists()
    assert not DailyMoodScore.objects.filter(patient=world.patient_a).exists()  # it used the text
    assert TextAnalysis.objects.filter(patient=world.patient_b).exists()


def test_erasure_removes_scores(
    world: Any, scorer: FakeScorer, settings: Any, tmp_path: Any
) -> None:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    entry = write(world, CRISIS, mood=2)
    scoring.text_analysis_run(entry_id=entry.pk)
    scoring.daily_mood_recompute(
        patient=world.patient_a, local_date=entry.local_date - dt.timedelta(days=3)
    )
    assert DailyMoodScore.objects.filter(patient=world.patient_a).count() == 2
    result = patient_erase(actor=Actor.system(), patient=world.patient_a, reason="ticket 1")
    assert result.hooks.get("scores", 0) >= 1
    assert not TextAnalysis.objects.filter(patient=world.patient_a).exists()
    assert not DailyMoodScore.objects.filter(patient=world.patient_a).exists()
    assert (
        scoring.daily_mood_run(patient_id=world.patient_a.pk, local_date=entry.local_date) is None
    )


@pytest.mark.django_db(transaction=True)
def test_a_withdrawal_in_flight_is_waited_for_and_wins(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A withdrawal with deletion that is still running when a scored text is stored: the store
    waits for it (the patient's row lock) and then sees the withdrawal, instead of storing an
    analysis the withdrawal's deletion could no longer see."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks (SQLite serialises writers instead)")
    monkeypatch.setattr(tasks.text_scoring_batch, "apply_async", lambda **kw: None)
    entry = write(world, "An awful day.")
    job = scoring.text_job_prepare(source="diary", ref=entry.pk)
    assert job is not None
    result = FakeScorer().score([job.text])[0]
    holding, release = threading.Event(), threading.Event()
    stored: list[Any] = []

    def withdrawal() -> None:
        try:
            with transaction.atomic():  # consent_change's own block commits with this one
                consent_change(
                    actor=patient_actor(world.patient_a),
                    patient=world.patient_a,
                    scope=ConsentScope.TEXT_ANALYSIS,
                    granted=False,
                    delete_derived=True,
                )
                holding.set()
                release.wait(20)
        finally:
            connections.close_all()

    def store() -> None:
        try:
            stored.append(scoring.text_job_record(job=job, result=result))
        except Exception as exc:  # surfaced by the assertion below
            stored.append(exc)
        finally:
            connections.close_all()

    withdrawing = threading.Thread(target=withdrawal)
    withdrawing.start()
    try:
        assert holding.wait(20)
        storing = threading.Thread(target=store)
        storing.start()
        storing.join(0.5)
        assert storing.is_alive()  # waiting for the withdrawal's transaction
    finally:
        release.set()
        withdrawing.join(20)
    storing.join(20)
    assert stored == [None]
    assert not TextAnalysis.objects.filter(patient=world.patient_a).exists()


# --- the day's mood as a second signal for crisis language -------------------------------------
def test_a_crisis_diary_alone_is_not_confirmed_by_the_mood_made_from_it(
    world: Any, scorer: FakeScorer
) -> None:
    entry = write(world, CRISIS)  # the day's only input: the mood is this text's
    scoring.text_analysis_run(entry_id=entry.pk)
    mood = DailyMoodScore.objects.get(patient=world.patient_a)
    assert mood.score is not None and mood.score <= -6  # low enough to "confirm" if it could
    alerts = Alert.objects.filter(patient=world.patient_a, state__in=["open", "acknowledged"])
    assert [(a.tier, a.rule_id) for a in alerts] == [("yellow", "crisis_single")]


def test_a_crisis_diary_with_a_low_self_rated_mood_is_confirmed(
    world: Any, scorer: FakeScorer
) -> None:
    entry = write(world, CRISIS, mood=1)  # the patient's own rating: another kind of signal
    scoring.text_analysis_run(entry_id=entry.pk)
    alerts = Alert.objects.filter(patient=world.patient_a, state__in=["open", "acknowledged"])
    assert [(a.tier, a.rule_id) for a in alerts] == [("orange", "crisis_double_verified")]
    assert alerts[0].evidence["corroboration"]["code"] == "self_rated"


# --- short texts count less in the day's mood ----------------------------------------------------
def test_a_short_text_counts_at_its_stored_halved_confidence(
    world: Any, scorer: FakeScorer
) -> None:
    short = write(world, "awful")  # 5 characters: confidence halved (docs/fusion.md)
    analysis = scoring.text_analysis_run(entry_id=short.pk)
    long = write(world, "An awful day, from start to end.", patient=world.patient_b)
    long_analysis = scoring.text_analysis_run(entry_id=long.pk)
    assert analysis is not None and long_analysis is not None
    assert analysis.confidence == pytest.approx(long_analysis.confidence / 2, abs=1e-3)
    # a one-word entry alone says too little to estimate the day's mood
    mood = DailyMoodScore.objects.get(patient=world.patient_a)
    assert mood.abstained and mood.score is None
    assert DailyMoodScore.objects.get(patient=world.patient_b).score is not None
    # next to a self-rating it counts, at the confidence stored with its analysis
    write(world, "x", mood=5)
    row = scoring.daily_mood_recompute(patient=world.patient_a, local_date=short.local_date)
    [diary] = [c for c in row.contributions if c["modality"] == "diary_text"]
    assert diary["confidence"] == pytest.approx(analysis.confidence, abs=1e-3)


# --- a backdated questionnaire updates the following days ---------------------------------------
def test_a_backdated_phq9_recomputes_the_following_days_that_have_a_mood(
    world: Any, scorer: FakeScorer, eager: list, django_capture_on_commit_callbacks: Any
) -> None:
    patient = world.patient_a
    now = timezone.now()
    moods = {}
    for days_ago in (8, 5, 0):  # before the PHQ-9, inside its 6 following days, after them
        entry = write(world, "x", mood=5, when=now - dt.timedelta(days=days_ago))
        moods[days_ago] = scoring.daily_mood_recompute(patient=patient, local_date=entry.local_date)
    eager.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response, _ = questionnaire_submit(  # answered offline a week ago, synced now
            actor=patient_actor(patient),
            patient=patient,
            idempotency_key=uuid.uuid4(),
            instrument="phq9",
            answers=[3] * 9,
            client_timestamp=now - dt.timedelta(days=7),
        )
    recomputed = [args[1] for name, args, _ in eager if name == "daily_mood_recompute"]
    assert recomputed == [
        response.local_date.isoformat(),
        moods[5].local_date.isoformat(),
    ]
    inside = DailyMoodScore.objects.get(pk=moods[5].pk)
    fresh = fu.fuse(scoring.daily_mood_inputs(patient=patient, local_date=inside.local_date))
    assert inside.score == fresh.score and inside.score < moods[5].score  # type: ignore[operator]
    assert "phq9" in inside.inputs
    for untouched in (8, 0):
        assert DailyMoodScore.objects.get(pk=moods[untouched].pk).score == moods[untouched].score
    # days between without a mood of their own get none
    assert DailyMoodScore.objects.filter(patient=patient).count() == 4


# --- a transcript needs voice consent too --------------------------------------------------------
def _video_with_transcript(patient: Any, text: str = CRISIS) -> VideoSubmission:
    now = timezone.now()
    video = VideoSubmission.objects.create(
        patient=patient,
        idempotency_key=uuid.uuid4(),
        client_timestamp=now,
        timezone=patient.timezone,
        local_date=timezone.localdate(),
        storage_name=f"{patient.pk}/{uuid.uuid4()}",
        size_bytes=1234,
        duration_seconds=30.0,
        container="mp4",
        video_codec="h264",
        width=320,
        height=240,
        status=VideoStatus.DONE,
        finished_at=now,
    )
    MediaAnalysis.objects.create(
        patient=patient, video=video, local_date=video.local_date, transcript=text
    )
    return video


def _withdraw(patient: Any, scope: str) -> None:
    consent_change(actor=patient_actor(patient), patient=patient, scope=scope, granted=False)


def test_a_transcript_is_not_scored_after_voice_consent_is_withdrawn(
    world: Any, scorer: FakeScorer
) -> None:
    video = _video_with_transcript(world.patient_a)
    _withdraw(world.patient_a, ConsentScope.VOICE_ANALYSIS)  # the transcript data is kept
    assert scoring.transcript_analysis_run(video_id=video.pk) is None
    assert scorer.calls == 0
    assert not TextAnalysis.objects.exists()
    assert not Alert.objects.filter(patient=world.patient_a).exists()
    assert not DailyMoodScore.objects.exists()


def test_a_voice_withdrawal_while_a_transcript_is_scored_wins(
    world: Any, scorer: FakeScorer
) -> None:
    video = _video_with_transcript(world.patient_a)
    job = scoring.text_job_prepare(source="transcript", ref=video.pk)
    assert job is not None
    result = scorer.score([job.text])[0]
    _withdraw(world.patient_a, ConsentScope.VOICE_ANALYSIS)  # without deletion
    assert scoring.text_job_record(job=job, result=result) is None
    assert not TextAnalysis.objects.exists()
    assert not Alert.objects.filter(patient=world.patient_a).exists()
    # a diary entry needs only text consent, as before
    entry = write(world, CRISIS)
    assert scoring.text_analysis_run(entry_id=entry.pk) is not None


def test_a_self_rating_without_text_consent_still_recomputes_the_day(
    world: Any, scorer: FakeScorer, eager: list, django_capture_on_commit_callbacks: Any
) -> None:
    _withdraw(world.patient_a, ConsentScope.TEXT_ANALYSIS)
    with django_capture_on_commit_callbacks(execute=True):
        write(world, "An awful day, from start to end.", mood=2)
    assert [name for name, _, _ in eager] == ["daily_mood_recompute"]  # no text job: no consent
    mood = DailyMoodScore.objects.get(patient=world.patient_a)
    assert set(mood.inputs) == {"self_rated"} and mood.score == pytest.approx(-6.0)
    assert scorer.calls == 0
