"""screening.ml.media.probe: decide by reading the file whether it is a video Vigil can use.

Pure code, no database. Every bad input must end in ProbeRejected with a stable reason, never in
another exception (that would be a 500 for the patient and a crashed job for the worker).
"""

from __future__ import annotations

import pkgutil
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import screening.ml
from screening.ml.media.probe import MediaProbe, ProbeRejected, probe_media
from tests import media as m
from tests.media import MediaSet, shared_media

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaSet:
    return shared_media(tmp_path_factory)


def rejected(path: Path, max_seconds: float = 60) -> ProbeRejected:
    with pytest.raises(ProbeRejected) as info:
        probe_media(path, max_seconds=max_seconds)
    return info.value


# --- accepted ------------------------------------------------------------------------------------
def test_good_mp4(media: MediaSet) -> None:
    probe = probe_media(media.good_mp4, max_seconds=60)
    assert isinstance(probe, MediaProbe)
    assert probe.container == "mp4"
    assert probe.video_codec == "h264"
    assert (probe.width, probe.height) == (m.WIDTH, m.HEIGHT)
    assert probe.duration_seconds == pytest.approx(1.0, abs=0.15)
    assert probe.audio_codec == "aac"
    assert probe.audio_sample_rate == m.SAMPLE_RATE


def test_video_without_audio_is_accepted(media: MediaSet) -> None:
    probe = probe_media(media.no_audio_mp4, max_seconds=60)
    assert probe.video_codec == "h264"
    assert probe.audio_codec is None
    assert probe.audio_sample_rate is None


def test_webm_vp9_is_accepted(media: MediaSet) -> None:
    probe = probe_media(media.webm_vp9, max_seconds=60)
    assert probe.container == "webm"
    assert probe.video_codec == "vp9"
    assert (probe.width, probe.height) == (m.WIDTH, m.HEIGHT)
    assert probe.duration_seconds == pytest.approx(1.0, abs=0.15)


def test_the_name_does_not_matter(media: MediaSet, tmp_path: Path) -> None:
    renamed = tmp_path / "recording.txt"
    renamed.write_bytes(media.good_mp4.read_bytes())
    assert probe_media(renamed, max_seconds=60).video_codec == "h264"


def test_duration_at_the_limit_is_accepted(media: MediaSet) -> None:
    assert probe_media(media.long_mp4, max_seconds=2.5).duration_seconds == pytest.approx(
        2.0, abs=0.15
    )


# --- rejected ------------------------------------------------------------------------------------
def test_audio_only_has_no_video(media: MediaSet) -> None:
    assert rejected(media.audio_only_m4a).reason == "no_video"


def test_text_file_named_mp4_is_not_a_video(media: MediaSet) -> None:
    assert rejected(media.text_mp4).reason == "not_a_video"


def test_random_bytes_are_not_a_video(media: MediaSet) -> None:
    assert rejected(media.random_mp4).reason == "not_a_video"


def test_truncated_mp4_is_corrupt(media: MediaSet) -> None:
    """The muxer writes the index (``moov``) after the data, so the first half of the file starts
    with a valid ``ftyp`` box but has no index: FFmpeg cannot open it, and because the magic bytes
    say "this is an MP4" the probe calls it ``corrupt`` rather than ``not_a_video``."""
    assert media.truncated_mp4.read_bytes()[4:8] == b"ftyp"
    assert rejected(media.truncated_mp4).reason == "corrupt"


def test_garbage_behind_valid_magic_is_corrupt(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypisom" + random.Random(3).randbytes(5000))
    assert rejected(fake).reason == "corrupt"


def test_zero_bytes_is_empty(media: MediaSet) -> None:
    assert rejected(media.empty_mp4).reason == "empty"


def test_too_long(media: MediaSet) -> None:
    error = rejected(media.long_mp4, max_seconds=1)
    assert error.reason == "too_long"
    assert error.limit == 1


def test_unsupported_container(tmp_path: Path) -> None:
    import av

    path = tmp_path / "clip.avi"
    with av.open(str(path), mode="w", format="avi") as container:
        m._encode_video(container, m._add_video(container, "mpeg4"), frames=5)
    assert rejected(path).reason == "not_a_video"


# --- robustness ----------------------------------------------------------------------------------
def _mutations(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = [data[: len(data) * k // 20] for k in range(1, 20)]  # truncations
    for _ in range(60):  # bit flips
        b = bytearray(data)
        for _ in range(rng.choice([1, 3, 10])):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        out.append(bytes(b))
    for _ in range(20):  # overwritten runs
        b = bytearray(data)
        i, n = rng.randrange(len(b)), rng.randrange(1, 64)
        b[i : i + n] = rng.randbytes(n)
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("source", ["good_mp4", "webm_vp9", "audio_only_m4a"])
def test_damaged_files_only_ever_raise_probe_rejected(
    media: MediaSet, tmp_path: Path, source: str
) -> None:
    original: Path = getattr(media, source)
    path = tmp_path / f"damaged{original.suffix}"
    reasons: set[str] = set()
    for variant in _mutations(original.read_bytes(), seed=len(source)):
        path.write_bytes(variant)
        try:
            probe = probe_media(path, max_seconds=60)
        except ProbeRejected as exc:
            reasons.add(exc.reason)
        else:
            assert probe.video_codec in {"h264", "vp9"}
            assert probe.width > 0 and probe.height > 0
    assert reasons, "no mutation was rejected at all"
    from config.errors import MediaRejected

    assert reasons <= set(MediaRejected.REASONS)


@pytest.mark.parametrize(
    "name",
    [
        "good_mp4",
        "long_mp4",
        "no_audio_mp4",
        "audio_only_m4a",
        "webm_vp9",
        "truncated_mp4",
        "random_mp4",
        "text_mp4",
        "empty_mp4",
    ],
)
def test_every_sample_is_accepted_or_rejected_cleanly(media: MediaSet, name: str) -> None:
    try:
        result = probe_media(getattr(media, name), max_seconds=1.5)
    except ProbeRejected as exc:
        assert exc.reason in {"too_long", "no_video", "corrupt", "not_a_video", "empty"}
    else:
        assert isinstance(result, MediaProbe)


def test_audio_track_without_a_decoder_is_ignored(
    media: MediaSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A damaged header can leave an audio stream FFmpeg cannot identify (``codec_context`` is
    None); found by the mutation test above. The video is still usable: report no audio."""
    import av

    from screening.ml.media import probe as probe_module

    real_open = av.open

    class AudioWithoutDecoder:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self._real = real_open(*args, **kwargs)
            self.streams = SimpleNamespace(
                video=self._real.streams.video, audio=[SimpleNamespace(codec_context=None)]
            )

        def __getattr__(self, name: str) -> object:
            return getattr(self._real, name)

    monkeypatch.setattr(probe_module.av, "open", AudioWithoutDecoder)
    probe = probe_media(media.good_mp4, max_seconds=60)
    assert probe.video_codec == "h264"
    assert probe.audio_codec is None
    assert probe.audio_sample_rate is None


# --- purity --------------------------------------------------------------------------------------
def test_ml_package_does_not_import_django() -> None:
    modules = sorted(
        info.name for info in pkgutil.walk_packages(screening.ml.__path__, prefix="screening.ml.")
    )
    assert "screening.ml.media.probe" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {['screening.ml', *modules]!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "assert not leaked, leaked\n"
        "print('ok', len(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok")
