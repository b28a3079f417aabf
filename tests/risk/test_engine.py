"""The pure engine: every rule as a table (fires / does not fire / boundary), the streak across
time zones and daylight-saving changes, double verification, and deterministic triggers that no
model output can suppress. No database here."""

from __future__ import annotations

import ast
import datetime as dt
import json
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from risk.rules import engine
from risk.rules.engine import (
    Adherence,
    BaselineDrop,
    CrisisLanguage,
    DailyMood,
    EngineError,
    HelpPressed,
    MediaDistress,
    ModelAssessment,
    MoodRef,
    PatientState,
    QuestionnaireScored,
    SignalRef,
    evaluate,
    event_from_snapshot,
)
from risk.rules.loader import SETS_DIR, rule_set_parse, rule_sets

D = dt.date(2025, 6, 10)
V1 = rule_sets()["v1"]


def fired(event: engine.Event, state: PatientState | None = None, rule_set=V1) -> set[str]:
    return {f.rule_id for f in evaluate(rule_set, event, state)}


def q(total: int, item9: int | None, instrument: str = "phq9") -> QuestionnaireScored:
    return QuestionnaireScored(
        local_date=D, response_id="r1", instrument=instrument, total=total, item9=item9
    )


def crisis(category: str, ref: str = "d1", day: dt.date = D) -> CrisisLanguage:
    return CrisisLanguage(
        local_date=day, category=category, source="text", source_ref=ref, span_ids=("s1",)
    )


def moods(*pairs: tuple[dt.date, float], confidence: float = 1.0) -> dict[dt.date, MoodRef]:
    return {day: MoodRef(day, score, confidence) for day, score in pairs}


_UNSET: Any = object()


def mood_of(
    day: dt.date,
    score: float,
    *,
    independent: float | None = _UNSET,
    modalities: tuple[str, ...] = ("diary_text", "self_rated"),
) -> dict[dt.date, MoodRef]:
    """One day's fused mood with its text-free score (by default the same as the fused score)."""
    free = score if independent is _UNSET else independent
    return {day: MoodRef(day, score, 1.0, free, modalities)}


def day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


# --- the rule set file ---------------------------------------------------------------------------
def test_rule_sets_load_with_a_hash_of_the_file():
    raw = (SETS_DIR / "v1.json").read_bytes()
    import hashlib

    assert V1.version == "v1"
    assert V1.sha256 == hashlib.sha256(raw).hexdigest()
    ids = [rule.id for rule in V1.rules]
    assert ids == [
        "help_button",
        "crisis_imminent",
        "crisis_double_verified",
        "phq9_item9",
        "phq9_total",
        "low_mood_streak",
        "crisis_single",
        "baseline_drop",
        "non_adherence",
        "model_opinion",
    ]
    assert {r.id for r in V1.rules if r.deterministic} == {
        "help_button",
        "phq9_item9",
        "phq9_total",
    }


def test_v2_differs_from_v1_only_in_making_explicit_plan_or_intent_deterministic():
    # v1 stays as it was (alerts raised under it keep their version and hash); v2 is the default.
    v1 = json.loads((SETS_DIR / "v1.json").read_text())
    v2 = json.loads((SETS_DIR / "v2.json").read_text())
    assert v2["version"] == "v2"
    imminent = next(r for r in v2["rules"] if r["id"] == "crisis_imminent")
    assert imminent["deterministic"] is True
    del imminent["deterministic"]
    assert v2["rules"] == v1["rules"]
    assert {r.id for r in rule_sets()["v2"].rules if r.deterministic} == {
        "help_button",
        "crisis_imminent",
        "phq9_item9",
        "phq9_total",
    }
    firings = evaluate(rule_sets()["v2"], crisis("imminent_intent"))
    assert [(f.rule_id, f.tier, f.deterministic) for f in firings] == [
        ("crisis_imminent", "red", True)
    ]


def test_events_are_dispatched_only_to_the_rules_that_read_them():
    assert [r.id for r in V1.rules_for("questionnaire_scored")] == ["phq9_item9", "phq9_total"]
    assert [r.id for r in V1.rules_for("help_pressed")] == ["help_button"]
    assert {r.id for r in V1.rules_for("media_distress")} == {"crisis_double_verified"}
    assert V1.rules_for("nothing") == ()
    # State needs are declared, so the service loads only what a kind's rules read.
    assert V1.mood_window_days("daily_mood") == 2
    assert V1.mood_window_days("crisis_language") == 0
    assert V1.mood_window_days("questionnaire_scored") is None
    assert V1.needs_day("media_distress") and not V1.needs_day("questionnaire_scored")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version="one"), "version"),
        (lambda d: d["rules"][0].update(function="nope"), "unknown function"),
        (lambda d: d["rules"][0].update(tier="purple"), "unknown tier"),
        (lambda d: d["rules"][3].update(reads=["daily_mood"]), "cannot read"),
        (lambda d: d["rules"][3].update(params={}), "params must be exactly"),
        (lambda d: d["rules"][4]["params"].update(total_at_least="20"), "wrong type"),
        (lambda d: d["rules"][1]["params"].update(categories=["sad"]), "unknown values"),
        (
            lambda d: d["rules"][4].update(overridable={"total_at_least": {"min": 21, "max": 27}}),
            "outside its own bounds",
        ),
        (lambda d: d["rules"].append(dict(d["rules"][0])), "unique"),
    ],
)
def test_malformed_rule_sets_are_refused(mutate, message):
    data = json.loads((SETS_DIR / "v1.json").read_text())
    mutate(data)
    with pytest.raises(EngineError, match=message):
        rule_set_parse(json.dumps(data).encode())


def test_the_engine_imports_nothing_from_django():
    for name in ("engine.py", "loader.py"):
        tree = ast.parse((Path(engine.__file__).parent / name).read_text())
        modules = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any(m.startswith("django") for m in modules), (name, modules)


# --- overrides -----------------------------------------------------------------------------------
def test_overrides_change_only_overridable_thresholds_within_bounds():
    lowered = V1.with_overrides({"phq9_total": {"total_at_least": 15}})
    assert fired(q(15, 0), rule_set=lowered) == {"phq9_total"}
    assert fired(q(15, 0)) == set()
    with pytest.raises(EngineError, match="may not be overridden"):
        V1.with_overrides({"phq9_item9": {"item9_at_least": 2}})  # a deterministic trigger
    with pytest.raises(EngineError, match="within"):
        V1.with_overrides({"phq9_total": {"total_at_least": 25}})  # never less sensitive
    with pytest.raises(EngineError, match="integer"):
        V1.with_overrides({"low_mood_streak": {"days": 2.5}})
    with pytest.raises(EngineError, match="unknown rule"):
        V1.with_overrides({"nope": {"x": 1}})
    with pytest.raises(EngineError, match="number"):
        V1.with_overrides({"phq9_total": {"total_at_least": True}})


# --- table: help button --------------------------------------------------------------------------
def test_help_button_always_fires_red():
    firings = evaluate(V1, HelpPressed(local_date=D, help_request_id="h1"))
    assert [(f.rule_id, f.tier, f.deterministic) for f in firings] == [("help_button", "red", True)]


# --- table: questionnaires -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("total", "item9", "instrument", "expected"),
    [
        (0, 0, "phq9", set()),
        (3, 1, "phq9", {"phq9_item9"}),  # item 9 = 1 on its own, whatever the total
        (27, 3, "phq9", {"phq9_item9", "phq9_total"}),
        (19, 0, "phq9", set()),  # boundary: 19 does not fire
        (20, 0, "phq9", {"phq9_total"}),  # boundary: 20 fires
        (21, 0, "gad7", set()),  # GAD-7 has no item 9 and no PHQ-9 total rule
        (2, None, "phq9", set()),
    ],
)
def test_questionnaire_rules(total, item9, instrument, expected):
    if instrument == "gad7":
        event = QuestionnaireScored(
            local_date=D, response_id="r", instrument="gad7", total=min(total, 21), item9=None
        )
    else:
        event = q(total, item9)
    assert fired(event) == expected
    assert all(f.tier == "orange" and f.deterministic for f in evaluate(V1, event))


def test_a_model_saying_low_risk_cannot_suppress_item9():
    low = ModelAssessment(
        local_date=D, model="risk-lm", model_version="1", source_ref="r1", suggested_tier=None
    )
    assert evaluate(V1, low) == []  # a "low risk" opinion fires nothing...
    # ...and has no way to reach another rule: the item-9 firing is the same with or without it.
    firings = evaluate(V1, q(1, 1))
    assert [(f.rule_id, f.tier) for f in firings] == [("phq9_item9", "orange")]


# --- table: crisis language ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("none", set()),
        ("distress", set()),
        ("passive_ideation", {"crisis_single"}),
        ("active_ideation", {"crisis_single"}),
        ("plan", {"crisis_imminent"}),
        ("imminent_intent", {"crisis_imminent"}),
    ],
)
def test_crisis_language_alone(category, expected):
    assert fired(crisis(category)) == expected


def test_crisis_language_carries_ids_not_words():
    firing = evaluate(V1, crisis("plan"))[0]
    assert firing.tier == "red"
    assert firing.evidence["event"] == {
        "kind": "crisis_language",
        "local_date": D.isoformat(),
        "category": "plan",
        "source": "text",
        "source_ref": "d1",
        "span_ids": ["s1"],
        "model_version": "",
    }


# --- double verification -------------------------------------------------------------------------
DISTRESS = SignalRef("media_distress", "v1", "video", 0.8)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (PatientState(), {"crisis_single"}),  # crisis text alone: yellow
        (PatientState(corroboration=(DISTRESS,)), {"crisis_single", "crisis_double_verified"}),
        (
            PatientState(corroboration=(SignalRef("media_distress", "v1", "video", 0.69),)),
            {"crisis_single"},
        ),  # boundary: below 0.7
        (
            PatientState(corroboration=(SignalRef("media_distress", "v1", "video", 0.7),)),
            {"crisis_single", "crisis_double_verified"},
        ),  # boundary: 0.7 confirms
        (
            PatientState(corroboration=(SignalRef("baseline_drop", "voice:v1", "voice", -2.0),)),
            {"crisis_single", "crisis_double_verified"},
        ),
        (
            PatientState(corroboration=(SignalRef("baseline_drop", "face:v1", "face", -1.9),)),
            {"crisis_single"},
        ),
        (
            PatientState(corroboration=(SignalRef("baseline_drop", "mood:x", "mood", -3.0),)),
            {"crisis_single"},
        ),  # a mood baseline is not a voice/face state
        (PatientState(moods=mood_of(D, -6)), {"crisis_single", "crisis_double_verified"}),
        (PatientState(moods=mood_of(D, -5.9)), {"crisis_single"}),
        (PatientState(moods=mood_of(day(-1), -9)), {"crisis_single"}),  # another day
        # The fused mood confirms only through what was not text: a day fused from the diary
        # text alone (no text-free score) is the crisis text confirming itself...
        (PatientState(moods=moods((D, -9))), {"crisis_single"}),
        (
            PatientState(moods=mood_of(D, -9, independent=None, modalities=("diary_text",))),
            {"crisis_single"},
        ),
        # ...and text dragging a fused mood down does not count: the text-free score decides.
        (PatientState(moods=mood_of(D, -8, independent=-3)), {"crisis_single"}),
        (
            PatientState(moods=mood_of(D, -4, independent=-7)),
            {"crisis_single", "crisis_double_verified"},
        ),
        (
            PatientState(crisis=(SignalRef("crisis_language", "text:d0", "active_ideation"),)),
            {"crisis_single"},
        ),  # two crisis findings never confirm each other
    ],
)
def test_double_verification_when_crisis_arrives_second(state, expected):
    assert fired(crisis("active_ideation"), state) == expected


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (MediaDistress(local_date=D, video_id="v1", score=0.9), {"crisis_double_verified"}),
        (MediaDistress(local_date=D, video_id="v1", score=0.5), set()),
        (
            BaselineDrop(local_date=D, signal="face", z=-2.5, source_ref="v1"),
            {"crisis_double_verified", "baseline_drop"},
        ),
        (
            DailyMood(
                local_date=D, score=-7, modalities=("diary_text", "voice"), independent_score=-7
            ),
            {"crisis_double_verified"},
        ),
        (
            DailyMood(
                local_date=D, score=-5, modalities=("diary_text", "voice"), independent_score=-5
            ),
            set(),
        ),
        # a mood from the text alone, or one whose text-free part is not low, confirms nothing
        (DailyMood(local_date=D, score=-7), set()),
        (DailyMood(local_date=D, score=-9, modalities=("diary_text", "transcript_text")), set()),
        (
            DailyMood(
                local_date=D,
                score=-7,
                modalities=("diary_text", "self_rated"),
                independent_score=-2,
            ),
            set(),
        ),
    ],
)
def test_double_verification_when_the_second_signal_arrives_second(event, expected):
    state = PatientState(crisis=(SignalRef("crisis_language", "text:d1", "passive_ideation"),))
    assert fired(event, state) == expected
    assert fired(event, PatientState()) == expected - {"crisis_double_verified"}


def test_double_verification_evidence_names_both_signals():
    state = PatientState(corroboration=(DISTRESS,))
    firing = next(f for f in evaluate(V1, crisis("passive_ideation"), state) if f.tier == "orange")
    assert firing.evidence["crisis"] == {
        "kind": "crisis_language",
        "source_id": "text:d1",
        "code": "passive_ideation",
        "score": None,
        "local_date": D.isoformat(),  # each signal with its local day
    }
    assert firing.evidence["corroboration"]["source_id"] == "v1"
    assert firing.evidence["corroboration"]["local_date"] == D.isoformat()


# --- double verification within a window (v3) --------------------------------------------------
V2 = rule_sets()["v2"]
V3 = rule_sets()["v3"]
ORANGE = "crisis_double_verified"


def test_v3_differs_from_v2_only_in_the_corroboration_window():
    # v2 stays as it was (alerts raised under it keep their version and hash); v3 adds one
    # parameter (and its override bounds) to crisis_double_verified and says so in the texts.
    v2 = json.loads((SETS_DIR / "v2.json").read_text())
    v3 = json.loads((SETS_DIR / "v3.json").read_text())
    assert v3["version"] == "v3" and "adjacent local day" in v3["title"]
    changed = {new["id"] for old, new in zip(v2["rules"], v3["rules"], strict=True) if old != new}
    assert changed == {ORANGE, "crisis_single"}
    for rules in (v2["rules"], v3["rules"]):
        for rule in rules:
            if rule["id"] in changed:
                del rule["description"]
    orange = next(r for r in v3["rules"] if r["id"] == ORANGE)
    assert orange["params"].pop("window_days") == 1
    assert orange["overridable"].pop("window_days") == {"min": 1, "max": 2}
    assert v3["rules"] == v2["rules"]
    # v1 and v2 load without the parameter: the same local day only, as before.
    assert "window_days" not in V2.rule(ORANGE).params
    assert (V2.day_window_days("media_distress"), V3.day_window_days("media_distress")) == (0, 1)
    assert (V2.mood_window_days("crisis_language"), V3.mood_window_days("crisis_language")) == (
        0,
        1,
    )
    assert V3.mood_window_days("daily_mood") == 2  # the streak's, wider than the window
    assert V3.day_window_days("questionnaire_scored") is None
    assert V1.day_window_days("crisis_language") == 0


def dated(kind: str, n: int, code: str, score: float | None = None) -> SignalRef:
    """A stored signal of day ``n`` (relative to D), as the service loads it."""
    return SignalRef(kind, f"{kind[:5]}{n}", code, score, local_date=day(n))


def distress_on(n: int, score: float = 0.8) -> SignalRef:
    return dated("media_distress", n, "video", score)


def crisis_on(n: int, category: str = "passive_ideation") -> SignalRef:
    return SignalRef("crisis_language", f"text:d{n}", category, local_date=day(n))


@pytest.mark.parametrize(
    ("state", "in_v2", "in_v3"),
    [
        (PatientState(corroboration=(distress_on(0),)), True, True),
        (PatientState(corroboration=(distress_on(-1),)), False, True),  # the day before
        (PatientState(corroboration=(distress_on(1),)), False, True),  # the day after
        (PatientState(corroboration=(distress_on(-2),)), False, False),  # outside the window
        (PatientState(corroboration=(distress_on(2),)), False, False),
        (PatientState(corroboration=(distress_on(3),)), False, False),  # 3 days apart
        (PatientState(corroboration=(distress_on(-3),)), False, False),
        (PatientState(corroboration=(distress_on(1, 0.69),)), False, False),  # boundary holds
        (
            PatientState(corroboration=(dated("baseline_drop", 1, "voice", -2.0),)),
            False,
            True,
        ),
        (
            PatientState(corroboration=(dated("baseline_drop", -1, "mood", -3.0),)),
            False,
            False,
        ),  # a mood baseline is not a voice/face state, on any day
        # an adjacent day's fused mood confirms through its text-free score only
        (PatientState(moods=mood_of(day(-1), -7)), False, True),
        (PatientState(moods=mood_of(day(1), -4, independent=-7)), False, True),
        (PatientState(moods=mood_of(day(1), -8, independent=-3)), False, False),
        (PatientState(moods=moods((day(1), -9))), False, False),  # no text-free score
        (
            PatientState(moods=mood_of(day(1), -9, independent=None, modalities=("diary_text",))),
            False,
            False,
        ),  # the mood of the next day's diary text alone: text confirming text
        (PatientState(moods=mood_of(day(2), -9)), False, False),  # outside the window
        # two crisis findings never confirm each other, on adjacent days either
        (PatientState(crisis=(crisis_on(-1, "active_ideation"),)), False, False),
        (PatientState(crisis=(crisis_on(1),)), False, False),
    ],
)
def test_v3_confirms_crisis_language_with_a_signal_of_an_adjacent_local_day(state, in_v2, in_v3):
    event = crisis("active_ideation")
    assert fired(event, state, rule_set=V2) == {"crisis_single"} | ({ORANGE} if in_v2 else set())
    assert fired(event, state, rule_set=V3) == {"crisis_single"} | ({ORANGE} if in_v3 else set())


@pytest.mark.parametrize(
    ("crisis_day", "in_v2", "in_v3"),
    [(0, True, True), (-1, False, True), (1, False, True), (-2, False, False), (3, False, False)],
)
@pytest.mark.parametrize(
    "event",
    [
        MediaDistress(local_date=D, video_id="v9", score=0.9),
        BaselineDrop(local_date=D, signal="face", z=-2.5, source_ref="v9"),
        DailyMood(local_date=D, score=-7, modalities=("diary_text", "voice"), independent_score=-7),
    ],
    ids=["video", "face", "mood"],
)
def test_v3_second_signal_arriving_after_crisis_language_of_an_adjacent_day(
    event, crisis_day, in_v2, in_v3
):
    state = PatientState(crisis=(crisis_on(crisis_day),))
    assert (ORANGE in fired(event, state, rule_set=V2)) is in_v2
    assert (ORANGE in fired(event, state, rule_set=V3)) is in_v3


@pytest.mark.parametrize(
    "mood",
    [
        DailyMood(local_date=D, score=-9),  # producer did not say what it fused
        DailyMood(local_date=D, score=-9, modalities=("diary_text", "transcript_text")),
        DailyMood(
            local_date=D, score=-8, modalities=("diary_text", "self_rated"), independent_score=-2
        ),
    ],
)
def test_v3_a_mood_of_text_alone_never_confirms_crisis_of_the_adjacent_day(mood):
    state = PatientState(crisis=(crisis_on(-1), crisis_on(1)))
    assert ORANGE not in fired(mood, state, rule_set=V3)


def test_v3_the_23_50_and_00_10_signals_straddle_local_midnight_and_confirm_each_other():
    tz = zoneinfo.ZoneInfo("Europe/Berlin")
    written = dt.datetime(2025, 6, 10, 23, 50, tzinfo=tz).astimezone(dt.UTC)
    recorded = dt.datetime(2025, 6, 11, 0, 10, tzinfo=tz).astimezone(dt.UTC)
    text_day, video_day = written.astimezone(tz).date(), recorded.astimezone(tz).date()
    assert (recorded - written, (video_day - text_day).days) == (dt.timedelta(minutes=20), 1)
    text = crisis("passive_ideation", ref="d1", day=text_day)
    video = MediaDistress(local_date=video_day, video_id="v1", score=0.85)
    stored_text = PatientState(
        crisis=(SignalRef(text.kind, "text:d1", text.category, None, text_day),)
    )
    stored_video = PatientState(
        corroboration=(SignalRef(video.kind, "v1", "video", 0.85, video_day),)
    )
    # video second, then text second: both orders fire under v3, neither under v2
    by_video = [f for f in evaluate(V3, video, stored_text) if f.rule_id == ORANGE]
    by_text = [f for f in evaluate(V3, text, stored_video) if f.rule_id == ORANGE]
    assert ORANGE not in fired(video, stored_text, rule_set=V2)
    assert ORANGE not in fired(text, stored_video, rule_set=V2)
    assert len(by_video) == len(by_text) == 1
    # the pair has one key whichever arrived first (the alert counts it once)...
    assert by_video[0].dedupe_key == by_text[0].dedupe_key == f"{ORANGE}:text:d1+media_distress:v1"
    # ...and the evidence names both signals with their local days
    for firing in (by_video[0], by_text[0]):
        assert firing.evidence["crisis"]["local_date"] == "2025-06-10"
        assert firing.evidence["corroboration"]["local_date"] == "2025-06-11"
        assert firing.evidence["corroboration"]["source_id"] == "v1"
        assert firing.evidence["params"]["window_days"] == 1
        assert firing.tier == "orange" and not firing.deterministic


def test_v3_the_window_is_in_local_days_not_hours():
    # Documented: 23:50 before and 00:10 after a 23-hour day (spring forward) are 23 h 20 min
    # apart but two local days apart, outside v3's one-day window; a clinic may widen it to 2.
    tz = zoneinfo.ZoneInfo("Europe/Berlin")
    written = dt.datetime(2025, 3, 29, 23, 50, tzinfo=tz)
    recorded = dt.datetime(2025, 3, 31, 0, 10, tzinfo=tz)
    assert recorded.astimezone(dt.UTC) - written.astimezone(dt.UTC) < dt.timedelta(hours=24)
    text = crisis("passive_ideation", day=written.date())
    state = PatientState(
        corroboration=(SignalRef("media_distress", "v1", "video", 0.9, recorded.date()),)
    )
    assert ORANGE not in fired(text, state, rule_set=V3)
    wider = V3.with_overrides({ORANGE: {"window_days": 2}})
    assert ORANGE in fired(text, state, rule_set=wider)
    # ...and the whole of both adjacent days counts (up to nearly 48 hours apart)
    state = PatientState(corroboration=(distress_on(1),))
    assert ORANGE in fired(crisis("passive_ideation"), state, rule_set=V3)


def test_v3_the_nearest_signal_confirms_first():
    state = PatientState(
        corroboration=(distress_on(-1), distress_on(1), distress_on(0)),
        moods=mood_of(day(-1), -9),
    )
    (firing,) = [f for f in evaluate(V3, crisis("active_ideation"), state) if f.rule_id == ORANGE]
    assert firing.evidence["corroboration"]["local_date"] == D.isoformat()
    state = PatientState(crisis=(crisis_on(-1), crisis_on(0)))
    video = MediaDistress(local_date=D, video_id="v9", score=0.9)
    (firing,) = evaluate(V3, video, state)
    assert firing.evidence["crisis"]["source_id"] == "text:d0"
    # an undated signal (a state built by hand) is of the event's own day
    state = PatientState(corroboration=(DISTRESS,))
    (firing, _) = evaluate(V3, crisis("active_ideation"), state)
    assert firing.evidence["corroboration"]["local_date"] == D.isoformat()


def test_v3_window_overrides_are_bounded():
    wider = V3.with_overrides({ORANGE: {"window_days": 2}})
    state_2 = PatientState(corroboration=(distress_on(2),))
    state_3 = PatientState(corroboration=(distress_on(-3),))
    assert ORANGE in fired(crisis("active_ideation"), state_2, rule_set=wider)
    assert ORANGE not in fired(crisis("active_ideation"), state_3, rule_set=wider)
    assert wider.day_window_days("crisis_language") == 2
    with pytest.raises(EngineError, match="within"):
        V3.with_overrides({ORANGE: {"window_days": 0}})  # never narrower than v3's default
    with pytest.raises(EngineError, match="within"):
        V3.with_overrides({ORANGE: {"window_days": 3}})
    with pytest.raises(EngineError, match="integer"):
        V3.with_overrides({ORANGE: {"window_days": 1.5}})
    with pytest.raises(EngineError, match="may not be overridden"):
        V2.with_overrides({ORANGE: {"window_days": 1}})  # v2 has no window


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["params"].update(window_days=4), "must be within 0"),
        (lambda r: r["params"].update(window_days=-1), "must be within 0"),
        (lambda r: r["params"].update(window_days="1"), "wrong type"),
        (lambda r: r["params"].update(window_days=True), "wrong type"),
        (lambda r: r["params"].update(window_days=1.0), "wrong type"),
        (lambda r: r["params"].update(window_hours=24), "params must be exactly"),
        (lambda r: r["params"].pop("categories"), "params must be exactly"),
        (
            lambda r: r["overridable"].update(window_days={"min": 1, "max": 4}),
            "exceed its limits",
        ),
    ],
)
def test_malformed_corroboration_windows_are_refused(mutate, message):
    data = json.loads((SETS_DIR / "v3.json").read_text())
    mutate(next(r for r in data["rules"] if r["id"] == ORANGE))
    with pytest.raises(EngineError, match=message):
        rule_set_parse(json.dumps(data).encode())


# --- low mood streak -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("history", "today", "expected"),
    [
        ([(day(-2), -6), (day(-1), -6)], -6, True),  # boundary: exactly -6 three days
        ([(day(-2), -6), (day(-1), -6)], -5.9, False),
        ([(day(-2), -8), (day(-1), -5)], -9, False),  # a better day breaks it
        ([(day(-3), -8), (day(-1), -8)], -8, False),  # a missing day breaks it
        ([(day(-1), -8)], -8, False),  # two days only
        ([(day(1), -7), (day(2), -7)], -7, True),  # a late mood completes a later streak
        ([(day(-1), -7), (day(1), -7)], -7, True),  # the middle day arrives last
    ],
)
def test_low_mood_streak(history, today, expected):
    state = PatientState(moods=moods(*history))
    event = DailyMood(local_date=D, score=today)
    assert ("low_mood_streak" in fired(event, state)) is expected


def test_low_mood_streak_ignores_low_confidence_only_when_configured():
    strict = V1.with_overrides({"low_mood_streak": {"min_confidence": 0.5}})
    state = PatientState(moods=moods((day(-2), -8), (day(-1), -8), confidence=0.4))
    event = DailyMood(local_date=D, score=-8, confidence=0.9)
    assert "low_mood_streak" in fired(event, state)
    assert "low_mood_streak" not in fired(event, state, rule_set=strict)


def _local(moment_utc: str, tz: str) -> dt.date:
    moment = dt.datetime.fromisoformat(moment_utc).replace(tzinfo=dt.UTC)
    return moment.astimezone(zoneinfo.ZoneInfo(tz)).date()


@pytest.mark.parametrize(
    ("tz", "moments_utc", "expected"),
    [
        # New York, across the spring-forward night (2025-03-09 has 23 hours): entries at 23:30
        # local each evening are 03:30 or 04:30 UTC the next UTC day; local days are consecutive.
        ("America/New_York", ["2025-03-09T04:30", "2025-03-10T03:30", "2025-03-11T03:30"], True),
        # Across the fall-back night (2025-11-02 has 25 hours).
        ("America/New_York", ["2025-11-02T03:30", "2025-11-03T04:30", "2025-11-04T04:30"], True),
        # Berlin's spring-forward (2025-03-30): 00:30 local is 23:30 / 22:30 UTC the day before.
        ("Europe/Berlin", ["2025-03-28T23:30", "2025-03-29T23:30", "2025-03-30T22:30"], True),
        # Auckland (UTC+13): three UTC days in a row that are local days 1, 2 and 4.
        ("Pacific/Auckland", ["2025-01-01T09:00", "2025-01-02T09:00", "2025-01-03T12:00"], False),
        # The same three UTC timestamps are consecutive local days in Los Angeles.
        ("America/Los_Angeles", ["2025-01-01T09:00", "2025-01-02T09:00", "2025-01-03T12:00"], True),
        # 49 hours from first to last, but local days 31 May, 2 and 3 June: 1 June is missing.
        ("America/New_York", ["2025-06-01T03:30", "2025-06-02T12:00", "2025-06-03T04:30"], False),
    ],
)
def test_streak_counts_local_calendar_days_across_zones_and_dst(tz, moments_utc, expected):
    days = [_local(m, tz) for m in moments_utc]
    state = PatientState(moods=moods(*[(d, -7) for d in days[:2]]))
    event = DailyMood(local_date=days[2], score=-7)
    assert ("low_mood_streak" in fired(event, state)) is expected


# --- baseline drop, non-adherence, model opinions ------------------------------------------------
@pytest.mark.parametrize(
    ("z", "signal", "expected"),
    [
        (-2.5, "voice", True),
        (-2.49, "voice", False),
        (-4.0, "activity", True),
        (1.0, "face", False),
    ],
)
def test_baseline_drop(z, signal, expected):
    event = BaselineDrop(local_date=D, signal=signal, z=z, source_ref="x")
    assert ("baseline_drop" in fired(event)) is expected


@pytest.mark.parametrize(
    ("silent", "active_before", "expected"),
    [(5, 4, True), (4, 10, False), (5, 3, False), (30, 14, True), (0, 14, False)],
)
def test_non_adherence(silent, active_before, expected):
    event = Adherence(
        local_date=D, days_silent=silent, active_days_before=active_before, last_input_date=day(-9)
    )
    assert ("non_adherence" in fired(event)) is expected


def test_non_adherence_threshold_is_configurable():
    three = V1.with_overrides({"non_adherence": {"days_silent_at_least": 3}})
    event = Adherence(local_date=D, days_silent=3, active_days_before=9, last_input_date=day(-3))
    assert fired(event) == set()
    assert fired(event, rule_set=three) == {"non_adherence"}


@pytest.mark.parametrize(
    ("suggested", "expected"),
    [(None, []), ("yellow", ["yellow"]), ("orange", ["orange"]), ("red", [])],
)
def test_models_may_raise_up_to_orange(suggested, expected):
    event = ModelAssessment(
        local_date=D, model="fusion", model_version="2", source_ref="x", suggested_tier=suggested
    )
    assert [f.tier for f in evaluate(V1, event)] == expected


# --- events --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda: CrisisLanguage(local_date=D, category="sad", source="text", source_ref="x"),
        lambda: CrisisLanguage(local_date=D, category="plan", source="email", source_ref="x"),
        lambda: CrisisLanguage(
            local_date=D, category="plan", source="text", source_ref="x", span_ids=("I want to",)
        ),
        lambda: DailyMood(local_date=D, score=float("nan")),
        lambda: DailyMood(local_date=D, score=-11),
        # a text-free score needs a contributing modality other than text
        lambda: DailyMood(local_date=D, score=-7, modalities=("diary_text",), independent_score=-7),
        lambda: DailyMood(local_date=D, score=-7, modalities=("self rated",)),
        lambda: MediaDistress(local_date=D, video_id="v", score=1.5),
        lambda: QuestionnaireScored(
            local_date=D, response_id="r", instrument="phq9", total=3, item9=4
        ),
        lambda: HelpPressed(local_date=dt.datetime(2025, 1, 1), help_request_id="h"),  # type: ignore[arg-type]
    ],
)
def test_malformed_events_are_refused(build):
    with pytest.raises(EngineError):
        build()


def test_events_round_trip_through_their_snapshot():
    for event in (
        crisis("plan"),
        DailyMood(local_date=D, score=-3.5, confidence=0.4),
        DailyMood(
            local_date=D, score=-7, modalities=("diary_text", "self_rated"), independent_score=-8
        ),
        Adherence(local_date=D, days_silent=6, active_days_before=5, last_input_date=day(-6)),
        q(12, 2),
    ):
        assert event_from_snapshot(json.loads(json.dumps(event.snapshot()))) == event


def test_firings_are_ordered_most_urgent_first():
    state = PatientState(corroboration=(DISTRESS,))
    tiers = [f.tier for f in evaluate(V1, crisis("active_ideation"), state)]
    assert tiers == ["orange", "yellow"]
