"""Generated test media for the decode and prosody tests (nothing downloaded).

* :func:`voiced` : a speech-like synthetic voice with a known F0, syllable-rate loudness pulses and
  silent pauses at known places (a glottal-pulse-ish harmonic series).
* :func:`espeak` : real synthetic speech from espeak-ng (``-s`` words per minute, ``-p`` pitch
  0-99) when the binary is installed, resampled to 16 kHz.
* :func:`make_video` : an H.264 (+ AAC) MP4 of any size, fps and length, written with PyAV, showing
  a real face (``skimage.data.astronaut()``) that moves a little from frame to frame.
* Hostile files: a Y4M header claiming a huge frame, a Matroska file whose header declares 10
  hours.
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from screening.ml.media.prosody import FrameContours, ProsodyFeatures, librosa_analysis

SR = 16_000
ESPEAK = shutil.which("espeak-ng")
HAS_ESPEAK = ESPEAK is not None

SENTENCE = (
    "I have been sleeping badly for a few weeks and I feel tired most of the day. "
    "Some mornings it is hard to get up, but talking to my sister helps a little."
)


def voiced(
    f0: float,
    seconds: float,
    *,
    sr: int = SR,
    pauses: Sequence[tuple[float, float]] = (),
    syllable_rate: float = 4.0,
    amplitude: float = 0.3,
    vibrato_cents: float = 0.0,
    noise: float = 0.002,
    seed: int = 0,
) -> np.ndarray:
    """A voiced signal with fundamental ``f0`` Hz, loudness pulsing ``syllable_rate`` times a
    second (one "syllable" per pulse), and silences at the ``(start_s, length_s)`` ``pauses``.

    Harmonics fall at 12 dB/octave (like a glottal source); a little white noise keeps it from being
    mathematically perfect. ``vibrato_cents`` adds a slow 5 Hz pitch wobble.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * sr)
    t = np.arange(n) / sr
    inst_f0 = f0 * 2.0 ** (vibrato_cents / 1200.0 * np.sin(2 * math.pi * 5.0 * t))
    phase = 2 * math.pi * np.cumsum(inst_f0) / sr
    signal = np.zeros(n)
    for k in range(1, int((sr / 2 - 200) // (f0 * 1.1)) + 1):
        signal += np.sin(k * phase) / k**2
    signal /= np.max(np.abs(signal)) + 1e-12
    # syllables: raised-cosine pulses, deep dips between them (consonant-like)
    if syllable_rate > 0:
        envelope = (0.55 - 0.45 * np.cos(2 * math.pi * syllable_rate * t)) ** 1.5
    else:
        envelope = np.ones(n)
    gate = np.ones(n)
    for start, length in pauses:
        a, b = int(start * sr), int((start + length) * sr)
        gate[a:b] = 0.0
    gate = _smooth_gate(gate, sr)
    out = amplitude * signal * envelope * gate + noise * rng.standard_normal(n) * amplitude
    return out.astype(np.float32)


def _smooth_gate(gate: np.ndarray, sr: int) -> np.ndarray:
    ramp = max(1, int(0.01 * sr))
    kernel = np.hanning(2 * ramp + 1)
    kernel /= kernel.sum()
    return np.convolve(gate, kernel, mode="same")


def silence(seconds: float, *, sr: int = SR, level: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(round(seconds * sr))).astype(np.float32)


def espeak(
    text: str = SENTENCE, *, speed: int = 175, pitch: int = 50, voice: str = "en-us"
) -> np.ndarray:
    """espeak-ng's speech for ``text`` at 16 kHz float32 (requires :data:`HAS_ESPEAK`)."""
    if ESPEAK is None:
        raise RuntimeError("espeak-ng is not installed")
    wav = subprocess.run(
        [ESPEAK, "--stdout", "-v", voice, "-s", str(speed), "-p", str(pitch), text],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate != SR:
        g = math.gcd(SR, int(rate))
        audio = resample_poly(audio, SR // g, int(rate) // g).astype(np.float32)
    return np.asarray(audio, dtype=np.float32)


def with_pauses(chunks: Sequence[np.ndarray], pause_s: float, *, sr: int = SR) -> np.ndarray:
    """The chunks joined by ``pause_s`` of digital silence."""
    gap = np.zeros(round(pause_s * sr), dtype=np.float32)
    parts: list[np.ndarray] = []
    for i, chunk in enumerate(chunks):
        if i:
            parts.append(gap)
        parts.append(chunk)
    return np.concatenate(parts).astype(np.float32)


def _face() -> np.ndarray:
    from skimage import data

    return np.asarray(data.astronaut())[:, :, :3]


def _face_frame(face: np.ndarray, width: int, height: int, index: int) -> np.ndarray:
    rows = np.linspace(0, face.shape[0] - 1, height).astype(int)
    cols = np.linspace(0, face.shape[1] - 1, width).astype(int)
    return np.ascontiguousarray(np.roll(face[rows][:, cols], shift=index % 8, axis=1))


def make_video(
    path: Path,
    *,
    seconds: float,
    width: int = 320,
    height: int = 240,
    fps: int = 10,
    audio: np.ndarray | None = None,
    audio_rate: int = 44_100,
    stereo: bool = False,
) -> Path:
    """An H.264 MP4 (``libx264`` ultrafast) showing the astronaut's face; AAC audio when given
    (``audio`` at :data:`SR`, written at ``audio_rate``, mono or stereo so decoders must mix and
    resample).
    """
    face = _face()
    frames = [_face_frame(face, width, height, i) for i in range(8)]  # cached: 8 shifts
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "tune": "zerolatency"}
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=audio_rate)
            sound.layout = "stereo" if stereo else "mono"
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(frames[index % 8], format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None and audio is not None:
            _encode_audio(container, sound, audio, audio_rate=audio_rate, stereo=stereo)
    return path


def _encode_audio(
    container: av.container.OutputContainer,
    stream: av.AudioStream,
    audio: np.ndarray,
    *,
    audio_rate: int,
    stereo: bool,
) -> None:
    if audio_rate != SR:
        g = math.gcd(SR, audio_rate)
        audio = resample_poly(audio, audio_rate // g, SR // g).astype(np.float32)
    step = 1024
    for start in range(0, audio.size, step):
        chunk = audio[start : start + step].reshape(1, -1)
        if stereo:
            chunk = np.vstack([chunk, chunk])
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(chunk, dtype=np.float32),
            format="fltp",
            layout="stereo" if stereo else "mono",
        )
        frame.sample_rate = audio_rate
        frame.pts = start
        frame.time_base = Fraction(1, audio_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_y4m_header(path: Path, *, width: int, height: int) -> Path:
    """A tiny Y4M file whose header claims a ``width`` x ``height`` picture (one short frame)."""
    header = f"YUV4MPEG2 W{width} H{height} F5:1 Ip A1:1 C420jpeg\nFRAME\n".encode()
    path.write_bytes(header + bytes(1000))
    return path


def make_mkv_declaring(path: Path, *, declared_seconds: float, garbage_body: bool = False) -> Path:
    """A 1 s Matroska (AAC) file whose Segment Info header declares ``declared_seconds``.

    With ``garbage_body`` every byte after the first cluster's header is garbage, so only a reader
    that decides from the header alone gets past it without calling it corrupt.
    """
    with av.open(str(path), mode="w", format="matroska") as container:
        stream = container.add_stream("aac", rate=SR)
        stream.layout = "mono"
        _encode_audio(container, stream, voiced(200.0, 1.0), audio_rate=SR, stereo=False)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # EBML Duration element, 8-byte float, in TimecodeScale (ms)
    if at < 0:
        raise RuntimeError("no Duration element found")
    data[at + 3 : at + 11] = struct.pack(">d", declared_seconds * 1000.0)
    if garbage_body:
        cluster = data.find(b"\x1f\x43\xb6\x75")
        data = data[: cluster + 12] + bytearray(range(256)) * 20
    path.write_bytes(bytes(data))
    return path


# --- named test clips, generated once per process --------------------------------------------

PAUSES_6S = ((1.5, 0.6), (3.5, 0.8))  # 1.4 s of pause in a 6 s clip


def _build_clip(name: str) -> np.ndarray:
    kind, _, arg = name.partition(":")
    if kind == "tone":  # tone:<f0>
        return voiced(float(arg), 4.0)
    if kind == "rate":  # rate:<syllables per second>
        return voiced(180.0, 5.0, syllable_rate=float(arg))
    if kind == "pauses":
        return voiced(220.0, 6.0, pauses=PAUSES_6S)
    if kind == "vibrato":
        return voiced(150.0, 4.0, vibrato_cents=60.0)
    if kind == "noisy":  # noisy:<noise rms relative to the voice's amplitude>
        return voiced(220.0, 4.0, noise=float(arg))
    if kind == "silence":
        return silence(2.0)
    if kind == "quiet":
        return voiced(220.0, 3.0, amplitude=0.001)
    if kind == "short":
        return voiced(220.0, 0.3)
    if kind == "clipped":
        return np.clip(voiced(220.0, 3.0) * 6.0, -1.0, 1.0).astype(np.float32)
    if kind == "espeak_p":  # espeak_p:<pitch 0-99>
        return espeak(pitch=int(arg))
    if kind == "espeak_s":  # espeak_s:<words per minute>
        return espeak(speed=int(arg))
    if kind == "espeak_gaps":  # espeak_gaps:<seconds of silence between sentences>
        parts = [espeak(text=t) for t in ("I feel tired.", "Nothing helps.", "I sleep badly.")]
        return with_pauses(parts, float(arg))
    if kind == "espeak_noise":  # espeak_noise:<SNR in dB against the speech's RMS>
        speech = espeak()
        level = float(np.sqrt(np.mean(speech[np.abs(speech) > 0.01] ** 2)))
        rng = np.random.default_rng(11)
        noise = level * 10 ** (-float(arg) / 20) * rng.standard_normal(speech.size)
        return (speech + noise).astype(np.float32)
    if kind == "espeak_f":
        return espeak(voice="en-us+f3")
    raise KeyError(name)


_CLIPS: dict[str, np.ndarray] = {}


def clip(name: str) -> np.ndarray:
    """A named 16 kHz test clip (see :func:`_build_clip`), built once per process. Read-only."""
    if name not in _CLIPS:
        audio = _build_clip(name)
        audio.setflags(write=False)
        _CLIPS[name] = audio
    return _CLIPS[name]


SYNTHETIC_CLIPS = (
    "tone:120",
    "tone:220",
    "tone:70",
    "tone:400",
    "pauses",
    "vibrato",
    "rate:3",
    "noisy:0.1",
)
ESPEAK_CLIPS = (
    "espeak_p:20",
    "espeak_p:50",
    "espeak_p:80",
    "espeak_s:120",
    "espeak_s:250",
    "espeak_gaps:0.0",
    "espeak_gaps:1.0",
    "espeak_f",
    "espeak_noise:20",
)


_REFERENCE: dict[str, tuple[object, object]] = {}


def librosa_reference(name: str) -> tuple[ProsodyFeatures, FrameContours]:
    """The librosa (pYIN) features and contours of a named clip, computed once per process."""
    if name not in _REFERENCE:
        _REFERENCE[name] = librosa_analysis(clip(name), SR)
    features, contours = _REFERENCE[name]
    assert isinstance(features, ProsodyFeatures) and isinstance(contours, FrameContours)
    return features, contours
