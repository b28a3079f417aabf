"""The ``deidentify`` and ``evaluate_deid`` management commands."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.usefixtures("deid_engine")


def test_deidentify_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.jsonl"
    target = tmp_path / "out.jsonl"
    lines = [
        json.dumps({"id": "a1", "text": "Kwame Mensah rang from 07700 900461 on March 3rd."}),
        "{this is not json: Secret Person",
        json.dumps({"id": "a2"}),
        "",
        json.dumps(["a list", "Another Secret"]),
        json.dumps({"id": 7, "text": "I felt blue today."}),
    ]
    source.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe broken\n")
    stdout = StringIO()
    call_command("deidentify", "--input", str(source), "--output", str(target), stdout=stdout)

    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["a1", 7]
    first = rows[0]
    assert first["text"] == "<PERSON_1> rang from <PHONE_NUMBER_1> on <DATE_TIME_1>."
    assert first["withheld"] is False
    assert {s["entity_type"] for s in first["spans"]} == {"PERSON", "PHONE_NUMBER", "DATE_TIME"}
    for span in first["spans"]:
        assert set(span) == {"entity_type", "start", "end", "score", "placeholder"}
    assert rows[1]["text"] == "I felt blue today." and rows[1]["spans"] == []

    err = capsys.readouterr().err
    for number in (2, 3, 5, 7):
        assert f"line {number}:" in err
    assert "line 4:" not in err  # blank lines are skipped silently
    assert "Secret" not in err and "broken" not in err
    assert "4 bad line(s)" in stdout.getvalue()
    assert "deidentify" in err  # the tqdm bar went to stderr


def test_deidentify_command_refuses_missing_input(tmp_path: Path) -> None:
    with pytest.raises(CommandError):
        call_command(
            "deidentify", "--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o")
        )


def test_evaluate_deid_command(tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    rows = [
        {
            "id": "s1",
            "text": "Call Priya on 020 7946 0321.",
            "spans": [
                {"start": 5, "end": 10, "entity_type": "PERSON"},
                {"start": 14, "end": 27, "entity_type": "PHONE_NUMBER"},
            ],
        },
        {"id": "s2", "text": "May was hard.", "spans": []},
    ]
    small.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    stdout = StringIO()
    call_command("evaluate_deid", "--set", str(small), stdout=stdout, stderr=StringIO())
    out = stdout.getvalue()
    assert "small.jsonl (2 sentences)" in out
    assert "precision" in out and "recall" in out and "F2" in out
    person = next(line for line in out.splitlines() if line.startswith("PERSON"))
    assert person.split()[1:3] == ["1", "1"]  # gold 1, found 1
    assert "no-PHI sentences unchanged: 1/1 (1.000)" in out
