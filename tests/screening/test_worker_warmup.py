"""Model warm-up in worker processes: each cached loader loaded once, with the configured
settings; a failing model is logged (name and exception class only) and the others still load;
the setting off does nothing; the Celery signal starts it in the background."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from celery.signals import worker_process_init

from screening import worker
from screening.ml.artifacts import ModelIntegrityError
from screening.ml.media import face, prosody, transcript
from screening.ml.text import scorer


class Loaded:
    """A stand-in model instance: records the frames the face warm-up runs through it."""

    def __init__(self) -> None:
        self.frames: list[Any] = []

    def analyze_frames(self, frames: Any) -> None:
        self.frames.extend(frames)


class Counted:
    """Stands in for a model class: counts constructions and records the arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.fail: Exception | None = None
        self.instances: list[Loaded] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Loaded:
        self.calls.append((args, kwargs))
        if self.fail is not None:
            raise self.fail
        self.instances.append(Loaded())
        return self.instances[-1]


def clear_caches() -> None:
    scorer.get_text_scorer.cache_clear()
    transcript.get_transcriber.cache_clear()
    face._analyzer.cache_clear()
    prosody.warm_up.cache_clear()


@pytest.fixture
def models(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path) -> Any:
    """Every heavy constructor replaced by a counter; caches cleared before and after."""
    settings.VIGIL_WORKER_WARMUP = True
    settings.VIGIL_TEXT_DEVICE = "cpu"
    settings.VIGIL_TEXT_QUANTIZED = True
    settings.VIGIL_MEDIA_DEVICE = "cpu"
    settings.VIGIL_TRANSCRIBE = True
    settings.VIGIL_PROSODY_BACKEND = "librosa"
    settings.VIGIL_MODELS_DIR = str(tmp_path / "models")
    fakes = {name: Counted() for name in ("text", "whisper", "face", "pyin")}
    monkeypatch.setattr(scorer, "TextScorer", fakes["text"])
    monkeypatch.setattr(transcript, "Transcriber", fakes["whisper"])
    monkeypatch.setattr(face, "FaceAnalyzer", fakes["face"])
    monkeypatch.setattr(prosody, "prosody_librosa", fakes["pyin"])
    clear_caches()
    yield fakes
    clear_caches()


def test_each_cached_loader_loads_once_with_the_configured_settings(
    models: dict[str, Counted], tmp_path: Path
) -> None:
    assert worker.warm_up_models() == {
        "text-scorer": "ok",
        "prosody": "ok",
        "face": "ok",
        "whisper": "ok",
    }
    worker.warm_up_models()  # a second call (or the real job) hits the caches
    assert [len(f.calls) for f in models.values()] == [1, 1, 1, 1]
    assert models["text"].calls[0] == ((), {"device": "cpu", "quantized": True})
    assert models["whisper"].calls[0] == ((), {"device": "cpu"})
    assert models["face"].calls[0] == (((tmp_path / "models").resolve(),), {})
    (audio, sr), _ = models["pyin"].calls[0]
    assert sr == prosody.SAMPLE_RATE and len(audio) > 0
    # The face analyzer's runtime was initialised on blank frames (of the configured size).
    frames = models["face"].instances[0].frames
    assert len(frames) == 4 and frames[0].rgb.shape == (360, 480, 3) and not frames[0].rgb.any()
    for loader in (scorer.get_text_scorer, transcript.get_transcriber, face._analyzer):
        info = loader.cache_info()
        assert (info.misses, info.hits) == (1, 1)
    # What the real path asks for afterwards is the warmed instance, not a new load.
    from screening.services.scoring import text_scorer

    text_scorer()
    transcript.get_transcriber("cpu")
    face.get_face_analyzer(tmp_path / "models")
    assert [len(f.calls) for f in models.values()] == [1, 1, 1, 1]


def test_the_torch_prosody_backend_is_warmed_through_the_pipeline_call(
    models: dict[str, Counted], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.VIGIL_PROSODY_BACKEND = "torch"
    seen: list[str] = []
    monkeypatch.setattr(prosody, "prosody", lambda audio, sr, *, backend: seen.append(backend))
    assert worker.warm_up_models()["prosody"] == "ok"
    assert seen == ["torch"] and models["pyin"].calls == []


def test_a_failing_loader_is_logged_and_the_others_still_load(
    models: dict[str, Counted], caplog: pytest.LogCaptureFixture
) -> None:
    models["whisper"].fail = ModelIntegrityError("whisper-small", "hash differs at /secret/path")
    models["text"].fail = OSError("no such file: /home/someone/model.bin")
    with caplog.at_level(logging.INFO, logger="vigil.worker"):
        outcome = worker.warm_up_models()
    assert outcome == {
        "text-scorer": "OSError",
        "prosody": "ok",
        "face": "ok",
        "whisper": "ModelIntegrityError",
    }
    assert len(models["face"].calls) == 1 and len(models["pyin"].calls) == 1
    text = caplog.text
    assert "worker warm-up: whisper failed: ModelIntegrityError" in text
    assert "worker warm-up: text-scorer failed: OSError" in text
    assert "/secret/path" not in text and "/home/someone" not in text
    # A failed load is not cached: the real job tries again (and reports its own error).
    models["whisper"].fail = None
    transcript.get_transcriber("cpu")
    assert len(models["whisper"].calls) == 2


def test_the_setting_off_does_nothing(models: dict[str, Counted], settings: Any) -> None:
    settings.VIGIL_WORKER_WARMUP = False
    assert worker.warm_up_models() == {}
    assert worker.warm_up_in_background() is None
    worker_process_init.send(sender=None)
    assert [len(f.calls) for f in models.values()] == [0, 0, 0, 0]
    assert scorer.get_text_scorer.loaded() == 0


def test_the_worker_signal_warms_in_a_background_thread(
    models: dict[str, Counted], monkeypatch: pytest.MonkeyPatch
) -> None:
    import screening.tasks  # noqa: F401 - the tasks module connects the handler

    monkeypatch.setattr(worker, "_thread", None)
    worker_process_init.send(sender=None)
    thread = worker._thread
    assert thread is not None and thread.daemon and thread.name == "vigil-warmup"
    thread.join(30)
    assert not thread.is_alive()
    assert [len(f.calls) for f in models.values()] == [1, 1, 1, 1]


def test_nothing_escapes_the_thread(
    models: dict[str, Counted],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_args: Any) -> dict[str, str]:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(worker, "warm_up_models", broken)
    with caplog.at_level(logging.WARNING, logger="vigil.worker"):
        thread = worker.warm_up_in_background()
        assert thread is not None
        thread.join(10)
    assert "worker warm-up stopped: RuntimeError" in caplog.text


# --- each worker warms what its queues need ------------------------------------------------------


@pytest.mark.parametrize(
    ("queues", "loaded", "calls"),
    [
        (frozenset({"gpu"}), {"text-scorer"}, [1, 0, 0, 0]),
        (frozenset({"default", "media"}), {"prosody", "face", "whisper"}, [0, 1, 1, 1]),
        (frozenset({"default"}), set(), [0, 0, 0, 0]),
        (
            frozenset({"default", "media", "gpu"}),
            {"text-scorer", "prosody", "face", "whisper"},
            [1, 1, 1, 1],
        ),
        (None, {"text-scorer", "prosody", "face", "whisper"}, [1, 1, 1, 1]),
    ],
)
def test_a_worker_warms_only_the_models_its_queues_use(
    models: dict[str, Counted], queues: frozenset[str] | None, loaded: set[str], calls: list[int]
) -> None:
    assert set(worker.warm_up_models(queues)) == loaded
    assert [len(f.calls) for f in models.values()] == calls


def test_the_worker_records_its_queues_before_the_pool_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from celery.signals import celeryd_after_setup

    monkeypatch.setattr(worker, "_consumed", None)
    instance = SimpleNamespace(
        app=SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(consume_from={"gpu": 1})))
    )
    celeryd_after_setup.send(sender="gpu@host", instance=instance, conf=None)
    assert worker._consumed == frozenset({"gpu"})
    celeryd_after_setup.send(sender="odd@host", instance=object(), conf=None)
    assert worker._consumed is None  # unknown: every model is warmed, as before


@pytest.mark.parametrize(("prosody_queue", "loaded"), [("media", set()), ("gpu", {"prosody"})])
def test_the_gpu_worker_warms_the_prosody_when_it_computes_it(
    models: dict[str, Counted], settings: Any, prosody_queue: str, loaded: set[str]
) -> None:
    settings.VIGIL_PROSODY_QUEUE = prosody_queue
    assert set(worker.warm_up_models(frozenset({"gpu"}))) == {"text-scorer", *loaded}
    assert set(worker.warm_up_models(frozenset({"media"}))) == {"prosody", "face", "whisper"}
