"""Behavioural tests of the deterministic crisis-language detector (no Django, no models)."""

from __future__ import annotations

import dataclasses
import json
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from screening.ml.artifacts import ModelInfo
from screening.ml.text import crisis
from screening.ml.text.crisis import (
    CATEGORIES,
    DETECTOR_NAME,
    DETECTOR_VERSION,
    CrisisResult,
    CrisisSpan,
    detect_crisis,
    detector_info,
    rules_fingerprint,
)

RANK = {name: i for i, name in enumerate(CATEGORIES)}


def at_least(result: CrisisResult, category: str) -> bool:
    return RANK[result.category] >= RANK[category]


# --- the vocabulary is the risk engine's ---------------------------------------------------------


def test_categories_match_the_risk_engine() -> None:
    from risk.rules.engine import CRISIS_CATEGORIES

    assert CATEGORIES == CRISIS_CATEGORIES
    assert all(rule.category in CATEGORIES for rule in crisis.RULES)
    assert all(rule.rule_id.split(".")[0] in CATEGORIES for rule in crisis.RULES)
    ids = [rule.rule_id for rule in crisis.RULES]
    assert len(ids) == len(set(ids))
    # span ids built from rule ids must pass the engine's id check
    assert all(re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", rule_id) for rule_id in ids)


# --- crisis phrasings that must be caught (text, minimum category) -------------------------------

MUST_CATCH: list[tuple[str, str]] = [
    # passive ideation: wish to be dead, not wake up, not exist
    ("I want to die", "passive_ideation"),
    ("i just wanna die", "passive_ideation"),
    ("honestly i wana die lol", "passive_ideation"),
    ("Sometimes I wish I was dead.", "passive_ideation"),
    ("I wish I could go to sleep and never wake up", "passive_ideation"),
    ("i hope i don't wake up tomorrow", "passive_ideation"),
    ("I don't want to live anymore.", "passive_ideation"),
    ("I dont want to be alive", "passive_ideation"),
    ("I just want to not be here anymore", "passive_ideation"),
    ("Everyone would be better off if I was dead", "passive_ideation"),
    ("honestly I'd be better off dead", "passive_ideation"),
    ("I want to dissapear forever", "passive_ideation"),
    ("I wish I'd never been born", "passive_ideation"),
    ("There's no reason to live", "passive_ideation"),
    ("I have nothing left to live for", "passive_ideation"),
    ("I'm so tired of being alive", "passive_ideation"),
    ("I hope a bus hits me on the way to work", "passive_ideation"),
    ("WANT TO DIE", "passive_ideation"),
    ("i  want   to\tdie", "passive_ideation"),
    ("I want to die\u2026 so badly", "passive_ideation"),
    ("I\u2019ve wanted to die for weeks now", "passive_ideation"),
    ("Life isn't worth living", "passive_ideation"),
    ("I keep thinking about dying", "passive_ideation"),
    ("Part of me wants to die", "passive_ideation"),
    ("I wish I wasn't alive", "passive_ideation"),
    ("I'd rather be dead than feel like this", "passive_ideation"),
    # burden + absence of self (C-SSRS 1: wish to be dead / not alive), detector 1.1.0
    ("Everyone would be better off without me.", "passive_ideation"),
    ("the world would be better without me", "passive_ideation"),
    ("no one would miss me if I was gone", "passive_ideation"),
    ("I'm just a burden, they'd be better off if I wasn't here", "passive_ideation"),
    ("My family would be better off without me", "passive_ideation"),
    ("everyone's better off without me", "passive_ideation"),
    ("you'd all be better off without me", "passive_ideation"),
    ("the world would be a better place without me in it", "passive_ideation"),
    ("I feel like my kids would be so much better off without me honestly", "passive_ideation"),
    ("nobody would even notice if I died", "passive_ideation"),
    # active ideation: thoughts of killing oneself, self-harm intent, slang, method thoughts
    ("I want to kill myself", "active_ideation"),
    ("I keep thinking about killing myself", "active_ideation"),
    ("i'm suicidal", "active_ideation"),
    ("feeling suicidal af today", "active_ideation"),
    ("Im so sucidal right now", "active_ideation"),
    ("kms", "active_ideation"),
    ("ugh i'm gonna kms fr", "active_ideation"),
    ("I want to unalive myself", "active_ideation"),
    ("thinking about sewerslide again", "active_ideation"),
    ("i want to ctb", "active_ideation"),
    ("I might just off myself", "active_ideation"),
    ("I want to end it all", "active_ideation"),
    ("I'm ready to end things", "active_ideation"),
    ("I want to end my life", "active_ideation"),
    ("I've been having suicidal thoughts", "active_ideation"),
    ("I want to hurt myself", "active_ideation"),
    ("I cut myself again last night", "active_ideation"),
    ("I want to od on my meds", "active_ideation"),
    ("I want to hang myself", "active_ideation"),
    ("I keep thinking about jumping off the bridge", "active_ideation"),
    ("I tried to kill myself last year", "active_ideation"),
    ("I attempted suicide when I was 16", "active_ideation"),
    ("I overdosed two years ago", "active_ideation"),
    ("I've been thinking of taking my own life", "active_ideation"),
    ("suicide seems like the only way out", "active_ideation"),
    ("I want to commit suicide", "active_ideation"),
    ("i should just kys", "active_ideation"),
    ("I wanna kil my self", "active_ideation"),
    ("Suicidal. Again.", "active_ideation"),
    # plan: means, preparation, planning, research
    ("I have pills saved up", "plan"),
    ("I've been stockpiling my sleeping pills", "plan"),
    ("I bought a rope", "plan"),
    ("There's a gun in the drawer and I keep looking at it", "plan"),
    ("I wrote a suicide note", "plan"),
    ("I've been giving away my things", "plan"),
    ("I've started saying my goodbyes", "plan"),
    ("I have a plan to kill myself", "plan"),
    ("I googled how many pills it takes to die", "plan"),
    ("I've been looking up painless ways to die", "plan"),
    ("I'm planning to end my life", "plan"),
    ("I know exactly how I'm going to do it. I want to die", "plan"),
    ("I tied a noose in my closet", "plan"),
    # imminent intent: stated intent, timing, in progress, recent attempt
    ("I'm going to kill myself tonight", "imminent_intent"),
    ("I'm going to kill myself", "imminent_intent"),
    ("I want to die. I'm going to do it.", "imminent_intent"),
    ("I've taken the pills", "imminent_intent"),
    ("I just took all my pills", "imminent_intent"),
    ("tonight I'm going to end it all", "imminent_intent"),
    ("this is my last night alive", "imminent_intent"),
    ("by the time you read this I'll be gone", "imminent_intent"),
    ("Im gonna jump off the bridge tonight", "imminent_intent"),
    ("I tried to kill myself last night", "imminent_intent"),
    ("I just tried to hang myself", "imminent_intent"),
    ("I've decided to end my life this weekend", "imminent_intent"),
    # method + intent/preparation without any death word (detector 1.2.0)
    ("Tonight I am going to take all my pills, I have them ready.", "imminent_intent"),
    ("I'm going to swallow all my tablets tonight", "imminent_intent"),
    ("im taking all my meds right now", "imminent_intent"),
    ("gonna od on my meds tonight", "imminent_intent"),
    ("I'm going to take the whole bottle of sleeping pills tonight", "imminent_intent"),
    ("when they leave I'm going to swallow all the pills", "imminent_intent"),
    ("I want to take all my pills tonight", "imminent_intent"),
    ("I'm going to jump off the roof tonight", "imminent_intent"),
    ("this weekend I'm going to jump off the building", "imminent_intent"),
    ("I'll step in front of a train tomorrow", "imminent_intent"),
    ("I'm going to step in front of a bus", "imminent_intent"),
    ("I'm going to hang myself after everyone's asleep", "imminent_intent"),
    ("i'm going to cut my wrists tonight", "imminent_intent"),
    ("Tonight I'm going to cut deep", "imminent_intent"),
    ("I'm gonna drive my car into a wall tonight", "imminent_intent"),
    ("I will drive off the road when they leave", "imminent_intent"),
    ("I'm going to put the gun to my head", "imminent_intent"),
    (
        "I'm going to sit in the car in the garage with the engine running tonight",
        "imminent_intent",
    ),
    ("I'm going to use the car exhaust this weekend", "imminent_intent"),
    ("I'm doing it tonight. I'm going to tie the noose around my neck", "imminent_intent"),
    ("I have the pills ready", "plan"),
    ("I have the tablets stockpiled", "plan"),
    ("I've been saving my pills", "plan"),
    ("I have a gun at home and I've been thinking about using it on myself", "plan"),
    ("I'm planning to take all my pills", "plan"),
    ("I've been planning on jumping off the overpass", "plan"),
    # distress: hopelessness, burden, can't go on
    ("I can't go on like this", "distress"),
    ("I feel so hopeless", "distress"),
    ("I'm such a burden to everyone", "distress"),
    ("I can't take it anymore", "distress"),
]


@pytest.mark.parametrize(("text", "minimum"), MUST_CATCH)
def test_crisis_phrasings_are_caught(text: str, minimum: str) -> None:
    result = detect_crisis(text)
    assert at_least(result, minimum), (text, result)
    assert result.spans, text


def test_the_table_is_large_and_varied() -> None:
    assert len(MUST_CATCH) >= 60
    for category in CATEGORIES[1:]:
        assert sum(1 for _, c in MUST_CATCH if c == category) >= 4, category


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("I want to die", "passive_ideation"),
        ("I want to kill myself", "active_ideation"),
        ("I bought a rope", "plan"),
        ("I'm going to kill myself tonight", "imminent_intent"),
        ("I feel hopeless", "distress"),
    ],
)
def test_canonical_phrases_get_exactly_their_category(text: str, category: str) -> None:
    assert detect_crisis(text).category == category


# --- negation, hypotheticals, third persons, quotes, fiction and idioms -------------------------

MUST_NOT_RAISE: list[str] = [
    # idioms and hyperbole
    "this homework is killing me",
    "I could die of embarrassment",
    "killing it at the gym today",
    "I'm dead tired",
    "my grandma died last week",
    "my phone died again",
    "I'm dying to see that movie",
    "that joke killed me lol",
    "I'm going to kill my brother for eating my fries",
    "I would kill for a pizza right now",
    "I'm so dead if my mom finds out",
    "I want to die my hair blue",
    "I took my pills this morning like the doctor said",
    "I hurt myself playing football",
    "I cut myself shaving",
    "I'd rather die than go to that party",
    "I could sleep forever after that shift",
    "Cross my heart and hope to die",
    "I want to end it with my boyfriend",
    "She drives me to drink",
    "I want to kill this exam",
    # negation and denial
    "I would never kill myself",
    "I don't want to die",
    "I'm not suicidal",
    "not suicidal, just tired",
    "I'm not going to hurt myself",
    "I have never tried to kill myself",
    "No suicidal thoughts today",
    "Suicidal thoughts: none",
    "I haven't self-harmed in two years",
    "I no longer want to die",
    "I'd never take my own life",
    "I've never felt suicidal",
    # hypotheticals and questions to others
    "If I ever felt like killing myself I'd call my therapist",
    "if I wanted to die I would tell someone",
    "Do you ever want to die?",
    # third persons
    "my friend wants to die",
    "she tried to kill herself",
    "My brother attempted suicide last year",
    "He said he wants to kill himself",
    "My mom overdosed when I was little",
    "Aisha is suicidal and I'm scared for her",
    "people told me to kill myself",
    # quotes, reported speech, media, fiction
    'The song goes "I want to die" and it is so catchy',
    'my friend texted "I want to kill myself" and I called 911',
    "the character wanted to die",
    "In the movie he decides to end his life",
    "the book is about a girl who wants to die",
    "I volunteer at a suicide prevention hotline",
    "We learned about suicide rates in class",
    "Suicide Squad was a great movie",
    "The nurse asked if I had thoughts of killing myself",
    # burden wording that is not absence of self (detector 1.1.0)
    "they'd be worse off without me",
    "my team is better off without me on the roster this week",
    "they would be better off without me for the weekend",
    "Everyone would not be better off without me",
    "my friend thinks everyone would be better off without her",
    "nobody would notice if I disappeared for a week",
    # ordinary uses of method words, and discounted method statements (detector 1.2.0)
    "I'm not going to take all my pills",
    "I would never jump off the bridge",
    "if I took all my pills tonight I'd be sick",
    "my friend took all her pills",
    "she is going to take all her pills tonight",
    "I take my pills every morning",
    "I forgot to take my pills tonight",
    "I forgot to take all my pills today",
    "jumping off the diving board at the pool tonight was fun",
    "we're going to cut the cake tonight",
    "I'm going to drive my car to work",
    "the bridge was closed so I took the train",
    "In the movie he jumps off the bridge tonight",
    'He said "I\'m going to take all my pills tonight" in the play',
    "I'm going to take all my pills with breakfast like the doctor said",
    "I'm going to cut my hair tonight",
    "I'm going to jump off the diving board today",
    "I'm going to take the train tonight",
    "I have my pills ready for the trip",
    "tonight I'm going to drive my car into the garage",
    "I'm going to walk in front of the school bus to wave at the kids",
    "I'm going to check the carbon monoxide detector today",
    "I'm going to step in front of the camera tonight",
    "the words cut deep tonight",
    "did you take all your pills today",
    "I'm going to down a whole bottle of water after the run today",
    "I'm going to use the knife on the chicken tonight",
]


@pytest.mark.parametrize("text", MUST_NOT_RAISE)
def test_benign_and_discounted_text_does_not_raise_ideation(text: str) -> None:
    result = detect_crisis(text)
    assert not at_least(result, "passive_ideation"), (text, result)


def test_the_benign_table_is_large() -> None:
    assert len(MUST_NOT_RAISE) >= 30


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("I would never hurt myself", "negated"),
        ("I don't want to die", "negated"),
        ("not suicidal", "negated"),
        ("if I ever felt like killing myself I'd call", "hypothetical"),
        ("my friend wants to die", "third_person"),
        ("she tried to kill herself", "third_person"),
        ("John wants to die", "third_person"),
        ('She kept saying "I want to die" in her sleep', "quoted"),
        ("people told me to kill myself", "quoted"),
        ("the character wanted to die", "fiction"),
        ("In the song he sings that he wants to die", "third_person"),
    ],
)
def test_discounted_matches_are_reported_in_flags(text: str, flag: str) -> None:
    result = detect_crisis(text)
    assert flag in result.flags, (text, result)
    assert result.discounted, text
    assert all(flag_ in crisis.DISCOUNT_FLAGS for d in result.discounted for flag_ in d.flags)
    assert result.category in ("none", "distress")


def test_first_person_alongside_third_person_still_counts() -> None:
    result = detect_crisis("my brother died and now I want to die too")
    assert result.category == "passive_ideation"
    result = detect_crisis("She tried to kill herself last year, and I want to kill myself too")
    assert result.category == "active_ideation"
    assert "third_person" in result.flags
    result = detect_crisis("My friend wants to die. Honestly so do I, I want to die.")
    assert result.category == "passive_ideation"


def test_negation_is_local_to_its_clause() -> None:
    assert detect_crisis("I'm not okay and I want to die").category == "passive_ideation"
    assert detect_crisis("I don't want to die, but I don't want to live either").at_least(
        "passive_ideation"
    )
    assert detect_crisis("I'm not sure why but I want to kill myself").category == "active_ideation"


def test_the_writer_quoting_themselves_counts() -> None:
    result = detect_crisis('I told my therapist "I want to kill myself"')
    assert result.category == "active_ideation"


# --- past versus current ------------------------------------------------------------------------


def test_past_attempt_counts_but_is_not_current_intent() -> None:
    past = detect_crisis("I tried to kill myself three years ago")
    assert past.category == "active_ideation"
    recent = detect_crisis("I tried to kill myself yesterday")
    assert recent.category == "imminent_intent"
    assert RANK[recent.category] > RANK[past.category]


def test_remote_past_ideation_is_lowered_and_flagged() -> None:
    result = detect_crisis("I used to want to die when I was in high school")
    assert result.category == "distress"
    assert "past" in result.flags
    # a present cue in the same clause keeps it current
    again = detect_crisis("I was suicidal years ago and I'm suicidal again now")
    assert again.category == "active_ideation"


def test_in_progress_overdose_versus_a_past_one() -> None:
    assert detect_crisis("I've taken all my pills").category == "imminent_intent"
    assert detect_crisis("I've taken all my pills once before, years ago").category == (
        "active_ideation"
    )


# --- spans --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Today was long. Honestly I want to die.", "want to die"),
        ("ok so... kms", "kms"),
        ("We went out. I bought a rope on the way home.", "bought a rope"),
        ("I'm going to kill myself tonight", "kill myself"),
        ("sometimes i feel suicidal af", "suicidal"),
        ("\u00c9mile says hi. I WANT TO DIE", "WANT TO DIE"),
        ("I want to die\U0001f62d\U0001f62d", "want to die"),
        ("\ufeffI want to die", "want to die"),
    ],
)
def test_spans_point_at_the_key_phrase(text: str, phrase: str) -> None:
    result = detect_crisis(text)
    assert result.spans
    covered = [text[span.start : span.end] for span in result.spans]
    assert any(phrase in piece for piece in covered), covered
    for span in result.spans:
        assert 0 <= span.start < span.end <= len(text)
        assert span.category in CATEGORIES[1:]
        assert span.rule_id.split(".")[0] in CATEGORIES


def test_offsets_survive_characters_that_change_length_when_lowered() -> None:
    # "İ" lowers to two characters; offsets must still point into the original text
    text = "\u0130stanbul was grey. I want to die."
    result = detect_crisis(text)
    assert [text[s.start : s.end] for s in result.spans] == ["want to die"]


def test_highest_category_wins() -> None:
    text = "I feel hopeless. I want to die. I have pills saved up. I'm going to do it tonight."
    result = detect_crisis(text)
    assert result.category == "imminent_intent"
    categories = {span.category for span in result.spans}
    assert {"distress", "passive_ideation", "plan", "imminent_intent"} <= categories
    assert result.category == max(categories, key=RANK.__getitem__)


def test_discounted_matches_never_raise_the_category() -> None:
    text = "I feel hopeless. My friend says she is going to kill herself tonight."
    result = detect_crisis(text)
    assert result.category == "distress"
    assert "third_person" in result.flags


def test_a_weak_phrase_needs_an_anchor() -> None:
    assert detect_crisis("I'm going to do it tonight, the essay is due").category == "none"
    assert detect_crisis("I want to die. I'm going to do it tonight.").category == (
        "imminent_intent"
    )


# --- invariance ---------------------------------------------------------------------------------

TEMPLATES = [
    "I told {name} I want to die.",
    "{name} visited me in {place} and I want to kill myself.",
    "I moved to {place} and I have pills saved up.",
    "{name} wants to die.",
    "I live in {place}. I feel hopeless.",
    "{name} and I went to {place}. I'm not suicidal.",
    "In {place} I'm going to kill myself tonight.",
    "{name} said I was being dramatic. I'm suicidal.",
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_names_and_places_change_nothing(template: str) -> None:
    results = []
    for name, place in [("John", "London"), ("Aisha", "Lagos"), ("Nguyen Van An", "Ho Chi Minh")]:
        result = detect_crisis(template.format(name=name, place=place))
        results.append((result.category, result.flags, tuple(s.rule_id for s in result.spans)))
    assert results[0] == results[1] == results[2], results


@pytest.mark.parametrize(
    "text",
    ["I want to kill myself", "I have pills saved up", "I'm going to kill myself tonight"],
)
def test_case_punctuation_and_whitespace_do_not_matter(text: str) -> None:
    base = detect_crisis(text).category
    variants = [
        text.upper(),
        text.lower(),
        text.replace(" ", "   "),
        text.replace(" ", "\n"),
        text + "!!!",
        f"...{text}...",
        text.replace("'", "\u2019"),
        f"  {text}\t",
    ]
    for variant in variants:
        assert detect_crisis(variant).category == base, variant


def test_directional_adding_crisis_language_never_lowers_the_category() -> None:
    base = "Work was fine, I had lunch with a friend."
    assert detect_crisis(base).category == "none"
    steps = ["I feel hopeless.", "I want to die.", "I bought a rope.", "I'll do it tonight."]
    previous = 0
    text = base
    for step in steps:
        text = f"{text} {step}"
        rank = RANK[detect_crisis(text).category]
        assert rank >= previous
        previous = rank
    assert previous == RANK["imminent_intent"]


# --- robustness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", " ", "\x00\x01\x02", "\ud800", "\U0001f600" * 50, "a" * 10_000, "'" * 500, '"' * 501],
)
def test_odd_inputs_never_raise(text: str) -> None:
    result = detect_crisis(text)
    assert result.category in CATEGORIES
    assert "detector_error" not in result.flags


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.text(max_size=6),
            st.sampled_from(
                [
                    *(" ", ".", ",", "!", "?", "'", '"', "\n", "-", "kill", "myself", "die"),
                    *("want to", "not ", "I ", "she ", "if ", "tonight", "pills", "years ago"),
                    *("\u0130", "\x00"),
                ]
            ),
        ),
        max_size=60,
    ).map("".join)
)
def test_any_string_is_handled(text: str) -> None:
    result = detect_crisis(text)
    assert result.category in CATEGORIES
    assert "detector_error" not in result.flags
    for span in result.spans:
        assert 0 <= span.start < span.end <= len(text)
    json.dumps(result.as_dict())


def test_long_input_is_fast() -> None:
    filler = (
        "Today I went to the shops and had a long talk with my sister about school, work "
        "and whether we should repaint the kitchen. "
    )
    tricky = "if if not not i i me my she he wants want to to to kill kill " * 3
    text = (filler * 1_700 + tricky * 50)[:200_000] + " I want to die."
    assert len(text) > 190_000
    # CPU time: a loaded machine must not fail it, a regex blow-up will
    started = time.process_time()
    result = detect_crisis(text)
    elapsed = time.process_time() - started
    assert result.category == "passive_ideation"
    assert elapsed < 3.0, elapsed


def test_pathological_repetition_is_fast_and_bounded() -> None:
    text = "I want to kill myself. " * 9_000 + ("so " * 20_000) + "a " * 10_000
    started = time.perf_counter()
    result = detect_crisis(text)
    elapsed = time.perf_counter() - started
    assert result.category in ("active_ideation", "imminent_intent")
    assert len(result.spans) <= crisis.MAX_SPANS
    assert elapsed < 6.0, elapsed


# --- results, provenance ------------------------------------------------------------------------


def test_result_as_dict_carries_no_text() -> None:
    text = "My name is Aisha and I want to kill myself"
    result = detect_crisis(text)
    data = result.as_dict()
    blob = json.dumps(data)
    assert "Aisha" not in blob and "kill" not in blob.replace("kill_self", "")
    assert data["category"] == "active_ideation"
    assert data["detector"] == DETECTOR_NAME
    assert data["version"] == DETECTOR_VERSION == result.version
    assert data["sha256"] == detector_info().sha256
    assert data["spans"][0].keys() == {"start", "end", "category", "rule_id"}


def test_spans_and_results_are_frozen() -> None:
    result = detect_crisis("I want to die")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.category = "none"  # type: ignore[misc]
    span = result.spans[0]
    assert isinstance(span, CrisisSpan)
    with pytest.raises(dataclasses.FrozenInstanceError):
        span.start = 0  # type: ignore[misc]


def test_detector_info_is_stable_and_tracks_the_rules() -> None:
    info = detector_info()
    assert isinstance(info, ModelInfo)
    assert info.name == DETECTOR_NAME and info.version == DETECTOR_VERSION
    assert re.fullmatch(r"[0-9a-f]{64}", info.sha256)
    assert detector_info().sha256 == info.sha256 == rules_fingerprint()

    changed = list(crisis.RULES)
    changed[0] = dataclasses.replace(changed[0], pattern=changed[0].pattern + "|tonight")
    assert rules_fingerprint(rules=changed) != info.sha256
    recategorised = list(crisis.RULES)
    recategorised[-1] = dataclasses.replace(recategorised[-1], category="passive_ideation")
    assert rules_fingerprint(rules=recategorised) != info.sha256
    cues = dict(crisis._CUE_SOURCES)
    cues["negation"] = cues["negation"].replace("|nope", "")
    assert rules_fingerprint(cues=cues) != info.sha256
    assert rules_fingerprint(rules=list(crisis.RULES)) == info.sha256


def test_every_rule_fires_on_something() -> None:
    """No dead rules: each rule id is exercised by at least one phrase in the tables above."""
    texts = [t for t, _ in MUST_CATCH] + [
        "I'm standing on the bridge. I want to die.",
        "tonight is the night. i want to die",
        "the noose is around my neck",
        "I'm overdosing right now",
        "I've just overdosed",
        "I bought a gun yesterday. I want to die.",
        "my razor blades are in my drawer",
        "the rope is ready",
        "I've put my affairs in order",
        "I made my will. I want to kill myself.",
        "I picked a date. I want to die.",
        "I went to the bridge to see where I would jump",
        "did a practice run with the rope. i want to die",
        "survived a suicide attempt",
        "I almost killed myself last month",
        "I want to end it. I want to die.",
        "I'm saying goodbye to everyone. I want to die.",
        "I won't be here much longer. I want to die",
        "I won't be around much longer",
        "I want death",
        "I wish I was dead",
        "I deserve to die",
        "I want it all to end",
        "I hate myself",
        "I'm giving up on everything",
        "I've been researching the lethal dose of tylenol",
        "I'm gonna commit sudoku",
        "this is goodbye",
        "I want to take all my pills",
        "I searched how to kill myself painlessly",
        # 1.4.0
        "I gave my cat to my neighbour so she's looked after when I'm gone",
        "I've chosen the bridge.",
        "I took 30 paracetamol",
        "I won't be alive tomorrow",
        "I'm standing on the roof and I'm going to jump",
    ]
    fired = {span.rule_id for text in texts for span in detect_crisis(text).spans}
    missing = {rule.rule_id for rule in crisis.RULES} - fired
    assert not missing, sorted(missing)


# --- burden + absence of self (detector 1.1.0) ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Everyone would be better off without me.",
        "the world would be better without me",
        "no one would miss me if I was gone",
        "I'm just a burden, they'd be better off if I wasn't here",
    ],
)
def test_burden_with_absence_of_self_is_passive_ideation(text: str) -> None:
    result = detect_crisis(text)
    assert result.category == "passive_ideation", (text, result)
    assert any(span.rule_id.startswith("passive_ideation.") for span in result.spans)


def test_burden_without_absence_stays_distress() -> None:
    # a burden statement with no wish to be gone is distress, not ideation
    assert detect_crisis("I'm such a burden to everyone").category == "distress"
    assert detect_crisis("no one would miss me").category == "distress"
    # a group one leaves for a while (a roster, a weekend) is not absence of self
    assert detect_crisis("my team is better off without me on the roster this week").category in (
        "none",
        "distress",
    )


def test_absence_of_self_said_by_someone_else_is_discounted() -> None:
    result = detect_crisis("he said everyone would be better off without me")
    assert result.category == "none"
    assert "third_person" in result.flags


def test_absence_of_self_in_the_remote_past_is_lowered() -> None:
    result = detect_crisis("Years ago, I thought everyone would be better off without me")
    assert result.category == "distress"
    assert "past" in result.flags


def test_detector_version_was_bumped_for_the_burden_rules() -> None:
    assert tuple(int(part) for part in DETECTOR_VERSION.split(".")) >= (1, 1, 0)
    ids = {rule.rule_id for rule in crisis.RULES}
    assert {
        "passive_ideation.better_off_without_me",
        "passive_ideation.no_one_would_miss_me",
    } <= ids


# --- method + intent/preparation without death words (detector 1.2.0) ----------------------------


def test_detector_version_was_bumped_for_the_generic_mention_rules() -> None:
    assert tuple(int(part) for part in DETECTOR_VERSION.split(".")) >= (1, 3, 1)
    ids = {rule.rule_id for rule in crisis.RULES}
    assert {
        "imminent_intent.method_intent",
        "imminent_intent.method_timed",
        "plan.means_on_self",
    } <= ids


def test_the_overdose_plan_found_by_the_behavioural_test_is_a_red_alert() -> None:
    text = "Tonight I am going to take all my pills, I have them ready."
    result = detect_crisis(text)
    assert result.category == "imminent_intent"
    spans = [s for s in result.spans if s.category == "imminent_intent"]
    assert any("take all my pills" in text[s.start : s.end] for s in spans), result


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("I don't want to take all my pills tonight", "negated"),
        ("my friend is going to take all her pills tonight", "third_person"),
        ("if I take all my pills tonight I will be sick", "hypothetical"),
        ('he said "I am going to jump off the roof tonight"', "quoted"),
        ("in the movie I'm going to jump off the roof tonight is the best line", "fiction"),
    ],
)
def test_method_statements_are_discounted_in_context(text: str, flag: str) -> None:
    result = detect_crisis(text)
    assert not at_least(result, "passive_ideation"), (text, result)
    assert flag in result.flags, (text, result)


@pytest.mark.parametrize(
    ("plain", "timed"),
    [
        ("I'm saving my pills", "I'm going to take all my pills tonight"),
        ("I bought a rope", "I'm going to hang myself tonight"),
        ("I have the pills ready", "I have the pills ready, I'm taking all the pills tonight"),
    ],
)
def test_a_time_cue_raises_means_to_imminent_intent(plain: str, timed: str) -> None:
    assert detect_crisis(plain).category == "plan"
    assert detect_crisis(timed).category == "imminent_intent"


@pytest.mark.parametrize(
    ("ordinary", "crisis_text"),
    [
        ("I take my pills every morning", "I'm going to take all my pills tonight"),
        ("I'm going to drive my car to work", "I'm going to drive my car into a wall"),
        ("we're going to cut the cake tonight", "I'm going to cut my wrists tonight"),
        ("I'm going to jump off the diving board today", "I'm going to jump off the roof today"),
        ("I'm going to take the train tonight", "I'm going to step in front of the train tonight"),
    ],
)
def test_the_method_word_not_the_verb_makes_the_difference(ordinary: str, crisis_text: str) -> None:
    assert detect_crisis(ordinary).category == "none"
    assert detect_crisis(crisis_text).category == "imminent_intent"


def test_a_remote_past_method_intent_is_lowered() -> None:
    result = detect_crisis("When I was 15 I decided to take all my pills")
    assert result.category == "active_ideation"
    assert "past" in result.flags


# --- 1.3.0: forum talk about the topic, later sentences, "odd" (found on the C-SSRS dev users) --

GENERIC_MENTIONS = [
    "Talk to your doctor about your suicidal thoughts.",
    "Its good to openly talk about issues like self harm so we can help.",
    "Youre not letting anyone down. Suicidal thoughts are very real and very hard to deal with.",
    "Hey, Depression and Suicidal thoughts are not correlated with how great your life is.",
    "I would urge you to talk with them. Suicidal urges are hard to fight on your own.",
    "Suicide is never the only option.",
    "Have you tried holding ice as a substitute for any self harming?",
]


@pytest.mark.parametrize("text", GENERIC_MENTIONS)
def test_talk_about_the_topic_is_not_a_statement_of_ones_own(text: str) -> None:
    result = detect_crisis(text)
    assert not at_least(result, "passive_ideation"), result
    assert any("generic" in d.flags for d in result.discounted) or not result.discounted


DIARY_FRAGMENTS = [
    "Suicidal thoughts again.",
    "Suicidal thoughts are back tonight.",
    "The suicidal thoughts are getting worse.",
    "Suicidal thoughts are very strong.",
    "Struggling with suicidal thoughts.",
    "Feeling suicidal.",
    "Tired of being suicidal.",
    "Depressed and suicidal.",
    "I have suicidal thoughts most days.",
    "My suicidal thoughts are constant.",
    "Self harming again, I can't stop.",
    "Bad day. Thinking about suicide a lot.",
    "Long shift at work. Their the only reason I havent killed myself yet.",
    "The apathy, too. Only reason I didnt kill myself tonight is because I procrastinated.",
    "Pothead\n\nGrab the gun in my drawer and just aim it at my head and squeeze.",
]


@pytest.mark.parametrize("text", DIARY_FRAGMENTS)
def test_diary_fragments_without_a_subject_still_count(text: str) -> None:
    assert at_least(detect_crisis(text), "active_ideation"), text


@pytest.mark.parametrize(
    "text",
    [
        "Im new to reddit. I never thought about suicide but I have had some shitty thoughts.",
        "Thanks for asking. Ive never been seriously suicidal, but school got so much better.",
        "We talked for hours. I dont want to die before my grandparents.",
        "It was a long day. I would never kill myself.",
    ],
)
def test_negation_is_read_in_every_sentence_not_only_the_first(text: str) -> None:
    result = detect_crisis(text)
    assert not at_least(result, "passive_ideation"), result
    assert any("negated" in d.flags for d in result.discounted)


def test_a_name_opening_a_later_sentence_is_still_someone_else() -> None:
    result = detect_crisis("It was late. Aisha is suicidal and I'm scared for her.")
    assert not at_least(result, "passive_ideation"), result


@pytest.mark.parametrize(
    "text",
    [
        "Thats odd, I thought the clinic was open on Sundays.",
        "Im the odd one in the family and always have been.",
        "An odd realization indeed, to see myself do something I admired.",
    ],
)
def test_odd_is_not_an_overdose(text: str) -> None:
    assert detect_crisis(text).category == "none"


def test_an_overdose_with_an_apostrophe_still_counts() -> None:
    assert at_least(detect_crisis("I OD'd on my meds last night."), "active_ideation")


# --- 1.3.1: a bare mention followed by what it does to the writer is the writer's own -------------
# (1.3.0's "generic" discount read these as talk about the topic and dropped them; a review found
# it. In a diary every such line is the patient's own experience.)
OWN_BARE_MENTIONS = [
    "Suicidal thoughts will not leave me alone.",
    "Suicidal thoughts make it hard to breathe.",
    "Thoughts of suicide come every night.",
    "Self harm was the only thing that helped last night.",
    "Suicidal ideation is something I've had for years and it's bad right now",
    "Wanting to die. Suicidal thoughts do not stop.",
    "Suicidal thoughts were there when I woke up.",
    "Suicidal urges can't be ignored anymore.",
]


@pytest.mark.parametrize("text", OWN_BARE_MENTIONS)
def test_a_bare_mention_of_ones_own_thoughts_is_caught(text: str) -> None:
    result = detect_crisis(text)
    assert at_least(result, "active_ideation") or (
        at_least(result, "passive_ideation") and "self harm" in text.lower()
    ), result


def test_not_having_done_it_yet_asserts_the_thought() -> None:
    # "yet" closes a clause in the splitter; the assertion still reads past it
    result = detect_crisis("I haven't killed myself yet.")
    assert at_least(result, "passive_ideation"), result
    assert not at_least(detect_crisis("I would never kill myself."), "passive_ideation")


# --- 1.4.0: misses and false alarms found by the adversarial set (test_crisis_adversarial.py) ---


def test_detector_version_was_bumped_for_the_adversarial_fixes() -> None:
    assert DETECTOR_VERSION == "1.4.2"
    ids = {rule.rule_id for rule in crisis.RULES}
    assert {
        "plan.after_im_gone",
        "plan.chose_method",
        "active_ideation.took_amount",
        "imminent_intent.not_alive_by",
        "imminent_intent.edge_jump",
    } <= ids


@pytest.mark.parametrize(
    ("ordinary", "crisis_text", "category"),
    [
        # a pet or letters left for after one's death, versus a trip
        (
            "I left instructions for the plants for when I'm gone",
            "I gave my dog to my brother so he's looked after when I'm gone",
            "plan",
        ),
        (
            "I gave my sister my key so she can feed the cat when I'm gone for the weekend",
            "I wrote letters to my kids for when I'm gone",
            "plan",
        ),
        ("I've picked the bridge for our wedding photos", "I've picked the bridge.", "plan"),
        (
            "I know which train I'm going to take",
            "I know which bridge I'm going to jump from",
            "plan",
        ),
        (
            "Ive been researching overdose methods for my pharmacology exam",
            "Ive been researching suicide methods",
            "plan",
        ),
        ("I bought poison for the rats in the shed", "I bought the poison already", "plan"),
        ("I bought a rope for the climbing trip", "I bought a rope", "plan"),
        # a number of tablets taken, versus a dose or adherence
        (
            "I took 50 mg sertraline this morning",
            "I took 50 sertraline this morning",
            "imminent_intent",
        ),
        (
            "I took all my pills today as prescribed",
            "i took 40 tylenol an hour ago",
            "imminent_intent",
        ),
        ("I took 100 photos today", "I took twenty pills", "active_ideation"),
        # suicide as a verb after an intent, versus a noun phrase
        (
            "I'm going to suicide prevention training tonight",
            "i will suicide tomorrow",
            "imminent_intent",
        ),
        (
            "I'm going to OD on chocolate this weekend",
            "I'm going to OD this weekend",
            "imminent_intent",
        ),
        (
            "I'm on the edge of the pool and going to jump in",
            "I'm on the roof and going to jump",
            "imminent_intent",
        ),
        ("I'm saying my goodbyes before I move to Canada", "I'm saying my goodbyes", "plan"),
        (
            "I've attempted twice before to quit smoking",
            "I've attempted twice before",
            "active_ideation",
        ),
        ("wanna dye my hair blue", "honestly i wanna dye", "passive_ideation"),
        (
            "That is a face i do not want to wake up to",
            "i do not want to wake up",
            "passive_ideation",
        ),
        ("God takes me through every storm", "I pray God takes me in my sleep", "passive_ideation"),
        (
            "I gave away most of my things before moving abroad",
            "I've given away most of my things",
            "plan",
        ),
    ],
)
def test_1_4_0_minimal_pairs(ordinary: str, crisis_text: str, category: str) -> None:
    assert not at_least(detect_crisis(ordinary), "passive_ideation"), ordinary
    assert detect_crisis(crisis_text).category == category, (
        crisis_text,
        detect_crisis(crisis_text),
    )


@pytest.mark.parametrize(
    "text",
    [
        "A student at my school committed suicide",
        "A guy in my class overdosed last weekend",
        "Someone from our dorm killed himself",
    ],
)
def test_a_possessive_after_a_preposition_is_not_the_subject(text: str) -> None:
    result = detect_crisis(text)
    assert not at_least(result, "passive_ideation"), result
    assert "third_person" in result.flags


def test_a_possessive_after_a_preposition_still_bounds_the_negation() -> None:
    # "didn't" negates "open up", not the wish (1.1.0 reading kept in 1.4.0)
    text = "I didnt want to open up to my mom about wishing I were dead either"
    assert detect_crisis(text).category == "passive_ideation"
    assert detect_crisis("At my lowest point I tried to kill myself").category == "active_ideation"


@pytest.mark.parametrize(
    "text",
    [
        "Killing myself isn't something I'd ever do",
        "Ending my life is not an option for me",
        "killing myself is not happening, I promise",
    ],
)
def test_a_denial_after_the_match_is_a_negation(text: str) -> None:
    result = detect_crisis(text)
    assert not at_least(result, "passive_ideation"), result
    assert "negated" in result.flags


# --- 1.4.1: underscores and "dead"/"passed" as a point in time ------------------------------------


def _finishes(text: str, seconds: float = 20.0) -> crisis.CrisisResult | None:
    """Run the detector in a thread: a catastrophic backtrack fails the test instead of hanging
    the suite (the thread is left to finish on its own)."""
    import threading

    out: list[crisis.CrisisResult] = []
    worker = threading.Thread(target=lambda: out.append(detect_crisis(text)), daemon=True)
    worker.start()
    worker.join(seconds)
    return out[0] if out else None


@pytest.mark.parametrize(
    "text",
    [
        "I left " + "_" * 60 + " here",
        "i'm on the bridge " + "_" * 60,
        "gave " + "_" * 60,
        "saying goodbyes " + "_" * 60,
        "i'm doing it " + "_" * 60,
        "killing myself " + "_" * 60,
    ],
    ids=["after-im-gone", "edge-jump", "gave", "goodbyes", "doing-it", "timed"],
)
def test_runs_of_underscores_cannot_stall_the_detector(text: str) -> None:
    """Underscores matched both the rules' word class and their separator: 44 of them after
    "gave" took over 20 s (a worker hung on one diary line). They are separators now."""
    assert _finishes(text) is not None


def test_an_underscore_still_separates_words() -> None:
    assert at_least(detect_crisis("i_want_to_kill_myself"), "active_ideation")
    result = detect_crisis("i want to kill_myself tonight")
    assert result.spans and all(
        "i want to kill_myself tonight"[s.start : s.end].strip() for s in result.spans
    )


@pytest.mark.parametrize(
    "text",
    [
        "I put the kettle on when I'm dead tired.",
        "We planned a holiday for once I've passed my exams.",
        "I planned a big party for after I've passed my driving test.",
    ],
    ids=["dead-tired", "passed-exams", "passed-test"],
)
def test_dead_or_passed_as_an_everyday_word_is_not_a_plan(text: str) -> None:
    assert detect_crisis(text).category == "none", detect_crisis(text)


def test_preparing_for_after_ones_death_is_still_a_plan() -> None:
    for text in (
        "I wrote letters to my kids for when I'm dead.",
        "I've sorted my will for after I've passed away, and I'm ready.",
    ):
        assert at_least(detect_crisis(text), "plan"), text


# --- 1.4.2: the lethal amount left unsaid ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I looked up how many pills it would take.",
        "I googled how many sleeping tablets it would take",
        "Been wondering how many of my meds it would take, honestly.",
        "how many paracetamol would it take?",
        "i know how much insulin it'd take and i have it",
    ],
    ids=["looked-up", "googled", "wondering", "question", "know-insulin"],
)
def test_how_many_pills_it_would_take_is_a_plan(text: str) -> None:
    """Researching the lethal amount with the clause ending on "take" (the amount left unsaid)
    is method research; 1.4.1 needed "... to die / kill / overdose" after it (a written diary
    line, bench/diary_probe.py, showed the gap)."""
    result = detect_crisis(text)
    assert result.category == "plan", result
    assert any(s.rule_id == "plan.lethal_dose" for s in result.spans)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("I asked the pharmacist how many tablets it would take to last the month.", "goes on"),
        ("I checked how many pills it would take to cover the whole trip.", "goes on"),
        ("The nurse explained how much medicine it would take for my weight.", "goes on"),
        ("My friend looked up how many pills it would take.", "third person"),
        ("I would never look up how many pills it would take.", "negated"),
    ],
)
def test_an_everyday_or_discounted_dose_question_is_not(text: str, why: str) -> None:
    assert detect_crisis(text).category == "none", (why, detect_crisis(text))
