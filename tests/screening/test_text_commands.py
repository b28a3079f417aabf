"""The text management commands: score_texts end to end, and clean exits without ../shared."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


def test_score_texts_end_to_end_with_a_malformed_line(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    dst = tmp_path / "out.jsonl"
    lines = [
        json.dumps({"id": "e1", "text": "Such a lovely day with my friends, I feel happy."}),
        "{this is not json",
        json.dumps({"id": "e2", "text": "I want to kill myself, I can't go on any more."}),
        json.dumps({"id": "e3"}),
        "",
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": 4, "text": "Ordinary Tuesday. Groceries, then laundry."}),
    ]
    src.write_text("\n".join(lines) + "\n")
    out = io.StringIO()
    call_command(
        "score_texts",
        "--input",
        str(src),
        "--output",
        str(dst),
        "--batch-size",
        "2",
        "--no-progress",
        stdout=out,
    )
    records = [json.loads(line) for line in dst.read_text().splitlines()]
    assert len(records) == 6  # the blank line is skipped, every other line gets a record
    by_id = {r["id"]: r for r in records if "error" not in r}
    errors = [r for r in records if "error" in r]
    assert set(by_id) == {"e1", "e2", 4}
    assert len(errors) == 3
    assert {e["line"] for e in errors} == {2, 4, 6}
    assert next(e for e in errors if e["line"] == 4)["id"] == "e3"
    happy, crisis = by_id["e1"], by_id["e2"]
    assert happy["valence"] > 0 > crisis["valence"]
    assert crisis["at_risk"] and not happy["at_risk"]
    assert crisis["risk_level"] in {"ideation", "behavior", "attempt"}
    assert set(crisis["risk_probs"]) == {
        "supportive",
        "indicator",
        "ideation",
        "behavior",
        "attempt",
    }
    assert crisis["evidence"], crisis
    src_text = json.loads(lines[2])["text"]
    for ev in crisis["evidence"]:
        assert src_text[ev["start"] : ev["end"]] == ev["text"]
    assert "3 error records" in out.getvalue()


def test_score_texts_missing_input(tmp_path: Path) -> None:
    with pytest.raises(CommandError):
        call_command(
            "score_texts", "--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o")
        )


def test_evaluate_text_heads_without_data_exits_cleanly(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("evaluate_text_heads", "--data-dir", str(tmp_path), stdout=out)
    assert "nothing to evaluate" in out.getvalue()
    assert "../shared/datasets" in out.getvalue()


def test_train_text_heads_without_data_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="development data not found"):
        call_command("train_text_heads", "--data-dir", str(tmp_path), "--heads-dir", str(tmp_path))


def test_score_texts_chunks_keep_order_and_bounds() -> None:
    from screening.management.commands.score_texts import _chunks

    rows = [(n, n, "x" * (n % 7) * 100, None) for n in range(1000)] + [(1000, 1000, None, "bad")]
    parts = list(_chunks(rows, max_texts=64, max_chars=5_000))
    assert [r for p in parts for r in p] == rows  # every row once, in order
    assert all(len(p) <= 64 for p in parts)
    # a chunk only exceeds the character bound when one text alone does
    assert all(sum(len(r[2] or "") for r in p) <= 5_000 or len(p) == 1 for p in parts)
    assert list(_chunks([], max_texts=8, max_chars=10)) == []


def test_score_each_isolates_a_text_the_scorer_cannot_handle() -> None:
    from screening.ml.text.scorer import score_each

    class Picky:
        calls = 0

        def score(self, texts: list[str]) -> list[str]:
            Picky.calls += 1
            if "bad" in texts:
                raise RuntimeError("bad")
            return [t.upper() for t in texts]

    assert score_each(Picky(), ["a", "b"]) == ["A", "B"] and Picky.calls == 1
    out = score_each(Picky(), ["a", "bad", "c"])
    assert out[0] == "A" and out[2] == "C" and isinstance(out[1], RuntimeError)


def test_score_each_lets_the_time_limit_through() -> None:
    """Out of time is not one text's failure: scoring each text again would only hit the hard
    limit."""
    from screening.ml.text.scorer import score_each

    class OutOfTime(Exception):
        pass

    class Slow:
        calls = 0

        def score(self, texts: list[str]) -> list[str]:
            Slow.calls += 1
            raise OutOfTime()

    with pytest.raises(OutOfTime):
        score_each(Slow(), ["a", "b", "c"], reraise=(OutOfTime,))
    assert Slow.calls == 1


def test_score_texts_output_is_private_and_can_be_deidentified(tmp_path: Path) -> None:
    """The output quotes the input (patient data): owner-only, and ``--deidentify`` replaces the
    quotes with their de-identified form while the offsets still point into the input."""
    import stat

    text = "Kwame Mensah (07700 900461) says I want to kill myself tonight."
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "x", "text": text}) + "\n")
    plain, deid = tmp_path / "plain.jsonl", tmp_path / "deid.jsonl"
    deid.write_text("stale")
    deid.chmod(0o644)  # an existing file is truncated and made private too
    for dst, extra in ((plain, []), (deid, ["--deidentify"])):
        args = ["--input", str(src), "--output", str(dst), "--no-progress", *extra]
        call_command("score_texts", *args, stdout=io.StringIO())
        assert stat.S_IMODE(dst.stat().st_mode) == 0o600
    (raw,) = [json.loads(line) for line in plain.read_text().splitlines()]
    (safe,) = [json.loads(line) for line in deid.read_text().splitlines()]
    assert "Kwame" in raw["worst_passage_text"] and "07700" in raw["worst_passage_text"]
    assert "Kwame" not in deid.read_text() and "07700 900461" not in deid.read_text()
    assert "kill myself" in safe["worst_passage_text"]
    assert safe["at_risk"] == raw["at_risk"] and safe["risk_probs"] == raw["risk_probs"]
    assert [(e["start"], e["end"]) for e in safe["evidence"]] == [
        (e["start"], e["end"]) for e in raw["evidence"]
    ]
    assert safe["evidence"]


def test_train_text_heads_treatment_weight_reaches_the_adapter_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from screening.management.commands import train_text_heads as command
    from screening.ml.text.training import ADAPTER_RECIPE
    from tests.screening.ml.text.tiny_datasets import make_tiny_datasets

    data = make_tiny_datasets(tmp_path / "data")
    seen: list[Any] = []
    monkeypatch.setattr(command, "train_all", lambda *, cfg, **_: seen.append(cfg) or {})
    base = ["train_text_heads", "--data-dir", str(data), "--heads-dir", str(tmp_path / "heads")]

    call_command(*base, "--adapter", "--treatment-weight", "0.3", stdout=io.StringIO())
    call_command(*base, "--adapter", stdout=io.StringIO())
    assert seen[0].adapter == {**ADAPTER_RECIPE, "treatment_weight": 0.3}
    assert seen[1].adapter == ADAPTER_RECIPE
    assert seen[0].config_hash() != seen[1].config_hash()

    with pytest.raises(CommandError, match="needs --adapter"):
        call_command(*base, "--treatment-weight", "0.3")
    with pytest.raises(CommandError, match="0 or more"):
        call_command(*base, "--adapter", "--treatment-weight", "-1")
    assert len(seen) == 2  # neither refusal trained anything
