"""POST /api/v1/videos: probe, store encrypted, enqueue after commit; refuse cleanly otherwise.

Every refusal must leave nothing behind: no VideoSubmission row, no file in the media root and no
uploaded bytes in the upload temporary folder.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from privacy.audit import Actor
from privacy.choices import ConsentScope
from privacy.consent import consent_change
from privacy.models import AccessEvent
from privacy.storage import decrypted_tempfile
from screening.models import VideoSubmission
from screening.services import videos as video_services
from tests.conftest import new_key, now_iso
from tests.media import MediaSet, shared_media

URL = "/api/v1/videos"


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaSet:
    return shared_media(tmp_path_factory)


@pytest.fixture(autouse=True)
def folders(settings: Any, tmp_path: Path) -> Any:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    return settings


@pytest.fixture(autouse=True)
def _no_throttle_history() -> Any:
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def files_under(folder: Any) -> list[Path]:
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def upload(
    client: Any,
    path: Path,
    *,
    key: str | None = None,
    timestamp: str | None = None,
    tz: str | None = None,
    filename: str | None = None,
    content_type: str = "video/mp4",
) -> Any:
    data: dict[str, Any] = {
        "file": SimpleUploadedFile(filename or path.name, path.read_bytes(), content_type),
        "idempotency_key": key or new_key(),
        "client_timestamp": timestamp or now_iso(),
    }
    if tz is not None:
        data["timezone"] = tz
    return client.post(URL, data, format="multipart")


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    """The one JSON error shape: {"error": {"code", "message", "status", "request_id", ...}}."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message", "status", "request_id"} <= set(error), error
    assert error["code"] == code, error
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == response["X-Request-ID"]
    return error


def assert_nothing_stored(settings: Any) -> None:
    assert not VideoSubmission.objects.exists()
    assert files_under(settings.VIGIL_MEDIA_ROOT) == []
    assert files_under(settings.FILE_UPLOAD_TEMP_DIR) == []
    assert files_under(settings.VIGIL_WORK_DIR) == []


def windows(data: bytes, size: int = 16) -> set[bytes]:
    return {data[i : i + size] for i in range(len(data) - size + 1)}


# --- accepted ------------------------------------------------------------------------------------
def test_good_video_is_stored_encrypted_and_queued(
    client_a: Any,
    world: Any,
    media: MediaSet,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    original = media.good_mp4.read_bytes()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(client_a, media.good_mp4, tz="Europe/Berlin")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["stage"] == "received"
    assert body["percent"] == 0
    assert body["timezone"] == "Europe/Berlin"
    assert body["duration_seconds"] == pytest.approx(1.0, abs=0.15)
    assert "Idempotent-Replayed" not in response
    assert len(callbacks) == 1  # the analysis job is sent only once the row is committed

    video = VideoSubmission.objects.get(pk=body["id"])
    assert video.patient_id == world.patient_a.pk
    assert (video.status, video.attempts, video.enqueued_at) == ("queued", 0, None)
    assert video.size_bytes == len(original)
    assert (video.container, video.video_codec, video.audio_codec) == ("mp4", "h264", "aac")
    assert (video.width, video.height) == (160, 120)

    stored = files_under(settings.VIGIL_MEDIA_ROOT)
    assert stored == [Path(settings.VIGIL_MEDIA_ROOT) / video.storage_name]
    assert video.storage_name == f"videos/{world.patient_a.pk}/{video.pk}.vgl"
    raw = stored[0].read_bytes()
    assert not windows(original) & windows(raw), "a 16-byte run of the upload is stored in clear"
    # The encrypted file decrypts to exactly what was uploaded.
    with decrypted_tempfile(
        name=video.storage_name, patient_id=world.patient_a.pk, object_id=video.pk
    ) as path:
        assert path.read_bytes() == original
    assert files_under(settings.FILE_UPLOAD_TEMP_DIR) == []
    assert files_under(settings.VIGIL_WORK_DIR) == []
    assert AccessEvent.objects.filter(action="video.create", resource_id=str(video.pk)).exists()


def test_commit_hands_the_job_to_the_broker(
    client_a: Any, media: MediaSet, django_capture_on_commit_callbacks: Any
) -> None:
    from screening import tasks

    with (
        mock.patch.object(tasks.video_process, "apply_async") as apply_async,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = upload(client_a, media.good_mp4)
    assert response.status_code == 201, response.content
    assert len(callbacks) == 1
    video_id = response.json()["id"]
    apply_async.assert_called_once_with(args=[video_id], queue="media")
    assert VideoSubmission.objects.get(pk=video_id).enqueued_at is not None


def test_broker_down_at_commit_keeps_the_upload(
    client_a: Any, media: MediaSet, django_capture_on_commit_callbacks: Any
) -> None:
    """The enqueue runs after commit and is robust: a broker outage does not lose the video (the
    reaper sends it later because ``enqueued_at`` stays empty)."""
    from screening import tasks

    with (
        mock.patch.object(
            tasks.video_process, "apply_async", side_effect=ConnectionError("broker down")
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = upload(client_a, media.good_mp4)
    assert response.status_code == 201, response.content
    video = VideoSubmission.objects.get(pk=response.json()["id"])
    assert (video.status, video.enqueued_at) == ("queued", None)


def test_video_without_audio_is_accepted(client_a: Any, media: MediaSet) -> None:
    response = upload(client_a, media.no_audio_mp4)
    assert response.status_code == 201, response.content
    assert VideoSubmission.objects.get(pk=response.json()["id"]).audio_codec == ""


def test_webm_is_accepted(client_a: Any, media: MediaSet) -> None:
    response = upload(client_a, media.webm_vp9, content_type="video/webm")
    assert response.status_code == 201, response.content
    video = VideoSubmission.objects.get(pk=response.json()["id"])
    assert (video.container, video.video_codec) == ("webm", "vp9")


def test_retry_with_the_same_key_returns_the_first_video(
    client_a: Any, media: MediaSet, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    key, when = new_key(), now_iso()
    with django_capture_on_commit_callbacks(execute=False) as first_callbacks:
        first = upload(client_a, media.good_mp4, key=key, timestamp=when)
    assert first.status_code == 201, first.content
    with django_capture_on_commit_callbacks(execute=False) as retry_callbacks:
        retry = upload(client_a, media.good_mp4, key=key, timestamp=when)
    assert retry.status_code == 200, retry.content
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]
    assert len(first_callbacks) == 1
    assert retry_callbacks == []  # no second job
    assert VideoSubmission.objects.count() == 1
    assert len(files_under(settings.VIGIL_MEDIA_ROOT)) == 1
    assert files_under(settings.FILE_UPLOAD_TEMP_DIR) == []


def test_a_replayed_upload_is_audited(world: Any, client_a: Any, media: MediaSet) -> None:
    key = new_key()
    when = now_iso()
    first = upload(client_a, media.good_mp4, key=key, timestamp=when)
    retry = upload(client_a, media.good_mp4, key=key, timestamp=when)
    assert (first.status_code, retry.status_code) == (201, 200)
    video_id = first.json()["id"]
    created = AccessEvent.objects.filter(action="video.create", resource_id=video_id)
    replayed = AccessEvent.objects.filter(action="video.create_replayed", resource_id=video_id)
    assert (created.count(), replayed.count()) == (1, 1)
    event = replayed.get()
    assert (event.patient_id, event.actor_id, event.outcome) == (
        world.patient_a.pk,
        world.patient_a.user_id,
        "allowed",
    )
    assert event.resource_type == "VideoSubmission"


def test_a_replay_that_lost_the_race_is_audited(
    world: Any, media: MediaSet, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two uploads with one key at once: the second finds no row, then loses on the unique key."""
    from django.utils import timezone

    actor = Actor(user_id=world.patient_a.user_id, role="patient")
    key = uuid.uuid4()
    real_check = video_services.check_client_timestamp
    winner: list[VideoSubmission] = []
    when = timezone.now()  # a retry carries the first attempt's timestamp

    def competitor_commits_first(value: Any) -> None:
        monkeypatch.setattr(video_services, "check_client_timestamp", real_check)
        video, created = video_services.video_submission_create(
            actor=actor,
            patient=world.patient_a,
            idempotency_key=key,
            upload_path=media.good_mp4,
            client_timestamp=when,
        )
        assert created
        winner.append(video)
        real_check(value)

    monkeypatch.setattr(video_services, "check_client_timestamp", competitor_commits_first)
    video, created = video_services.video_submission_create(
        actor=actor,
        patient=world.patient_a,
        idempotency_key=key,
        upload_path=media.good_mp4,
        client_timestamp=when,
    )
    assert not created and video.pk == winner[0].pk
    assert VideoSubmission.objects.count() == 1
    assert len(files_under(settings.VIGIL_MEDIA_ROOT)) == 1
    assert AccessEvent.objects.filter(
        action="video.create_replayed", resource_id=str(video.pk)
    ).exists()


@pytest.mark.parametrize("change", ["another file", "another time"])
def test_another_recording_under_a_used_key_is_a_conflict(
    client_a: Any, media: MediaSet, settings: Any, change: str
) -> None:
    """Answering "replayed" would drop the second recording while telling the app it was stored
    (diary entries and questionnaires answer 409 the same way)."""
    import datetime as dt

    from django.utils import timezone

    key, when = new_key(), now_iso()
    assert upload(client_a, media.good_mp4, key=key, timestamp=when).status_code == 201
    if change == "another file":
        second = upload(
            client_a, media.webm_vp9, key=key, timestamp=when, content_type="video/webm"
        )
    else:
        earlier = (timezone.now() - dt.timedelta(days=3)).replace(microsecond=0).isoformat()
        second = upload(client_a, media.good_mp4, key=key, timestamp=earlier)
    error_of(second, 409, "idempotency_conflict")
    assert VideoSubmission.objects.count() == 1
    assert len(files_under(settings.VIGIL_MEDIA_ROOT)) == 1
    assert files_under(settings.FILE_UPLOAD_TEMP_DIR) == []


def test_same_key_for_another_patient_is_independent(
    client_a: Any, client_b: Any, media: MediaSet
) -> None:
    key = new_key()
    a = upload(client_a, media.good_mp4, key=key)
    b = upload(client_b, media.good_mp4, key=key)
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]


# --- the status resource -------------------------------------------------------------------------
def test_status_resource_for_the_owner_only(client_a: Any, client_b: Any, media: MediaSet) -> None:
    video_id = upload(client_a, media.good_mp4).json()["id"]
    mine = client_a.get(f"{URL}/{video_id}")
    assert mine.status_code == 200
    assert mine.json()["id"] == video_id
    assert mine.json()["status"] == "queued"

    error_of(client_b.get(f"{URL}/{video_id}"), 404, "not_found")
    error_of(client_a.get(f"{URL}/{uuid.uuid4()}"), 404, "not_found")

    listed = client_a.get(URL)
    assert listed.status_code == 200
    assert [v["id"] for v in listed.json()["results"]] == [video_id]
    assert client_b.get(URL).json()["results"] == []


def test_clinician_and_anonymous_cannot_upload(
    world: Any, anon: Any, media: MediaSet, settings: Any
) -> None:
    clinician = world.client_for(world.clinician.user)
    assert upload(clinician, media.good_mp4).status_code == 403
    assert upload(anon, media.good_mp4).status_code == 401
    assert_nothing_stored(settings)


# --- refused -------------------------------------------------------------------------------------
def test_text_file_named_mp4_is_refused(client_a: Any, media: MediaSet, settings: Any) -> None:
    error = error_of(upload(client_a, media.text_mp4), 415, "media_rejected")
    assert error["reason"] == "not_a_video"
    assert_nothing_stored(settings)


def test_random_bytes_are_refused(client_a: Any, media: MediaSet, settings: Any) -> None:
    error = error_of(upload(client_a, media.random_mp4), 415, "media_rejected")
    assert error["reason"] == "not_a_video"
    assert_nothing_stored(settings)


def test_truncated_video_is_refused(client_a: Any, media: MediaSet, settings: Any) -> None:
    error = error_of(upload(client_a, media.truncated_mp4), 415, "media_rejected")
    assert error["reason"] == "corrupt"
    assert_nothing_stored(settings)


def test_audio_only_is_refused(client_a: Any, media: MediaSet, settings: Any) -> None:
    error = error_of(upload(client_a, media.audio_only_m4a), 415, "media_rejected")
    assert error["reason"] == "no_video"
    assert_nothing_stored(settings)


def test_empty_file_is_refused(client_a: Any, media: MediaSet, settings: Any) -> None:
    error = error_of(upload(client_a, media.empty_mp4), 400, "media_rejected")
    assert error["reason"] == "empty"
    assert_nothing_stored(settings)


def test_file_over_the_byte_limit_is_refused_while_streaming(
    client_a: Any, media: MediaSet, settings: Any
) -> None:
    settings.VIGIL_VIDEO_MAX_BYTES = 10_000
    assert media.good_mp4.stat().st_size > 10_000
    # The body is under the middleware's limit (max + 64 KiB), so the upload handler stops it
    # while the bytes arrive: the view's service is never reached.
    with mock.patch(
        "screening.api.views.video_submission_create", side_effect=AssertionError("reached")
    ):
        error = error_of(upload(client_a, media.good_mp4), 413, "payload_too_large")
    assert "10000" in error["message"]
    assert_nothing_stored(settings)


def test_service_checks_the_size_too(
    world: Any, media: MediaSet, settings: Any, tmp_path: Path
) -> None:
    from django.utils import timezone

    from config.errors import PayloadTooLarge

    settings.VIGIL_VIDEO_MAX_BYTES = 10_000
    with pytest.raises(PayloadTooLarge):
        video_services.video_submission_create(
            actor=Actor(user_id=world.patient_a.user_id, role="patient"),
            patient=world.patient_a,
            idempotency_key=uuid.uuid4(),
            upload_path=media.good_mp4,
            client_timestamp=timezone.now(),
        )
    assert not VideoSubmission.objects.exists()
    assert files_under(settings.VIGIL_MEDIA_ROOT) == []


def test_body_over_the_limit_is_refused_before_reading(
    client_a: Any, media: MediaSet, settings: Any, tmp_path: Path
) -> None:
    settings.VIGIL_VIDEO_MAX_BYTES = 10_000
    big = tmp_path / "big.mp4"
    big.write_bytes(media.long_mp4.read_bytes() * 4)
    assert big.stat().st_size > 10_000 + 64 * 1024
    error_of(upload(client_a, big), 413, "payload_too_large")
    assert_nothing_stored(settings)


def test_video_over_the_time_limit_is_refused(
    client_a: Any, media: MediaSet, settings: Any
) -> None:
    settings.VIGIL_VIDEO_MAX_SECONDS = 1
    error = error_of(upload(client_a, media.long_mp4), 413, "media_rejected")
    assert error["reason"] == "too_long"
    assert error["limit"] == 1
    assert_nothing_stored(settings)


def test_upload_without_analysis_consent_is_refused(
    client_a: Any, world: Any, media: MediaSet, settings: Any
) -> None:
    patient = world.patient_a
    for scope in (
        ConsentScope.VOICE_ANALYSIS,
        ConsentScope.FACE_ANALYSIS,
        ConsentScope.TEXT_ANALYSIS,
    ):
        consent_change(
            actor=Actor(user_id=patient.user_id, role="patient"),
            patient=patient,
            scope=scope,
            granted=False,
        )
    error = error_of(upload(client_a, media.good_mp4), 403, "consent_missing")
    assert set(error["scopes"]) == {"voice_analysis", "face_analysis", "text_analysis"}
    assert_nothing_stored(settings)


def test_one_analysis_consent_is_enough(client_a: Any, world: Any, media: MediaSet) -> None:
    patient = world.patient_a
    for scope in (ConsentScope.FACE_ANALYSIS, ConsentScope.TEXT_ANALYSIS):
        consent_change(
            actor=Actor(user_id=patient.user_id, role="patient"),
            patient=patient,
            scope=scope,
            granted=False,
        )
    assert upload(client_a, media.good_mp4).status_code == 201


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("idempotency_key", "not-a-uuid"),
        ("client_timestamp", "yesterday"),
        ("timezone", "Mars/Base"),
    ],
)
def test_invalid_fields_are_refused(
    client_a: Any, media: MediaSet, settings: Any, field: str, value: str
) -> None:
    kwargs = {"key": value} if field == "idempotency_key" else {}
    if field == "client_timestamp":
        kwargs = {"timestamp": value}
    if field == "timezone":
        kwargs = {"tz": value}
    error = error_of(upload(client_a, media.good_mp4, **kwargs), 400, "validation_failed")
    assert field in error["fields"]
    assert_nothing_stored(settings)


def test_missing_file_is_refused(client_a: Any, settings: Any) -> None:
    response = client_a.post(
        URL, {"idempotency_key": new_key(), "client_timestamp": now_iso()}, format="multipart"
    )
    assert "file" in error_of(response, 400, "validation_failed")["fields"]
    assert_nothing_stored(settings)


def test_json_body_is_refused(client_a: Any, settings: Any) -> None:
    response = client_a.post(
        URL, {"idempotency_key": new_key(), "client_timestamp": now_iso()}, format="json"
    )
    error_of(response, 415, "unsupported_media_type")
    assert_nothing_stored(settings)


# --- nothing half-stored -------------------------------------------------------------------------
def test_failure_after_the_file_was_written_removes_it(
    world: Any, media: MediaSet, settings: Any, tmp_path: Path
) -> None:
    from django.utils import timezone

    upload_copy = tmp_path / "upload.mp4"
    upload_copy.write_bytes(media.good_mp4.read_bytes())
    with (
        mock.patch.object(video_services, "access_record", side_effect=RuntimeError("audit down")),
        pytest.raises(RuntimeError),
    ):
        video_services.video_submission_create(
            actor=Actor(user_id=world.patient_a.user_id, role="patient"),
            patient=world.patient_a,
            idempotency_key=uuid.uuid4(),
            upload_path=upload_copy,
            client_timestamp=timezone.now(),
        )
    assert not VideoSubmission.objects.exists()
    assert files_under(settings.VIGIL_MEDIA_ROOT) == []
