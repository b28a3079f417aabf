"""Code systems, identifier systems and code tables used by the FHIR mappers (pure constants).

Vigil's own systems live under :data:`VIGIL_BASE`; docs/fhir.md documents every code.
"""

from __future__ import annotations

from typing import Final

VIGIL_BASE: Final = "https://vigil.example.org/fhir"
SYSTEM_PSEUDONYM: Final = f"{VIGIL_BASE}/sid/patient-pseudonym"
SYSTEM_STAFF: Final = f"{VIGIL_BASE}/sid/staff"
SYSTEM_CLINIC: Final = f"{VIGIL_BASE}/sid/clinic"
SYSTEM_MEASURES: Final = f"{VIGIL_BASE}/CodeSystem/vigil-measures"
SYSTEM_OBS_CATEGORY: Final = f"{VIGIL_BASE}/CodeSystem/vigil-observation-category"
SYSTEM_RULE_SET: Final = f"{VIGIL_BASE}/CodeSystem/vigil-rule-set"
SYSTEM_RULE: Final = f"{VIGIL_BASE}/CodeSystem/vigil-rule"
SYSTEM_TIER: Final = f"{VIGIL_BASE}/CodeSystem/vigil-alert-tier"
SYSTEM_CONSENT_SCOPE: Final = f"{VIGIL_BASE}/CodeSystem/vigil-consent-scope"
SYSTEM_CHANNEL: Final = f"{VIGIL_BASE}/CodeSystem/vigil-notification-channel"
SYSTEM_COMM_CATEGORY: Final = f"{VIGIL_BASE}/CodeSystem/vigil-communication-category"
SYSTEM_AUDIT_ACTION: Final = f"{VIGIL_BASE}/CodeSystem/vigil-audit-action"
SYSTEM_AUDIT_RESOURCE: Final = f"{VIGIL_BASE}/sid/audited-resource"
SYSTEM_AUDIT_CHAIN: Final = f"{VIGIL_BASE}/CodeSystem/vigil-audit-chain"
SYSTEM_MODEL: Final = f"{VIGIL_BASE}/sid/model"
SYSTEM_ROLE: Final = f"{VIGIL_BASE}/CodeSystem/vigil-role"

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
OBS_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
RISK_PROBABILITY: Final = "http://terminology.hl7.org/CodeSystem/risk-probability"
FLAG_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/flag-category"
CONSENT_SCOPE: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
AUDIT_EVENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION: Final = "http://hl7.org/fhir/restful-interaction"
PROVENANCE_AGENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION: Final = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"

# --- PHQ-9 / GAD-7 (LOINC) ----------------------------------------------------------------------
PHQ9_PANEL: Final = "44249-1"
GAD7_PANEL: Final = "69737-5"
PHQ9_TOTAL: Final = "44261-6"
GAD7_TOTAL: Final = "70274-6"
PHQ9_ITEM9: Final = "44260-8"

#: Item LOINC codes in questionnaire order; used as QuestionnaireResponse.item.linkId.
ITEM_CODES: Final[dict[str, tuple[str, ...]]] = {
    "phq9": (
        "44250-9",
        "44255-8",
        "44259-0",
        "44254-1",
        "44251-7",
        "44258-2",
        "44252-5",
        "44253-3",
        "44260-8",
    ),
    "gad7": ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"),
}
PANEL_CODES: Final[dict[str, tuple[str, str]]] = {
    "phq9": (PHQ9_PANEL, "PHQ-9 quick depression assessment panel"),
    "gad7": (GAD7_PANEL, "Generalized anxiety disorder 7 item (GAD-7)"),
}
TOTAL_CODES: Final[dict[str, tuple[str, str]]] = {
    "phq9": (PHQ9_TOTAL, "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
    "gad7": (GAD7_TOTAL, "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"),
}
#: LOINC answer list LL358-3 (0..3 frequency answers).
ANSWER_CODES: Final[tuple[tuple[str, str], ...]] = (
    ("LA6568-5", "Not at all"),
    ("LA6569-3", "Several days"),
    ("LA6570-1", "More than half the days"),
    ("LA6571-9", "Nearly every day"),
)

# --- Vigil measures ------------------------------------------------------------------------------
MOOD_SCORE: Final = "daily-mood-score"
MOOD_CONFIDENCE: Final = "daily-mood-confidence"
VOICE_PANEL: Final = "voice-prosody-panel"
FACE_PANEL: Final = "facial-expression-panel"

#: FER expression labels of the face pipeline (``screening.ml.media.face.FER_LABELS``); each label's
#: mean probability is a component ``expression_<label>``.
FACE_EXPRESSION_LABELS: Final = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: Voice panel: stored feature name (a key of ``ProsodyFeatures.as_dict()``) ->
#: (Vigil code, display, UCUM unit code, unit display). No LOINC code exists for these acoustic
#: measures, so all are in the Vigil code system; the code is the stored name except where two
#: panels share a name (``duration_s``).
VOICE_MEASURES: Final[dict[str, tuple[str, str, str, str]]] = {
    "duration_s": ("voice_duration_s", "Duration of the audio analysed", "s", "second"),
    "speech_s": (
        "speech_s",
        "Length of the speech region (first to last speech, pauses included)",
        "s",
        "second",
    ),
    "f0_mean_hz": ("f0_mean_hz", "Mean pitch (F0) over voiced frames", "Hz", "Hz"),
    "f0_median_hz": ("f0_median_hz", "Median pitch (F0) over voiced frames", "Hz", "Hz"),
    "f0_sd_hz": ("f0_sd_hz", "Pitch (F0) variability (SD)", "Hz", "Hz"),
    "f0_range_hz": ("f0_range_hz", "Pitch (F0) range (5th-95th percentile)", "Hz", "Hz"),
    "f0_mean_st": ("f0_mean_st", "Mean pitch (F0), semitones re 100 Hz", "{semitone}", "semitone"),
    "f0_median_st": (
        "f0_median_st",
        "Median pitch (F0), semitones re 100 Hz",
        "{semitone}",
        "semitone",
    ),
    "f0_sd_st": ("f0_sd_st", "Pitch (F0) variability (SD), semitones", "{semitone}", "semitone"),
    "f0_range_st": (
        "f0_range_st",
        "Pitch (F0) range (5th-95th percentile), semitones",
        "{semitone}",
        "semitone",
    ),
    "voiced_fraction": (
        "voiced_fraction",
        "Voiced frames / frames of the speech region",
        "1",
        "ratio",
    ),
    "intensity_mean_db": (
        "intensity_mean_db",
        "Mean intensity of speech frames (dB re full scale)",
        "dB",
        "dBFS",
    ),
    "intensity_sd_db": ("intensity_sd_db", "Intensity variability (SD)", "dB", "dB"),
    "pause_ratio": ("pause_ratio", "Pause time / speech-region time", "1", "ratio"),
    "pause_count": ("pause_count", "Number of pauses (0.25 s or longer)", "{count}", "count"),
    "pause_mean_s": ("pause_mean_s", "Mean pause length", "s", "second"),
    "pause_longest_s": ("pause_longest_s", "Longest pause", "s", "second"),
    "syllable_count": ("syllable_count", "Syllable nuclei detected", "{count}", "count"),
    "speech_rate": (
        "speech_rate",
        "Speech rate (syllable nuclei per second of the speech region)",
        "/s",
        "per second",
    ),
    "articulation_rate": (
        "articulation_rate",
        "Articulation rate (syllable nuclei per second of phonation)",
        "/s",
        "per second",
    ),
    "jitter_local": ("jitter_local", "Jitter (local, frame-level approximation)", "1", "ratio"),
    "shimmer_local": (
        "shimmer_local",
        "Shimmer (local, frame-level approximation)",
        "1",
        "ratio",
    ),
    "hnr_db": ("hnr_db", "Harmonics-to-noise ratio", "dB", "dB"),
    "snr_db": ("snr_db", "Signal-to-noise ratio of the recording", "dB", "dB"),
    "clipped_fraction": ("clipped_fraction", "Fraction of samples clipped", "1", "ratio"),
}
#: Face panel: stored feature name (a key of ``FaceFeatures.as_dict()``, with its ``expression``
#: object flattened to ``expression_<label>``) -> (Vigil code, display, UCUM unit, unit display).
#: ``dominant_expression`` is text (``valueString``): it has no unit.
FACE_MEASURES: Final[dict[str, tuple[str, str, str, str]]] = {
    "face_presence": ("face_presence", "Frames with a face / frames sampled", "1", "ratio"),
    "frames_total": ("frames_total", "Video frames sampled", "{frames}", "frames"),
    "frames_with_face": ("frames_with_face", "Sampled frames with a face", "{frames}", "frames"),
    "duration_s": ("face_duration_s", "Duration of the video analysed", "s", "second"),
    "smile": ("smile", "Smiling (mean intensity 0..1)", "1", "ratio"),
    "frown": ("frown", "Frowning (mean intensity 0..1)", "1", "ratio"),
    "brow_lowering": ("brow_lowering", "Brow lowering (mean intensity 0..1)", "1", "ratio"),
    "eye_openness": ("eye_openness", "Eye openness (1 - mean blink intensity)", "1", "ratio"),
    "blink_rate_per_min": (
        "blink_rate_per_min",
        "Blink rate (undercounted below 10 frames per second)",
        "/min",
        "per minute",
    ),
    "head_motion_deg_per_s": (
        "head_motion_deg_per_s",
        "Head motion (mean rotation speed)",
        "deg/s",
        "degree per second",
    ),
    "gaze_down_fraction": (
        "gaze_down_fraction",
        "Downward gaze (fraction of face frames)",
        "1",
        "ratio",
    ),
    "expressivity": ("expressivity", "Overall facial movement (0..1)", "1", "ratio"),
    **{
        f"expression_{label}": (
            f"expression_{label}",
            f"Facial expression '{label}' (mean FER probability)",
            "1",
            "ratio",
        )
        for label in FACE_EXPRESSION_LABELS
    },
    "dominant_expression": (
        "dominant_expression",
        "Most probable facial expression (FER label)",
        "",
        "",
    ),
}
#: Stored keys that describe the analysis rather than measure anything: not components (the
#: models are the ``device`` and the Provenance agents; abstention is a ``dataAbsentReason``).
VOICE_METADATA: Final = frozenset(
    {"abstain", "quality_flags", "backend", "algorithm_version", "model"}
)
FACE_METADATA: Final = frozenset({"abstain", "reason", "quality_flags", "models"})

#: code -> (display, UCUM unit code, unit display). Everything Vigil measures itself.
MEASURES: Final[dict[str, tuple[str, str, str]]] = {
    MOOD_SCORE: ("Daily fused mood score (-10 worst .. +10 best)", "{score}", "score"),
    MOOD_CONFIDENCE: ("Confidence of the daily fused mood score (0..1)", "1", "ratio"),
    VOICE_PANEL: ("Voice prosody features of one video", "", ""),
    FACE_PANEL: ("Facial expression features of one video", "", ""),
    **{
        code: (display, unit, unit_display)
        for table in (VOICE_MEASURES, FACE_MEASURES)
        for code, display, unit, unit_display in table.values()
    },
}

#: Alert tier -> (risk-probability code, display).
TIER_RISK: Final[dict[str, tuple[str, str]]] = {
    "red": ("high", "High likelihood"),
    "orange": ("moderate", "Moderate likelihood"),
    "yellow": ("low", "Low likelihood"),
}
TIER_PRIORITY: Final[dict[str, str]] = {"red": "stat", "orange": "urgent", "yellow": "routine"}
