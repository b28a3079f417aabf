"""At-risk decisions on first-person diary lines: ordinary days stay clear, ideation is flagged.

Diaries are all "I": the at-risk model must not read first person, sadness or tiredness as
suicide risk, and must flag clear statements of ideation (these also hit the crisis detector,
which can never be overruled, so the second list guards the whole pipeline, not the model alone).
"""

from __future__ import annotations

import pytest

from screening.ml.text.scorer import AT_RISK_LEVELS, TextScorer

ORDINARY = [
    "Such a lovely day with my friends, I feel happy.",
    "I made pancakes this morning and then I went for a run in the park.",
    "I finally finished my project at work and my boss said I did a great job.",
    "I called my mum and we talked about her garden for an hour.",
    "I'm a bit tired today, I slept badly because of the neighbours' party.",
    "I felt sad when I said goodbye to my sister at the airport, I will miss her.",
    "I was annoyed that the train was late again, but I read my book.",
    "I cried at the end of the film, it was so beautiful.",
    "I am nervous about my exam tomorrow but I have studied a lot.",
    "I cooked dinner for my partner and we watched a comedy, I laughed a lot.",
]

IDEATION = [
    "I want to kill myself.",
    "I don't want to be alive anymore, I wish I could just disappear forever.",
    "I have been thinking about ending my life every night this week.",
    "I wish I was dead, everyone would be better off without me.",
    "I keep thinking about suicide and I don't know how to stop.",
    "I want to die. There is no point in going on.",
    "I've been planning how to end it, I bought a rope.",
    "Life is not worth living anymore and I want it all to end, I want to die.",
    "I'm going to jump off the bridge tonight.",
]


# Known false alarm of the recall-tuned threshold (0.95 recall on C-SSRS users): loneliness alone
# is scored at risk. strict: the day a retrained head stops flagging it, this test says so.
KNOWN_FALSE_ALARM = (
    "I feel a little lonely since I moved to the new city, but I joined a climbing club."
)


@pytest.mark.xfail(
    strict=True, reason="recall-tuned threshold flags loneliness (docs/text-scoring.md)"
)
def test_known_false_alarm_loneliness(scorer: TextScorer) -> None:
    (s,) = scorer.score([KNOWN_FALSE_ALARM])
    assert not s.at_risk


# Known false alarms on treatment talk (2026-11-21, docs/text-scoring.md "False alarms on diary
# text"): the demo's own lines. C-SSRS is all mental-health text, so a line about one's therapist
# or sleep reads as risk. strict: a retrained head that stops flagging them says so.
TREATMENT_TALK_FALSE_ALARMS = [
    "Good session with my therapist, I have a plan for the week.",
    "Slept badly again. Work felt heavy and I skipped lunch.",
]


@pytest.mark.parametrize("line", TREATMENT_TALK_FALSE_ALARMS)
@pytest.mark.xfail(strict=True, reason="treatment talk reads as risk (docs/text-scoring.md)")
def test_known_false_alarms_treatment_talk(scorer: TextScorer, line: str) -> None:
    (s,) = scorer.score([line])
    assert s.crisis.category == "none"  # the model alone, not the detector
    assert not s.at_risk


# Former miss (2026-11-21): an overdose plan without the words "suicide", "die" or "kill". Fixed in
# crisis detector 1.2.0 (method + intent rules, docs/crisis-detector.md): a red crisis category
# makes it at risk whatever the embedding model scores.
KNOWN_MISS = "Tonight I am going to take all my pills, I have them ready."


def test_overdose_plan_without_death_words_is_at_risk(scorer: TextScorer) -> None:
    (s,) = scorer.score([KNOWN_MISS])
    assert s.crisis.category == "imminent_intent"
    assert s.at_risk
    assert s.risk_level in AT_RISK_LEVELS


def test_ordinary_diary_lines_are_not_at_risk(scorer: TextScorer) -> None:
    scores = scorer.score(ORDINARY)
    flagged = [i for i, s in enumerate(scores) if s.at_risk]
    assert flagged == []
    assert all(s.risk_level not in AT_RISK_LEVELS for s in scores)


def test_ideation_lines_are_at_risk(scorer: TextScorer) -> None:
    scores = scorer.score(IDEATION)
    missed = [i for i, s in enumerate(scores) if not s.at_risk]
    assert missed == []
    assert all(s.risk_level in AT_RISK_LEVELS for s in scores)


@pytest.mark.parametrize("line", ORDINARY[:4])
def test_ideation_raises_the_probability_over_an_ordinary_line(
    scorer: TextScorer, line: str
) -> None:
    plain, worse = scorer.score([line, line + " I want to kill myself."])
    assert worse.at_risk_probability > plain.at_risk_probability
    assert worse.at_risk and not plain.at_risk
