"""Span-level evaluation of the de-identifier on the labelled sets in ``data/`` (no Django).

Matching rule (character overlap, whitespace not counted):

* a gold span is **found** when predicted spans of a compatible type together cover at least
  50 % of its characters (recall);
* a predicted span is **correct** when gold spans of a compatible type together cover at least
  50 % of its characters (precision).

Compatible types: each type with itself, plus ADDRESS <-> LOCATION (a city inside an address,
or an address tagged as a place, is still the right kind of PHI), URL <-> SOCIAL_HANDLE, and the
identifier family MEDICAL_RECORD_NUMBER / ACCOUNT_NUMBER / ID_NUMBER. Precision is reported per
*predicted* type, recall per *gold* type; F2 = 5PR / (4P + R) weighs recall four times as much as
precision, because a missed identifier is worse than an over-redacted word.

"Any-type recall" counts a gold span as found when predicted spans of *any* type cover 50 % of
it: the share of PHI that would not be readable after redaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from privacy.deid import types as T

DATA_DIR = Path(__file__).resolve().parent / "data"
EVAL_SET = DATA_DIR / "eval_set.jsonl"
TEMPLATED_SET = DATA_DIR / "templated_set.jsonl"
DEFAULT_SETS = (EVAL_SET, TEMPLATED_SET)

_IDS = frozenset({T.MEDICAL_RECORD_NUMBER, T.ACCOUNT_NUMBER, T.ID_NUMBER})
_COMPATIBLE: dict[str, frozenset[str]] = {
    T.ADDRESS: frozenset({T.ADDRESS, T.LOCATION}),
    T.LOCATION: frozenset({T.LOCATION, T.ADDRESS}),
    T.URL: frozenset({T.URL, T.SOCIAL_HANDLE}),
    T.SOCIAL_HANDLE: frozenset({T.SOCIAL_HANDLE, T.URL}),
    T.MEDICAL_RECORD_NUMBER: _IDS,
    T.ACCOUNT_NUMBER: _IDS,
    T.ID_NUMBER: _IDS,
}
COVERAGE = 0.5


def compatible(gold_type: str, predicted_type: str) -> bool:
    return predicted_type in _COMPATIBLE.get(gold_type, frozenset({gold_type}))


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    entity_type: str


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    spans: tuple[Span, ...]


def load_set(path: Path | str) -> list[Example]:
    """Read a JSONL set: ``{"id", "text", "spans": [{"start", "end", "entity_type"}]}``."""
    examples: list[Example] = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            text = row["text"]
            spans = tuple(
                Span(int(s["start"]), int(s["end"]), str(s["entity_type"])) for s in row["spans"]
            )
            for s in spans:
                if not 0 <= s.start < s.end <= len(text):
                    raise ValueError(f"{path}:{number}: span outside the text")
            examples.append(Example(str(row.get("id", number)), text, spans))
    return examples


def _chars(text: str, start: int, end: int) -> set[int]:
    return {i for i in range(start, end) if not text[i].isspace()}


def _covered(text: str, target: Span, others: Iterable[Span]) -> bool:
    wanted = _chars(text, target.start, target.end)
    if not wanted:
        return False
    got: set[int] = set()
    for o in others:
        if o.start < target.end and target.start < o.end:
            got |= _chars(text, max(o.start, target.start), min(o.end, target.end))
    return len(got) >= COVERAGE * len(wanted)


@dataclass
class Counts:
    gold: int = 0
    found: int = 0
    found_any: int = 0
    predicted: int = 0
    correct: int = 0

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.found / self.gold if self.gold else None

    @property
    def recall_any(self) -> float | None:
        return self.found_any / self.gold if self.gold else None

    @property
    def f2(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or (4 * p + r) == 0:
            return None
        return 5 * p * r / (4 * p + r)


@dataclass(frozen=True)
class Miss:
    example_id: str
    kind: str  # "missed" (false negative) or "spurious" (false positive)
    entity_type: str
    surface: str


@dataclass
class Report:
    name: str
    sentences: int = 0
    per_type: dict[str, Counts] = field(default_factory=dict)
    no_phi_total: int = 0
    no_phi_unchanged: int = 0
    withheld: int = 0
    misses: list[Miss] = field(default_factory=list)

    def counts(self, entity_type: str) -> Counts:
        return self.per_type.setdefault(entity_type, Counts())

    @property
    def total(self) -> Counts:
        total = Counts()
        for c in self.per_type.values():
            total.gold += c.gold
            total.found += c.found
            total.found_any += c.found_any
            total.predicted += c.predicted
            total.correct += c.correct
        return total

    @property
    def no_phi_rate(self) -> float | None:
        return self.no_phi_unchanged / self.no_phi_total if self.no_phi_total else None


Predictor = Callable[[str], tuple[str, Sequence[Span], bool]]


def default_predictor() -> Predictor:
    """The product's own ``deidentify`` as a predictor: (redacted text, spans, withheld)."""
    from privacy.deid.engine import deidentify

    def predict(text: str) -> tuple[str, Sequence[Span], bool]:
        result = deidentify(text)
        spans = [Span(s.start, s.end, s.entity_type) for s in result.spans]
        return result.text, spans, result.withheld

    return predict


def evaluate(
    examples: Sequence[Example], predict: Predictor | None = None, *, name: str = ""
) -> Report:
    predict = predict or default_predictor()
    report = Report(name=name)
    for ex in examples:
        report.sentences += 1
        redacted, predicted, withheld = predict(ex.text)
        report.withheld += int(withheld)
        if not ex.spans:
            report.no_phi_total += 1
            report.no_phi_unchanged += int(redacted == ex.text)
        for g in ex.spans:
            c = report.counts(g.entity_type)
            c.gold += 1
            same = [p for p in predicted if compatible(g.entity_type, p.entity_type)]
            if _covered(ex.text, g, same):
                c.found += 1
            else:
                report.misses.append(Miss(ex.id, "missed", g.entity_type, ex.text[g.start : g.end]))
            if _covered(ex.text, g, predicted):
                c.found_any += 1
        for p in predicted:
            c = report.counts(p.entity_type)
            c.predicted += 1
            same = [g for g in ex.spans if compatible(g.entity_type, p.entity_type)]
            if _covered(ex.text, p, same):
                c.correct += 1
            else:
                report.misses.append(
                    Miss(ex.id, "spurious", p.entity_type, ex.text[p.start : p.end])
                )
    return report


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_report(report: Report) -> str:
    """A fixed-width table: one row per entity type, then the totals and the no-PHI figure."""
    header = (
        f"{'entity type':<22} {'gold':>5} {'found':>6} {'pred':>5} {'correct':>7} "
        f"{'precision':>9} {'recall':>7} {'F2':>6} {'any-type R':>10}"
    )
    lines = [f"== {report.name} ({report.sentences} sentences)", header, "-" * len(header)]

    def row(label: str, c: Counts) -> str:
        return (
            f"{label:<22} {c.gold:>5} {c.found:>6} {c.predicted:>5} {c.correct:>7} "
            f"{_fmt(c.precision):>9} {_fmt(c.recall):>7} {_fmt(c.f2):>6} {_fmt(c.recall_any):>10}"
        )

    for entity_type in sorted(report.per_type):
        lines.append(row(entity_type, report.per_type[entity_type]))
    lines.append("-" * len(header))
    lines.append(row("ALL", report.total))
    if report.no_phi_total:
        lines.append(
            f"no-PHI sentences unchanged: {report.no_phi_unchanged}/{report.no_phi_total} "
            f"({_fmt(report.no_phi_rate)})"
        )
    lines.append(f"texts withheld (engine failure): {report.withheld}")
    return "\n".join(lines)
