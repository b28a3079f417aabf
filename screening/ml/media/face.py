"""Face analysis of sampled video frames: MediaPipe FaceLandmarker blendshapes + the FER expression
model, summarised per video. Pure code (no Django).

Models (both verified against ``models.json`` before loading, see :mod:`.install`):

* ``face_landmarker.task`` (MediaPipe Tasks ``FaceLandmarker``, VIDEO running mode,
  ``output_face_blendshapes=True`` and the facial transformation matrix). A fresh landmarker is
  made for every video (about 20 ms) so that its tracking state never carries a face from one
  video into the next: the same video always gives the same result.
* ``emotion_model_quantized.tflite`` (FER, run with ``ai_edge_litert``): the face crop as 64x64
  grey ``((gray / 255) - 0.5) * 2`` -> probabilities of angry, disgust, fear, happy, sad,
  surprise, neutral.

Per video (only frames with a face count, except ``face_presence``):

==========================  =====================================================================
``face_presence``           frames with a face / frames sampled
``smile``                   mean of (mouthSmileLeft + mouthSmileRight) / 2, 0..1
``frown``                   mean of (mouthFrownLeft + mouthFrownRight) / 2, 0..1
``brow_lowering``           mean of (browDownLeft + browDownRight) / 2, 0..1
``eye_openness``            1 - mean of (eyeBlinkLeft + eyeBlinkRight) / 2, 0..1
``blink_rate_per_min``      closed-eye episodes (eyeBlink > 0.5 after < 0.35) per minute of face
                            time. At 5 fps most blinks (100-300 ms) fall between samples: an
                            undercount, flagged ``blink_rate_undersampled`` below 10 fps
``head_motion_deg_per_s``   mean rotation speed of the head between consecutive face frames,
                            from the facial transformation matrix
``gaze_down_fraction``      face frames with (eyeLookDownLeft + eyeLookDownRight) / 2 > 0.5
``expressivity``            mean over expression blendshapes of their standard deviation over
                            time (0 = a frozen face); needs 3 face frames
``expression``              mean FER probabilities per label, and ``dominant_expression``
==========================  =====================================================================

It abstains (values ``None``, ``abstain=True`` with a ``reason``) when no frame was given
(``no_video``) or a face is in fewer than ``min_presence`` of the frames
(``face_not_present``); ``face_presence`` is reported either way.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from screening.ml.artifacts import ModelInfo
from screening.ml.media.install import (
    DEFAULT_MODELS_DIR,
    FACE_LANDMARKER,
    FER_EMOTION,
    manifest_load,
    models_verify,
)

FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
DEFAULT_MIN_PRESENCE = 0.3
BLINK_CLOSED, BLINK_OPEN = 0.5, 0.35
GAZE_DOWN_THRESHOLD = 0.5
MIN_FACE_SIDE_PX = 48
#: Blendshapes whose variation over time is "expressivity" (not blinks or gaze).
EXPRESSIVE: tuple[str, ...] = (
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekSquintLeft",
    "cheekSquintRight",
    "eyeSquintLeft",
    "eyeSquintRight",
    "eyeWideLeft",
    "eyeWideRight",
    "jawOpen",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthFunnel",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthPucker",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "noseSneerLeft",
    "noseSneerRight",
)

FloatArray = npt.NDArray[np.float32]


class FrameLike(Protocol):
    """A sampled frame (decode.SampledFrame): ``t`` in seconds, ``rgb`` uint8 HxWx3."""

    @property
    def t(self) -> float: ...

    @property
    def rgb(self) -> npt.NDArray[np.uint8]: ...


@dataclass(kw_only=True)
class FaceFeatures:
    abstain: bool
    reason: str | None
    face_presence: float
    frames_total: int
    frames_with_face: int
    duration_s: float
    smile: float | None = None
    frown: float | None = None
    brow_lowering: float | None = None
    eye_openness: float | None = None
    blink_rate_per_min: float | None = None
    head_motion_deg_per_s: float | None = None
    gaze_down_fraction: float | None = None
    expressivity: float | None = None
    expression: dict[str, float] | None = None
    dominant_expression: str | None = None
    quality_flags: list[str] = field(default_factory=list)
    models: list[ModelInfo] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def rnd(value: float | None) -> float | None:
            return None if value is None else round(float(value), 4)

        return {
            "abstain": self.abstain,
            "reason": self.reason,
            "face_presence": rnd(self.face_presence),
            "frames_total": self.frames_total,
            "frames_with_face": self.frames_with_face,
            "duration_s": rnd(self.duration_s),
            "smile": rnd(self.smile),
            "frown": rnd(self.frown),
            "brow_lowering": rnd(self.brow_lowering),
            "eye_openness": rnd(self.eye_openness),
            "blink_rate_per_min": rnd(self.blink_rate_per_min),
            "head_motion_deg_per_s": rnd(self.head_motion_deg_per_s),
            "gaze_down_fraction": rnd(self.gaze_down_fraction),
            "expressivity": rnd(self.expressivity),
            "expression": (
                None
                if self.expression is None
                else {k: round(float(v), 4) for k, v in self.expression.items()}
            ),
            "dominant_expression": self.dominant_expression,
            "quality_flags": list(self.quality_flags),
            "models": [m.as_dict() for m in self.models],
        }


@dataclass
class _Accumulator:
    """Per-frame values of one video (small vectors only: frames are never kept)."""

    frames_total: int = 0
    bad_frames: int = 0
    times: list[float] = field(default_factory=list)  # every sampled frame
    face_times: list[float] = field(default_factory=list)
    blendshapes: list[dict[str, float]] = field(default_factory=list)
    rotations: list[npt.NDArray[np.float64] | None] = field(default_factory=list)
    fer: list[FloatArray] = field(default_factory=list)
    face_sides: list[float] = field(default_factory=list)


def _rotation(matrix: Any) -> npt.NDArray[np.float64] | None:
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        return None
    r = m[:3, :3]
    norms = np.linalg.norm(r, axis=0)
    if np.any(norms < 1e-9):
        return None
    return np.asarray(r / norms, dtype=np.float64)


def _angle_deg(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    cos = (float(np.trace(a.T @ b)) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def _softmax_if_needed(values: FloatArray) -> FloatArray:
    v = np.asarray(values, dtype=np.float32).reshape(-1)
    if np.all(v >= 0) and abs(float(v.sum()) - 1.0) < 1e-3:
        return v
    e = np.exp(v - v.max())
    return np.asarray(e / e.sum(), dtype=np.float32)


class FaceAnalyzer:
    """Loads both models once (verified); :meth:`analyze_frames` summarises one video."""

    def __init__(self, models_dir: Path = DEFAULT_MODELS_DIR) -> None:
        from ai_edge_litert.interpreter import Interpreter

        manifest = manifest_load()
        paths = models_verify(models_dir, manifest=manifest)
        self.models = [manifest.files[FACE_LANDMARKER].info(), manifest.files[FER_EMOTION].info()]
        # The landmarker bundle is read into memory once: every video gets a fresh landmarker
        # built from these verified bytes (never from a path that could change underneath).
        self._landmarker_bytes = paths[FACE_LANDMARKER].read_bytes()
        self._fer = Interpreter(model_path=str(paths[FER_EMOTION]), num_threads=1)
        self._fer.allocate_tensors()
        self._fer_in = self._fer.get_input_details()[0]["index"]
        self._fer_out = self._fer.get_output_details()[0]["index"]
        self._lock = threading.Lock()

    def _landmarker(self) -> Any:
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=self._landmarker_bytes),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        return vision.FaceLandmarker.create_from_options(options)

    def expression_probabilities(self, face_rgb: npt.NDArray[np.uint8]) -> FloatArray:
        """FER probabilities (FER_LABELS order) of a face crop (any size, RGB uint8)."""
        import cv2

        gray = cv2.cvtColor(np.ascontiguousarray(face_rgb), cv2.COLOR_RGB2GRAY)
        gray = cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA)
        x = ((gray.astype(np.float32) / 255.0) - 0.5) * 2.0
        self._fer.set_tensor(self._fer_in, x.reshape(1, 64, 64, 1))
        self._fer.invoke()
        return _softmax_if_needed(self._fer.get_tensor(self._fer_out))

    def analyze_frames(
        self, frames: Iterable[FrameLike], *, min_presence: float = DEFAULT_MIN_PRESENCE
    ) -> FaceFeatures:
        """Consume ``frames`` one at a time (none is kept) and summarise the video."""
        import mediapipe as mp

        acc = _Accumulator()
        with self._lock:
            landmarker = self._landmarker()
            try:
                last_ms = -1
                for frame in frames:
                    acc.frames_total += 1
                    acc.times.append(float(frame.t))
                    rgb = np.asarray(frame.rgb)
                    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
                        acc.bad_frames += 1
                        continue
                    rgb = np.ascontiguousarray(rgb)
                    ts = max(round(float(frame.t) * 1000.0), last_ms + 1)
                    last_ms = ts
                    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
                    result = landmarker.detect_for_video(image, ts)
                    if not result.face_landmarks or not result.face_blendshapes:
                        continue
                    self._add_face(acc, frame_t=float(frame.t), rgb=rgb, result=result)
            finally:
                landmarker.close()
        return _summarise(acc, min_presence=min_presence, models=self.models)

    def _add_face(
        self, acc: _Accumulator, *, frame_t: float, rgb: npt.NDArray[np.uint8], result: Any
    ) -> None:
        acc.face_times.append(frame_t)
        acc.blendshapes.append(
            {c.category_name: float(c.score) for c in result.face_blendshapes[0]}
        )
        matrices = result.facial_transformation_matrixes or []
        acc.rotations.append(_rotation(matrices[0]) if matrices else None)
        height, width = rgb.shape[:2]
        xs = np.array([p.x for p in result.face_landmarks[0]], dtype=np.float64) * width
        ys = np.array([p.y for p in result.face_landmarks[0]], dtype=np.float64) * height
        x0, x1, y0, y1 = float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())
        side = max(x1 - x0, y1 - y0) * 1.15
        acc.face_sides.append(side)
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        left, top = int(max(0.0, cx - side / 2)), int(max(0.0, cy - side / 2))
        right, bottom = (
            int(min(float(width), cx + side / 2)),
            int(min(float(height), cy + side / 2)),
        )
        if right - left >= 8 and bottom - top >= 8:
            acc.fer.append(self.expression_probabilities(rgb[top:bottom, left:right]))


def _pair_mean(shapes: list[dict[str, float]], left: str, right: str) -> npt.NDArray[np.float64]:
    return np.array([(s.get(left, 0.0) + s.get(right, 0.0)) / 2.0 for s in shapes])


def _sampling_interval(times: list[float]) -> float:
    if len(times) < 2:
        return 0.2
    steps = np.diff(np.asarray(times, dtype=np.float64))
    steps = steps[steps > 0]
    return float(np.median(steps)) if steps.size else 0.2


def _blinks(closure: npt.NDArray[np.float64]) -> int:
    count, closed = 0, False
    for value in closure:
        if not closed and value > BLINK_CLOSED:
            count, closed = count + 1, True
        elif closed and value < BLINK_OPEN:
            closed = False
    return count


def _summarise(acc: _Accumulator, *, min_presence: float, models: list[ModelInfo]) -> FaceFeatures:
    dt = _sampling_interval(acc.times)
    duration = (acc.times[-1] - acc.times[0] + dt) if acc.times else 0.0
    flags: list[str] = []
    if acc.bad_frames:
        flags.append("bad_frames")
    n_face = len(acc.face_times)
    presence = n_face / acc.frames_total if acc.frames_total else 0.0
    features = FaceFeatures(
        abstain=True,
        reason=None,
        face_presence=presence,
        frames_total=acc.frames_total,
        frames_with_face=n_face,
        duration_s=duration,
        quality_flags=flags,
        models=list(models),
    )
    if acc.frames_total == 0:
        features.reason = "no_video"
        return features
    if n_face == 0 or presence < min_presence:
        flags.append("face_not_present")
        features.reason = "face_not_present"
        return features

    shapes = acc.blendshapes
    blink = _pair_mean(shapes, "eyeBlinkLeft", "eyeBlinkRight")
    face_minutes = n_face * dt / 60.0
    head_speeds = [
        _angle_deg(a, b) / max(t1 - t0, 1e-3)
        for (a, t0), (b, t1) in zip(
            zip(acc.rotations, acc.face_times, strict=True),
            zip(acc.rotations[1:], acc.face_times[1:], strict=True),
            strict=False,
        )
        if a is not None and b is not None
    ]
    expressivity: float | None = None
    if n_face >= 3:
        matrix = np.array([[s.get(name, 0.0) for name in EXPRESSIVE] for s in shapes])
        expressivity = float(matrix.std(axis=0).mean())
    expression: dict[str, float] | None = None
    dominant: str | None = None
    if acc.fer:
        mean = np.mean(np.stack(acc.fer), axis=0)
        expression = {label: float(p) for label, p in zip(FER_LABELS, mean, strict=True)}
        dominant = FER_LABELS[int(np.argmax(mean))]

    if presence < 0.6:
        flags.append("low_face_presence")
    if duration < 3.0:
        flags.append("short_video")
    if dt > 0.1:
        flags.append("blink_rate_undersampled")
    if float(np.median(acc.face_sides)) < MIN_FACE_SIDE_PX:
        flags.append("small_face")
    if n_face < 3:
        flags.append("few_face_frames")
    features.abstain = False
    features.smile = float(_pair_mean(shapes, "mouthSmileLeft", "mouthSmileRight").mean())
    features.frown = float(_pair_mean(shapes, "mouthFrownLeft", "mouthFrownRight").mean())
    features.brow_lowering = float(_pair_mean(shapes, "browDownLeft", "browDownRight").mean())
    features.eye_openness = float(1.0 - blink.mean())
    features.blink_rate_per_min = (_blinks(blink) / face_minutes) if face_minutes > 0 else None
    features.head_motion_deg_per_s = float(np.mean(head_speeds)) if head_speeds else None
    gaze_down = _pair_mean(shapes, "eyeLookDownLeft", "eyeLookDownRight") > GAZE_DOWN_THRESHOLD
    features.gaze_down_fraction = float(np.mean(gaze_down))
    features.expressivity = expressivity
    features.expression = expression
    features.dominant_expression = dominant
    return features


@lru_cache(maxsize=4)
def _analyzer(models_dir: str) -> FaceAnalyzer:
    return FaceAnalyzer(Path(models_dir))


def get_face_analyzer(models_dir: Path = DEFAULT_MODELS_DIR) -> FaceAnalyzer:
    """The process's analyzer for ``models_dir`` (models verified and loaded on first use)."""
    return _analyzer(str(Path(models_dir).resolve()))
