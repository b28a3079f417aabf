"""QuestionnaireResponse for PHQ-9 / GAD-7: one item per question (linkId = the item's LOINC
code) with the LOINC answer code.

Input keys: id, patient_id, instrument ("phq9" | "gad7"), answers (list of 0..3), item_texts
(question texts, same order), authored (datetime), last_updated.
"""

from __future__ import annotations

from typing import Any

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.common import drop_empty, instant, meta, ref


def questionnaire_url(instrument: str) -> str:
    return f"http://loinc.org/q/{codes.PANEL_CODES[instrument][0]}"


def questionnaire_response_to_fhir(data: dict[str, Any]) -> dict[str, Any]:
    instrument = data["instrument"]
    link_ids = codes.ITEM_CODES[instrument]
    texts = data.get("item_texts") or [None] * len(link_ids)
    items = []
    for link_id, text, answer in zip(link_ids, texts, data["answers"], strict=True):
        code, display = codes.ANSWER_CODES[int(answer)]
        item: dict[str, Any] = {"linkId": link_id}
        if text:
            item["text"] = text
        answer = {"system": codes.LOINC, "code": code, "display": display}
        item["answer"] = [{"valueCoding": answer}]
        items.append(item)
    return drop_empty(
        {
            "resourceType": "QuestionnaireResponse",
            "id": str(data["id"]),
            "meta": meta(data.get("last_updated")),
            "questionnaire": questionnaire_url(instrument),
            "status": "completed",
            "subject": ref("Patient", data["patient_id"]),
            "authored": instant(data.get("authored")),
            "source": ref("Patient", data["patient_id"]),
            "item": items,
        }
    )
