"""Behaviour of the text scorer: direction, invariance, crisis override, passages, JSON shape."""

from __future__ import annotations

import json

import numpy as np
import pytest

from screening.ml.text.scorer import AT_RISK_LEVELS, RISK_LEVELS, TextScorer, get_text_scorer

SAD_HAPPY = [
    (
        "I feel empty and hopeless. Nothing I do matters and I cried all evening alone.",
        "What a wonderful day! I laughed with my friends and felt really grateful and happy.",
    ),
    (
        "My mother is in hospital and I am so worried and miserable, I could not sleep.",
        "My mother came home from hospital today and we celebrated, I am so relieved and glad.",
    ),
    (
        "I failed the exam again. I hate myself and I feel like a complete disappointment.",
        "I passed the exam! I'm proud of myself and excited about the summer.",
    ),
    (
        "Work was awful, my boss yelled at me and I feel worthless and exhausted.",
        "Work was great, my boss praised my project and I feel appreciated and energised.",
    ),
]


@pytest.mark.parametrize(("sad", "happy"), SAD_HAPPY)
def test_valence_moves_the_right_way(scorer: TextScorer, sad: str, happy: str) -> None:
    s_sad, s_happy = scorer.score([sad, happy])
    assert s_sad.valence < 0 < s_happy.valence
    assert s_happy.valence - s_sad.valence > 0.5
    assert s_sad.vader_compound < s_happy.vader_compound  # the second opinion agrees
    assert s_sad.valence_probs["negative"] > s_happy.valence_probs["negative"]


@pytest.mark.parametrize(
    ("text", "emotion"),
    [
        ("I'm terrified, I heard someone breaking into the house and I'm shaking.", "fear"),
        ("I am furious with him, how dare he lie to me again!", "anger"),
        ("I'm so happy and thrilled, this is the best news ever!", "joy"),
        ("I miss her so much, I have been crying since the funeral.", "sadness"),
        ("Wow, I did not expect that at all, what a shock!", "surprise"),
    ],
)
def test_emotions_are_directional(scorer: TextScorer, text: str, emotion: str) -> None:
    neutral = "I went to the shop and bought bread, then I took the bus home."
    s, n = scorer.score([text, neutral])
    assert s.emotions[emotion] > n.emotions[emotion] + 0.2
    assert emotion in s.emotions_present
    assert emotion not in n.emotions_present
    assert max(s.emotions, key=lambda k: s.emotions[k] if k != "neutral" else -1) == emotion


NAMES_CITIES = [
    ("Anna", "Leeds"),
    ("Mohammed", "Lagos"),
    ("Wei", "Shanghai"),
    ("Juan", "Monterrey"),
    ("Olga", "Kraków"),
]
# a second grid the masker was not tuned on (docs/text-scoring.md, "Names and places")
MORE_NAMES_CITIES = [
    ("Priya", "Manchester"),
    ("Kwame", "Nairobi"),
    ("Sofia", "Mumbai"),
    ("Liam", "Toronto"),
    ("Fatima", "Berlin"),
    ("Hiroshi", "Karachi"),
    ("Chloe", "Sydney"),
    ("Dmitri", "São Paulo"),
    ("Aisha", "Dublin"),
    ("Carlos", "Cairo"),
    ("Emily", "Seoul"),
    ("Tunde", "Glasgow"),
]
HAPPY_T = "{name} and I walked around {city} today, it was lovely and sunny and we laughed a lot."
SAD_T = "I argued with {name} on the phone from {city} and now I feel sad and lonely."
RISK_T = "{name} visited me in {city}. I don't really want to live anymore, I feel like a burden."
ANGRY_T = "I'm so angry that {name} lied to me again about the trip to {city}."
SCARED_T = "Flying to {city} tomorrow to see {name}, I'm terrified of planes and can't sleep."
TEMPLATES = [HAPPY_T, SAD_T, RISK_T, ANGRY_T, SCARED_T]
# Names and places reach the encoder masked, so every filled-in template is the same input: the
# scores may differ only by float noise. Without masking the same grid moved valence by up to
# 0.44 and P(at risk) by up to 0.39 (measured 2026-11-21, docs/text-scoring.md).
MAX_DRIFT = 0.01


def _spread(values: list[float]) -> float:
    return max(values) - min(values)


@pytest.mark.parametrize("grid", [NAMES_CITIES, MORE_NAMES_CITIES], ids=["grid", "more"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_names_and_places_do_not_move_the_scores(
    scorer: TextScorer, template: str, grid: list[tuple[str, str]]
) -> None:
    scores = scorer.score([template.format(name=n, city=c) for n, c in grid])
    assert _spread([s.valence for s in scores]) <= MAX_DRIFT
    assert _spread([s.at_risk_probability for s in scores]) <= MAX_DRIFT
    for label in scores[0].emotions:
        assert _spread([s.emotions[label] for s in scores]) <= MAX_DRIFT, label
    assert len({s.emotions_present for s in scores}) == 1
    assert len({s.at_risk for s in scores}) == 1
    assert len({s.risk_level for s in scores}) == 1
    assert len({s.valence > 0 for s in scores}) == 1


def test_without_masking_names_do_move_the_scores(scorer: TextScorer) -> None:
    """The invariance above comes from the masking: switched off, the known drift is back."""
    texts = [t.format(name=n, city=c) for t in (SAD_T, RISK_T) for n, c in NAMES_CITIES]
    scorer.mask_entities = False
    try:
        plain = scorer.score(texts)
    finally:
        scorer.mask_entities = True
    k = len(NAMES_CITIES)
    assert _spread([s.valence for s in plain[:k]]) > 0.2
    assert _spread([s.at_risk_probability for s in plain[k:]]) > 0.2


def test_names_and_places_never_reverse_happy_and_sad(scorer: TextScorer) -> None:
    for name, city in NAMES_CITIES + MORE_NAMES_CITIES:
        happy, sad = scorer.score(
            [HAPPY_T.format(name=name, city=city), SAD_T.format(name=name, city=city)]
        )
        assert happy.valence - sad.valence > 0.5, (name, city)


def test_masking_keeps_offsets_in_the_original_text(scorer: TextScorer) -> None:
    # long names before the crisis statement: masked text is shorter than the original
    calm = "Had lunch with Anna Kowalska and Mohammed Al-Sayed in Rio de Janeiro, then walked home."
    risky = "I have decided to kill myself tonight, I have the pills ready."
    texts = [
        calm + " " + risky,  # one passage (the tokenizer's ids are reused)
        "\n\n".join([calm * 4, calm * 4, risky, calm * 4]),  # several passages
    ]
    for text, s in zip(texts, scorer.score(texts), strict=True):
        assert s.at_risk
        start, end = s.worst_passage
        assert risky in text[start:end]
        assert s.crisis.spans
        for span in s.crisis.spans:
            assert text.index(risky) <= span.start < span.end <= text.index(risky) + len(risky)


def test_names_do_not_move_the_scores_of_a_long_text(scorer: TextScorer) -> None:
    day = (
        "In the morning {name} and I made coffee and read the news. Later we cleaned the kitchen "
        "and called my sister about the weekend plans in {city}. I felt tired and a bit low. "
    )
    texts = ["\n\n".join([day.format(name=n, city=c) * 4] * 3) for n, c in NAMES_CITIES]
    scores = scorer.score(texts)
    assert all(s.n_passages >= 3 for s in scores)
    assert _spread([s.valence for s in scores]) <= MAX_DRIFT
    assert _spread([s.at_risk_probability for s in scores]) <= MAX_DRIFT
    assert len({s.emotions_present for s in scores}) == 1


def test_explicit_crisis_forces_at_risk_in_a_cheerful_text(scorer: TextScorer) -> None:
    cheerful = (
        "The sun was out and we had a lovely picnic, the kids laughed all afternoon. "
        "Honestly the food was great and the weather perfect."
    )
    crisis = cheerful + " I have decided to kill myself tonight, I have the pills ready."
    s_cheer, s_crisis = scorer.score([cheerful, crisis])
    assert not s_cheer.at_risk
    assert s_crisis.at_risk
    assert s_crisis.risk_level in AT_RISK_LEVELS
    assert s_crisis.crisis.category != "none"
    start, end = s_crisis.worst_passage
    assert "kill myself" in crisis[start:end]


def test_long_text_worst_passage_points_at_the_risky_part(scorer: TextScorer) -> None:
    calm = (
        "In the morning I made coffee and read the news. Later I cleaned the kitchen and "
        "called my sister about the weekend plans. We talked about her garden and the new "
        "tomatoes she planted. In the afternoon I walked the dog around the park twice. "
    )
    risky = (
        "Tonight everything feels pointless. I keep thinking everyone would be better off "
        "without me and I want to die, I have been looking up ways to end my life."
    )
    text = "\n\n".join([calm * 3, calm * 3, risky, calm * 3])
    (s,) = scorer.score([text])
    assert s.n_passages >= 4
    r0 = text.index(risky)
    start, end = s.worst_passage
    assert start <= r0 < end or r0 <= start < r0 + len(risky)
    assert s.at_risk
    (s_calm,) = scorer.score(["\n\n".join([calm * 3] * 3)])
    assert s.at_risk_probability > s_calm.at_risk_probability


def test_score_shape_and_json(scorer: TextScorer) -> None:
    text = "A secret diary line with the name Margaret in it."
    (s,) = scorer.score([text])
    assert -1.0 <= s.valence <= 1.0
    assert s.risk_level in RISK_LEVELS
    assert abs(sum(s.risk_probs.values()) - 1.0) < 1e-3
    assert abs(sum(s.valence_probs.values()) - 1.0) < 1e-3
    assert 0.0 <= s.at_risk_probability <= 1.0
    assert set(s.emotions) >= {"anger", "fear", "joy", "sadness", "surprise"}
    d = s.as_dict()
    blob = json.dumps(d)
    assert "Margaret" not in blob and "secret diary" not in blob
    names = [m["name"] for m in d["models"]]
    assert any("all-MiniLM-L6-v2" in n for n in names)
    assert {"vigil-text-valence", "vigil-text-emotions", "vigil-text-risk"} <= set(names)
    assert all(m["sha256"] for m in d["models"])
    assert "category" in d["crisis"]


def test_empty_and_whitespace_texts(scorer: TextScorer) -> None:
    scores = scorer.score(["", "   \n  "])
    assert len(scores) == 2
    assert all(s.n_passages == 1 and not s.at_risk for s in scores)
    assert scorer.score([]) == []


def test_batching_does_not_change_scores(scorer: TextScorer) -> None:
    texts = [a for pair in SAD_HAPPY for a in pair]
    together = scorer.score(texts)
    alone = [scorer.score([t])[0] for t in texts]
    for a, b in zip(together, alone, strict=True):
        assert abs(a.valence - b.valence) < 1e-3
        assert a.risk_level == b.risk_level


def test_embed_is_unit_norm(scorer: TextScorer) -> None:
    x = scorer.embed(["hello", "a somewhat longer sentence about the weather"])
    assert x.shape == (2, 384)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)


def test_get_text_scorer_is_cached(scorer: TextScorer) -> None:
    assert get_text_scorer(device="cpu") is scorer
