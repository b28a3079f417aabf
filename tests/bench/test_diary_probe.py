"""bench/diary_probe.py: its lines load, and it reports the committed heads in its table."""

from __future__ import annotations

from bench.diary_probe import load_probe, probe_heads
from screening.ml.text.heads import HEADS_DIR


def test_the_probe_holds_45_ordinary_and_19_risky_distinct_lines() -> None:
    rows = load_probe()
    kinds = [r["kind"] for r in rows]
    assert kinds.count("ordinary") == 45 and kinds.count("risky") == 19
    assert len({r["text"] for r in rows}) == len(rows)
    assert {r["set"] for r in rows} == {"suite", "demo", "clinic", "indirect"}


def test_the_probe_scores_a_heads_folder() -> None:
    out = probe_heads(HEADS_DIR, load_probe(), show=False)
    flagged, total = map(int, out["ordinary flagged"].split("/"))
    assert total == 45 and 0 <= flagged <= total
    assert out["risky flagged"].endswith("/19")
    assert 0.0 <= float(out["AUC risky vs ordinary"]) <= 1.0
