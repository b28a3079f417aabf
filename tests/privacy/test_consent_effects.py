"""What withdrawing consent does: queued work stops at once, processing re-checks, and derived
data is deleted when the patient asks (through the registry in privacy.consent)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from privacy import consent
from privacy.audit import Actor
from privacy.choices import ConsentScope
from privacy.consent import consent_change, consent_document_publish
from privacy.models import AccessEvent, ConsentRecord
from screening.models import VideoSubmission
from screening.services import videos as video_services
from screening.services.videos import video_process, video_submission_create
from tests.conftest import assert_error
from tests.media import MediaSet, shared_media

URL = "/api/v1/consents"
VOICE, FACE, TEXT = (
    ConsentScope.VOICE_ANALYSIS,
    ConsentScope.FACE_ANALYSIS,
    ConsentScope.TEXT_ANALYSIS,
)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaSet:
    return shared_media(tmp_path_factory)


@pytest.fixture(autouse=True)
def folders(settings: Any, tmp_path: Path) -> Any:
    settings.VIGIL_MEDIA_ROOT = tmp_path / "media"
    settings.VIGIL_WORK_DIR = tmp_path / "work"
    return settings


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """A copy of the derived-data registry that the test may add to."""
    consent.derived_deleters(VOICE)  # load the built-in registrations first
    copy = {scope: dict(found) for scope, found in consent._DERIVED_DELETERS.items()}
    monkeypatch.setattr(consent, "_DERIVED_DELETERS", copy)
    return copy


def upload(patient: Any, media: MediaSet) -> VideoSubmission:
    video, created = video_submission_create(
        actor=Actor(user_id=patient.user_id, role="patient"),
        patient=patient,
        idempotency_key=uuid.uuid4(),
        upload_path=media.good_mp4,
        client_timestamp=timezone.now(),
    )
    assert created
    return video


def withdraw(client: Any, scope: str, **extra: Any) -> dict[str, Any]:
    response = client.post(URL, {"scope": scope, "granted": False, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def stored(settings: Any, video: VideoSubmission) -> Path:
    return Path(settings.VIGIL_MEDIA_ROOT) / video.storage_name


def status(video: VideoSubmission) -> tuple[str, str]:
    video.refresh_from_db()
    return video.status, video.failure_reason


# --- queued work -------------------------------------------------------------------------------
def test_withdrawing_the_last_analysis_scope_fails_queued_videos_at_once(
    world: Any, client_a: Any, media: MediaSet, settings: Any
) -> None:
    mine, theirs = upload(world.patient_a, media), upload(world.patient_b, media)
    withdraw(client_a, FACE)
    withdraw(client_a, TEXT)
    assert status(mine) == ("queued", "")  # voice analysis still allows it
    assert not AccessEvent.objects.filter(action="consent.withdraw_effects").exists()

    withdraw(client_a, VOICE)
    assert status(mine) == ("failed", "consent_withdrawn")
    mine.refresh_from_db()
    assert mine.finished_at is not None and "consent was withdrawn" in mine.failure_message
    assert status(theirs) == ("queued", "")  # another patient's job is untouched
    event = AccessEvent.objects.get(action="consent.withdraw_effects")
    assert event.patient_id == world.patient_a.pk
    assert event.purpose == "withdrawal of voice_analysis; cancelled 1 queued video jobs"
    # The worker, when the message arrives, finds nothing to do: never decrypted.
    video_process(video_id=mine.pk)
    assert status(mine) == ("failed", "consent_withdrawn")
    mine.refresh_from_db()
    assert mine.attempts == 0
    assert not AccessEvent.objects.filter(action="video.decrypt", resource_id=str(mine.pk)).exists()
    assert stored(settings, mine).exists()  # withdrawal alone deletes nothing
    video_process(video_id=theirs.pk)
    assert status(theirs) == ("done", "")


def test_withdrawal_while_a_worker_runs_the_job_wins(
    world: Any, client_a: Any, media: MediaSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = upload(world.patient_a, media)
    real_probe = video_services.probe_media

    def probe_then_withdraw(path: Path, **kwargs: Any) -> Any:
        result = real_probe(path, **kwargs)
        for scope in (VOICE, FACE, TEXT):
            withdraw(client_a, scope)
        return result

    monkeypatch.setattr(video_services, "probe_media", probe_then_withdraw)
    video_process(video_id=video.pk)
    assert status(video) == ("failed", "consent_withdrawn")  # no result recorded


def test_processing_rechecks_consent_when_the_job_starts(world: Any, media: MediaSet) -> None:
    """The first line of defence stays: a job that was not failed by the withdrawal (here, consent
    records created without the service) is still refused when the worker starts it."""
    video = upload(world.patient_a, media)
    for scope in (VOICE, FACE, TEXT):
        ConsentRecord.objects.create(
            patient=world.patient_a, scope=scope, granted=False, actor=world.patient_a.user
        )
    assert status(video) == ("queued", "")
    video_process(video_id=video.pk)
    assert status(video) == ("failed", "consent_withdrawn")


# --- delete_derived ----------------------------------------------------------------------------
def test_delete_derived_is_stored_and_only_on_withdrawals(world: Any, client_a: Any) -> None:
    data = withdraw(client_a, ConsentScope.RESEARCH, delete_derived=True)
    assert ConsentRecord.objects.get(pk=data["id"]).delete_derived is True
    data = withdraw(client_a, ConsentScope.CARE_TEAM_SHARING)
    assert ConsentRecord.objects.get(pk=data["id"]).delete_derived is False
    before = ConsentRecord.objects.count()
    body = {"scope": "research", "granted": True, "document_version": "1", "delete_derived": True}
    error = assert_error(client_a.post(URL, body, format="json"), 400, "validation_failed")
    assert "delete_derived" in error["fields"]
    body = {"scope": "research", "granted": False, "delete_derived": "perhaps"}
    error = assert_error(client_a.post(URL, body, format="json"), 400, "validation_failed")
    assert "delete_derived" in error["fields"]
    assert ConsentRecord.objects.count() == before


def test_registered_deleters_run_for_their_scope_and_only_when_asked(
    world: Any, client_a: Any, registry: dict[str, dict[str, Any]]
) -> None:
    calls: list[tuple[str, Any, frozenset[str]]] = []

    @consent.derived_deleter_register(TEXT, name="text scores")
    def text_scores(*, patient: Any, remaining: frozenset[str]) -> int:
        calls.append(("text scores", patient.pk, remaining))
        return 4

    @consent.derived_deleter_register(VOICE, name="prosody features")
    def prosody(*, patient: Any, remaining: frozenset[str]) -> int:
        calls.append(("prosody features", patient.pk, remaining))
        return 7

    withdraw(client_a, TEXT)  # no delete_derived: nothing deleted
    assert calls == []
    withdraw(client_a, TEXT, delete_derived=True)
    assert calls == [("text scores", world.patient_a.pk, frozenset({VOICE, FACE}))]
    event = AccessEvent.objects.get(action="consent.withdraw_effects")
    # Voice and face are still granted, so the video files stay (0).
    assert event.purpose == (
        "withdrawal of text_analysis; deleted derived: 4 text scores, 0 video files"
    )
    assert {"video files", "prosody features"} <= consent.derived_deleters(VOICE).keys()
    assert "video files" in consent.derived_deleters(TEXT)
    with pytest.raises(ValueError, match="unknown consent scope"):
        consent.derived_deleter_register("telepathy", name="x")


def test_a_failing_deleter_rolls_the_withdrawal_back(
    world: Any, client_a: Any, registry: dict[str, dict[str, Any]]
) -> None:
    """Deletion is part of the withdrawal: it is never recorded as done when it was not."""

    @consent.derived_deleter_register(TEXT, name="broken")
    def broken(*, patient: Any, remaining: frozenset[str]) -> int:
        raise RuntimeError("storage down")

    before = ConsentRecord.objects.count()
    with pytest.raises(RuntimeError):
        consent_change(
            actor=Actor(user_id=world.patient_a.user_id, role="patient"),
            patient=world.patient_a,
            scope=TEXT,
            granted=False,
            delete_derived=True,
        )
    assert ConsentRecord.objects.count() == before
    assert consent.consent_has(patient=world.patient_a, scope=TEXT)


def test_video_files_are_deleted_once_no_remaining_scope_needs_them(
    world: Any,
    client_a: Any,
    media: MediaSet,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    done = upload(world.patient_a, media)
    video_process(video_id=done.pk)
    queued = upload(world.patient_a, media)
    other = upload(world.patient_b, media)
    files = [stored(settings, v) for v in (done, queued, other)]
    assert all(f.exists() for f in files)

    with django_capture_on_commit_callbacks(execute=True):
        withdraw(client_a, FACE, delete_derived=True)  # voice and text still need the videos
    assert all(f.exists() for f in files)
    event = AccessEvent.objects.get(action="consent.withdraw_effects")
    assert (
        event.purpose
        == "withdrawal of face_analysis; deleted derived: 2 face scores, 0 video files"
    )
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(client_a, TEXT)  # no deletion asked
    assert all(f.exists() for f in files)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        withdraw(client_a, VOICE, delete_derived=True)  # nothing needs them any more
    assert len(callbacks) == 1  # deleted after the commit, not before
    assert not files[0].exists() and not files[1].exists()
    assert files[2].exists()  # the other patient's video stays
    last = AccessEvent.objects.filter(action="consent.withdraw_effects").order_by("-id").first()
    assert last is not None
    assert last.purpose == (
        "withdrawal of voice_analysis; cancelled 1 queued video jobs; "
        "deleted derived: 2 video files, 1 voice scores and transcripts"
    )
    # The rows stay, as metadata; the queued one was failed, and processing it does nothing.
    assert status(done) == ("done", "")
    assert status(queued) == ("failed", "consent_withdrawn")
    video_process(video_id=queued.pk)
    assert status(queued) == ("failed", "consent_withdrawn")


def test_text_withdrawal_with_delete_derived_keeps_the_videos_while_voice_needs_them(
    world: Any,
    client_a: Any,
    media: MediaSet,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    video = upload(world.patient_a, media)
    withdraw(client_a, FACE, delete_derived=True)
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(client_a, TEXT, delete_derived=True)
    # Voice analysis is still granted and reads the video: the file stays.
    assert stored(settings, video).exists()


def test_text_withdrawn_last_with_delete_derived_deletes_the_videos(
    world: Any,
    client_a: Any,
    media: MediaSet,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Voice and face withdrawn with delete_derived while text still needs the files (kept), then
    text with delete_derived: nothing needs the files any more, so they go."""
    video = upload(world.patient_a, media)
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(client_a, VOICE, delete_derived=True)
        withdraw(client_a, FACE, delete_derived=True)
    assert stored(settings, video).exists()  # text analysis still reads the transcript
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        withdraw(client_a, TEXT, delete_derived=True)
    assert len(callbacks) == 1
    assert not stored(settings, video).exists()
    assert status(video) == ("failed", "consent_withdrawn")
    last = AccessEvent.objects.filter(action="consent.withdraw_effects").order_by("-id").first()
    assert last is not None and "1 video files" in last.purpose


def test_text_withdrawal_without_delete_derived_keeps_the_videos(
    world: Any,
    client_a: Any,
    media: MediaSet,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    video = upload(world.patient_a, media)
    withdraw(client_a, VOICE)
    withdraw(client_a, FACE)
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(client_a, TEXT)  # no deletion asked
    assert stored(settings, video).exists()
    assert status(video) == ("failed", "consent_withdrawn")


def test_a_rolled_back_withdrawal_deletes_no_file(
    world: Any, media: MediaSet, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django.db import transaction

    video = upload(world.patient_a, media)
    actor = Actor(user_id=world.patient_a.user_id, role="patient")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        for scope in (TEXT, FACE, VOICE):
            consent_change(
                actor=actor,
                patient=world.patient_a,
                scope=scope,
                granted=False,
                delete_derived=True,
            )
        raise RuntimeError("the request failed after the withdrawal")
    assert callbacks == []
    assert stored(settings, video).exists()
    assert status(video) == ("queued", "")


# --- consent documents ---------------------------------------------------------------------------
def test_each_grant_stores_the_document_version_and_hash(world: Any, client_a: Any) -> None:
    text = "Version 2: we analyse your voice to estimate your mood. You can withdraw at any time."
    document = consent_document_publish(scope=VOICE, version="2", text=text)
    response = client_a.post(
        URL, {"scope": VOICE, "granted": True, "document_version": "2"}, format="json"
    )
    assert response.status_code == 201, response.content
    record = ConsentRecord.objects.get(pk=response.json()["id"])
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert (record.document_id, record.document_version, record.document_sha256) == (
        document.pk,
        "2",
        digest,
    )
    assert response.json()["document_sha256"] == digest
    # Every grant the fixtures made carries its version and hash too; withdrawals carry none.
    for grant in ConsentRecord.objects.filter(granted=True):
        assert grant.document is not None
        assert grant.document_version == grant.document.version
        assert grant.document_sha256 == grant.document.sha256
        assert grant.document_sha256 == hashlib.sha256(grant.document.text.encode()).hexdigest()
    withdrawal = ConsentRecord.objects.get(pk=withdraw(client_a, VOICE)["id"])
    assert (withdrawal.document_id, withdrawal.document_version, withdrawal.document_sha256) == (
        None,
        "",
        "",
    )
