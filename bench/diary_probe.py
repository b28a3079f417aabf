"""How text heads treat diary lines: false alarms on ordinary entries, catches on risky ones.

    .venv/bin/python bench/diary_probe.py [--heads-dir DIR ...] [--goemotions] [--show]

The C-SSRS users the risk head is measured on write long forum posts; patients write short diary
lines. A head can gain on C-SSRS and lose on diaries (it happened: docs/text-scoring.md, "Encoder
adapters"), so a candidate head is checked on both before it ships. ``bench/data/
diary_probe.jsonl`` holds 64 lines written for this check, none from a patient: 45 ordinary (the
test suite's 10, the demo's 5, 30 written 2026-11-22 about therapy, medication, sleep, work and
small sadness) and 19 risky (the suite's 9 explicit ideation lines and 10 indirect ones written
the same day: method research, preparation, goodbyes, burden, hopelessness). They were written
before any adapted head scored them. **Do not tune a head on them**: they are a check of
direction, and 64 lines would be fitted, not learnt from.

Per heads folder (default: the committed heads) it prints ordinary lines flagged at risk, risky
lines flagged (all, and those the crisis detector does not force), the AUC of
``at_risk_probability`` for risky against ordinary lines (all risky, and the indirect ones), and
with ``--goemotions`` the share of GoEmotions dev comments flagged (needs ../shared/datasets).
``--show`` lists each wrong decision with its probability (the lines are ours, not patients').
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.metrics import roc_auc_score

from screening.ml.text.heads import HEADS_DIR
from screening.ml.text.scorer import TextScorer

PROBE = Path(__file__).resolve().parent / "data" / "diary_probe.jsonl"


def load_probe(path: Path = PROBE) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    bad = [
        r
        for r in rows
        if r.get("kind") not in ("ordinary", "risky") or not r.get("text") or not r.get("set")
    ]
    if bad:
        raise ValueError(f"{len(bad)} malformed probe rows")
    return rows


def probe_heads(heads_dir: Path, rows: list[dict[str, str]], *, show: bool) -> dict[str, str]:
    scorer = TextScorer(heads_dir=heads_dir)
    scores = scorer.score([r["text"] for r in rows])
    risky = [r["kind"] == "risky" for r in rows]
    ordinary = [s for s, k in zip(scores, risky, strict=True) if not k]
    caught = [s for s, k in zip(scores, risky, strict=True) if k]
    unforced = [s for s in caught if s.crisis.category == "none"]
    p = [s.at_risk_probability for s in scores]
    indirect = [r["set"] == "indirect" for r in rows]
    keep = [not k or i for k, i in zip(risky, indirect, strict=True)]
    auc_indirect = roc_auc_score(
        [r for r, k in zip(risky, keep, strict=True) if k],
        [x for x, k in zip(p, keep, strict=True) if k],
    )
    out = {
        "heads": str(heads_dir),
        "ordinary flagged": f"{sum(s.at_risk for s in ordinary)}/{len(ordinary)}",
        "risky flagged": f"{sum(s.at_risk for s in caught)}/{len(caught)}",
        "risky, no detector hit, flagged": f"{sum(s.at_risk for s in unforced)}/{len(unforced)}",
        "AUC risky vs ordinary": f"{roc_auc_score(risky, p):.3f}",
        "AUC indirect vs ordinary": f"{auc_indirect:.3f}",
    }
    if show:
        for row, s in zip(rows, scores, strict=True):
            if s.at_risk != (row["kind"] == "risky"):
                print(
                    f"  {'missed' if row['kind'] == 'risky' else 'false alarm':11}"
                    f" p={s.at_risk_probability:.3f} detector={s.crisis.category:16} {row['text']}"
                )
    return out


def goemotions_flagged(heads_dir: Path) -> str:
    from screening.ml.text import datasets as ds

    texts = ds.read_goemotions(ds.default_data_dir(), grouping="group", split="dev").texts
    scores = TextScorer(heads_dir=heads_dir).score(list(texts))
    n = sum(s.at_risk for s in scores)
    return f"{n}/{len(scores)} ({100 * n / len(scores):.1f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heads-dir", type=Path, action="append", default=None)
    parser.add_argument("--goemotions", action="store_true")
    parser.add_argument("--show", action="store_true")
    args = parser.parse_args()
    rows = load_probe()
    t0 = time.perf_counter()
    results = []
    for heads in args.heads_dir or [HEADS_DIR]:
        result = probe_heads(heads, rows, show=args.show)
        if args.goemotions:
            result["GoEmotions dev flagged"] = goemotions_flagged(heads)
        results.append(result)
    keys = list(results[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for result in results:
        print("| " + " | ".join(result[k] for k in keys) + " |")
    print(f"({len(rows)} probe lines, {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
