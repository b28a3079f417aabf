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

#: code -> (display, UCUM unit code, unit display). Everything Vigil measures itself.
MEASURES: Final[dict[str, tuple[str, str, str]]] = {
    MOOD_SCORE: ("Daily fused mood score (-10 worst .. +10 best)", "{score}", "score"),
    MOOD_CONFIDENCE: ("Confidence of the daily fused mood score (0..1)", "1", "ratio"),
    VOICE_PANEL: ("Voice prosody features of one video", "", ""),
    FACE_PANEL: ("Facial expression features of one video", "", ""),
    "speech_rate": ("Speech rate (voiced segments per second)", "/s", "per second"),
    "articulation_rate": ("Articulation rate (per second of speech)", "/s", "per second"),
    "f0_std_semitones": ("Pitch (F0) variability", "{semitone}", "semitone"),
    "f0_range_semitones": ("Pitch (F0) range", "{semitone}", "semitone"),
    "loudness_db": ("Loudness (RMS level)", "dB", "dB"),
    "loudness_std_db": ("Loudness variability", "dB", "dB"),
    "pause_ratio": ("Fraction of time spent pausing", "1", "ratio"),
    "mean_pause_s": ("Mean pause length", "s", "second"),
    "smile": ("Smiling (mean intensity 0..1)", "1", "ratio"),
    "frown": ("Frowning (mean intensity 0..1)", "1", "ratio"),
    "brow_lower": ("Brow lowering (mean intensity 0..1)", "1", "ratio"),
    "gaze_down": ("Downward gaze (fraction of frames)", "1", "ratio"),
    "expressivity": ("Overall facial movement (0..1)", "1", "ratio"),
}
VOICE_FEATURES: Final = (
    "speech_rate",
    "articulation_rate",
    "f0_std_semitones",
    "f0_range_semitones",
    "loudness_db",
    "loudness_std_db",
    "pause_ratio",
    "mean_pause_s",
)
FACE_FEATURES: Final = ("smile", "frown", "brow_lower", "gaze_down", "expressivity")

#: Alert tier -> (risk-probability code, display).
TIER_RISK: Final[dict[str, tuple[str, str]]] = {
    "red": ("high", "High likelihood"),
    "orange": ("moderate", "Moderate likelihood"),
    "yellow": ("low", "Low likelihood"),
}
TIER_PRIORITY: Final[dict[str, str]] = {"red": "stat", "orange": "urgent", "yellow": "routine"}
