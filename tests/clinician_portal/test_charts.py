"""The server-side SVG chart: gaps stay gaps, bands follow the points, markers in range only."""

from __future__ import annotations

import datetime as dt

from clinician_portal.charts import Marker, MoodPoint, _runs, mood_chart_svg
from clinician_portal.selectors import _band, _explain

START = dt.date(2026, 1, 1)


def _day(i: int) -> dt.date:
    return START + dt.timedelta(days=i)


def test_a_missing_or_abstained_day_splits_the_line() -> None:
    points = [
        MoodPoint(_day(0), 1.0, 0.0, 2.0),
        MoodPoint(_day(1), 2.0, 1.0, 3.0),
        MoodPoint(_day(2), None),  # abstained
        MoodPoint(_day(3), -1.0, -2.0, 0.0),
        MoodPoint(_day(5), -3.0, -4.0, -2.0),  # day 4 absent altogether
    ]
    assert [len(r) for r in _runs(points)] == [2, 1, 1]
    svg = mood_chart_svg(points=points, markers=[], start=START, days=6)
    assert svg.count('class="line"') == 3
    assert svg.count('class="band"') == 3


def test_no_scores_no_line() -> None:
    svg = mood_chart_svg(
        points=[MoodPoint(_day(i), None) for i in range(5)], markers=[], start=START, days=5
    )
    assert 'class="line"' not in svg
    assert "0 of 5 days have a score" in svg


def test_lower_scores_are_drawn_lower() -> None:
    high = mood_chart_svg(points=[MoodPoint(_day(0), 8.0)], markers=[], start=START, days=3)
    low = mood_chart_svg(points=[MoodPoint(_day(0), -8.0)], markers=[], start=START, days=3)

    def cy(svg: str) -> float:
        return float(svg.split('class="dot" cx="')[1].split('cy="')[1].split('"')[0])

    assert cy(low) > cy(high)  # SVG y grows downwards


def test_markers_outside_the_window_are_dropped_and_labels_escaped() -> None:
    svg = mood_chart_svg(
        points=[],
        markers=[
            Marker(_day(1), "red", "<script>alert(1)</script>"),
            Marker(_day(30), "orange", "late"),
        ],
        start=START,
        days=5,
    )
    assert svg.count('class="marker') == 1
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_band_narrows_with_confidence() -> None:
    wide = _band(0.0, 0.1)
    narrow = _band(0.0, 0.9)
    assert wide[1] - wide[0] > narrow[1] - narrow[0] > 0
    assert _band(9.5, 0.0)[1] == 10.0  # clipped to the scale


def test_explanations_follow_the_score() -> None:
    assert "very low" in _explain(-7.0, 0.9, False)
    assert "good" in _explain(3.0, 0.9, False)
    assert "No score" in _explain(None, None, True)
    assert "unsure" in _explain(3.0, 0.1, False)
