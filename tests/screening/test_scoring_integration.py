"""Integration: the real text scorer (loaded once per session) through the diary API, the
scoring task, the daily mood and the risk engine.

``test_crisis_text_and_distressed_video_is_orange`` uses the real text scorer and a media outcome
with a set distress (the generated test clips cannot look distressed); the video stage itself runs
the real pipeline in test_media_worker.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from risk.models import Alert, AlertEvidence
from screening import tasks
from screening.models import DailyMoodScore, TextAnalysis
from screening.services import media_analysis, scoring
from screening.services.media_analysis import MediaOutcome
from screening.services.videos import video_process
from tests.media import MediaSet, shared_media

URL = "/api/v1/diary-entries"


@pytest.fixture(scope="session")
def real_scorer() -> Any:
    from screening.ml.artifacts import ModelIntegrityError
    from screening.ml.text.scorer import get_text_scorer

    try:
        return get_text_scorer(device="cpu")
    except ModelIntegrityError as exc:  # the trained text heads are not installed in this tree
        pytest.skip(f"text scorer model files missing: {exc}")


@pytest.fixture
def use_real_scorer(real_scorer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoring, "text_scorer", lambda: real_scorer)


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("text_scoring_batch", "daily_mood_recompute"):
        task = getattr(tasks, name)
        monkeypatch.setattr(
            task, "apply_async", lambda *, args, queue, _t=task: _t.apply(args=args).get()
        )


def post(client: Any, text: str, capture: Any, **extra: Any) -> str:
    body = {
        "idempotency_key": str(uuid.uuid4()),
        "text": text,
        "client_timestamp": timezone.now().isoformat(),
        **extra,
    }
    with capture(execute=True):
        response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def test_explicit_plan_raises_a_red_alert(
    world: Any,
    use_real_scorer: None,
    client_a: Any,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    text = "I can't do this anymore. I have the pills ready and I am going to kill myself tonight."
    entry_id = post(client_a, text, django_capture_on_commit_callbacks)
    analysis = TextAnalysis.objects.get(diary_entry_id=entry_id)
    assert analysis.crisis_category in ("plan", "imminent_intent")
    assert analysis.at_risk
    assert analysis.evidence and all(e["excerpt"] in text for e in analysis.evidence)
    evidence = AlertEvidence.objects.filter(patient=world.patient_a, event_kind="crisis_language")
    assert evidence.exists()
    assert Alert.objects.filter(patient=world.patient_a, tier="red").exists()
    mood = DailyMoodScore.objects.get(patient=world.patient_a)
    assert mood.score is not None and mood.score < 0


def test_more_negative_text_gives_a_lower_mood(
    world: Any,
    use_real_scorer: None,
    client_a: Any,
    client_b: Any,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    post(
        client_a,
        "What a lovely day. I laughed with friends and felt really happy.",
        django_capture_on_commit_callbacks,
    )
    post(
        client_b,
        "Everything feels hopeless and grey. I cried all day and feel worthless.",
        django_capture_on_commit_callbacks,
    )
    good = DailyMoodScore.objects.get(patient=world.patient_a)
    bad = DailyMoodScore.objects.get(patient=world.patient_b)
    assert good.score is not None and bad.score is not None
    assert bad.score < good.score
    assert "diary text" in bad.explanation


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaSet:
    return shared_media(tmp_path_factory)


def test_crisis_text_and_distressed_video_is_orange(
    world: Any,
    use_real_scorer: None,
    client_a: Any,
    eager: None,
    media: MediaSet,
    settings: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    text = "Some days I wish I could just fall asleep and never wake up."
    post(client_a, text, django_capture_on_commit_callbacks)
    analysis = TextAnalysis.objects.get(patient=world.patient_a)
    assert analysis.crisis_category in ("passive_ideation", "active_ideation"), (
        analysis.crisis_category
    )
    monkeypatch.setattr(tasks.video_process, "apply_async", lambda **kw: None)
    from tests.screening.test_media_worker import make_video

    monkeypatch.setattr(
        media_analysis,
        "media_analyse",
        lambda **kw: MediaOutcome(
            face={"smile": 0.0, "frown": 0.4, "abstain": False},
            distress=0.85,
            distress_confidence=0.8,
            model_version="test",
        ),
    )
    video = make_video(world, media.good_mp4)
    video_process(video_id=video.pk)
    tiers = set(
        Alert.objects.filter(
            patient=world.patient_a, state__in=["open", "acknowledged"]
        ).values_list("tier", flat=True)
    )
    assert "orange" in tiers


def test_real_crisis_detector_output_reaches_risk(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real rule-based crisis detector's result (spans, categories) through storage and risk,
    with a fixed valence: runs even where the trained text heads are not installed."""
    from screening.ml.artifacts import ModelInfo
    from screening.ml.text.crisis import detect_crisis
    from tests.screening.test_scoring import FakeScore, write

    class DetectorOnly:
        def score(self, texts: list[str]) -> list[Any]:
            return [
                FakeScore(
                    valence=-0.7,
                    crisis=detect_crisis(t),  # type: ignore[arg-type]
                    models=(ModelInfo(name="crisis", version="1", sha256="0" * 64),),
                )
                for t in texts
            ]

    monkeypatch.setattr(scoring, "text_scorer", lambda: DetectorOnly())
    text = "I have the pills ready and I am going to kill myself tonight."
    entry = write(world, text)
    analysis = scoring.text_analysis_run(entry_id=entry.pk)
    assert analysis is not None and analysis.crisis_category == "imminent_intent"
    assert all(e["excerpt"] == text[e["start"] : e["end"]] for e in analysis.evidence)
    assert analysis.evidence[0]["id"] == f"{analysis.pk}:0"
    assert Alert.objects.filter(patient=world.patient_a, tier="red").exists()
    evidence = AlertEvidence.objects.get(patient=world.patient_a, event_kind="crisis_language")
    assert text not in str(evidence.__dict__)  # ids and categories only, never the words
