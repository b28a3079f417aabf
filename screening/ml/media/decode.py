"""Decode an uploaded recording with PyAV (FFmpeg's libraries, no ``ffmpeg`` binary), streaming.

Two readers, both with bounded memory whatever the file's length or resolution:

* :func:`decode_audio`: the first audio track, resampled chunk by chunk (``av.AudioResampler``) to
  mono float32 at 16 kHz. Memory is the output (``4 * sample_rate`` bytes per second, capped by
  ``max_seconds``) plus one packet.
* :func:`iter_frames`: the first video track, sampled at ``fps`` and downscaled by FFmpeg
  (swscale) so the longest side is at most ``max_side``. Only one full-size decoded frame is alive
  at a time (plus the decoder's own reference frames); frames that are not sampled are never
  converted to RGB.

Bad input never escapes as an FFmpeg error: every refusal is a :class:`DecodeRejected` with one of
the stable ``reason`` words in :data:`REASONS`. The header is checked (streams, codec, frame size,
declared duration) before any packet is decoded. No Django here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

DEFAULT_SAMPLE_RATE = 16_000
DEFAULT_FPS = 5.0
DEFAULT_MAX_SIDE = 480
DEFAULT_MAX_PIXELS = 4096 * 4096
_MAX_SIDE_PIXELS = 16_384  # no camera makes a wider frame; a header claiming one is hostile
# A container's declared duration can be slightly shorter than what its packets hold (encoder
# delay, rounding): allow this much before calling decoded content "too long".
_DURATION_SLACK_S = 1.0

REASONS = frozenset(
    {"no_audio", "no_video", "too_long", "corrupt", "unsupported_codec", "too_large_frames"}
)


class DecodeRejected(Exception):
    """The file cannot be decoded for analysis; ``reason`` is one of :data:`REASONS`.

    The message is the reason word only (no file names, no content).
    """

    def __init__(self, reason: str, *, limit: float | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown decode rejection reason: {reason}")
        super().__init__(reason)
        self.reason = reason
        self.limit = limit


@dataclass(frozen=True)
class DecodedAudio:
    """Mono float32 samples in [-1, 1] at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int = DEFAULT_SAMPLE_RATE
    duration_s: float = 0.0


@dataclass(frozen=True)
class SampledFrame:
    """One sampled video frame: its presentation time in seconds and an RGB uint8 HxWx3 array."""

    t: float
    rgb: np.ndarray


@dataclass(frozen=True)
class MediaSummary:
    """What the container header says (nothing decoded)."""

    container: str
    duration_s: float | None
    has_audio: bool
    has_video: bool
    video_codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    audio_codec: str | None
    audio_sample_rate: int | None


def _open(path: Path) -> av.container.InputContainer:
    try:
        if path.stat().st_size == 0:
            raise DecodeRejected("corrupt")
    except OSError:
        raise DecodeRejected("corrupt") from None
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise DecodeRejected("corrupt") from None
    if not isinstance(container, av.container.InputContainer) or not container.streams:
        container.close()
        raise DecodeRejected("corrupt")
    return container


def _declared_duration(container: av.container.InputContainer) -> float | None:
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    durations = [
        float(s.duration * s.time_base)
        for s in container.streams
        if s.duration is not None and s.duration > 0 and s.time_base is not None
    ]
    return max(durations) if durations else None


def _check_duration(container: av.container.InputContainer, max_seconds: float) -> None:
    declared = _declared_duration(container)
    if declared is not None and declared > max_seconds:
        raise DecodeRejected("too_long", limit=max_seconds)


def _audio_stream(container: av.container.InputContainer) -> av.AudioStream | None:
    streams = list(container.streams.audio)
    if not streams:
        return None
    usable = [s for s in streams if s.codec_context is not None]
    if not usable:
        raise DecodeRejected("unsupported_codec")
    return usable[0]


def _video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    streams = [s for s in container.streams.video if not _is_cover_art(s)]
    if not streams:
        return None
    usable = [s for s in streams if s.codec_context is not None]
    if not usable:
        raise DecodeRejected("unsupported_codec")
    return usable[0]


def _is_cover_art(stream: av.VideoStream) -> bool:
    # An attached picture (album art in an .m4a) is a "video stream" with one still frame.
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def decode_audio(
    path: Path,
    *,
    max_seconds: float,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    require: bool = True,
) -> DecodedAudio | None:
    """The first audio track as mono float32 at ``sample_rate``.

    Returns ``None`` when the file has no audio track and ``require`` is false. Raises
    :class:`DecodeRejected` (``no_audio``, ``too_long``, ``corrupt``, ``unsupported_codec``).
    """
    container = _open(path)
    try:
        stream = _audio_stream(container)
        if stream is None:
            if require:
                raise DecodeRejected("no_audio")
            return None
        _check_duration(container, max_seconds)
        samples = _decode_audio_stream(
            container, stream, max_seconds=max_seconds, sample_rate=sample_rate
        )
    finally:
        container.close()
    if samples.size == 0:
        raise DecodeRejected("corrupt")
    return DecodedAudio(
        samples=samples, sample_rate=sample_rate, duration_s=samples.size / sample_rate
    )


def _decode_audio_stream(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    *,
    max_seconds: float,
    sample_rate: int,
) -> np.ndarray:
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    limit = math.ceil((max_seconds + _DURATION_SLACK_S) * sample_rate)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                for out in resampler.resample(frame):
                    total += _append(chunks, out)
                if total > limit:
                    raise DecodeRejected("too_long", limit=max_seconds)
        for out in resampler.resample(None):
            total += _append(chunks, out)
    except av.FFmpegError:
        if total == 0:
            raise DecodeRejected("corrupt") from None
        # A damaged tail (a truncated upload) still leaves usable audio before the damage.
    except (ValueError, MemoryError):
        raise DecodeRejected("corrupt") from None
    if total > limit:
        raise DecodeRejected("too_long", limit=max_seconds)
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    samples = np.concatenate(chunks)
    np.clip(samples, -1.0, 1.0, out=samples)
    return samples


def _append(chunks: list[np.ndarray], frame: av.AudioFrame) -> int:
    array = frame.to_ndarray()  # packed "flt" mono: shape (1, n)
    data = np.asarray(array, dtype=np.float32).reshape(-1).copy()
    chunks.append(data)
    return int(data.size)


def _scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _check_frame_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels or max(width, height) > _MAX_SIDE_PIXELS:
        raise DecodeRejected("too_large_frames", limit=max_pixels)


def iter_frames(
    path: Path,
    *,
    fps: float = DEFAULT_FPS,
    max_side: int = DEFAULT_MAX_SIDE,
    max_seconds: float,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[SampledFrame]:
    """Frames of the first video track sampled at ``fps`` (one per ``1/fps`` s of presentation
    time, the first frame at or after each tick), RGB, longest side at most ``max_side``.

    Raises :class:`DecodeRejected` (``no_video``, ``too_long``, ``corrupt``, ``unsupported_codec``,
    ``too_large_frames``) before yielding anything when the header is unusable; a file whose
    decoded content runs past ``max_seconds`` (a lying header) raises ``too_long`` on the way.
    """
    if fps <= 0 or max_side <= 0 or max_pixels <= 0:
        raise ValueError("fps, max_side and max_pixels must be positive")
    container = _open(path)
    try:
        stream = _video_stream(container)
        if stream is None:
            raise DecodeRejected("no_video")
        context = stream.codec_context
        width, height = int(context.width or 0), int(context.height or 0)
        if width <= 0 or height <= 0:
            raise DecodeRejected("corrupt")
        _check_frame_size(width, height, max_pixels)
        _check_duration(container, max_seconds)
        yield from _sample_frames(
            container,
            stream,
            fps=fps,
            max_side=max_side,
            max_seconds=max_seconds,
            max_pixels=max_pixels,
        )
    finally:
        container.close()


def _sample_frames(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    *,
    fps: float,
    max_side: int,
    max_seconds: float,
    max_pixels: int,
) -> Iterator[SampledFrame]:
    period = 1.0 / fps
    rate = float(stream.average_rate) if stream.average_rate else 0.0
    start = (
        float(stream.start_time * stream.time_base)
        if stream.start_time and stream.time_base is not None
        else 0.0
    )
    next_tick = 0.0
    index = 0
    decoded_any = False
    stream.thread_type = "AUTO"
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                decoded_any = True
                t = _frame_time(frame, index=index, rate=rate, start=start)
                index += 1
                if t > max_seconds + _DURATION_SLACK_S:
                    raise DecodeRejected("too_long", limit=max_seconds)
                if t + 1e-6 < next_tick:
                    continue  # not sampled: never converted
                _check_frame_size(frame.width, frame.height, max_pixels)
                yield SampledFrame(t=round(t, 6), rgb=_to_rgb(frame, max_side))
                next_tick = (math.floor(t / period + 1e-6) + 1) * period
    except av.FFmpegError:
        if not decoded_any:
            raise DecodeRejected("corrupt") from None
        # A damaged tail: the frames before it were good and have been yielded.
    except (ValueError, MemoryError):
        raise DecodeRejected("corrupt") from None
    if not decoded_any:
        raise DecodeRejected("corrupt")


def _frame_time(frame: av.VideoFrame, *, index: int, rate: float, start: float) -> float:
    if frame.pts is not None and frame.time_base is not None:
        return max(0.0, float(frame.pts * frame.time_base) - start)
    return index / rate if rate > 0 else float(index)


def _to_rgb(frame: av.VideoFrame, max_side: int) -> np.ndarray:
    width, height = _scaled_size(frame.width, frame.height, max_side)
    small = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    return np.ascontiguousarray(small.to_ndarray())


def media_summary(path: Path) -> MediaSummary:
    """The header's view of the file (no packet decoded). Raises ``DecodeRejected("corrupt")``."""
    container = _open(path)
    try:
        video = next(iter(container.streams.video), None)
        audio = next(iter(container.streams.audio), None)
        vctx = video.codec_context if video is not None else None
        actx = audio.codec_context if audio is not None else None
        return MediaSummary(
            container=container.format.name,
            duration_s=_declared_duration(container),
            has_audio=audio is not None,
            has_video=video is not None,
            video_codec=vctx.name if vctx is not None else None,
            width=int(vctx.width) if vctx is not None else None,
            height=int(vctx.height) if vctx is not None else None,
            fps=float(video.average_rate) if video is not None and video.average_rate else None,
            audio_codec=actx.name if actx is not None else None,
            audio_sample_rate=int(actx.sample_rate) if actx is not None else None,
        )
    finally:
        container.close()
