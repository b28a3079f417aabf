"""One recording through every media stage: decode, voice prosody, face, transcript, distress.

Pure code (no Django): :func:`analyze_media` takes a local file path, a :class:`MediaConfig` and the
consent scopes the patient holds, and returns a :class:`MediaAnalysisResult`.

* The file is decoded once: the audio track fully (16 kHz mono float32, only with voice consent),
  the video frames streamed at ``config.fps`` straight into the face analyzer (never all in
  memory).
* Consent per modality: no ``voice`` -> neither prosody nor transcript (the audio is not even
  decoded); no ``face`` -> no face features; the transcript also needs ``text`` (or
  ``transcript``), since it turns speech into diary-like text.
* Whole-file problems raise :class:`PipelineRejected` with a stable ``reason`` and a message a
  patient can act on (:data:`PATIENT_MESSAGES`): an empty, damaged, unreadable or too long file, or
  one with none of the tracks the consented stages need (``no_audio`` when only voice may be
  analysed, ``no_video`` when only the face may be). A stage that cannot use its input abstains
  instead (``abstain`` + ``reason`` + ``patient_message``): an audio-only file gives voice features
  and a face abstention ``no_video``; a silent room gives ``too_quiet``; a stage that crashes on
  bad data abstains ``stage_failed`` (the exception's class name is logged, nothing else). A
  missing or tampered model file is not bad data: its ModelIntegrityError propagates.
* With ``config.defer_prosody`` the voice's prosody is left for a later batch (the gpu queue's
  worker, many recordings per call): the result carries the decoded audio in ``pending_audio``,
  a voice status ``pending`` and a face-only distress, which :func:`distress_voice_part` and
  :func:`distress_combine` complete exactly as :func:`distress_estimate` would have.
* ``distress`` (:func:`distress_estimate`) is a documented heuristic in [0, 1] with a confidence,
  evidence for the risk engine's ``media_distress`` signal, not a diagnosis.

:meth:`MediaAnalysisResult.as_dict` keeps the transcript's text (and segment texts) under its own
key, apart from the features, so the caller can encrypt it separately.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from screening.ml.artifacts import ModelInfo, ModelIntegrityError
from screening.ml.media.decode import DecodeRejected, SampledFrame, decode_audio, iter_frames
from screening.ml.media.face import DEFAULT_MIN_PRESENCE, FaceFeatures, get_face_analyzer
from screening.ml.media.install import DEFAULT_MODELS_DIR
from screening.ml.media.transcript import Transcript, get_transcriber

logger = logging.getLogger(__name__)

DISTRESS_VERSION = "media-distress-heuristic-1"

#: reason -> a message the patient can act on (shown by the app; no patient data in it).
PATIENT_MESSAGES: dict[str, str] = {
    "empty": "The recording is empty: please record it again.",
    "corrupt": "The recording is damaged: please record it again.",
    "unsupported_codec": "We cannot read this recording's format: please record it in the app.",
    "too_long": "The recording is too long: please keep it under the time limit.",
    "too_large_frames": "The video's picture is too large: please record it in the app.",
    "no_audio": "We could not hear anything: please record again with sound on.",
    "no_video": "We could not see a picture: please record a video, not only sound.",
    "too_quiet": "We could not hear you: please record somewhere quieter, close to the phone.",
    "low_snr": "There was too much noise around you: please record somewhere quieter.",
    "no_voice": "We could not hear your voice: please speak while you record.",
    "too_short": "The recording is too short: please speak for at least a few seconds.",
    "clipped": "The sound was distorted: please hold the phone a little further away.",
    "no_speech": "We could not make out any words: please speak clearly while you record.",
    "face_not_present": "We could not see your face: please keep it in the picture, in good light.",
    "no_consent": "Nothing was analysed: no analysis of this recording is consented to.",
    "stage_failed": "We could not analyse this recording: please record it again.",
}
#: Reasons that mean the stage could not read its input at all (not a quality judgement).
INPUT_REASONS = frozenset(
    {"empty", "corrupt", "unsupported_codec", "too_large_frames", "no_audio", "no_video"}
)
#: File-level reasons that always reject, whatever else could be read.
FATAL_REASONS = frozenset({"empty", "too_long"})
_STAGES = ("decode_audio", "prosody", "face", "transcript", "done")


class PipelineRejected(Exception):
    """The recording cannot be analysed. ``reason`` is stable; ``message`` is for the patient."""

    def __init__(self, reason: str, *, limit: float | None = None) -> None:
        self.reason = reason
        self.limit = limit
        self.message = PATIENT_MESSAGES.get(reason, PATIENT_MESSAGES["stage_failed"])
        super().__init__(reason)


@dataclass(frozen=True, kw_only=True)
class MediaConfig:
    max_seconds: float = 300.0
    prosody_backend: str = "torch"
    fps: float = 5.0
    max_side: int = 480
    face_min_presence: float = DEFAULT_MIN_PRESENCE
    transcribe: bool = True
    models_dir: Path = DEFAULT_MODELS_DIR
    whisper_device: str = "auto"
    whisper_beam_size: int = 1
    #: Leave prosody to a later batch (the gpu queue): the result then carries the decoded audio
    #: in ``pending_audio`` and a voice status ``pending`` (see :func:`analyze_media`).
    defer_prosody: bool = False


@dataclass(kw_only=True)
class StageStatus:
    """Whether a modality produced features; ``reason`` says why not."""

    abstain: bool
    reason: str | None = None

    @property
    def patient_message(self) -> str | None:
        if self.reason is None or self.reason in {"not_consented", "disabled"}:
            return None
        return PATIENT_MESSAGES.get(self.reason, PATIENT_MESSAGES["stage_failed"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "abstain": self.abstain,
            "reason": self.reason,
            "patient_message": self.patient_message,
        }


@dataclass(frozen=True, kw_only=True)
class Distress:
    """Heuristic distress in [0, 1] (``None`` when nothing could be read) and its confidence."""

    score: float | None
    confidence: float
    components: dict[str, float]
    version: str = DISTRESS_VERSION

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": None if self.score is None else round(self.score, 4),
            "confidence": round(self.confidence, 4),
            "components": {k: round(v, 4) for k, v in self.components.items()},
            "version": self.version,
        }


@dataclass(kw_only=True)
class MediaAnalysisResult:
    consent: list[str]
    duration_s: float | None
    voice_status: StageStatus
    face_status: StageStatus
    transcript_status: StageStatus
    voice: dict[str, Any] | None  # ProsodyFeatures.as_dict()
    face: FaceFeatures | None
    transcript: Transcript | None
    distress: Distress
    models: list[ModelInfo] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: 16 kHz mono float32 samples whose prosody was deferred (``MediaConfig.defer_prosody``).
    pending_audio: npt.NDArray[np.float32] | None = None

    @property
    def usable(self) -> bool:
        return not (self.voice_status.abstain and self.face_status.abstain)

    def features_dict(self) -> dict[str, Any]:
        """Everything but the transcript's words."""
        transcript_meta: dict[str, Any] = {**self.transcript_status.as_dict()}
        if self.transcript is not None:
            transcript_meta.update(
                language=self.transcript.language,
                duration_s=round(self.transcript.duration, 3),
                speech_s=round(self.transcript.speech_duration, 3),
                word_count=self.transcript.word_count,
                segment_count=len(self.transcript.segments),
                quality_flags=list(self.transcript.quality_flags),
                model=self.transcript.model.as_dict(),
            )
        return {
            "consent": list(self.consent),
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "usable": self.usable,
            "voice": {**self.voice_status.as_dict(), "features": self.voice},
            "face": {
                **self.face_status.as_dict(),
                "features": None if self.face is None else self.face.as_dict(),
            },
            "transcript": transcript_meta,
            "distress": self.distress.as_dict(),
            "models": [m.as_dict() for m in self.models],
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }

    def transcript_dict(self) -> dict[str, Any] | None:
        """The words (patient text: store encrypted, never log)."""
        if self.transcript is None:
            return None
        return {
            "text": self.transcript.text,
            "segments": [s.as_dict() for s in self.transcript.segments],
        }

    def as_dict(self) -> dict[str, Any]:
        return {"features": self.features_dict(), "transcript": self.transcript_dict()}


# --- consent ---------------------------------------------------------------------------------

_CONSENT_ALIASES = {
    "voice": "voice",
    "voice_analysis": "voice",
    "face": "face",
    "face_analysis": "face",
    "text": "text",
    "text_analysis": "text",
    "transcript": "text",
}


def consent_normalise(consent: set[str] | frozenset[str]) -> frozenset[str]:
    """Map scope names (``voice`` or ``voice_analysis``, ...) to voice/face/text; others dropped."""
    return frozenset(_CONSENT_ALIASES[c] for c in consent if c in _CONSENT_ALIASES)


# --- distress --------------------------------------------------------------------------------


def _clip01(value: float) -> float:
    return 0.0 if not math.isfinite(value) else max(0.0, min(1.0, value))


def _num(features: dict[str, Any] | None, name: str) -> float | None:
    if not features:
        return None
    value = features.get(name)
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, kw_only=True)
class DistressPart:
    """One modality's share of :func:`distress_estimate`: its components and its confidence."""

    components: dict[str, float]
    confidence: float


def distress_face_part(face: FaceFeatures | None) -> DistressPart:
    """The face's components and confidence (empty when the face abstained)."""
    if face is None or face.abstain:
        return DistressPart(components={}, confidence=0.0)
    parts: dict[str, float] = {}
    if face.smile is not None:
        parts["face_low_smile"] = _clip01(1.0 - face.smile / 0.5)
    if face.frown is not None:
        parts["face_frown"] = _clip01(face.frown / 0.3)
    if face.brow_lowering is not None:
        parts["face_brow_lowering"] = _clip01(face.brow_lowering / 0.4)
    if face.gaze_down_fraction is not None:
        parts["face_gaze_down"] = _clip01(face.gaze_down_fraction)
    if face.expression is not None:
        parts["face_sad_fear"] = _clip01(
            face.expression.get("sad", 0.0) + face.expression.get("fear", 0.0)
        )
    if not parts:
        return DistressPart(components={}, confidence=0.0)
    return DistressPart(components=parts, confidence=0.5 * min(1.0, face.face_presence / 0.8))


def distress_voice_part(voice: dict[str, Any] | None) -> DistressPart:
    """The voice's components and confidence (empty when the voice abstained)."""
    if voice is None or voice.get("abstain", True):
        return DistressPart(components={}, confidence=0.0)
    parts: dict[str, float] = {}
    sd_st = _num(voice, "f0_sd_st")
    if sd_st is not None:
        parts["voice_flat_pitch"] = _clip01((3.0 - sd_st) / 2.0)
    rate = _num(voice, "speech_rate")
    if rate is not None:
        parts["voice_slow_rate"] = _clip01((4.0 - rate) / 2.0)
    ratio, mean_pause = _num(voice, "pause_ratio"), _num(voice, "pause_mean_s")
    if ratio is not None and mean_pause is not None:
        parts["voice_long_pauses"] = (
            _clip01((ratio - 0.15) / 0.35) + _clip01((mean_pause - 0.5) / 1.5)
        ) / 2.0
    if not parts:
        return DistressPart(components={}, confidence=0.0)
    speech = _num(voice, "speech_s") or 0.0
    voiced = _num(voice, "voiced_fraction") or 0.0
    return DistressPart(
        components=parts, confidence=0.5 * min(1.0, speech * min(1.0, voiced / 0.3) / 20.0)
    )


def distress_combine(*parts: DistressPart) -> Distress:
    """The score is the mean of the non-empty parts' means; the confidences add up (at most 1)."""
    components: dict[str, float] = {}
    means: list[float] = []
    confidence = 0.0
    for part in parts:
        if not part.components:
            continue
        components.update(part.components)
        means.append(sum(part.components.values()) / len(part.components))
        confidence += part.confidence
    score = sum(means) / len(means) if means else None
    return Distress(score=score, confidence=min(1.0, confidence), components=components)


def distress_estimate(*, face: FaceFeatures | None, voice: dict[str, Any] | None) -> Distress:
    """Heuristic distress from face and voice features (each part 0 = none .. 1 = strong).

    Face (mean of): low smile ``1 - smile / 0.5``; frown ``frown / 0.3``; brow lowering
    ``brow / 0.4``; gaze-down fraction; sad + fear FER probability. Voice (mean of): flat pitch
    ``(3 - f0_sd_st) / 2`` (0 at >= 3 semitones SD, 1 at <= 1); slow speech
    ``(4 - speech_rate) / 2`` (0 at >= 4 syllables/s, 1 at <= 2); long pauses, the mean of
    ``(pause_ratio - 0.15) / 0.35`` and ``(pause_mean_s - 0.5) / 1.5``. Each part is clipped to
    [0, 1]. The score is the mean of the available modalities' means. Confidence: 0.5 per
    modality present, scaled by its quality (face presence / 0.8; voiced speech seconds / 20),
    at most 1. Uncalibrated: evidence for the risk engine, not a diagnosis.

    A face-only estimate (``distress_face_part``) completed later with the voice's part gives the
    same result: that is how prosody deferred to the gpu queue finishes it.
    """
    return distress_combine(distress_face_part(face), distress_voice_part(voice))


# --- the pipeline ----------------------------------------------------------------------------


class _TimedFrames:
    """Wraps the frame iterator to time decoding apart from analysis."""

    def __init__(self, frames: Iterator[SampledFrame]) -> None:
        self._frames = frames
        self.seconds = 0.0

    def __iter__(self) -> Iterator[SampledFrame]:
        while True:
            start = time.perf_counter()
            try:
                frame = next(self._frames)
            except StopIteration:
                self.seconds += time.perf_counter() - start
                return
            self.seconds += time.perf_counter() - start
            yield frame


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _stage_failed(stage: str, exc: BaseException) -> StageStatus:
    logger.warning("media stage %s failed: %s", stage, exc.__class__.__name__)
    return StageStatus(abstain=True, reason="stage_failed")


def analyze_media(
    path: Path,
    *,
    config: MediaConfig,
    consent: set[str] | frozenset[str],
    on_stage: Callable[[str, int], None] | None = None,
) -> MediaAnalysisResult:
    """Analyse one local recording; see the module docstring. ``on_stage(name, percent)`` is
    called as each stage starts (decode_audio 0, prosody 15, face 30, transcript 75, done 100).
    """
    path = Path(path)
    scopes = consent_normalise(consent)
    progress = on_stage or (lambda _name, _pct: None)
    timings: dict[str, float] = {}
    models: list[ModelInfo] = []
    total_start = time.perf_counter()
    try:
        if path.stat().st_size == 0:
            raise PipelineRejected("empty")
    except OSError:
        raise PipelineRejected("corrupt") from None
    if not scopes & {"voice", "face"}:
        raise PipelineRejected("no_consent")

    # --- audio (decoded once, fully) ---
    progress("decode_audio", 0)
    audio = None
    voice_status = StageStatus(abstain=True, reason="not_consented")
    transcript_status = StageStatus(abstain=True, reason="not_consented")
    if "voice" in scopes:
        start = time.perf_counter()
        try:
            audio = decode_audio(path, max_seconds=config.max_seconds, require=False)
            if audio is None:
                voice_status = StageStatus(abstain=True, reason="no_audio")
        except DecodeRejected as exc:
            if exc.reason in FATAL_REASONS:
                raise PipelineRejected(exc.reason, limit=exc.limit) from None
            voice_status = StageStatus(abstain=True, reason=exc.reason)
        timings["decode_audio"] = _ms(start)
        if audio is None:
            transcript_status = StageStatus(abstain=True, reason=voice_status.reason)
        elif "text" not in scopes:
            transcript_status = StageStatus(abstain=True, reason="not_consented")
        elif not config.transcribe:
            transcript_status = StageStatus(abstain=True, reason="disabled")
    duration = audio.duration_s if audio is not None else None

    # --- prosody ---
    progress("prosody", 15)
    voice: dict[str, Any] | None = None
    pending_audio: npt.NDArray[np.float32] | None = None
    if audio is not None and config.defer_prosody:
        # computed later by prosody_complete() in a batch; the face and transcript go on now
        pending_audio = np.ascontiguousarray(audio.samples, dtype=np.float32)
        voice_status = StageStatus(abstain=False, reason="pending")
    elif audio is not None:
        start = time.perf_counter()
        try:
            from screening.ml.media.prosody import prosody

            features = prosody(audio.samples, audio.sample_rate, backend=config.prosody_backend)
            voice = features.as_dict()
            models.append(features.model)
            flags = list(features.quality_flags)
            voice_status = StageStatus(
                abstain=bool(features.abstain), reason=flags[0] if features.abstain else None
            )
            if features.abstain and not flags:
                voice_status.reason = "no_voice"
        except ModelIntegrityError:
            raise
        except Exception as exc:  # bad data must not crash the pipeline
            voice_status = _stage_failed("prosody", exc)
        timings["prosody"] = _ms(start)

    # --- face (frames streamed) ---
    progress("face", 30)
    face: FaceFeatures | None = None
    face_status = StageStatus(abstain=True, reason="not_consented")
    if "face" in scopes:
        analyzer = get_face_analyzer(config.models_dir)  # integrity errors propagate
        models.extend(analyzer.models)
        start = time.perf_counter()
        raw_frames = iter_frames(
            path, fps=config.fps, max_side=config.max_side, max_seconds=config.max_seconds
        )
        frames = _TimedFrames(raw_frames)
        try:
            face = analyzer.analyze_frames(frames, min_presence=config.face_min_presence)
            face_status = StageStatus(abstain=face.abstain, reason=face.reason)
            if duration is None and face.frames_total:
                duration = face.duration_s
        except DecodeRejected as exc:
            if exc.reason in FATAL_REASONS:
                raise PipelineRejected(exc.reason, limit=exc.limit) from None
            face_status = StageStatus(abstain=True, reason=exc.reason)
        except ModelIntegrityError:
            raise
        except Exception as exc:  # bad data must not crash the pipeline
            face_status = _stage_failed("face", exc)
        finally:
            close = getattr(raw_frames, "close", None)  # a generator: closes the container
            if close is not None:
                close()
        elapsed = _ms(start)
        timings["decode_video"] = frames.seconds * 1000.0
        timings["face"] = max(0.0, elapsed - timings["decode_video"])

    # --- transcript ---
    progress("transcript", 75)
    transcript: Transcript | None = None
    if audio is not None and "text" in scopes and config.transcribe:
        start = time.perf_counter()
        try:
            transcriber = get_transcriber(config.whisper_device)
            transcript = transcriber.transcribe(
                audio.samples, sample_rate=audio.sample_rate, beam_size=config.whisper_beam_size
            )
            models.append(transcript.model)
            transcript_status = StageStatus(
                abstain=not transcript.text, reason=None if transcript.text else "no_speech"
            )
        except ModelIntegrityError:
            raise
        except Exception as exc:  # bad data must not crash the pipeline
            transcript_status = _stage_failed("transcript", exc)
        timings["transcript"] = _ms(start)

    _reject_if_unreadable(scopes, voice_status=voice_status, face_status=face_status)
    distress = distress_estimate(face=face, voice=voice)
    timings["total"] = _ms(total_start)
    progress("done", 100)
    return MediaAnalysisResult(
        consent=sorted(scopes),
        duration_s=duration,
        voice_status=voice_status,
        face_status=face_status,
        transcript_status=transcript_status,
        voice=voice,
        face=face,
        transcript=transcript,
        distress=distress,
        models=models,
        timings_ms=timings,
        pending_audio=pending_audio,
    )


def _reject_if_unreadable(
    scopes: frozenset[str], *, voice_status: StageStatus, face_status: StageStatus
) -> None:
    """Reject when no consented modality could read its input (the file, not its content)."""
    attempted = [
        s for s, scope in ((voice_status, "voice"), (face_status, "face")) if scope in scopes
    ]
    reasons = [s.reason for s in attempted]
    if attempted and all(r in INPUT_REASONS for r in reasons):
        # "corrupt" beats a missing track: a damaged file is the thing to tell the patient
        for reason in ("corrupt", "unsupported_codec", "too_large_frames"):
            if reason in reasons:
                raise PipelineRejected(reason)
        raise PipelineRejected(str(reasons[0]))
