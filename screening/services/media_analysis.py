"""The media analysis stage of a video job: run the media pipeline on the decrypted file with the
parts the patient's consent allows, and hand back plain values for storage.

Consent per part, checked when the job runs: no VOICE_ANALYSIS consent means no prosody and no
transcript (speech is voice); no FACE_ANALYSIS consent means no face analysis. The pipeline never
sees a part it may not compute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    #: The distress components behind ``distress`` (face_* and voice_*), kept so that a deferred
    #: voice part can complete it exactly (see :func:`outcome_complete_voice`).
    distress_components: dict[str, float] = field(default_factory=dict)
    #: Set when prosody was deferred to the gpu queue: the decoded 16 kHz mono audio (memory only;
    #: stored encrypted by ``voice_jobs``, never in the outcome's plain values).
    pending_audio: Any = field(default=None, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        return self.prosody is None and self.face is None and self.transcript is None

    def plain(self) -> dict[str, Any]:
        """Every value but the audio, JSON-serialisable (what a deferred voice job keeps)."""
        return {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name != "pending_audio"
        }

    @classmethod
    def from_plain(cls, values: dict[str, Any]) -> MediaOutcome:
        """The inverse of :meth:`plain` (unknown keys are ignored; missing ones take defaults)."""
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        known.pop("pending_audio", None)
        return cls(**known)


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


def prosody_queue() -> str:
    """Where voice prosody runs: ``media`` (in the video job, the default) or ``gpu`` (deferred
    to the gpu queue's worker, which computes it for a batch of videos in one call)."""
    queue = str(getattr(settings, "VIGIL_PROSODY_QUEUE", "media")).strip().lower()
    return queue if queue in PROSODY_QUEUES else "media"


PROSODY_QUEUES = ("media", "gpu")


def media_analyse(
    *,
    path: Path,
    voice: bool,
    face: bool,
    text: bool,
    on_progress: Callable[[float], None],
    defer_prosody: bool | None = None,
) -> MediaOutcome:
    """Run the media pipeline on ``path`` (see the module docstring). ``on_progress`` gets 0..1.
    ``defer_prosody``: leave the prosody to the gpu queue (``video_process`` decides it from
    ``VIGIL_PROSODY_QUEUE`` and the attempt; ``manage.py analyze_media`` never defers).

    ``text`` (TEXT_ANALYSIS consent) additionally allows the transcript, which also needs voice.
    Raises :class:`MediaAnalysisRejected` for a recording the pipeline refuses; anything else it
    raises is the caller's to record as ``analysis_failed``.
    """
    from screening.ml.media.pipeline import PipelineRejected, analyze_media

    if not (voice or face):
        return MediaOutcome(abstentions={"voice": "not_consented", "face": "not_consented"})
    config = media_config_from_settings(defer_prosody=bool(defer_prosody))
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
        transcript=transcript,
        models_info=models,
        timings_ms={k: round(float(v), 1) for k, v in result.timings_ms.items()},
        model_version=f"{distress.version}"[:64],
        pending_audio=result.pending_audio if voice else None,
        **_distress_fields(distress),
    )


def _distress_fields(distress: Any) -> dict[str, Any]:
    """A pipeline ``Distress`` as MediaOutcome's plain fields."""
    return {
        "distress": None if distress.score is None else float(distress.score),
        "distress_confidence": float(distress.confidence),
        "distress_components": {k: float(v) for k, v in distress.components.items()},
    }


def outcome_restrict(
    outcome: MediaOutcome, *, voice: bool, face: bool, text: bool = True
) -> MediaOutcome:
    """The outcome without the parts whose consent is no longer held (``voice``, ``face``,
    ``text``: the consents read under the patient's lock just before storing). Dropping the
    voice drops its prosody and the transcript (speech turned into text), dropping text the
    transcript; the distress is recombined from the parts that stay, as
    :func:`outcome_complete_voice` does. Nothing to drop: the same object.
    """
    from screening.ml.media.pipeline import DistressPart, distress_combine, distress_voice_part

    # a part without consent is dropped, and marked ``not_consented`` if it is not yet
    drop_voice = not voice and (
        outcome.prosody is not None
        or outcome.transcript is not None
        or outcome.abstentions.get("voice") != "not_consented"
    )
    drop_face = not face and (
        outcome.face is not None or outcome.abstentions.get("face") != "not_consented"
    )
    drop_transcript = not text and outcome.transcript is not None
    if not (drop_voice or drop_face or drop_transcript):
        return outcome
    empty = DistressPart(components={}, confidence=0.0)
    voice_part = distress_voice_part(outcome.prosody)
    face_components = {
        k: v for k, v in outcome.distress_components.items() if k.startswith("face_")
    }
    face_part = DistressPart(
        components=face_components,
        # the confidences of the two parts add up (each is at most 0.5, so never clipped)
        confidence=max(0.0, outcome.distress_confidence - voice_part.confidence)
        if face_components
        else 0.0,
    )
    abstentions = dict(outcome.abstentions)
    flags = list(outcome.quality_flags)
    prosody, transcript, face_data = outcome.prosody, outcome.transcript, outcome.face
    if drop_voice:
        prosody = transcript = None
        voice_part = empty
        abstentions["voice"] = abstentions["transcript"] = "not_consented"
        flags = [f for f in flags if not f.startswith(("voice:", "transcript:"))]
    if drop_transcript:
        transcript = None
        abstentions["transcript"] = "not_consented"
        flags = [f for f in flags if not f.startswith("transcript:")]
    if drop_face:
        face_data = None
        face_part = empty
        abstentions["face"] = "not_consented"
        flags = [f for f in flags if not f.startswith("face:")]
    return replace(
        outcome,
        prosody=prosody,
        face=face_data,
        transcript=transcript,
        abstentions=abstentions,
        quality_flags=sorted(set(flags)),
        pending_audio=None,
        **_distress_fields(distress_combine(face_part, voice_part)),
    )


def outcome_unreadable_reason(outcome: MediaOutcome) -> str | None:
    """The input reason to fail with when no part still consented could read the recording, as
    the pipeline's own rule (``_reject_if_unreadable``) for what it ran; ``None`` otherwise.

    Needed after :func:`outcome_restrict`: a video whose voice was withdrawn while it was
    analysed, and whose picture could not be read (``no_video``), has nothing left to show; the
    patient is told why, as if the voice had never been consented, instead of a finished job
    with nothing in it.
    """
    from screening.ml.media.pipeline import INPUT_REASONS

    if outcome.prosody is not None or outcome.face is not None:
        return None
    reasons = [
        str(outcome.abstentions.get(part))
        for part in ("voice", "face")
        if outcome.abstentions.get(part) not in (None, "not_consented")
    ]
    if not reasons or not all(r in INPUT_REASONS for r in reasons):
        return None
    # as the pipeline: a damaged file is the thing to tell the patient
    for reason in ("corrupt", "unsupported_codec", "too_large_frames"):
        if reason in reasons:
            return reason
    return reasons[0]


def outcome_complete_voice(
    outcome: MediaOutcome,
    *,
    voice: bool,
    face: bool,
    text: bool = True,
    features: Any | None,
    failed: bool = False,
    prosody_ms: float = 0.0,
    waited_ms: float = 0.0,
) -> MediaOutcome:
    """Finish an outcome whose prosody was deferred, as :func:`outcome_from_result` would have.

    ``features`` is the clip's ``ProsodyFeatures`` (``None`` with ``failed``: the stage crashed,
    voice abstains ``stage_failed``). ``voice``, ``face`` and ``text`` are the consents *now*: a
    part withdrawn while the job waited is dropped by :func:`outcome_restrict`, the same rule
    the recorder applies under the patient's lock (``models_info`` still lists what ran). The
    distress is recombined from the face part and the new voice part, so the result equals the
    in-line path's.
    """
    if voice:
        outcome = _voice_added(
            outcome,
            features=None if failed else features,
            prosody_ms=prosody_ms,
            waited_ms=waited_ms,
        )
    return outcome_restrict(outcome, voice=voice, face=face, text=text)


def _voice_added(
    outcome: MediaOutcome, *, features: Any | None, prosody_ms: float, waited_ms: float
) -> MediaOutcome:
    """The deferred outcome with the clip's prosody (``None``: the stage crashed, the voice
    abstains ``stage_failed``), its flags, model and timings, and the distress completed with
    the voice part."""
    from screening.ml.media.pipeline import DistressPart, distress_combine, distress_voice_part

    abstentions = {k: v for k, v in outcome.abstentions.items() if k != "voice"}
    flags = [f for f in outcome.quality_flags if not f.startswith("voice:")]
    models = list(outcome.models_info)
    prosody: dict[str, Any] | None = None
    if features is None:
        abstentions["voice"] = "stage_failed"
    else:
        prosody = features.as_dict()
        quality = list(features.quality_flags)
        abstain = bool(features.abstain)
        prosody["abstain"] = abstain
        if abstain:
            abstentions["voice"] = quality[0] if quality else "no_voice"
        flags += [f"voice:{f}" for f in prosody.get("quality_flags") or []]
        models.insert(0, features.model.as_dict())  # the in-line path lists prosody first
    face_components = {
        k: v for k, v in outcome.distress_components.items() if k.startswith("face_")
    }
    face_confidence = outcome.distress_confidence if face_components else 0.0
    distress = distress_combine(
        DistressPart(components=face_components, confidence=face_confidence),
        distress_voice_part(prosody),
    )
    timings = dict(outcome.timings_ms)
    timings["prosody"] = round(float(prosody_ms), 1)
    timings["prosody_queue_wait"] = round(float(waited_ms), 1)
    if "total" in timings:
        timings["total"] = round(float(timings["total"]) + float(prosody_ms), 1)
    return replace(
        outcome,
        prosody=prosody,
        quality_flags=sorted(set(flags)),
        abstentions=abstentions,
        models_info=models,
        timings_ms=timings,
        pending_audio=None,
        **_distress_fields(distress),
    )
