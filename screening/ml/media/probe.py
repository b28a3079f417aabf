"""Probe an uploaded file: is it a video Vigil can use? Decides by reading it, not by its name.

Pure code (PyAV, no Django). Rejections carry a stable ``reason`` word.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

ALLOWED_CONTAINERS = frozenset({"mov", "mp4", "m4a", "3gp", "matroska", "webm"})
ALLOWED_VIDEO_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4"})
MAX_SIDE_PIXELS = 4096
_MAGIC_OFFSETS = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"))  # ISO BMFF, EBML (Matroska/WebM)


class ProbeRejected(Exception):
    """The file cannot be used; ``reason`` is one of MediaRejected's reasons."""

    def __init__(self, reason: str, *, limit: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit


@dataclass(frozen=True)
class MediaProbe:
    container: str
    duration_seconds: float
    video_codec: str
    width: int
    height: int
    audio_codec: str | None
    audio_sample_rate: int | None


def _read_head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(64)


def _looks_like_video_container(head: bytes) -> bool:
    return any(head[off : off + len(magic)] == magic for off, magic in _MAGIC_OFFSETS)


def probe_media(path: Path, *, max_seconds: float) -> MediaProbe:
    """Open the file with FFmpeg (through PyAV), check container, streams, size and duration, and
    decode the first video frame. Raises :class:`ProbeRejected`; never anything else for bad input.
    """
    if path.stat().st_size == 0:
        raise ProbeRejected("empty")
    head = _read_head(path)
    known_magic = _looks_like_video_container(head)
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.FFmpegError:
        raise ProbeRejected("corrupt" if known_magic else "not_a_video") from None
    except (OSError, ValueError, UnicodeDecodeError):
        raise ProbeRejected("not_a_video") from None
    try:
        return _inspect(container, max_seconds=max_seconds, head=head)
    finally:
        container.close()


def _inspect(
    container: av.container.InputContainer, *, max_seconds: float, head: bytes
) -> MediaProbe:
    names = set(container.format.name.split(","))
    if not names & ALLOWED_CONTAINERS:
        raise ProbeRejected("not_a_video")
    videos = list(container.streams.video)
    if not videos:
        raise ProbeRejected("no_video")
    video = videos[0]
    codec = video.codec_context.name if video.codec_context else ""
    if codec not in ALLOWED_VIDEO_CODECS:
        raise ProbeRejected("unsupported_codec")
    width, height = int(video.codec_context.width or 0), int(video.codec_context.height or 0)
    if width <= 0 or height <= 0:
        raise ProbeRejected("corrupt")
    if width > MAX_SIDE_PIXELS or height > MAX_SIDE_PIXELS:
        raise ProbeRejected("too_large_frames", limit=MAX_SIDE_PIXELS)
    duration = _duration_seconds(container, video)
    if duration is None or duration <= 0:
        raise ProbeRejected("corrupt")
    if duration > max_seconds:
        raise ProbeRejected("too_long", limit=max_seconds)
    # A damaged header can leave an audio stream with no decoder (codec_context None): ignore it
    # like a missing track instead of failing on it.
    audios = [a for a in container.streams.audio if a.codec_context is not None]
    audio = audios[0] if audios else None
    _decode_first_frame(container, video)
    return MediaProbe(
        container=_container_label(container, names, head),
        duration_seconds=round(duration, 3),
        video_codec=codec,
        width=width,
        height=height,
        audio_codec=audio.codec_context.name if audio is not None else None,
        audio_sample_rate=int(audio.codec_context.sample_rate or 0) if audio is not None else None,
    )


def _container_label(container: av.container.InputContainer, names: set[str], head: bytes) -> str:
    """The file's container. FFmpeg names a demuxer family ("mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm"), so the first name of the family would call every MP4 "3gp": tell the members
    apart by the ISO BMFF major brand or the EBML doctype instead.
    """
    if "mp4" in names:
        brand = str(container.metadata.get("major_brand", "")).strip()
        if brand == "qt":
            return "mov"
        if brand.startswith("3g"):
            return "3gp"
        if brand.startswith("M4A"):
            return "m4a"
        return "mp4"
    if "matroska" in names:
        return "webm" if b"webm" in head else "matroska"
    return sorted(names & ALLOWED_CONTAINERS)[0]


def _duration_seconds(
    container: av.container.InputContainer, video: av.VideoStream
) -> float | None:
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    return None


def _decode_first_frame(container: av.container.InputContainer, video: av.VideoStream) -> None:
    try:
        for packet_count, packet in enumerate(container.demux(video)):
            for _frame in packet.decode():
                return
            if packet_count > 300:
                break
    except (av.FFmpegError, ValueError, MemoryError):
        raise ProbeRejected("corrupt") from None
    raise ProbeRejected("corrupt")
