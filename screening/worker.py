"""Model warm-up in Celery worker processes.

The first video a fresh worker process handles used to pay for every lazy load at once: numba
compiling librosa's pYIN kernels (or the torch prosody path's first run), Whisper and the face
models being verified and loaded, and the text encoder. ``worker_process_init`` (sent in each
pool process as it starts) now warms them in a background thread, so the process starts taking
work at once and a job that arrives meanwhile simply waits on the same cached loaders.

Each model is loaded through the process's own cached loader, with the same settings as the real
path, so the work is done once: :func:`screening.services.scoring.text_scorer` (text scorer),
:func:`screening.ml.media.face.get_face_analyzer` and
:func:`screening.ml.media.transcript.get_transcriber` (with
:func:`screening.services.media_analysis.media_config_from_settings`), and the prosody backend's
warm-up; the face analyzer and the prosody path also run once on blank input / a short tone so
their runtimes initialise now. A failure is logged with the model name and the exception class
only and never stops the worker (the real job will meet, and report, the same error).
``VIGIL_WORKER_WARMUP`` (default on) turns it off. A worker warms only what its queues use
(:func:`queue_models`: ``gpu`` the text scorer, and prosody too with
``VIGIL_PROSODY_QUEUE=gpu``; ``media`` prosody, face and Whisper), read from
its ``-Q`` in the main process before the pool forks; where that is unknown, every model.

``worker_ready`` (once, in the worker's main process) sweeps the work directory of decrypted video
files a killed worker left behind (:func:`screening.services.videos.decrypted_files_sweep`), and
the upload temporary folder of plaintext uploads a killed web process left behind
(:func:`screening.services.uploads.upload_tempfiles_sweep`, bounded to
``UPLOAD_TMP_SWEEP_MAX_ENTRIES`` entries).

Imported at the bottom of :mod:`screening.tasks`, so the handler is connected wherever the tasks
are registered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery.signals import celeryd_after_setup, worker_process_init, worker_ready
from django.conf import settings

logger = logging.getLogger("vigil.worker")

#: The thread of the current process's warm-up, if one was started (tests and ``--wait`` use it).
_thread: threading.Thread | None = None


def warmup_enabled() -> bool:
    return bool(getattr(settings, "VIGIL_WORKER_WARMUP", True))


def _text_scorer() -> None:
    from screening.services.scoring import text_scorer

    text_scorer()


def _prosody() -> None:
    import numpy as np

    from screening.ml.media import prosody
    from screening.services.media_analysis import media_config_from_settings

    backend = media_config_from_settings().prosody_backend
    if backend == "librosa":
        prosody.warm_up()  # cached: numba compiles pYIN once per process
        return
    # The torch backend: one short voiced tone through the same call the pipeline makes.
    t = np.arange(prosody.SAMPLE_RATE // 2) / prosody.SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 150.0 * t)).astype(np.float32)
    prosody.prosody(tone, prosody.SAMPLE_RATE, backend=backend)


def _whisper() -> None:
    from screening.ml.media.transcript import get_transcriber
    from screening.services.media_analysis import media_config_from_settings

    config = media_config_from_settings()
    if config.transcribe:
        get_transcriber(config.whisper_device)


@dataclass(frozen=True)
class _BlankFrame:
    t: float
    rgb: Any


def _face() -> None:
    import numpy as np

    from screening.ml.media.face import get_face_analyzer
    from screening.services.media_analysis import media_config_from_settings

    config = media_config_from_settings()
    analyzer = get_face_analyzer(config.models_dir)
    # The first landmarker a process builds also initialises MediaPipe's runtime (about 1.5 s):
    # run two blank frames through a throwaway one (each video gets its own landmarker anyway).
    side = int(config.max_side)
    blank = np.zeros((side * 3 // 4, side, 3), dtype=np.uint8)
    analyzer.analyze_frames([_BlankFrame(0.0, blank), _BlankFrame(0.2, blank)])


#: (model name for the log, loader). Order: cheapest and most often needed first.
WARMERS: tuple[tuple[str, Callable[[], None]], ...] = (
    ("text-scorer", _text_scorer),
    ("prosody", _prosody),
    ("face", _face),
    ("whisper", _whisper),
)


#: The models each queue's tasks load. A worker warms only what its queues need: the gpu worker
#: (text scoring in batches) has no use for Whisper or the face models, nor the media worker for
#: the text scorer. A queue not listed here (``default``) needs none.
QUEUE_MODELS: dict[str, tuple[str, ...]] = {
    "gpu": ("text-scorer",),
    "media": ("prosody", "face", "whisper"),
}

#: The queues this worker consumes, set in its main process before the pool forks (None: unknown,
#: e.g. outside a worker: then every model is warmed).
_consumed: frozenset[str] | None = None


def queue_models() -> dict[str, tuple[str, ...]]:
    """``QUEUE_MODELS`` with today's settings: with ``VIGIL_PROSODY_QUEUE=gpu`` the gpu worker
    computes the voice jobs' prosody too (the media worker keeps it: its reruns compute the
    prosody themselves)."""
    from screening.services.media_analysis import prosody_queue

    models = dict(QUEUE_MODELS)
    if prosody_queue() == "gpu":
        models["gpu"] = (*models["gpu"], "prosody")
    return models


def warmers_for(queues: frozenset[str] | None) -> tuple[tuple[str, Callable[[], None]], ...]:
    """The warmers a worker consuming ``queues`` needs (all of them when ``queues`` is None)."""
    if queues is None:
        return WARMERS
    needs = queue_models()
    wanted = {name for queue in queues for name in needs.get(queue, ())}
    return tuple((name, warm) for name, warm in WARMERS if name in wanted)


def warm_up_models(queues: frozenset[str] | None = None) -> dict[str, str]:
    """Load the models ``queues`` need once in this process (every model when None). Returns
    ``{name: "ok" | exception class name}``; never raises (a failure is logged: model name and
    exception class, nothing else)."""
    outcome: dict[str, str] = {}
    if not warmup_enabled():
        return outcome
    for name, warm in warmers_for(queues):
        start = time.perf_counter()
        try:
            warm()
        except Exception as exc:  # a warm-up failure must never kill the worker
            outcome[name] = exc.__class__.__name__
            logger.warning("worker warm-up: %s failed: %s", name, exc.__class__.__name__)
            continue
        outcome[name] = "ok"
        logger.info("worker warm-up: %s ready in %.0f ms", name, _ms(start))
    return outcome


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def warm_up_in_background() -> threading.Thread | None:
    """Start :func:`warm_up_models` in a daemon thread (None when the setting is off)."""
    global _thread
    if not warmup_enabled():
        logger.info("worker warm-up: off (VIGIL_WORKER_WARMUP)")
        return None
    _thread = threading.Thread(target=_run_safely, name="vigil-warmup", daemon=True)
    _thread.start()
    return _thread


def _run_safely() -> None:
    try:
        warm_up_models(_consumed)
    except Exception as exc:  # nothing may escape the thread
        logger.warning("worker warm-up stopped: %s", exc.__class__.__name__)


@celeryd_after_setup.connect
def _on_after_setup(sender: Any = None, instance: Any = None, **_kwargs: Any) -> None:
    """In the worker's main process, after ``-Q`` is applied: remember the queues it consumes
    (the pool processes forked later inherit it)."""
    global _consumed
    try:
        _consumed = frozenset(instance.app.amqp.queues.consume_from)
    except Exception:  # unknown: warm everything, as before
        _consumed = None


@worker_process_init.connect
def _on_worker_process_init(**_kwargs: Any) -> None:
    try:
        warm_up_in_background()
    except Exception as exc:  # never stop a worker from starting
        logger.warning("worker warm-up not started: %s", exc.__class__.__name__)


@worker_ready.connect
def _on_worker_ready(**_kwargs: Any) -> None:
    """Once per worker start: remove decrypted video files a killed worker left behind (a file
    still held by a live process on this machine is kept; see privacy.storage), and upload
    temporary files a killed web process left (older than VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS)."""
    try:
        from screening.services.videos import decrypted_files_sweep

        decrypted_files_sweep()
    except Exception as exc:  # never stop a worker from starting
        logger.warning("work directory sweep not run: %s", exc.__class__.__name__)
    try:
        from screening.services.uploads import upload_tempfiles_sweep

        upload_tempfiles_sweep()
    except Exception as exc:  # never stop a worker from starting
        logger.warning("upload temporary folder sweep not run: %s", exc.__class__.__name__)
