"""Small test media, generated with PyAV into a folder the caller owns (usually ``tmp_path``).

Everything is tiny (160x120, 10 fps, 1-2 s) so the suite stays fast. :func:`shared_media` builds
the whole set once per process; test modules wrap it in a session-scoped fixture.

The picture is a real face (``skimage.data.astronaut()``) when scikit-image is importable, so later
face-analysis stages have something to find; otherwise moving coloured frames.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT, FPS = 160, 120, 10
SAMPLE_RATE = 16_000
TEXT_PAYLOAD = b"This is a diary, not a video. " * 40


def _base_image() -> np.ndarray | None:
    try:
        from skimage import data  # type: ignore[import-not-found]
    except ImportError:
        return None
    image = np.asarray(data.astronaut())[:, :, :3]  # 512x512 RGB, a face near the top middle
    rows = np.linspace(0, image.shape[0] - 1, HEIGHT).astype(int)
    cols = np.linspace(0, image.shape[1] - 1, WIDTH).astype(int)
    return np.ascontiguousarray(image[rows][:, cols])


_FACE = _base_image()
HAS_FACE = _FACE is not None


def _frame_rgb(index: int) -> np.ndarray:
    """One RGB frame: the face (slightly shifted per frame) or a moving colour gradient."""
    if _FACE is not None:
        return np.ascontiguousarray(np.roll(_FACE, shift=index % 4, axis=1))
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    phase = index * 12
    red = (x * 255 // WIDTH + phase) % 256
    green = (y * 255 // HEIGHT + 2 * phase) % 256
    blue = np.full_like(x, (64 + 9 * index) % 256)
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def _tone(n_samples: int, start: int) -> np.ndarray:
    t = (np.arange(start, start + n_samples) / SAMPLE_RATE).astype(np.float32)
    return (0.2 * np.sin(2 * math.pi * 220.0 * t)).astype(np.float32).reshape(1, -1)


def _add_video(container: av.container.OutputContainer, codec: str) -> av.VideoStream:
    stream = container.add_stream(codec, rate=FPS)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    if codec == "libx264":
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
    elif codec == "libvpx-vp9":
        stream.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    return stream


def _encode_video(
    container: av.container.OutputContainer, stream: av.VideoStream, frames: int
) -> None:
    for index in range(frames):
        frame = av.VideoFrame.from_ndarray(_frame_rgb(index), format="rgb24")
        frame.pts = index
        frame.time_base = Fraction(1, FPS)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _encode_audio(
    container: av.container.OutputContainer, stream: av.AudioStream, seconds: float
) -> None:
    total = int(seconds * SAMPLE_RATE)
    step = 1024
    for start in range(0, total, step):
        n = min(step, total - start)
        frame = av.AudioFrame.from_ndarray(_tone(n, start), format="fltp", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        frame.time_base = Fraction(1, SAMPLE_RATE)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _add_aac(container: av.container.OutputContainer) -> av.AudioStream:
    stream = container.add_stream("aac", rate=SAMPLE_RATE)
    stream.layout = "mono"
    return stream


def make_mp4(path: Path, *, seconds: float = 1.0, audio: bool = True) -> Path:
    """An H.264 (+ AAC when ``audio``) MP4, ``seconds`` long."""
    with av.open(str(path), mode="w", format="mp4") as container:
        video = _add_video(container, "libx264")
        sound = _add_aac(container) if audio else None
        _encode_video(container, video, frames=round(seconds * FPS))
        if sound is not None:
            _encode_audio(container, sound, seconds)
    return path


def make_audio_only_m4a(path: Path, *, seconds: float = 1.0) -> Path:
    with av.open(str(path), mode="w", format="ipod") as container:
        _encode_audio(container, _add_aac(container), seconds)
    return path


def make_webm_vp9(path: Path, *, seconds: float = 1.0) -> Path:
    with av.open(str(path), mode="w", format="webm") as container:
        _encode_video(container, _add_video(container, "libvpx-vp9"), frames=round(seconds * FPS))
    return path


def make_truncated(source: Path, path: Path, *, keep: float = 0.5) -> Path:
    """The first ``keep`` fraction of ``source``'s bytes (an upload cut off half-way)."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def make_random_bytes(path: Path, *, size: int = 20_000, seed: int = 1234) -> Path:
    path.write_bytes(np.random.default_rng(seed).bytes(size))
    return path


def make_text_file(path: Path) -> Path:
    path.write_bytes(TEXT_PAYLOAD)
    return path


def make_empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


@dataclass(frozen=True)
class MediaSet:
    folder: Path
    good_mp4: Path  # H.264 + AAC, 1 s
    long_mp4: Path  # H.264 + AAC, 2 s (over a 1 s limit)
    no_audio_mp4: Path  # H.264 only
    audio_only_m4a: Path  # AAC only
    webm_vp9: Path  # VP9, no audio
    truncated_mp4: Path  # first half of good_mp4's bytes
    random_mp4: Path  # random bytes named .mp4
    text_mp4: Path  # a text file named .mp4
    empty_mp4: Path  # zero bytes


def build_media_set(folder: Path) -> MediaSet:
    folder.mkdir(parents=True, exist_ok=True)
    good = make_mp4(folder / "good.mp4", seconds=1.0)
    return MediaSet(
        folder=folder,
        good_mp4=good,
        long_mp4=make_mp4(folder / "long.mp4", seconds=2.0),
        no_audio_mp4=make_mp4(folder / "silent.mp4", audio=False),
        audio_only_m4a=make_audio_only_m4a(folder / "voice.m4a"),
        webm_vp9=make_webm_vp9(folder / "clip.webm"),
        truncated_mp4=make_truncated(good, folder / "truncated.mp4"),
        random_mp4=make_random_bytes(folder / "random.mp4"),
        text_mp4=make_text_file(folder / "notes.mp4"),
        empty_mp4=make_empty(folder / "empty.mp4"),
    )


_SHARED: dict[int, MediaSet] = {}


def shared_media(tmp_path_factory: object) -> MediaSet:
    """The media set, built once per test process (``tmp_path_factory`` is pytest's fixture)."""
    pid = os.getpid()
    if pid not in _SHARED:
        folder = tmp_path_factory.mktemp("media")  # type: ignore[attr-defined]
        _SHARED[pid] = build_media_set(folder)
    return _SHARED[pid]
