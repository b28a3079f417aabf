"""A synthetic "distressed" recording for ``manage.py demo_scenario`` (no patient, no real voice).

It is built to read as distressed by the media pipeline's documented heuristic
(``screening.ml.media.pipeline.distress_estimate``), not to fake a score: the voice is a low
(``F0_HZ``), flat (under half a semitone of drift) vowel-like buzz, spoken slowly (about 1.5
syllables per second) in short runs separated by long pauses (``PAUSE_S``), so the voice parts
"flat pitch", "slow speech" and "long pauses" are high. The picture is a face
(``skimage.data.astronaut()``, when scikit-image is importable) made to look low: its smiling
mouth is mirrored top to bottom (a downturned mouth), its brows are pulled down a few pixels and
the room is dimmed, so the face parts "low smile", "frown", "brow lowering" and "sad/fear" read
high (measured: distress 0.81, voice 0.97, face 0.65; the astronaut's own smile gives 0.47).
Without scikit-image the frames are plain grey (the face stage then abstains and the voice alone
gives the distress).

The pipeline computes the real score; the scenario prints it next to the rule's threshold.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 16_000
FPS = 10
WIDTH, HEIGHT = 320, 240
F0_HZ = 105.0
SYLLABLE_S = 0.32
SYLLABLE_GAP_S = 0.38
SYLLABLES_PER_RUN = 2
PAUSE_S = 3.2
SECONDS = 30.0
#: regions of the 512x512 astronaut image (rows, then columns): the mouth and the brows
MOUTH_BOX = (128, 168, 192, 258)
BROW_BOX = (80, 100, 180, 270)
BROW_SHIFT = 4


def _face_image() -> np.ndarray | None:
    try:
        from skimage import data  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    image = np.asarray(data.astronaut())[:, :, :3].copy()  # 512x512, the face near the top
    y0, y1, x0, x1 = MOUTH_BOX
    image[y0:y1, x0:x1] = image[y0:y1, x0:x1][::-1]  # the smile mirrored: a downturned mouth
    y0, y1, x0, x1 = BROW_BOX
    image[y0 + BROW_SHIFT : y1 + BROW_SHIFT, x0:x1] = image[y0:y1, x0:x1].copy()  # brows lowered
    image = image.astype(np.float32)
    rows = np.linspace(0, image.shape[0] - 1, HEIGHT).astype(int)
    cols = np.linspace(0, image.shape[1] - 1, WIDTH).astype(int)
    small = image[rows][:, cols] * 0.75  # a dim room
    return np.ascontiguousarray(np.clip(small, 0, 255).astype(np.uint8))


def _frame(base: np.ndarray | None, index: int) -> np.ndarray:
    if base is None:
        grey = 90 + (index % 3)
        return np.full((HEIGHT, WIDTH, 3), grey, dtype=np.uint8)
    return np.ascontiguousarray(np.roll(base, shift=index % 2, axis=1))


def voice_signal(seconds: float = SECONDS, *, seed: int = 7) -> np.ndarray:
    """Mono float32 at 16 kHz: slow runs of flat, low "syllables" and long silences."""
    rng = np.random.default_rng(seed)
    total = int(seconds * SAMPLE_RATE)
    out = np.zeros(total, dtype=np.float32)
    syllable = int(SYLLABLE_S * SAMPLE_RATE)
    envelope = np.sin(np.linspace(0.0, math.pi, syllable)) ** 1.5
    t = np.arange(syllable) / SAMPLE_RATE
    position = int(0.6 * SAMPLE_RATE)
    n = 0
    while position + syllable < total - SAMPLE_RATE // 2:
        f0 = F0_HZ * 2 ** (rng.normal(0.0, 0.15) / 12)  # well under a semitone between syllables
        phase = 2 * math.pi * f0 * t
        # a vowel-like harmonic stack (falling amplitudes) around a flat fundamental
        wave = sum((0.9**k) * np.sin(k * phase) for k in range(1, 12))
        out[position : position + syllable] += (0.12 * envelope * wave).astype(np.float32)
        n += 1
        if n % SYLLABLES_PER_RUN == 0:
            position += syllable + int(PAUSE_S * SAMPLE_RATE)
        else:
            position += syllable + int(SYLLABLE_GAP_S * SAMPLE_RATE)
    out += rng.normal(0.0, 0.0005, total).astype(np.float32)  # a quiet room, not digital silence
    return np.clip(out, -0.95, 0.95).astype(np.float32)


def write_distressed_video(path: Path, *, seconds: float = SECONDS) -> Path:
    """Write an H.264 + AAC MP4 of ``seconds`` to ``path`` and return it."""
    base = _face_image()
    audio = voice_signal(seconds)
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"preset": "ultrafast", "tune": "zerolatency"}
        sound = container.add_stream("aac", rate=SAMPLE_RATE)
        sound.layout = "mono"
        for index in range(round(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(_frame(base, index), format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        step = 1024
        for start in range(0, audio.size, step):
            chunk = audio[start : start + step].reshape(1, -1)
            aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            aframe.sample_rate = SAMPLE_RATE
            aframe.pts = start
            aframe.time_base = Fraction(1, SAMPLE_RATE)
            container.mux(sound.encode(aframe))
        container.mux(sound.encode(None))
    return path
