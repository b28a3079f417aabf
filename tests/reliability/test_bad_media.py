"""A corpus of bad media, generated here: every file is rejected at upload with a named code, or is
accepted and then finishes in a real worker (done, or failed with a named reason); the worker
survives all of it and no temporary or decrypted file is left behind.
"""

from __future__ import annotations

import io
import time
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from screening.models import VideoSubmission
from tests.conftest import new_key, now_iso
from tests.media import (
    make_audio_only_m4a,
    make_empty,
    make_mp4,
    make_random_bytes,
    make_text_file,
    make_truncated,
)
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

REJECT_CODES = {
    "media_rejected",
    "payload_too_large",
    "validation_failed",
    "malformed_request",
    "unsupported_media_type",
}
MEDIA_REASONS = {
    "empty",
    "not_a_video",
    "corrupt",
    "unsupported_codec",
    "no_video",
    "too_long",
    "too_large_frames",
}
FIGURES: dict[str, Any] = {}


def _encode(path: Path, *, width: int, height: int, pts: list[int], fps: int = 10) -> Path:
    """An H.264 MP4 with the given frame size and presentation times (in 1/fps units)."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for index, moment in enumerate(pts):
            image = np.full((height, width, 3), (index * 40) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = moment, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def build_corpus(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = make_mp4(folder / "good.mp4", seconds=0.5)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(good, "inner.mp4")
    corpus = {
        "zero_bytes": make_empty(folder / "empty.mp4"),
        "random_bytes": make_random_bytes(folder / "random.mp4"),
        "truncated_half": make_truncated(good, folder / "half.mp4", keep=0.5),
        "truncated_header": make_truncated(good, folder / "head.mp4", keep=0.02),
        "text_named_mp4": make_text_file(folder / "notes.mp4"),
        "audio_only": make_audio_only_m4a(folder / "voice.mp4", seconds=0.5),
        "video_without_audio": make_mp4(folder / "silent.mp4", seconds=0.5, audio=False),
        "absurd_width": _encode(folder / "wide.mp4", width=4200, height=16, pts=[0, 1]),
        "ten_hour_duration": _encode(
            folder / "long.mp4", width=64, height=48, pts=[0, 10 * 3600 * 10]
        ),
        "mp4_in_zip": folder / "zipped.mp4",
        "gif_mp4_polyglot": folder / "polyglot.mp4",
        "html_script_prefix": folder / "script.mp4",
        "mp4_twice": folder / "twice.mp4",
    }
    corpus["mp4_in_zip"].write_bytes(zipped.getvalue())
    corpus["gif_mp4_polyglot"].write_bytes(
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;" + good.read_bytes()
    )
    corpus["html_script_prefix"].write_bytes(
        b"<html><script>alert(1)</script></html>\n" + good.read_bytes()
    )
    corpus["mp4_twice"].write_bytes(good.read_bytes() * 2)
    return corpus


def _leftovers(*folders: Any) -> list[str]:
    found: list[str] = []
    for folder in folders:
        path = Path(str(folder))
        if path.exists():
            found += [str(p) for p in path.rglob("*") if p.is_file()]
    return found


def test_bad_media_is_rejected_or_fails_with_a_reason(
    client_a: Any, world: Any, settings: Any, tmp_path: Path, throttle_rates: Any
) -> None:
    throttle_rates(upload="1000/hour")
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    settings.VIGIL_VIDEO_MAX_SECONDS = 60
    corpus = build_corpus(tmp_path / "corpus")
    outcomes: dict[str, str] = {}
    accepted: dict[str, str] = {}
    with private_redis(tmp_path / "redis") as redis, celery_publishing_to(redis.url):
        worker = start_worker(
            env=child_env(settings, CELERY_BROKER_URL=redis.url),
            log_path=tmp_path / "worker.log",
            pool="solo",
        )
        try:
            for name, path in corpus.items():
                with path.open("rb") as handle:
                    response = client_a.post(
                        "/api/v1/videos",
                        {
                            "file": handle,
                            "idempotency_key": new_key(),
                            "client_timestamp": now_iso(),
                        },
                        format="multipart",
                    )
                assert not _leftovers(settings.FILE_UPLOAD_TEMP_DIR), f"{name}: upload temp left"
                if response.status_code in (200, 201):
                    accepted[name] = response.json()["id"]
                    continue
                assert 400 <= response.status_code < 500, (name, response.status_code)
                error = response.json()["error"]
                assert error["code"] in REJECT_CODES, (name, error)
                if error["code"] == "media_rejected":
                    assert error["reason"] in MEDIA_REASONS, (name, error)
                    outcomes[name] = f"{response.status_code} {error['reason']}"
                else:
                    outcomes[name] = f"{response.status_code} {error['code']}"

            def finished() -> bool:
                statuses = VideoSubmission.objects.filter(pk__in=accepted.values()).values_list(
                    "status", flat=True
                )
                return all(s in ("done", "failed") for s in statuses)

            wait_for(finished, timeout=60, interval=0.2, what="accepted files to finish")
            time.sleep(0.3)
            assert worker.poll() is None, "the worker died on bad media"
        finally:
            stop_worker(worker)
    for name, pk in accepted.items():
        video = VideoSubmission.objects.get(pk=pk)
        if video.status == "failed":
            assert video.failure_reason in MEDIA_REASONS | {"storage_unreadable"}, video
            outcomes[name] = f"accepted, failed {video.failure_reason}"
        else:
            outcomes[name] = "accepted, done"
    assert not _leftovers(settings.VIGIL_WORK_DIR), "decrypted files left in the work dir"
    # The named expectations that must hold whatever the container library decides:
    assert outcomes["zero_bytes"].endswith("empty")
    assert outcomes["text_named_mp4"].endswith("not_a_video")
    assert outcomes["random_bytes"].endswith("not_a_video")
    assert outcomes["audio_only"].endswith("no_video")
    assert outcomes["absurd_width"].endswith("too_large_frames")
    assert outcomes["ten_hour_duration"].endswith("too_long")
    assert outcomes["mp4_in_zip"].endswith("not_a_video")
    assert outcomes["video_without_audio"] == "accepted, done"
    FIGURES["bad_media"] = outcomes
    record_figures("bad_media", {"files": len(outcomes), **outcomes})


def test_oversize_and_growing_uploads_are_refused_and_leave_nothing(
    client_a: Any, settings: Any, tmp_path: Path, throttle_rates: Any
) -> None:
    throttle_rates(upload="1000/hour")
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_VIDEO_MAX_BYTES = 50_000
    big = make_random_bytes(tmp_path / "big.mp4", size=200_000)
    with big.open("rb") as handle:
        response = client_a.post(
            "/api/v1/videos",
            {"file": handle, "idempotency_key": new_key(), "client_timestamp": now_iso()},
            format="multipart",
        )
    assert response.status_code == 413, response.content
    assert response.json()["error"]["code"] == "payload_too_large"

    # A file that grew after its length was declared: the body is longer than Content-Length.
    good = make_mp4(tmp_path / "good.mp4", seconds=0.5).read_bytes()
    boundary = "vigilBoundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="idempotency_key"\r\n\r\n'
            f"{new_key()}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f'name="client_timestamp"\r\n\r\n{now_iso()}\r\n--{boundary}\r\n'
            'Content-Disposition: form-data; name="file"; filename="grow.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode()
        + good
        + f"\r\n--{boundary}--\r\n".encode()
    )
    declared = len(body) - len(good) // 2
    response = client_a.generic(
        "POST",
        "/api/v1/videos",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
        CONTENT_LENGTH=str(declared),
    )
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["error"]["code"] in REJECT_CODES
    assert not VideoSubmission.objects.exists()
    assert not _leftovers(settings.FILE_UPLOAD_TEMP_DIR, settings.VIGIL_MEDIA_ROOT)
