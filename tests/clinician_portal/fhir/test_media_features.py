"""Voice and face panels carry every feature the media pipeline stores.

The stored dicts are built from the pipeline's own dataclasses (``ProsodyFeatures``,
``FaceFeatures``; ``screening.ml.media`` never imports Django), with every field filled, so a
feature the pipeline renames or adds fails here instead of silently vanishing from the export."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any

import pytest
from django.utils import timezone

from clinician_portal.fhir import codes
from clinician_portal.fhir.mappers.observation import (
    media_features_unmapped,
    media_panel_to_fhir,
)
from screening.ml.artifacts import ModelInfo
from screening.ml.media.face import FER_LABELS, FaceFeatures
from screening.ml.media.prosody import ALGORITHM_VERSION, ProsodyFeatures
from screening.models import VideoSubmission
from screening.models.scores import MediaAnalysis
from tests.clinician_portal.fhir.conftest import validate

MODEL = ModelInfo(name="vigil-prosody", version="1", sha256="a" * 64)


def prosody_stored(**overrides: Any) -> dict[str, Any]:
    """``ProsodyFeatures.as_dict()`` with every numeric field set (distinct values), plus the
    ``abstain`` the media service writes next to it."""
    values: dict[str, Any] = {}
    for i, f in enumerate(dataclasses.fields(ProsodyFeatures)):
        if f.type == "float":
            values[f.name] = round(0.25 + i * 1.5, 4)
    values.update(
        abstain=False,
        quality_flags=(),
        backend="librosa",
        algorithm_version=ALGORITHM_VERSION,
        model=MODEL,
    )
    values.update(overrides)
    return ProsodyFeatures(**values).as_dict()


def face_stored(**overrides: Any) -> dict[str, Any]:
    """``FaceFeatures.as_dict()`` with every field set."""
    values: dict[str, Any] = {}
    for i, f in enumerate(dataclasses.fields(FaceFeatures)):
        if f.type in ("float", "float | None"):
            values[f.name] = round(0.05 + i * 0.03, 4)
        elif f.type == "int":
            values[f.name] = 10 + i
    values.update(
        abstain=False,
        reason=None,
        expression={label: round(0.1 + i * 0.01, 4) for i, label in enumerate(FER_LABELS)},
        dominant_expression="sad",
        quality_flags=["blink_rate_undersampled"],
        models=[MODEL],
    )
    values.update(overrides)
    return FaceFeatures(**values).as_dict()


def panel(kind: str, features: dict[str, Any]) -> dict[str, Any]:
    return media_panel_to_fhir(
        {
            "kind": kind,
            "video_id": "v-1",
            "patient_id": "p-1",
            "effective": "2026-11-19T08:00:00+00:00",
            "features": features,
            "model_name": "vigil-media",
            "model_version": "1",
            "last_updated": "2026-11-19T08:05:00+00:00",
        }
    )


def by_code(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for component in resource["component"]:
        coding = component["code"]["coding"][0]
        assert coding["system"] == codes.SYSTEM_MEASURES
        out[coding["code"]] = component
    assert len(out) == len(resource["component"])  # no code twice
    return out


def test_the_code_tables_know_the_pipelines_expression_labels() -> None:
    assert tuple(FER_LABELS) == codes.FACE_EXPRESSION_LABELS


@pytest.mark.parametrize(
    ("kind", "stored", "table", "metadata"),
    [
        ("voice", prosody_stored, codes.VOICE_MEASURES, codes.VOICE_METADATA),
        ("face", face_stored, codes.FACE_MEASURES, codes.FACE_METADATA),
    ],
)
def test_every_stored_feature_is_a_coded_component(
    kind: str, stored: Any, table: Any, metadata: Any
) -> None:
    features = stored()
    assert media_features_unmapped(kind, features) == []  # a renamed/new feature fails here
    assert set(metadata) <= set(features)  # the metadata names are the pipeline's too
    resource = panel(kind, features)
    validate(resource)
    components = by_code(resource)
    flat = {k: v for k, v in features.items() if k not in metadata and k != "expression"}
    if kind == "face":
        flat.update({f"expression_{k}": v for k, v in features["expression"].items()})
    assert len(components) == len(flat) == len(table)
    for name, value in flat.items():
        code, _display, unit, _unit_display = table[name]
        component = components[code]
        if unit:
            assert component["valueQuantity"]["value"] == value, name
            assert component["valueQuantity"]["code"] == unit
            assert component["valueQuantity"]["system"] == codes.UCUM
        else:
            assert component["valueString"] == value
    # Order follows the code table, whatever the stored order.
    assert list(components) == [code for code, *_ in table.values()]


def test_units_and_shared_names() -> None:
    voice = by_code(panel("voice", prosody_stored()))
    face = by_code(panel("face", face_stored()))
    assert voice["voice_duration_s"]["valueQuantity"]["code"] == "s"
    assert face["face_duration_s"]["valueQuantity"]["code"] == "s"
    assert voice["f0_mean_hz"]["valueQuantity"]["code"] == "Hz"
    assert voice["f0_sd_st"]["valueQuantity"]["code"] == "{semitone}"
    assert voice["intensity_mean_db"]["valueQuantity"]["code"] == "dB"
    assert voice["speech_rate"]["valueQuantity"]["code"] == "/s"
    assert face["blink_rate_per_min"]["valueQuantity"]["code"] == "/min"
    assert face["head_motion_deg_per_s"]["valueQuantity"]["code"] == "deg/s"
    frames = face["frames_total"]["valueQuantity"]["value"]
    assert isinstance(frames, int) and frames == face_stored()["frames_total"]  # counts: ints
    assert face["dominant_expression"]["valueString"] == "sad"


def test_undefined_values_are_data_absent() -> None:
    voice = by_code(panel("voice", prosody_stored(jitter_local=float("nan"))))
    assert voice["jitter_local"]["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    face = by_code(
        panel("face", face_stored(eye_openness=None, expression=None, dominant_expression=None))
    )
    assert face["eye_openness"]["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert face["dominant_expression"]["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert not any(code.startswith("expression_") for code in face)  # no FER run: none
    wrong = by_code(panel("voice", {**prosody_stored(), "pause_count": "many"}))
    assert wrong["pause_count"]["dataAbsentReason"]["coding"][0]["code"] == "error"


def test_small_values_keep_their_precision() -> None:
    voice = by_code(panel("voice", prosody_stored(clipped_fraction=0.0000123456)))
    assert voice["clipped_fraction"]["valueQuantity"]["value"] == 1.23456e-05


def test_an_unknown_feature_is_left_out_and_counted_without_its_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    features = {**prosody_stored(), "tremor_index_v2": 0.987654, "spectral_tilt": 4.321}
    assert media_features_unmapped("voice", features) == ["spectral_tilt", "tremor_index_v2"]
    with caplog.at_level(logging.WARNING, logger="vigil.fhir"):
        resource = panel("voice", features)
    assert len(resource["component"]) == len(codes.VOICE_MEASURES)
    assert "tremor_index_v2" not in str(resource) and "0.987654" not in str(resource)
    [record] = [r for r in caplog.records if r.name == "vigil.fhir"]
    message = record.getMessage()
    assert "voice panel of video v-1: 2 stored feature(s)" in message
    assert "0.987654" not in message and "4.321" not in message
    # An unknown FER label is counted the same way.
    face = face_stored()
    face["expression"] = {**face["expression"], "contempt": 0.2}
    assert media_features_unmapped("face", face) == ["expression_contempt"]


def test_the_api_serves_every_pipeline_feature(fhir: Any) -> None:
    patient = fhir.world.patient_a
    now = timezone.now()
    video = VideoSubmission.objects.create(
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
    MediaAnalysis.objects.create(
        patient=patient,
        video=video,
        local_date=video.local_date,
        prosody=prosody_stored(),
        face=face_stored(),
        models_info=[MODEL.as_dict()],
    )
    api = fhir.bearer(fhir.world.clinician.user)
    for kind, table in (("voice", codes.VOICE_MEASURES), ("face", codes.FACE_MEASURES)):
        response = api.get(f"/fhir/Observation/{kind}-{video.pk}")
        assert response.status_code == 200
        resource = response.json()
        validate(resource)
        assert set(by_code(resource)) == {code for code, *_ in table.values()}
    colleague = fhir.bearer(fhir.world.colleague.user)
    assert colleague.get(f"/fhir/Observation/voice-{video.pk}").status_code == 404
