"""The media analysis stage of a video job: run the media pipeline on the decrypted file with the
parts the patient's consent allows, and hand back plain values for storage.

Consent per part, checked when the job runs: no VOICE_ANALYSIS consent means no prosody and no
transcript (speech is voice); no FACE_ANALYSIS consent means no face analysis. The pipeline never
sees a part it may not compute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings


class MediaAnalysisRejected(Exception):
    """The pipeline refused the recording for a reason the patient can act on."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message


@dataclass
class MediaOutcome:
    prosody: dict[str, Any] | None = None
    face: dict[str, Any] | None = None
    quality_flags: list[str] = field(default_factory=list)
    abstentions: dict[str, str] = field(default_factory=dict)
    distress: float | None = None
    distress_confidence: float = 0.0
    transcript: str | None = None
    models_info: list[dict[str, Any]] = field(default_factory=list)
    timings_ms: dict[str, Any] = field(default_factory=dict)
    model_version: str = ""

    @property
    def empty(self) -> bool:
        return self.prosody is None and self.face is None and self.transcript is None


def media_config_from_settings(**overrides: Any) -> Any:
    """The pipeline's ``MediaConfig`` from Django settings (``overrides`` win): the one place the
    worker and ``manage.py analyze_media`` read them."""
    from screening.ml.media.install import DEFAULT_MODELS_DIR
    from screening.ml.media.pipeline import MediaConfig

    configured = getattr(settings, "VIGIL_MODELS_DIR", None)
    values: dict[str, Any] = {
        "max_seconds": float(getattr(settings, "VIGIL_VIDEO_MAX_SECONDS", 300)),
        "prosody_backend": str(getattr(settings, "VIGIL_PROSODY_BACKEND", "torch")),
        "fps": float(getattr(settings, "VIGIL_MEDIA_FRAME_FPS", 5.0)),
        "max_side": int(getattr(settings, "VIGIL_MEDIA_FRAME_MAX_SIDE", 480)),
        "whisper_device": str(getattr(settings, "VIGIL_MEDIA_DEVICE", "auto")),
        "face_min_presence": float(getattr(settings, "VIGIL_FACE_MIN_PRESENCE", 0.3)),
        "transcribe": bool(getattr(settings, "VIGIL_TRANSCRIBE", True)),
        "models_dir": Path(configured) if configured else DEFAULT_MODELS_DIR,
    }
    values.update(overrides)
    return MediaConfig(**values)


def media_analyse(
    *, path: Path, voice: bool, face: bool, text: bool, on_progress: Callable[[float], None]
) -> MediaOutcome:
    """Run the media pipeline on ``path`` (see the module docstring). ``on_progress`` gets 0..1.

    ``text`` (TEXT_ANALYSIS consent) additionally allows the transcript, which also needs voice.
    Raises :class:`MediaAnalysisRejected` for a recording the pipeline refuses; anything else it
    raises is the caller's to record as ``analysis_failed``.
    """
    from screening.ml.media.pipeline import PipelineRejected, analyze_media

    if not (voice or face):
        return MediaOutcome(abstentions={"voice": "not_consented", "face": "not_consented"})
    config = media_config_from_settings()
    consent = {
        name for name, allowed in (("voice", voice), ("face", face), ("text", text)) if allowed
    }

    def on_stage(_stage: str, percent: int) -> None:
        on_progress(max(0.0, min(1.0, percent / 100)))

    try:
        result = analyze_media(path, config=config, consent=consent, on_stage=on_stage)
    except PipelineRejected as exc:
        raise MediaAnalysisRejected(exc.reason, exc.message) from None
    return outcome_from_result(result, voice=voice, face=face)


def _version_id(models: list[dict[str, Any]]) -> str:
    version = "+".join(f"{m.get('name', '?')}@{str(m.get('sha256', ''))[:8]}" for m in models)
    return "".join(ch if ch.isalnum() or ch in "_.:-" else "-" for ch in version)[:64] or "media"


def outcome_from_result(result: Any, *, voice: bool, face: bool) -> MediaOutcome:
    """Plain values from a ``MediaAnalysisResult``; parts without consent are dropped again."""
    prosody = dict(result.voice) if voice and result.voice is not None else None
    face_data = result.face.as_dict() if face and result.face is not None else None
    if prosody is not None:
        prosody["abstain"] = bool(result.voice_status.abstain)
    if face_data is not None:
        face_data["abstain"] = bool(result.face_status.abstain)
    abstentions = {
        part: str(status.reason or "abstained")
        for part, status in (
            ("voice", result.voice_status),
            ("face", result.face_status),
            ("transcript", result.transcript_status),
        )
        if status.abstain
    }
    transcript = None
    flags: list[str] = []
    if voice and result.transcript is not None:
        transcript = result.transcript.text or None
        flags += [f"transcript:{f}" for f in result.transcript.quality_flags]
    for part, values in (("voice", prosody), ("face", face_data)):
        flags += [f"{part}:{f}" for f in (values or {}).get("quality_flags") or []]
    distress = result.distress
    models = [m.as_dict() for m in result.models]
    return MediaOutcome(
        prosody=prosody,
        face=face_data,
        quality_flags=sorted(set(flags)),
        abstentions=abstentions,
        distress=None if distress.score is None else float(distress.score),
        distress_confidence=float(distress.confidence),
        transcript=transcript,
        models_info=models,
        timings_ms={k: round(float(v), 1) for k, v in result.timings_ms.items()},
        model_version=f"{distress.version}"[:64],
    )
