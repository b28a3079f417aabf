"""bench/diary_probe.py: its lines load; the committed heads hold its bar (the switching rule)."""

from __future__ import annotations

from bench.diary_probe import load_probe, probe_heads
from screening.ml.text.heads import HEADS_DIR


def test_the_probe_holds_45_ordinary_and_19_risky_distinct_lines() -> None:
    rows = load_probe()
    kinds = [r["kind"] for r in rows]
    assert kinds.count("ordinary") == 45 and kinds.count("risky") == 19
    assert len({r["text"] for r in rows}) == len(rows)
    assert {r["set"] for r in rows} == {"suite", "demo", "clinic", "indirect"}


#: The committed heads' figures on the probe (2026-11-22, crisis detector 1.4.2). The rule for
#: switching heads (docs/text-scoring.md, "Encoder adapters"): a candidate must not lose here.
#: Adapted heads measured 9-17/45, 15-16/19 and AUC 0.539-0.578 and were not shipped. Raise these
#: bars with a better head; never lower them to let a worse one in.
COMMITTED_BAR = {"ordinary flagged at most": 20, "risky flagged at least": 16, "AUC at least": 0.73}


def test_the_committed_heads_hold_the_diary_probe_bar() -> None:
    out = probe_heads(HEADS_DIR, load_probe(), show=False)
    flagged, total = map(int, out["ordinary flagged"].split("/"))
    caught, risky = map(int, out["risky flagged"].split("/"))
    assert (total, risky) == (45, 19)
    assert flagged <= COMMITTED_BAR["ordinary flagged at most"], out
    assert caught >= COMMITTED_BAR["risky flagged at least"], out
    assert float(out["AUC risky vs ordinary"]) >= COMMITTED_BAR["AUC at least"], out
