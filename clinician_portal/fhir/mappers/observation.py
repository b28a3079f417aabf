"""Observation: PHQ-9/GAD-7 totals and PHQ-9 item 9 (LOINC, category survey, derivedFrom the
QuestionnaireResponse), and Vigil's own measures (daily fused mood score with its confidence,
voice prosody and facial expression panels; Vigil code system, UCUM units, the producing models
as a logical ``device`` reference).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.common import (
    concept,
    date,
    drop_empty,
    instant,
    meta,
    model_reference,
    quantity,
    ref,
)

logger = logging.getLogger("vigil.fhir")

SURVEY = concept(codes.OBS_CATEGORY, "survey", "Survey")
VIGIL_CATEGORY = concept(codes.SYSTEM_OBS_CATEGORY, "digital-biomarker", "Vigil digital measure")


def survey_total_id(response_id: Any) -> str:
    return f"qr-{response_id}-total"


def survey_item9_id(response_id: Any) -> str:
    return f"qr-{response_id}-item9"


def mood_id(patient_id: Any, local_date: Any) -> str:
    return f"mood-{patient_id}-{date(local_date)}"


def media_id(kind: str, video_id: Any) -> str:
    return f"{kind}-{video_id}"


def _absent(code: str = "unknown", text: str | None = None) -> dict[str, Any]:
    return concept(codes.DATA_ABSENT, code, text=text)


def _measure_quantity(code: str, value: float) -> dict[str, Any]:
    _, unit_code, unit = codes.MEASURES[code]
    return quantity(round(float(value), 4), unit_code, unit)


def _measure_code(code: str) -> dict[str, Any]:
    return concept(codes.SYSTEM_MEASURES, code, codes.MEASURES[code][0])


def survey_total_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    """Input keys: response_id, patient_id, instrument, total, severity, effective,
    last_updated."""
    code, display = codes.TOTAL_CODES[data["instrument"]]
    return drop_empty(
        {
            "resourceType": "Observation",
            "id": survey_total_id(data["response_id"]),
            "meta": meta(data.get("last_updated")),
            "status": "final",
            "category": [SURVEY],
            "code": concept(codes.LOINC, code, display),
            "subject": ref("Patient", data["patient_id"]),
            "effectiveDateTime": instant(data.get("effective")),
            "issued": instant(data.get("last_updated")),
            "valueQuantity": quantity(int(data["total"]), "{score}", "score"),
            "interpretation": [{"text": str(data["severity"]).replace("_", " ")}]
            if data.get("severity")
            else [],
            "derivedFrom": [ref("QuestionnaireResponse", data["response_id"])],
        }
    )


def phq9_item9_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    """Input keys: response_id, patient_id, item9 (0..3), effective, last_updated."""
    answer_code, answer_display = codes.ANSWER_CODES[int(data["item9"])]
    return drop_empty(
        {
            "resourceType": "Observation",
            "id": survey_item9_id(data["response_id"]),
            "meta": meta(data.get("last_updated")),
            "status": "final",
            "category": [SURVEY],
            "code": concept(
                codes.LOINC,
                codes.PHQ9_ITEM9,
                "Thoughts that you would be better off dead, or of hurting yourself in some way",
            ),
            "subject": ref("Patient", data["patient_id"]),
            "effectiveDateTime": instant(data.get("effective")),
            "issued": instant(data.get("last_updated")),
            "valueCodeableConcept": concept(
                codes.LOINC, answer_code, answer_display, text=str(int(data["item9"]))
            ),
            "derivedFrom": [ref("QuestionnaireResponse", data["response_id"])],
        }
    )


def mood_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    """Input keys: patient_id, local_date, score (-10..10 or None when abstaining), confidence,
    abstained, reason, model_name, model_version, derived_from (list of "Type/id"),
    last_updated."""
    score = data.get("score")
    abstained = bool(data.get("abstained")) or score is None
    confidence = data.get("confidence")
    component = {"code": _measure_code(codes.MOOD_CONFIDENCE)}
    if confidence is None or not math.isfinite(float(confidence)):
        component["dataAbsentReason"] = _absent()
    else:
        component["valueQuantity"] = _measure_quantity(codes.MOOD_CONFIDENCE, confidence)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": mood_id(data["patient_id"], data["local_date"]),
        "meta": meta(data.get("last_updated")),
        "status": "final",
        "category": [VIGIL_CATEGORY],
        "code": _measure_code(codes.MOOD_SCORE),
        "subject": ref("Patient", data["patient_id"]),
        "effectiveDateTime": date(data["local_date"]),
        "issued": instant(data.get("last_updated")),
    }
    if abstained:
        resource["dataAbsentReason"] = _absent(
            "unknown", text=f"Abstained: {data.get('reason') or 'insufficient signal'}"
        )
    else:
        resource["valueQuantity"] = _measure_quantity(codes.MOOD_SCORE, score)  # type: ignore[arg-type]
    if data.get("model_name"):
        resource["device"] = model_reference(data["model_name"], data.get("model_version") or "")
    resource["derivedFrom"] = [{"reference": r} for r in data.get("derived_from", [])]
    resource["component"] = [component]
    return drop_empty(resource)


def media_features_flatten(kind: str, features: dict[str, Any]) -> dict[str, Any]:
    """A panel's stored features by name, without the analysis metadata, and with the face's
    ``expression`` object flattened to ``expression_<label>`` (absent when it is null)."""
    metadata = codes.VOICE_METADATA if kind == "voice" else codes.FACE_METADATA
    flat = {k: v for k, v in features.items() if k not in metadata}
    if kind == "face" and "expression" in flat:
        expression = flat.pop("expression")
        if isinstance(expression, dict):
            flat.update({f"expression_{label}": p for label, p in expression.items()})
        elif expression is not None:
            flat["expression"] = expression  # not the pipeline's shape: unmapped
    return flat


def media_features_unmapped(kind: str, features: dict[str, Any]) -> list[str]:
    """Stored feature names that have no code (sorted): a renamed or new pipeline feature."""
    table = codes.VOICE_MEASURES if kind == "voice" else codes.FACE_MEASURES
    return sorted(str(k) for k in media_features_flatten(kind, features) if k not in table)


def _feature_component(code: str, value: Any) -> dict[str, Any]:
    component: dict[str, Any] = {"code": _measure_code(code)}
    if not codes.MEASURES[code][1]:  # a text feature (no unit)
        if isinstance(value, str) and value:
            component["valueString"] = value
        else:
            component["dataAbsentReason"] = _absent("unknown" if value is None else "error")
        return component
    if value is None:
        component["dataAbsentReason"] = _absent()
    elif isinstance(value, bool) or not isinstance(value, int | float):
        component["dataAbsentReason"] = _absent("error")
    elif isinstance(value, float) and not math.isfinite(value):
        component["dataAbsentReason"] = _absent()
    else:
        # Counts stay integers; measures keep the pipeline's 6 significant digits (tiny ratios
        # such as a clipped fraction would be lost to a fixed number of decimals).
        _, unit_code, unit = codes.MEASURES[code]
        number = value if isinstance(value, int) else float(f"{value:.6g}")
        component["valueQuantity"] = quantity(number, unit_code, unit)
    return component


def media_panel_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    """One video's voice (``kind="voice"``) or face (``kind="face"``) features as a panel.

    Input keys: kind, video_id, patient_id, effective, features (the stored
    ``ProsodyFeatures.as_dict()`` / ``FaceFeatures.as_dict()``: {name: value or None}),
    model_name, model_version, last_updated.

    Every stored feature is a component, in the code table's order (:data:`codes.VOICE_MEASURES`,
    :data:`codes.FACE_MEASURES`); a null or non-finite value is a ``dataAbsentReason``. A feature
    name without a code is left out (a number without a defined meaning or unit is not exported)
    and counted in a warning that names only the panel and the video id."""
    kind = data["kind"]
    table = codes.VOICE_MEASURES if kind == "voice" else codes.FACE_MEASURES
    features = media_features_flatten(kind, data.get("features") or {})
    components = [
        _feature_component(code, features[name])
        for name, (code, *_) in table.items()
        if name in features
    ]
    unmapped = sum(1 for name in features if name not in table)
    if unmapped:
        logger.warning(
            "fhir %s panel of video %s: %d stored feature(s) have no code and were not exported",
            kind,
            data.get("video_id"),
            unmapped,
        )
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": media_id(kind, data["video_id"]),
        "meta": meta(data.get("last_updated")),
        "status": "final",
        "category": [VIGIL_CATEGORY],
        "code": _measure_code(codes.VOICE_PANEL if kind == "voice" else codes.FACE_PANEL),
        "subject": ref("Patient", data["patient_id"]),
        "effectiveDateTime": instant(data.get("effective")),
        "issued": instant(data.get("last_updated")),
    }
    if not components:
        resource["dataAbsentReason"] = _absent("not-performed", text="Abstained")
    if data.get("model_name"):
        resource["device"] = model_reference(data["model_name"], data.get("model_version") or "")
    resource["component"] = components
    return drop_empty(resource)
