"""The mood timeline as inline SVG, rendered on the server (no script, no external library).

Pure code: points in, markup out. The line breaks where a day has no score (the fusion abstained
or nothing arrived): a gap is drawn as a gap, never interpolated. The band around the line is the
day's uncertainty. Colours come from CSS classes (the CSP forbids inline styles).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 720
HEIGHT = 240
PAD_LEFT = 36
PAD_RIGHT = 8
PAD_TOP = 10
PAD_BOTTOM = 26
SCORE_MIN = -10.0
SCORE_MAX = 10.0


@dataclass(frozen=True)
class MoodPoint:
    day: dt.date
    score: float | None  # None: no score that day (abstained or no input)
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Marker:
    day: dt.date
    tier: str  # red / orange / yellow
    label: str


def _x(day: dt.date, start: dt.date, days: int) -> float:
    span = max(days - 1, 1)
    return PAD_LEFT + (day - start).days * (WIDTH - PAD_LEFT - PAD_RIGHT) / span


def _y(score: float) -> float:
    score = max(SCORE_MIN, min(SCORE_MAX, score))
    frac = (score - SCORE_MIN) / (SCORE_MAX - SCORE_MIN)
    return PAD_TOP + (1 - frac) * (HEIGHT - PAD_TOP - PAD_BOTTOM)


def _runs(points: Sequence[MoodPoint]) -> list[list[MoodPoint]]:
    """Consecutive days that have a score; a day without one ends a run."""
    runs: list[list[MoodPoint]] = []
    current: list[MoodPoint] = []
    previous: dt.date | None = None
    for point in sorted(points, key=lambda p: p.day):
        contiguous = previous is not None and (point.day - previous).days == 1
        if point.score is None or (current and not contiguous):
            if current:
                runs.append(current)
            current = []
        if point.score is not None:
            current.append(point)
        previous = point.day
    if current:
        runs.append(current)
    return runs


def mood_chart_svg(
    *,
    points: Sequence[MoodPoint],
    markers: Sequence[Marker],
    start: dt.date,
    days: int,
    title: str = "Daily mood score",
) -> str:
    """An accessible SVG (role=img, a title and a description) of ``days`` days from ``start``."""
    parts: list[str] = [
        f'<svg class="mood-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="mood-chart-title mood-chart-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="mood-chart-title">{escape(title)}</title>',
    ]
    scored = [p for p in points if p.score is not None]
    desc = (
        f"{len(scored)} of {days} days have a score, on a scale from -10 (worst) to +10 (best). "
        f"{len(markers)} alerts are marked."
    )
    parts.append(f'<desc id="mood-chart-desc">{escape(desc)}</desc>')
    for value in (-10, -5, 0, 5, 10):
        y = _y(value)
        cls = "grid zero" if value == 0 else "grid"
        parts.append(
            f'<line class="{cls}" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(f'<text class="axis" x="{PAD_LEFT - 4}" y="{y + 4:.1f}">{value:+d}</text>')
    end = start + dt.timedelta(days=days - 1)
    for day in (start, start + dt.timedelta(days=days // 2), end):
        x = _x(day, start, days)
        parts.append(
            f'<text class="axis date" x="{x:.1f}" y="{HEIGHT - 6}">{day.strftime("%d %b")}</text>'
        )
    for run in _runs(points):
        if all(p.low is not None and p.high is not None for p in run):
            if len(run) == 1:  # a lone day: a narrow band
                p = run[0]
                x, top, bottom = _x(p.day, start, days), _y(p.high or 0), _y(p.low or 0)
                parts.append(
                    f'<rect class="band" x="{x - 2:.1f}" y="{top:.1f}" width="4" '
                    f'height="{max(bottom - top, 0):.1f}"/>'
                )
            else:
                upper = [f"{_x(p.day, start, days):.1f},{_y(p.high or 0):.1f}" for p in run]
                lower = [
                    f"{_x(p.day, start, days):.1f},{_y(p.low or 0):.1f}" for p in reversed(run)
                ]
                parts.append(f'<polygon class="band" points="{" ".join(upper + lower)}"/>')
        coords = " ".join(f"{_x(p.day, start, days):.1f},{_y(p.score or 0):.1f}" for p in run)
        parts.append(f'<polyline class="line" points="{coords}"/>')
        for p in run:
            cx, cy = _x(p.day, start, days), _y(p.score or 0)
            parts.append(
                f'<circle class="dot" cx="{cx:.1f}" cy="{cy:.1f}" r="2.5">'
                f"<title>{p.day.isoformat()}: {p.score or 0:+.1f}</title></circle>"
            )
    for marker in markers:
        if not start <= marker.day <= end:
            continue
        x = _x(marker.day, start, days)
        parts.append(
            f'<g class="marker tier-{escape(marker.tier)}"><line x1="{x:.1f}" x2="{x:.1f}" '
            f'y1="{PAD_TOP}" y2="{HEIGHT - PAD_BOTTOM}"/>'
            f'<path d="M{x - 5:.1f},{PAD_TOP} L{x + 5:.1f},{PAD_TOP} L{x:.1f},{PAD_TOP + 8} Z">'
            f"<title>{escape(marker.label)}</title></path></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
