"""Per-user recall/precision of the crisis detector on a C-SSRS-labelled Reddit CSV (one-off).

    .venv/bin/python bench/crisis_eval.py [--data-dir DIR] [--threshold CATEGORY] [--denormalise]

``--data-dir`` defaults to ``VIGIL_TEXT_DATA_DIR`` or ``../shared/datasets`` next to the checkout
(read by ``screening.ml.text.datasets.read_cssrs``, as the text heads' training does). Its
``cssrs-reddit/dev.csv`` has columns ``User``, ``Post`` (a Python list literal of that user's
posts) and ``Label``
(``Supportive``, ``Indicator``, ``Ideation``, ``Behavior``, ``Attempt``). A user is *at risk* when
labelled Ideation, Behavior or Attempt; the detector flags a user when the highest category over
their posts reaches the threshold (default ``passive_ideation``). The dataset's authors replaced
some words with medical concepts ("hurt" became "Pain", "depression" "Mental Depression");
``--denormalise`` maps the few that matter here back before scanning. Prints figures only, never
post text. Not part of the test suite (the data is not shipped with Vigil).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from screening.ml.text.crisis import CATEGORIES, detect_crisis, detector_info
from screening.ml.text.datasets import DatasetMissing, default_data_dir, read_cssrs, require

AT_RISK = {"ideation", "behavior", "attempt"}
_RANK = {name: i for i, name in enumerate(CATEGORIES)}
_DENORMALISE = [
    (re.compile(r"\bPain (myself|yourself|himself|herself|themselves|me)\b"), r"hurt \1"),
    (re.compile(r"\bMental Depression\b"), "depression"),
    (re.compile(r"\bCrying Reflex, Abnormal\b"), "cry"),
    (re.compile(r"\bHyperactive behavior\b"), "like"),
    (re.compile(r"\bIrritable Mood\b"), "feel"),
    (re.compile(r"\bVentricular Dysfunction, Left\b"), "left"),
]


def denormalise(text: str) -> str:
    for pattern, replacement in _DENORMALISE:
        text = pattern.sub(replacement, text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--threshold", default="passive_ideation", choices=CATEGORIES[1:])
    parser.add_argument("--denormalise", action="store_true")
    args = parser.parse_args()

    try:
        require(args.data_dir)
    except DatasetMissing as exc:
        print(exc)
        return 2
    users = read_cssrs(args.data_dir)
    threshold = _RANK[args.threshold]
    confusion: Counter[tuple[bool, bool]] = Counter()
    by_label: Counter[tuple[str, str]] = Counter()
    posts = chars = 0
    started = time.perf_counter()
    for user in users:
        best = 0
        for post in user.posts:
            text = denormalise(post) if args.denormalise else post
            posts += 1
            chars += len(text)
            best = max(best, _RANK[detect_crisis(text).category])
        truth = user.label in AT_RISK
        confusion[(truth, best >= threshold)] += 1
        by_label[(user.label, CATEGORIES[best])] += 1
    elapsed = time.perf_counter() - started

    tp, fn = confusion[(True, True)], confusion[(True, False)]
    fp, tn = confusion[(False, True)], confusion[(False, False)]
    recall = tp / (tp + fn) if tp + fn else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    info = detector_info()
    print(f"detector {info.name} {info.version} sha256 {info.sha256[:16]}")
    print(f"users {len(users)}  posts {posts}  chars {chars}  seconds {elapsed:.1f}")
    print(f"threshold >= {args.threshold}  denormalise={args.denormalise}")
    print(f"TP {tp}  FN {fn}  FP {fp}  TN {tn}")
    print(f"recall {recall:.3f}  precision {precision:.3f}  F1 {f1:.3f}")
    labels = ["supportive", "indicator", "ideation", "behavior", "attempt"]
    print("label       " + " ".join(f"{c[:10]:>10}" for c in CATEGORIES))
    for label in labels:
        counts = " ".join(f"{by_label[(label, c)]:>10}" for c in CATEGORIES)
        print(f"{label:<11} {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
