"""Vigil's own measures over the API: daily mood (with confidence) and a video's voice and face
panels, their Provenance naming the models, and the same visibility rules."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.utils import timezone

from clinician_portal.fhir import codes
from screening.models import VideoSubmission
from screening.models.scores import DailyMoodScore, MediaAnalysis
from tests.clinician_portal.fhir.conftest import client_token, validate

MODELS = [
    {"name": "prosody-praat", "version": "6.4", "sha256": "a" * 64},
    {"name": "face-mediapipe", "version": "1.2.2", "sha256": "b" * 64},
]


def _video(patient: Any) -> VideoSubmission:
    now = timezone.now()
    return VideoSubmission.objects.create(
        patient=patient,
        idempotency_key=uuid.uuid4(),
        client_timestamp=now - dt.timedelta(hours=1),
        timezone="UTC",
        local_date=now.date(),
        storage_name="x",
        size_bytes=10,
        duration_seconds=30.0,
        container="mp4",
        video_codec="h264",
        width=320,
        height=240,
    )


def _scores(fhir: Any) -> tuple[DailyMoodScore, MediaAnalysis, VideoSubmission]:
    patient = fhir.world.patient_a
    video = _video(patient)
    media = MediaAnalysis.objects.create(
        patient=patient,
        video=video,
        local_date=video.local_date,
        prosody={"speech_rate": 3.2, "pause_ratio": 0.4, "abstain": False, "quality_flags": []},
        face={"smile": 0.1, "gaze_down_fraction": 0.3, "abstain": False},
        models_info=MODELS,
    )
    mood = DailyMoodScore.objects.create(
        patient=patient,
        local_date=video.local_date,
        score=-2.5,
        confidence=0.6,
        inputs={"phq9": [str(fhir.qr_a.pk)], "voice": [str(video.pk)], "diary_text": ["x"]},
        fusion_version="fusion-1",
    )
    return mood, media, video


def test_mood_and_media_observations(fhir: Any) -> None:
    mood, _media, video = _scores(fhir)
    api = fhir.bearer(fhir.world.clinician.user)
    pid = str(fhir.world.patient_a.pk)
    body = api.get("/fhir/Observation", {"patient": pid, "code": codes.MOOD_SCORE}).json()
    assert [e["resource"]["id"] for e in body["entry"]] == [f"mood-{pid}-{mood.local_date}"]
    obs = body["entry"][0]["resource"]
    validate(obs)
    assert obs["valueQuantity"]["value"] == -2.5
    assert obs["component"][0]["valueQuantity"]["value"] == 0.6
    assert obs["device"]["identifier"]["value"] == "vigil-fusion@fusion-1"
    derived = {d["reference"] for d in obs["derivedFrom"]}
    assert derived == {f"QuestionnaireResponse/{fhir.qr_a.pk}", f"Observation/voice-{video.pk}"}
    voice = api.get(f"/fhir/Observation/voice-{video.pk}").json()
    validate(voice)
    assert {c["code"]["coding"][0]["code"] for c in voice["component"]} == {
        "speech_rate",
        "pause_ratio",
    }
    face = api.get(f"/fhir/Observation/face-{video.pk}").json()
    assert face["code"]["coding"][0]["code"] == codes.FACE_PANEL
    assert {c["code"]["coding"][0]["code"] for c in face["component"]} == {
        "smile",
        "gaze_down_fraction",
    }
    read_mood = api.get(f"/fhir/Observation/mood-{pid}-{mood.local_date}")
    assert read_mood.status_code == 200
    category = api.get("/fhir/Observation", {"category": "digital-biomarker", "patient": pid})
    assert len(category.json()["entry"]) == 3
    provenance = api.get(f"/fhir/Provenance/media-{video.pk}").json()
    validate(provenance)
    assert {a["who"]["identifier"]["value"] for a in provenance["agent"]} == {
        "prosody-praat@6.4",
        "face-mediapipe@1.2.2",
    }
    assert {t["reference"] for t in provenance["target"]} == {
        f"Observation/voice-{video.pk}",
        f"Observation/face-{video.pk}",
    }
    assert api.get(f"/fhir/Provenance/mood-{pid}-{mood.local_date}").status_code == 200


def test_abstained_face_is_a_panel_without_values(fhir: Any) -> None:
    _, media, video = _scores(fhir)
    MediaAnalysis.objects.filter(pk=media.pk).update(face={"abstain": True})
    api = fhir.bearer(fhir.world.clinician.user)
    face = api.get(f"/fhir/Observation/face-{video.pk}").json()
    validate(face)
    assert "component" not in face and face["dataAbsentReason"]["coding"][0]["code"]


def test_scores_are_not_visible_outside_the_care_team_or_clinic(fhir: Any) -> None:
    mood, _, video = _scores(fhir)
    pid = str(fhir.world.patient_a.pk)
    colleague = fhir.bearer(fhir.world.colleague.user)
    assert colleague.get(f"/fhir/Observation/voice-{video.pk}").status_code == 404
    assert colleague.get(f"/fhir/Provenance/media-{video.pk}").status_code == 404
    other = client_token(*fhir.other_clinic_client_secret)
    assert other.get(f"/fhir/Observation/mood-{pid}-{mood.local_date}").status_code == 404
    body = other.get("/fhir/Observation", {"code": codes.MOOD_SCORE}).json()
    assert "entry" not in body
