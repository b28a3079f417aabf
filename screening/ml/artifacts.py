"""Model files as verified dependencies: hash them, check them against the recorded hash, and
describe them on every result. No Django here.

Every model Vigil loads (the text encoder, the trained heads, Whisper, the face models) is a file or
a folder on local disk whose SHA-256 is recorded in the repository. :func:`verify_file` and
:func:`verify_tree` refuse to hand back a path whose content differs; :class:`ModelInfo` is what
each score carries (name, version, hash) so a result can always be traced to the exact weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


class ModelIntegrityError(RuntimeError):
    """A model file is missing or its content differs from the recorded hash."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"model {name}: {problem}")
        self.name = name
        self.problem = problem


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """What produced a result: a model's name, its version and the SHA-256 of its file(s)."""

    name: str
    version: str
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(root: Path, *, include: tuple[str, ...] | None = None) -> str:
    """One hash over a folder: each file's relative path and content hash, in sorted order.

    ``include`` limits it to files whose relative path ends with one of the suffixes (e.g. only the
    weights and tokenizer files, not a README that a package build may rewrite).
    """
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        rel = path.relative_to(root).as_posix()
        if include is not None and not rel.endswith(include):
            continue
        digest.update(rel.encode())
        digest.update(b"\0")
        digest.update(sha256_file(path).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def verify_file(path: Path, *, name: str, expected_sha256: str) -> Path:
    if not path.is_file():
        raise ModelIntegrityError(name, f"file not found at {path}")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ModelIntegrityError(
            name, f"sha256 {actual[:16]}... != expected {expected_sha256[:16]}..."
        )
    return path


def verify_tree(
    root: Path, *, name: str, expected_sha256: str, include: tuple[str, ...] | None = None
) -> Path:
    if not root.is_dir():
        raise ModelIntegrityError(name, f"folder not found at {root}")
    actual = sha256_tree(root, include=include)
    if actual != expected_sha256:
        raise ModelIntegrityError(
            name, f"sha256 {actual[:16]}... != expected {expected_sha256[:16]}..."
        )
    return root
