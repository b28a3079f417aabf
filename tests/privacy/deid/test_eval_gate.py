"""The recall gate: the committed evaluation set must keep its recall for the main PHI types."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from privacy.deid.evaluation import EVAL_SET, TEMPLATED_SET, Report, format_report, load_set

GATED = ("PERSON", "PHONE_NUMBER", "EMAIL_ADDRESS", "DATE_TIME", "ADDRESS")
RECALL_GATE = 0.95
#: The share of no-PHI sentences that must come back unchanged (measured: 65/65 = 1.000).
NO_PHI_GATE = 0.95


def test_eval_set_is_what_the_docs_say() -> None:
    examples = load_set(EVAL_SET)
    assert len(examples) >= 200
    assert sum(1 for e in examples if not e.spans) >= 50
    types = Counter(s.entity_type for e in examples for s in e.spans)
    for entity_type in (*GATED, "AGE", "MEDICAL_RECORD_NUMBER", "ACCOUNT_NUMBER", "URL"):
        assert types[entity_type] >= 4, entity_type
    # Lower-case and ALL CAPS names are in the set.
    names = [
        e.text[s.start : s.end] for e in examples for s in e.spans if s.entity_type == "PERSON"
    ]
    assert sum(n.islower() for n in names) >= 4
    assert sum(n.isupper() for n in names) >= 4
    assert len(load_set(TEMPLATED_SET)) >= 60


def test_every_line_is_valid_jsonl() -> None:
    for path in (EVAL_SET, TEMPLATED_SET):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for span in row["spans"]:
                assert row["text"][span["start"] : span["end"]] == span["text"]


@pytest.mark.parametrize("entity_type", GATED)
def test_recall_gate(eval_report: Report, entity_type: str) -> None:
    counts = eval_report.per_type[entity_type]
    assert counts.gold >= 10
    assert counts.recall is not None
    assert counts.recall >= RECALL_GATE, format_report(eval_report)


def test_no_phi_sentences_survive(eval_report: Report) -> None:
    assert eval_report.no_phi_total >= 50
    assert eval_report.no_phi_rate is not None
    assert eval_report.no_phi_rate >= NO_PHI_GATE, format_report(eval_report)


def test_templated_set_recall(templated_report: Report) -> None:
    total = templated_report.total
    assert total.recall is not None and total.recall >= 0.95, format_report(templated_report)
    assert templated_report.withheld == 0


def test_precision_is_not_bought_with_redacting_everything(eval_report: Report) -> None:
    total = eval_report.total
    assert total.precision is not None and total.precision >= 0.9, format_report(eval_report)
