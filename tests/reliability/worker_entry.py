"""Start a real Celery worker whose media job takes a little longer (tests only).

``python -m tests.reliability.worker_entry worker -Q media ...`` sets Django up, wraps the media
probe that ``video_process`` runs on the decrypted file in a sleep of
``VIGIL_TEST_MEDIA_SLEEP`` seconds, and hands the remaining arguments to Celery. The sleep gives
the fault tests a window in which the job is certainly running, so a kill lands mid-task.

With ``VIGIL_TEST_FAST_ANALYSIS=1`` the model stage (``videos._analyse``: prosody, face,
transcript) is replaced by an empty analysis, so a job costs milliseconds instead of loading
models: these tests are about delivery (claim, decrypt, verify, record, acknowledge), and the
analysis has its own tests. Everything else is the production task code, settings and Celery
configuration.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main(argv: list[str]) -> None:
    django.setup()
    from screening.services import videos

    delay = float(os.environ.get("VIGIL_TEST_MEDIA_SLEEP", "0") or 0)
    real_probe = videos.probe_media

    def slow_probe(path: Path, **kwargs: Any) -> Any:
        time.sleep(delay)
        return real_probe(path, **kwargs)

    videos.probe_media = slow_probe  # type: ignore[assignment]
    if os.environ.get("VIGIL_TEST_FAST_ANALYSIS") == "1":
        if not hasattr(videos, "_analyse"):
            raise SystemExit("screening.services.videos._analyse is gone: update worker_entry")

        from screening.services.media_analysis import MediaOutcome

        def empty_analysis(video: Any, path: Path) -> Any:
            return MediaOutcome()  # nothing measured: recorded as an empty analysis

        videos._analyse = empty_analysis  # type: ignore[assignment]

    from config.celery import app

    app.worker_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
