"""PHQ-9 and GAD-7: items, scoring and severity bands (Kroenke 2001; Spitzer 2006). Pure code."""

from __future__ import annotations

from dataclasses import dataclass

ANSWER_LABELS = ("Not at all", "Several days", "More than half the days", "Nearly every day")


@dataclass(frozen=True)
class InstrumentSpec:
    code: str
    items: tuple[str, ...]
    bands: tuple[tuple[int, str], ...]  # (lowest total of the band, name), ascending

    @property
    def max_total(self) -> int:
        return 3 * len(self.items)


PHQ9 = InstrumentSpec(
    code="phq9",
    items=(
        "Little interest or pleasure in doing things",
        "Feeling down, depressed, or hopeless",
        "Trouble falling or staying asleep, or sleeping too much",
        "Feeling tired or having little energy",
        "Poor appetite or overeating",
        "Feeling bad about yourself, or that you are a failure or have let yourself or your "
        "family down",
        "Trouble concentrating on things, such as reading the newspaper or watching television",
        "Moving or speaking so slowly that other people could have noticed, or the opposite",
        "Thoughts that you would be better off dead, or of hurting yourself in some way",
    ),
    bands=(
        (0, "minimal"),
        (5, "mild"),
        (10, "moderate"),
        (15, "moderately_severe"),
        (20, "severe"),
    ),
)

GAD7 = InstrumentSpec(
    code="gad7",
    items=(
        "Feeling nervous, anxious, or on edge",
        "Not being able to stop or control worrying",
        "Worrying too much about different things",
        "Trouble relaxing",
        "Being so restless that it is hard to sit still",
        "Becoming easily annoyed or irritable",
        "Feeling afraid, as if something awful might happen",
    ),
    bands=((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe")),
)

INSTRUMENTS = {spec.code: spec for spec in (PHQ9, GAD7)}


@dataclass(frozen=True)
class Score:
    total: int
    severity: str
    item9: int | None


class InvalidAnswers(ValueError):
    pass


def score(instrument: str, answers: list[int]) -> Score:
    spec = INSTRUMENTS.get(instrument)
    if spec is None:
        raise InvalidAnswers(f"Unknown instrument {instrument!r}.")
    if len(answers) != len(spec.items):
        raise InvalidAnswers(f"{spec.code} needs exactly {len(spec.items)} answers.")
    if any(isinstance(a, bool) or not isinstance(a, int) or not 0 <= a <= 3 for a in answers):
        raise InvalidAnswers("Every answer must be an integer from 0 to 3.")
    total = sum(answers)
    severity = [name for low, name in spec.bands if total >= low][-1]
    return Score(total=total, severity=severity, item9=answers[8] if spec is PHQ9 else None)
