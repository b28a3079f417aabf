"""Streaming decode with PyAV: resampling, frame sampling, downscaling, bounded memory, and a named
rejection (never an FFmpeg exception) for every kind of bad file."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from screening.ml.media import decode
from screening.ml.media.decode import DecodeRejected, decode_audio, iter_frames, media_summary
from tests import media as small_media
from tests.screening.ml.media import media_gen


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("decode")
    tone = media_gen.voiced(220.0, 3.0, syllable_rate=0.0)
    out = {
        # 44.1 kHz stereo AAC: decode must mix down and resample
        "av": media_gen.make_video(
            folder / "av.mp4", seconds=3.0, width=640, height=480, fps=10, audio=tone, stereo=True
        ),
        "portrait": media_gen.make_video(
            folder / "portrait.mp4", seconds=1.0, width=240, height=320
        ),
        "tiny": media_gen.make_video(folder / "tiny.mp4", seconds=1.0, width=96, height=64),
        "huge_header": media_gen.make_y4m_header(folder / "huge.y4m", width=12_000, height=12_000),
        "absurd_header": media_gen.make_y4m_header(
            folder / "absurd.y4m", width=16_384, height=16_384
        ),
        "ten_hours": media_gen.make_mkv_declaring(
            folder / "ten_hours.mkv", declared_seconds=36_000
        ),
        "ten_hours_garbage": media_gen.make_mkv_declaring(
            folder / "ten_hours_garbage.mkv", declared_seconds=36_000, garbage_body=True
        ),
        "one_s_garbage": media_gen.make_mkv_declaring(
            folder / "one_s_garbage.mkv", declared_seconds=1.0, garbage_body=True
        ),
    }
    small = small_media.shared_media(tmp_path_factory)
    out.update(
        good=small.good_mp4,
        no_audio=small.no_audio_mp4,
        audio_only=small.audio_only_m4a,
        truncated=small.truncated_mp4,
        random=small.random_mp4,
        text=small.text_mp4,
        empty=small.empty_mp4,
    )
    out["tone"] = folder / "tone.npy"
    np.save(out["tone"], tone)
    return out


# --- audio -----------------------------------------------------------------------------------


def test_audio_is_16k_mono_float32_from_44k_stereo(files: dict[str, Path]) -> None:
    audio = decode_audio(files["av"], max_seconds=60)
    assert audio is not None
    assert audio.sample_rate == 16_000
    assert audio.samples.dtype == np.float32
    assert audio.samples.ndim == 1
    # 3 s of sound (AAC adds at most a frame of padding at each end)
    assert 2.95 <= audio.duration_s <= 3.15
    assert audio.duration_s == pytest.approx(audio.samples.size / 16_000)
    # the 220 Hz fundamental survives the round trip at the right place in the spectrum
    middle = audio.samples[8_000:40_000]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(middle.size)))
    peak_hz = np.argmax(spectrum) * 16_000 / middle.size
    assert peak_hz == pytest.approx(220.0, abs=2.0)
    assert 0.05 < float(np.max(np.abs(middle))) <= 1.0


def test_audio_other_sample_rate(files: dict[str, Path]) -> None:
    audio = decode_audio(files["av"], max_seconds=60, sample_rate=8_000)
    assert audio is not None
    assert audio.sample_rate == 8_000
    assert 2.95 <= audio.samples.size / 8_000 <= 3.15


def test_video_without_audio(files: dict[str, Path]) -> None:
    with pytest.raises(DecodeRejected) as err:
        decode_audio(files["no_audio"], max_seconds=60)
    assert err.value.reason == "no_audio"
    assert decode_audio(files["no_audio"], max_seconds=60, require=False) is None


def test_audio_only_file_decodes_audio_but_has_no_video(files: dict[str, Path]) -> None:
    audio = decode_audio(files["audio_only"], max_seconds=60)
    assert audio is not None and audio.samples.size > 10_000
    with pytest.raises(DecodeRejected) as err:
        next(iter_frames(files["audio_only"], max_seconds=60))
    assert err.value.reason == "no_video"


def test_audio_too_long(files: dict[str, Path]) -> None:
    with pytest.raises(DecodeRejected) as err:
        decode_audio(files["av"], max_seconds=1.0)
    assert err.value.reason == "too_long"
    assert err.value.limit == 1.0


# --- frames ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fps", "expected"), [(5.0, 15), (2.0, 6), (1.0, 3), (10.0, 30), (30.0, 30)]
)
def test_frame_sampling_rate_is_honoured(files: dict[str, Path], fps: float, expected: int) -> None:
    frames = list(iter_frames(files["av"], fps=fps, max_seconds=60))
    assert len(frames) == expected
    times = np.array([f.t for f in frames])
    assert times[0] == pytest.approx(0.0)
    assert np.all(np.diff(times) > 0)
    step = max(1.0 / fps, 0.1)  # the source has 10 fps: asking for more cannot invent frames
    assert np.allclose(np.diff(times), step, atol=0.011)


def test_frames_are_downscaled_rgb(files: dict[str, Path]) -> None:
    frames = list(iter_frames(files["av"], fps=5, max_side=160, max_seconds=60))
    assert all(f.rgb.shape == (120, 160, 3) and f.rgb.dtype == np.uint8 for f in frames)
    portrait = next(iter_frames(files["portrait"], max_side=160, max_seconds=60))
    assert portrait.rgb.shape == (160, 120, 3)
    # never upscaled
    tiny = next(iter_frames(files["tiny"], max_side=480, max_seconds=60))
    assert tiny.rgb.shape == (64, 96, 3)


def test_frames_show_the_picture(files: dict[str, Path]) -> None:
    """The decoded picture is the astronaut (colour content survives), not a grey or black frame."""
    frame = next(iter_frames(files["av"], max_side=160, max_seconds=60)).rgb.astype(float)
    assert frame.std() > 30
    assert frame.mean(axis=(0, 1)).max() - frame.mean(axis=(0, 1)).min() > 5


def test_abandoning_the_iterator_closes_the_file(files: dict[str, Path]) -> None:
    frames = iter_frames(files["av"], max_seconds=60)
    next(frames)
    frames.close()  # the generator's finally closes the container; no error, no leak
    with pytest.raises(StopIteration):
        next(frames)


def test_frames_too_long(files: dict[str, Path]) -> None:
    with pytest.raises(DecodeRejected) as err:
        next(iter_frames(files["av"], max_seconds=1.0))
    assert err.value.reason == "too_long"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        next(iter_frames(Path("x.mp4"), fps=0, max_seconds=1))


# --- hostile and broken files ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["truncated", "empty", "random", "text"])
def test_broken_files_are_corrupt(files: dict[str, Path], name: str) -> None:
    with pytest.raises(DecodeRejected) as err:
        decode_audio(files[name], max_seconds=60)
    assert err.value.reason == "corrupt"
    with pytest.raises(DecodeRejected) as err:
        next(iter_frames(files[name], max_seconds=60))
    assert err.value.reason == "corrupt"
    assert name not in str(err.value) and ".mp4" not in str(err.value)


def test_missing_file_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(DecodeRejected) as err:
        decode_audio(tmp_path / "nope.mp4", max_seconds=60)
    assert err.value.reason == "corrupt"


def test_header_claiming_huge_frames_is_refused_before_decoding(files: dict[str, Path]) -> None:
    """A 12000x12000 header (a few bytes on disk) would need 200+ MB per decoded frame."""
    with pytest.raises(DecodeRejected) as err:
        next(iter_frames(files["huge_header"], max_seconds=60))
    assert err.value.reason == "too_large_frames"
    # 16384x16384 is beyond what FFmpeg itself accepts: refused too, as unreadable
    with pytest.raises(DecodeRejected) as err:
        next(iter_frames(files["absurd_header"], max_seconds=60))
    assert err.value.reason in {"too_large_frames", "corrupt"}


def test_frame_size_guard_uses_max_pixels(files: dict[str, Path]) -> None:
    with pytest.raises(DecodeRejected) as err:
        next(iter_frames(files["av"], max_seconds=60, max_pixels=320 * 240))
    assert err.value.reason == "too_large_frames"
    assert next(iter_frames(files["av"], max_seconds=60, max_pixels=640 * 480)) is not None


def test_ten_hour_header_is_too_long_without_decoding(files: dict[str, Path]) -> None:
    assert media_summary(files["ten_hours"]).duration_s == pytest.approx(36_000)
    with pytest.raises(DecodeRejected) as err:
        decode_audio(files["ten_hours"], max_seconds=600)
    assert err.value.reason == "too_long"
    # The body after the header is garbage: a decoder that read it would say "corrupt" (as it does
    # for the same garbage under an honest 1 s header), so "too_long" proves nothing was decoded.
    with pytest.raises(DecodeRejected) as err:
        decode_audio(files["ten_hours_garbage"], max_seconds=600)
    assert err.value.reason == "too_long"
    with pytest.raises(DecodeRejected) as err:
        decode_audio(files["one_s_garbage"], max_seconds=600)
    assert err.value.reason == "corrupt"


def test_rejection_reasons_are_the_documented_words() -> None:
    assert {
        "no_audio",
        "no_video",
        "too_long",
        "corrupt",
        "unsupported_codec",
        "too_large_frames",
    } == decode.REASONS
    with pytest.raises(ValueError):
        DecodeRejected("something_else")


def test_media_summary(files: dict[str, Path]) -> None:
    summary = media_summary(files["av"])
    assert summary.has_audio and summary.has_video
    assert (summary.width, summary.height) == (640, 480)
    assert summary.video_codec == "h264" and summary.audio_codec == "aac"
    assert summary.fps == pytest.approx(10.0)
    assert summary.duration_s == pytest.approx(3.0, abs=0.2)


# --- bounded memory --------------------------------------------------------------------------


def _rss_bytes() -> int:
    with Path("/proc/self/statm").open() as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="session")
def clip_720p(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("decode720")
    audio = media_gen.voiced(180.0, 30.0)
    return media_gen.make_video(
        folder / "720p.mp4", seconds=30.0, width=1280, height=720, fps=10, audio=audio
    )


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc for RSS")
def test_decoding_30s_of_720p_streams_in_bounded_memory(clip_720p: Path) -> None:
    """300 frames of 1280x720 are 830 MB as RGB (415 MB as YUV): decoding all of them must stay
    within a small multiple of one frame, because frames are streamed and only samples kept."""
    frame_bytes = 1280 * 720 * 3
    baseline = _rss_bytes()
    tracemalloc.start()
    started = time.perf_counter()
    peak_rss = baseline
    count = 0
    for frame in iter_frames(clip_720p, fps=5, max_side=480, max_seconds=60):
        assert frame.rgb.shape == (270, 480, 3)
        count += 1
        peak_rss = max(peak_rss, _rss_bytes())
    audio = decode_audio(clip_720p, max_seconds=60)
    peak_rss = max(peak_rss, _rss_bytes())
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    elapsed = time.perf_counter() - started
    assert count == 150
    assert audio is not None and audio.duration_s == pytest.approx(30.0, abs=0.1)
    # Python-side: one sampled frame and the 30 s of 16 kHz audio (1.9 MB), not a video's worth
    assert py_peak < 8 * 1024 * 1024
    # process-wide: decoder reference frames and threads, far below 300 frames (830 MB)
    assert peak_rss - baseline < 40 * frame_bytes  # 110 MB
    assert elapsed < 60
