"""A tiny copy of ../shared/datasets' layout, so the training pipeline runs end to end in tests
(a user's clone has no ../shared). Written here; nothing in it is real data."""

from __future__ import annotations

import csv
from pathlib import Path


def make_tiny_datasets(root: Path) -> Path:
    """22 GoEmotions rows (both groupings), 25 C-SSRS users (5 per level); returns ``root``."""
    go = root / "goemotions"
    pos = [
        "What a lovely day, I am so happy.",
        "Thank you so much, this made me smile!",
        "I love this, it is wonderful.",
        "Great news, congratulations to you both!",
        "This is amazing, well done.",
        "I am grateful for my friends.",
    ]
    neg = [
        "This is awful and I hate it.",
        "I am so angry about this mess.",
        "That is disgusting, shame on them.",
        "I feel sad and alone tonight.",
        "What a terrible thing to do.",
        "I am scared it will happen again.",
    ]
    amb = [
        "Wow, I did not expect that at all.",
        "Really? I am not sure what to think.",
        "Huh, that is surprising.",
        "I wonder how that works.",
    ]
    neu = [
        "The meeting is at ten tomorrow.",
        "It is on the second shelf.",
        "The bus leaves from the station.",
        "He posted it on Tuesday.",
        "My doctor moved the appointment to Monday.",
        "The therapy session is at five, then dinner.",
    ]
    rows = (
        [(t, "0") for t in pos]
        + [(t, "1") for t in neg]
        + [(t, "2") for t in amb]
        + [(t, "3") for t in neu]
    )
    ekman_of = {"0": "3", "1": "0", "2": "6", "3": "4"}  # joy, anger, surprise, neutral
    extra = {
        "I feel sad and alone tonight.": "5",
        "I am scared it will happen again.": "2",
        "That is disgusting, shame on them.": "1",
    }
    for grouping, labels in (
        ("group", ["positive", "negative", "ambiguous", "neutral"]),
        ("ekman", ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]),
    ):
        d = go / grouping
        d.mkdir(parents=True, exist_ok=True)
        (d / "labels.txt").write_text("\n".join(labels) + "\n")
        for split, part in (("train", rows), ("dev", rows[::2] + rows[1::4])):
            with (d / f"{split}.tsv").open("w") as fh:
                for i, (t, g) in enumerate(part):
                    lab = g if grouping == "group" else extra.get(t, ekman_of[g])
                    fh.write(f"{t}\t{lab}\tid{i}\n")
    posts = {
        "supportive": [
            "You are not alone, please reach out to someone you trust.",
            "Stay strong, things can get better with help.",
        ],
        "indicator": [
            "I have been feeling down and tired for weeks.",
            "Nothing seems fun anymore and I sleep all day.",
        ],
        "ideation": [
            "I keep thinking everyone would be better off without me.",
            "I want to die, I think about it every night.",
        ],
        "behavior": [
            "I bought pills and wrote a note last week.",
            "I stood on the bridge for an hour last night.",
        ],
        "attempt": [
            "I tried to end my life last year and woke up in hospital.",
            "After my overdose I was in the ICU for days.",
        ],
    }
    cs = root / "cssrs-reddit"
    cs.mkdir(parents=True, exist_ok=True)
    with (cs / "dev.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["User", "Post", "Label"])
        n = 0
        for label, ps in posts.items():
            for k in range(5):
                variant = [p + (" " + "Really." * k) for p in ps]
                w.writerow([f"user-{n}", repr(variant), label.capitalize()])
                n += 1
    return root
