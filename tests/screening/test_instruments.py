"""The pure scoring module: PHQ-9 and GAD-7 totals, bands and item 9."""

from __future__ import annotations

import itertools

import pytest

from screening.instruments import GAD7, INSTRUMENTS, PHQ9, InvalidAnswers, score


def test_the_instruments_have_the_published_item_counts():
    assert len(PHQ9.items) == 9
    assert len(GAD7.items) == 7
    assert PHQ9.max_total == 27
    assert GAD7.max_total == 21
    assert set(INSTRUMENTS) == {"phq9", "gad7"}
    assert "better off dead" in PHQ9.items[8]


def _band(total: int, table: list[tuple[range, str]]) -> str:
    return next(name for span, name in table if total in span)


PHQ9_TABLE = [
    (range(0, 5), "minimal"),
    (range(5, 10), "mild"),
    (range(10, 15), "moderate"),
    (range(15, 20), "moderately_severe"),
    (range(20, 28), "severe"),
]
GAD7_TABLE = [
    (range(0, 5), "minimal"),
    (range(5, 10), "mild"),
    (range(10, 15), "moderate"),
    (range(15, 22), "severe"),
]


@pytest.mark.parametrize("total", range(28))
def test_every_phq9_total_has_its_band(total):
    answers = [min(3, max(0, total - 3 * i)) for i in range(9)]
    result = score("phq9", answers)
    assert result.total == total
    assert result.severity == _band(total, PHQ9_TABLE)
    assert result.item9 == answers[8]


@pytest.mark.parametrize("total", range(22))
def test_every_gad7_total_has_its_band(total):
    answers = [min(3, max(0, total - 3 * i)) for i in range(7)]
    result = score("gad7", answers)
    assert result.total == total
    assert result.severity == _band(total, GAD7_TABLE)
    assert result.item9 is None


def test_item9_follows_the_ninth_answer_only():
    for value in range(4):
        assert score("phq9", [0] * 8 + [value]).item9 == value
        assert score("phq9", [value] * 8 + [0]).item9 == 0


def test_the_order_of_answers_does_not_change_the_total():
    base = [0, 1, 2, 3, 0, 1, 2]
    totals = {
        score("gad7", list(p)).total for p in itertools.islice(itertools.permutations(base), 50)
    }
    assert totals == {9}


@pytest.mark.parametrize(
    ("instrument", "answers"),
    [
        ("phq9", [0] * 8),
        ("phq9", [0] * 10),
        ("gad7", [0] * 9),
        ("gad7", []),
        ("phq9", [0] * 8 + [4]),
        ("phq9", [-1] + [0] * 8),
        ("gad7", [True] + [0] * 6),
        ("gad7", [False] * 7),
        ("gad7", [1.0] + [0] * 6),
        ("gad7", ["1"] + [0] * 6),
        ("gad7", [None] + [0] * 6),
        ("phq2", [0, 0]),
        ("PHQ9", [0] * 9),
    ],
)
def test_invalid_answers_raise(instrument, answers):
    with pytest.raises(InvalidAnswers):
        score(instrument, answers)
