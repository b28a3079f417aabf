"""An independent adversarial evaluation set for the crisis detector (detector 1.4.0).

``crisis_adversarial_set.jsonl`` holds synthetic first-person sentences written for this test
without looking at the detector's own tables first: slang, misspellings, non-native English,
texting style, indirect but explicit preparation ("I gave my dog to my sister so she's looked
after when I'm gone"), diary paragraphs with the statement buried in the middle; and hard
negatives (negation, resolved past, third persons, questions, quotes and news, idioms, medication
adherence, treatment talk). Each row: ``id`` (the test id), ``label`` (the expected category, or
``none``), ``kind`` and ``text``; ``known_limit`` (a reason) marks a documented miss, run as a
strict xfail so that fixing it is noticed.

No shared data, no network: the file is part of the tests.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from screening.ml.text.crisis import CATEGORIES, detect_crisis

SET_PATH = Path(__file__).with_name("crisis_adversarial_set.jsonl")
ROWS: list[dict[str, Any]] = [
    json.loads(line) for line in SET_PATH.read_text(encoding="utf-8").splitlines() if line.strip()
]

#: what a label accepts: at least the label, within its alert family (yellow: passive/active
#: ideation; red: plan/imminent intent). A passive wish read as active ideation is still yellow;
#: ideation read as a plan would be a false red alert.
ACCEPT: dict[str, frozenset[str]] = {
    "passive_ideation": frozenset({"passive_ideation", "active_ideation"}),
    "active_ideation": frozenset({"active_ideation"}),
    "plan": frozenset({"plan", "imminent_intent"}),
    "imminent_intent": frozenset({"imminent_intent"}),
    "none": frozenset({"none", "distress"}),
}


VARIETY = (
    "slang",
    "misspelling",
    "non_native",
    "texting",
    "diary",
    "self_harm",
    "past_attempt",
    "negation",
    "past_resolved",
    "third_person",
    "idiom",
    "adherence",
    "treatment",
)


def _params() -> list[Any]:
    params = []
    for row in ROWS:
        marks = []
        if row.get("known_limit"):
            marks.append(pytest.mark.xfail(strict=True, reason=row["known_limit"]))
        params.append(pytest.param(row, id=row["id"], marks=marks))
    return params


@pytest.mark.parametrize("row", _params())
def test_adversarial_set(row: dict[str, Any]) -> None:
    result = detect_crisis(row["text"])
    assert "detector_error" not in result.flags
    accepted = ACCEPT[row["label"]]
    assert result.category in accepted, (row["id"], row["text"], result.category, result.spans)


def test_the_set_is_large_varied_and_well_formed() -> None:
    ids = [row["id"] for row in ROWS]
    assert len(ids) == len(set(ids))
    assert len({row["text"] for row in ROWS}) == len(ROWS)
    assert all(row["label"] in CATEGORIES and row["label"] != "distress" for row in ROWS)
    labels = Counter(row["label"] for row in ROWS)
    assert sum(n for label, n in labels.items() if label != "none") >= 120
    assert labels["none"] >= 80
    assert min(labels[c] for c in ("passive_ideation", "active_ideation", "plan")) >= 25
    assert labels["imminent_intent"] >= 25
    kinds = Counter(row["kind"] for row in ROWS)
    for kind in VARIETY:
        assert kinds[kind] >= 2, kind
    # known limits are few and each carries its reason
    limits = [row for row in ROWS if "known_limit" in row]
    assert len(limits) <= 3 and all(len(row["known_limit"]) > 20 for row in limits)


def test_buried_statements_point_at_the_statement() -> None:
    """In a diary paragraph the counted span lies inside the statement, not the filler."""
    for row in ROWS:
        if row["kind"] != "diary" or row["label"] == "none":
            continue
        result = detect_crisis(row["text"])
        assert result.spans, row["id"]
        first = min(span.start for span in result.spans)
        assert first > 20, row["id"]  # the paragraph opens with ordinary filler
