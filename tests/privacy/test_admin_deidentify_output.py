"""``deidentify`` (run by administrators on exported texts) writes its output readable by its owner
only, like ``score_texts``: a missed identifier must not end up in a world-readable file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import call_command

from privacy.deid import engine


def _redact(text: str, record_id: Any = None) -> Any:
    return SimpleNamespace(text="<REDACTED>", withheld=False, spans=[])


@pytest.fixture
def stub_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    # The file mode is what is tested: no need to load the spaCy model.
    monkeypatch.setattr(engine, "get_analyzer", lambda: None)
    monkeypatch.setattr(engine, "deidentify", _redact)


@pytest.mark.parametrize("existing", [False, True])
def test_deidentify_output_is_private(tmp_path: Path, stub_engine: None, existing: bool) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": 1, "text": "Jane rang."}) + "\n", encoding="utf-8")
    target = tmp_path / "out.jsonl"
    if existing:
        target.write_text("old\n", encoding="utf-8")
        target.chmod(0o644)
    old_umask = os.umask(0o022)
    try:
        call_command("deidentify", "--input", str(source), "--output", str(target), "--no-progress")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text(encoding="utf-8"))["text"] == "<REDACTED>"
