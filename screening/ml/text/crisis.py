"""Deterministic crisis-language detector: explicit suicidal ideation, intent, plan and behaviour.

Pure Python (no Django, no ML). It adds *evidence* to the risk engine: a model elsewhere may raise
concern, but nothing may erase what this detector finds. Every rule is a precompiled regular
expression over a same-length normalised copy of the text (lower case, unicode quotes, dashes and
spaces folded), so every span's offsets point into the caller's original string.

The categories follow the risk engine's vocabulary (``risk.rules.engine.CRISIS_CATEGORIES``), from
lowest to highest: ``none``, ``distress``, ``passive_ideation``, ``active_ideation``, ``plan``,
``imminent_intent``; the mapping from the Columbia Suicide Severity Rating Scale (C-SSRS) is in
``docs/crisis-detector.md``.

Each match is then read in its clause: who is the subject (``third_person``), whether it is negated
(``negated``), conditional (``hypothetical``), inside quotation marks or reported speech
(``quoted``), or about a film, book or song (``fiction``). Such matches are *discounted*: they are
listed in ``CrisisResult.discounted`` and their reasons in ``CrisisResult.flags``, and never raise
the category. A remote-past cue ("years ago", "when I was 15", "used to") lowers ideation to
``distress`` and a past attempt to ``active_ideation`` (flag ``past``); a recent cue ("last
night", "yesterday", "just") raises an attempt to ``imminent_intent``.

Cost is linear in the text: each rule is one regex scan with bounded gaps (no nested unbounded
quantifiers, and no character that is both part of a word and a separator: ``_`` is folded to a
space by :func:`normalise`), and the context of a match is read from a bounded window around it.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from screening.ml.artifacts import ModelInfo

DETECTOR_NAME = "vigil-crisis-detector"
DETECTOR_VERSION = "1.4.2"  # bump on any rule change (the sha256 changes on its own)

CATEGORIES: tuple[str, ...] = (
    "none",
    "distress",
    "passive_ideation",
    "active_ideation",
    "plan",
    "imminent_intent",
)
_RANK = {name: rank for rank, name in enumerate(CATEGORIES)}

#: Reasons a match does not count, in the order they are reported.
DISCOUNT_FLAGS: tuple[str, ...] = (
    "negated",
    "third_person",
    "hypothetical",
    "quoted",
    "fiction",
    "generic",
)
#: A counted match whose category was lowered (remote past) carries this flag.
PAST_FLAG = "past"

#: At most this many spans (counted, then discounted) are returned; the category uses all of them.
MAX_SPANS = 100
#: Weak rules ("I'm going to do it") count only near another counted ideation span.
ANCHOR_DISTANCE = 600


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrisisSpan:
    """One counted match: character offsets into the input text, its category and rule id."""

    start: int
    end: int
    category: str
    rule_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "category": self.category,
            "rule_id": self.rule_id,
        }


@dataclass(frozen=True)
class DiscountedSpan:
    """A match that does not count (negated, someone else's, hypothetical, quoted, fiction)."""

    start: int
    end: int
    category: str
    rule_id: str
    flags: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "category": self.category,
            "rule_id": self.rule_id,
            "flags": list(self.flags),
        }


@dataclass(frozen=True)
class CrisisResult:
    """The detector's verdict on one text: never the words, only offsets, categories and rules.

    ``category`` is the highest category among ``spans`` (``none`` when there are none);
    ``flags`` lists why matches were discounted (and ``past`` when one was lowered).
    """

    category: str
    spans: tuple[CrisisSpan, ...]
    flags: tuple[str, ...]
    discounted: tuple[DiscountedSpan, ...] = field(default=())

    @property
    def version(self) -> str:
        return DETECTOR_VERSION

    @property
    def detector(self) -> str:
        return DETECTOR_NAME

    @property
    def rank(self) -> int:
        """The category's position in :data:`CATEGORIES` (0 for ``none``)."""
        return _RANK[self.category]

    def at_least(self, category: str) -> bool:
        return _RANK[self.category] >= _RANK[category]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; carries no text, only offsets, categories, rule ids and the rules' hash."""
        info = detector_info()
        return {
            "detector": info.name,
            "version": info.version,
            "sha256": info.sha256,
            "category": self.category,
            "spans": [span.as_dict() for span in self.spans],
            "flags": list(self.flags),
            "discounted": [span.as_dict() for span in self.discounted],
        }


# --- rule language -------------------------------------------------------------------------------
#
# A rule's pattern is written with single spaces between words; each space becomes SEP (any run of
# whitespace, dashes, underscores, asterisks, tildes or slashes) and each {NAME} a fragment below.
# The whole pattern is wrapped in word boundaries. Gaps between words are always bounded.

_FRAGMENTS: dict[str, str] = {
    # reflexives: the writer's own, and everyone else's (matched so they can be flagged)
    "SELF": r"(?:my ?s[ea]lf|myslef|mysef|meself|me ?self)",
    "SELFANY": (
        r"(?:my ?s[ea]lf|myslef|mysef|meself|me ?self|your ?self|yourselves|ur ?self|him ?self"
        r"|her ?self|them ?selves|themself|oneself|one's ?self)"
    ),
    "POSS": r"(?:my|his|her|their|your|ur|one's)",
    "ADV": (
        r"(?:(?:just|really|rly|realy|fucking|fuckin|freaking|frickin|literally|honestly|simply"
        r"|actually|seriously|truly|so|badly|kinda|kind of|sort of|even|also|still|totally"
        r"|completely|all|finally|quietly|peacefully|legit|lowkey|genuinely|sometimes|often"
        r"|always|constantly|desperately|secretly|definitely|probably|def|go|then|now|again"
        r"|too|only|ever|very|more|most|sooo*|fr|deadass|actively|slowly|painlessly) ){0,3}"
    ),
    "WANT": (
        r"(?:want|wants|wanted|wanting|wnt|wamt|wanna|wana|wannna|need|needs|needed"
        r"|wish|wishes|wished|would like|i'd like|id like|long|longing|yearn|yearning|crave"
        r"|craving|desire|(?<!heart\x20and\x20)hope|hoping|pray|praying)"
    ),
    "TODIE": r"(?:to |ta |2 )",
    "DIE": r"(?:die+|d1e|{DYE}|be dead|b dead|be ded|not exist|stop existing|cease to exist)",
    # 1.4.0: "wanna dye" misspelt, only where nothing is being dyed (clause end, "anymore", "lol")
    "DYE": (
        r"dye(?= ?(?:[.!,;:\n]|$| {ANYMORE}| already| so bad| rn| tbh| fr| lol| honestly"
        r"| tonight| today| now| please| ngl))"
    ),
    "KILL": r"(?:k[i1]ll?|murder|unalive|un alive)(?:s|ed|ing|in'?)?",
    "GOING": (
        r"(?:going to|goin to|gonna|gunna|gona|about to|bout to|i will|i'll|ill|i shall"
        r"|will|am going to|i'm ready to|im ready to|ready to|decided to|have decided to"
        r"|i've decided to|ive decided to|i'm finally going to|finna)"
    ),
    "SUICIDAL": r"s[uo]i?[cs]{1,2}i?d(?:al|ial|le|el|ual)",
    "SUICIDE": r"(?:s[uo]i?[cs]{1,2}i?de|sewer ?slide)",
    "PILLS": (
        r"(?:pills?|tablets?|meds|medication|medicine|medications|capsules|sleeping pills"
        r"|painkillers|pain killers|tylenol|paracetamol|acetaminophen|ibuprofen|advil|aspirin"
        r"|xanax|benzos|oxy|opioids|insulin|antidepressants|lithium|seroquel|sertraline"
        r"|prozac|zoloft|lexapro|ambien|sleeping tablets|heroin|fentanyl)"
    ),
    # a large amount: never "my pills" alone (taking one's pills is adherence, not an overdose)
    "BIG": (
        r"(?:all|all of|all the|every|every single|every last|too many|so many|way too many"
        r"|lots of|a lot of|a bunch of|a handful of|handfuls of|(?:the|a|an|my) (?:whole |full"
        r" |entire )?(?:bottle|box|pack|packet|strip|handful|bunch|lot|load|ton|stash)s? of"
        r"|the whole|a whole|an entire|the entire|\d{2,4}|twenty|thirty|forty|fifty|sixty"
        r"|hundred|a hundred|double|triple|\d+ times)"
    ),
    "THOUGHT": (
        r"(?:thinking about|thinking of|thinkin about|think about|thought about|thought of"
        r"|thoughts of|thoughts about|considering|contemplating|fantasi[sz]ing about"
        r"|fantasi[sz]e about|fantasi[sz]ed about|daydream about|daydreaming about"
        r"|daydreamed about"
        r"|dreaming about|dream about|obsessing over|obsessed with|urge to|urges to|tempted to"
        r"|planning on|imagining|keep thinking about|can't stop thinking about"
        r"|cant stop thinking about)"
    ),
    "TIMING": (
        r"(?:tonight|tonite|2nite|today|tomorrow|tmrw|tmr|right now|this (?:evening|morning"
        r"|afternoon|weekend|week|friday|saturday|sunday|monday|tuesday|wednesday|thursday)"
        r"|in (?:an?|a few|a couple of|\d+|one|two|three|few) (?:minutes?|mins?|hours?|hrs?)"
        r"|when (?:everyone|they|my parents|my family) (?:is|are|goes?|fall|falls) (?:asleep"
        r"|to sleep|to bed|out)|at midnight|on my birthday|before (?:morning|sunrise|dawn)"
        # 1.2.0: "after everyone's asleep", "when they leave", "once my parents are gone"
        r"|(?:when|after|once) (?:everyone|everybody|they|my parents|my family|my wife"
        r"|my husband|my partner|my roommates?|the kids|my mom|my mum|my dad)(?:'s|s| is| are"
        r"| has| have)? (?:asleep|gone|gone to bed|goes to bed|go to bed|go out|goes out|leave"
        r"|leaves|left|fall asleep|falls asleep|go to sleep|goes to sleep|out))"
    ),
    # a time cue for the method rules: TIMING, or a clause-final "now" ("I'm doing it now.")
    "WHEN": r"(?:{TIMING}|now(?= ?(?:[.!?,;\n]|$)))",
    # gap words between an act and its timing; never across a conjunction
    "GAP": r"(?: (?!(?:but|and|because|so|though|although|yet|or)(?![a-z0-9]))\w+){0,4}",
    "ANYMORE": r"(?:any ?more|no more|any longer|no longer|nemore)",
    # 1.4.0: "OD on chocolate / netflix": one list for every overdose pattern
    "ODNOT": (
        r"(?! (?:on|with) (?:caffeine|coffee|sugar|chocolate|candy|sweets|energy drinks|netflix"
        r"|tv|anime|memes|cuteness|love|pizza|cake|cookies|ice cream|junk food|carbs|food|music"
        r"|k ?pop|christmas|sunshine|content|tiktok|youtube|games|gaming|cheese|snacks))"
    ),
    # 1.4.0: "suicide" used as a verb ("i will suicide"), never a noun phrase ("suicide rates")
    "SUICIDEVERB": (
        r"{SUICIDE}(?! (?:prevention|hotline|line|awareness|squad|rates?|watch|forest|notes?"
        r"|attempts?|risk|ideation|thoughts|training|walk|class|talks?|group|support|meeting"
        r"|seminar|survivors?|loss|bereavement|research|statistics|stats|is|was|has|bombers?"
        r"|bombing|mission|run|counsel\w*|screening|assessment|course|module|documentary"
        r"|stor(?:y|ies)|cases?|victims?|and|or))"
    ),
    # 1.4.0: a large number of tablets taken ("took 40 tylenol"); not "all my pills" (adherence)
    # and not a dose ("50 mg")
    "AMOUNT": (
        r"(?:\d{2,4}(?! ?(?:mg|ml|mcg|milligrams?|micrograms?|g|iu|units?|mins?|minutes?)"
        r"(?![a-z]))|twenty|thirty|forty|fifty|sixty|a hundred|hundred|too many|way too many"
        r"|so many|a handful of|handfuls of|a bunch of|(?:the|a|an|my) (?:whole |full |entire )?"
        r"(?:bottle|box|pack|packet|strip|stash)s? of|the whole|an entire)"
    ),
    "NOTWAKE": r"(?:not|never|nvr) (?:to )?(?:wake|waking|wakin) (?:up|again)",
    "CLAUSE_END": (
        r"(?= ?(?:[.!?,;:)\n\"]|$| {ANYMORE}| either| at all| like this| this way| this life"
        r"| another| in this world| on this earth| without| if| but| and| because| cause| so"
        r"| when| with this"
        r"| for much longer| much longer))"
    ),
}


@dataclass(frozen=True)
class Rule:
    """One pattern: ``rule_id`` ("<category>.<name>"), the category it asserts and its options.

    ``past_category``: the category when a remote-past cue is in the sentence (None: unchanged).
    ``recent_category``: the category when a recent cue ("last night", "just") is in the clause.
    ``anchor``: counts only within :data:`ANCHOR_DISTANCE` of a counted non-anchor ideation span.
    ``self_negating``: the pattern carries its own negation ("don't want to live"): a negation
    before it is not read as a denial.
    ``generic_you``: "yourself" in it is generic (a searched method), not another person.
    """

    rule_id: str
    category: str
    pattern: str
    past_category: str | None = None
    recent_category: str | None = None
    anchor: bool = False
    self_negating: bool = False
    generic_you: bool = False

    def expand(self) -> str:
        return _expand(self.pattern)


_SEP = r"[\s\-_*~/]+"
_SEP_OPT = r"[\s\-_*~/]*"


def _expand(pattern: str) -> str:
    out = pattern
    for _ in range(3):  # fragments may use other fragments
        for name, frag in _FRAGMENTS.items():
            out = out.replace("{" + name + "}", frag)
    out = out.replace(r"\w+", r"[\w']+").replace(" ?", _SEP_OPT).replace(" ", _SEP)
    return r"(?<![a-z0-9])" + out + r"(?![a-z0-9])"


_PI = "passive_ideation"
_AI = "active_ideation"
_PL = "plan"
_II = "imminent_intent"
_DI = "distress"

# the acts that end one's life, in base form (shared by intent, timing and planning rules)
_ACT = (
    r"(?:{KILL} {SELFANY}|kms|take {POSS} (?:own )?life|end {POSS} (?:own )?life|end it all"
    r"|commit {SUICIDE}|hang {SELFANY}|shoot {SELFANY}|slit {POSS} (?:wrists?|throat)"
    r"|(?:overdose|od|o\.d\.?){ODNOT}|jump (?:off|from|in front of) (?:a|the|this|that) (?:\w+ )?"
    r"(?:bridge|building|roof|train|cliff|balcony|ledge|overpass|tower|car|bus)|unalive {SELFANY}"
    r"|off {SELFANY}|ctb|end it(?! with))"
)

# 1.2.0: a lethal method named without any death word ("take all my pills", "jump off the roof",
# "drive my car into a wall"), base and -ing forms. Ordinary uses stay out: an overdose needs an
# amount ({BIG}) and not "as prescribed / with breakfast"; a jump needs a height, a vehicle or the
# tracks (not a diving board); a cut needs the wrists, the throat or "deep"; a drive needs a crash
# target (not "to work"); carbon monoxide needs a verb of use (not "the detector").
_METHOD = (
    r"(?:(?:take|taking|swallow|swallowing|down|downing) {BIG} (?:of )?(?:my |the |these |those"
    r" |his |her |mom's |mums |dad's )?(?:\w+ )?{PILLS}(?! (?:as prescribed|with (?:food"
    r"|breakfast|lunch|dinner|a meal|meals|water like)|on time|every|each|daily|like (?:the|my)"
    r" (?:doctor|gp|psychiatrist)|for (?:my|the) (?:cold|headache|flu|pain)))"
    r"|(?:swallow|swallowing) (?:them all|all of them|these all|all of these|the lot|every"
    r" (?:last |single )?one of them)"
    r"|(?:swallow|swallowing|take|taking|down|downing) (?:the|a|my) (?:whole |entire )?(?:bottle"
    r"|box|pack|packet|stash)(?! of (?:water|wine|juice|soda|coke|milk|beer|vodka|chips|cereal))"
    r"|(?:overdose|overdosing|od|od'?ing|o\.d\.?){ODNOT}"
    r"|(?:jump|jumping|leap|leaping|throw myself|throwing myself) (?:off|from) (?:a |the |this"
    r" |that |my |our |some )?(?:\w+ )?(?:bridge|roof|rooftop|building|balcony|cliff|ledge"
    r"|overpass|tower|car park|parking garage|multi storey|window)(?! (?:into (?:the |a )?(?:pool"
    r"|foam pit|lake|sea|ocean|water)|for fun|with (?:my )?friends))"
    r"|(?:jump|jumping|step|stepping|walk|walking|throw myself|throwing myself|lie down|lying down"
    r"|lay down|laying down) (?:in front of|under|onto|on) (?:a |the |an )?(?:oncoming |next"
    r" |moving )?(?:train|bus|truck|lorry|car|traffic|tracks|train tracks|railway tracks|subway"
    r"|tube)"
    r"(?! (?:to|and) (?:wave|say|take|get|catch|board))"
    r"|hang {SELF}|hanging {SELF}|(?:tie|tying|tighten|tightening|put|putting) (?:the|a|my)"
    r" (?:rope|noose) (?:around|round) my neck"
    r"|(?:cut|cutting|slit|slitting|slice|slicing|slash|slashing) (?:open )?my (?:wrists?|throat"
    r"|veins)|(?:cut|cutting) (?:myself )?(?:really |so |too |extra )?(?:deep|deeper|deeply)"
    r"(?! (?:into|in to|cuts))"
    r"|(?:drive|driving|crash|crashing|steer|steering|swerve|swerving|wrap|wrapping) (?:my car"
    r" |the car |my truck |it )?(?:off|into) (?:a |the |an )?(?:\w+ )?(?:wall|tree|cliff|bridge"
    r"|road|oncoming traffic|traffic|truck|lorry|river|lake|barrier|pole|pillar|overpass)"
    r"|(?:put|putting|hold|holding|press|pressing) (?:the|a|my|dad's|his) (?:gun|pistol|revolver"
    r"|shotgun|rifle|barrel) (?:to|in|against|into|under) my (?:head|mouth|temple|chin)"
    r"|shoot {SELF}|shooting {SELF}|gas {SELF}|gassing {SELF}"
    r"|(?:use|using|try|trying|inhale|inhaling|breathe in|breathing in) (?:the )?(?:carbon"
    r" monoxide|exhaust fumes|car exhaust)(?! (?:detector|alarm|sensor|test))"
    r"|(?:run|running|start|starting|leave|leaving|sit|sitting) (?:in )?(?:my |the )?(?:car"
    r"|engine)(?: running)? (?:\w+ ){0,3}in the (?:closed |shut |locked )?garage)"
)

# 1.4.0: one's own death as a point in time ("after I'm dead", "once I've passed away")
_DEAD_ME = (
    r"(?:dead|no longer here|not here any ?more|not around any ?more|passed|passed away|died"
    r"|not alive){CLAUSE_END}"  # not "dead tired", "passed my exams"
)

RULES: tuple[Rule, ...] = (
    # ---- imminent intent: stated intent, with timing, or an act in progress -----------------
    Rule(
        "imminent_intent.intent",
        _II,
        r"(?<!was\x20)(?<!were\x20)(?<!wasn't\x20)(?<!wasnt\x20)(?<!not\x20)(?<!never\x20)"
        r"{GOING} {ADV}(?:try to |try and )?(?:" + _ACT + r"|{SUICIDEVERB})",
        past_category=_AI,
    ),
    Rule(
        "imminent_intent.timed",
        _II,
        r"(?:" + _ACT + r"|(?:i'm|im|i am) {ADV}(?:killing|ending|offing) (?:{SELF}|my life"
        r"|it all|it)){GAP} {TIMING}",
        past_category=_AI,
    ),
    Rule(
        "imminent_intent.timed_lead",
        _II,
        r"{TIMING}(?: \w+){0,3} (?:i'm|im|i am|i|i'll|ill|i will) {ADV}(?:{GOING} )?{ADV}" + _ACT,
        past_category=_AI,
    ),
    Rule(
        "imminent_intent.do_it",
        _II,
        r"(?<!was\x20)(?<!were\x20)(?:{GOING}|finally) {ADV}(?:do it|go through with it|end it"
        r"|do this|end this)(?! with)|(?:i'm|im|i am) {ADV}(?:doing it|doing this|going through"
        r" with it){GAP} {TIMING}",
        past_category=_AI,
        anchor=True,
    ),
    Rule(
        "imminent_intent.tonight_is_the_night",
        _II,
        r"(?:tonight|today) (?:is|'s|s) (?:the|my last) (?:night|day)",
        anchor=True,
    ),
    Rule(
        "imminent_intent.last_day_alive",
        _II,
        r"(?:my|this is my) (?:last|final) (?:day|night|hours?|moments?) (?:alive|on earth|on this"
        r" earth|in this world)",
    ),
    Rule(
        "imminent_intent.by_the_time_you_read",
        _II,
        r"by the time (?:you|anyone|someone|they|u) (?:read|reads|see|sees|find|finds) this"
        r"(?: \w+){0,4} (?:dead|gone|be gone|won't be|wont be|will be gone|no longer)",
    ),
    Rule(
        "imminent_intent.took_overdose",
        _II,
        r"(?:i've|ive|i have|i just|just|i already|already) {ADV}(?:taken|took|swallowed|downed"
        r"|ate|had) (?:{BIG}|the|these|those) (?:of )?(?:my |the |these |those |some |his |her )?"
        r"(?:\w+ )?{PILLS}",
        past_category=_AI,
    ),
    Rule(
        "imminent_intent.overdosing_now",
        _II,
        r"(?:i've|ive|i have|i just|just|i'm|im|i am) {ADV}(?:overdosed|overdosing|od'd|od'?ed"
        r"|od'?ing|taken an overdose|slit {POSS} wrists?|cut {POSS} wrists?|cut too deep"
        r"|bleeding out)",
        past_category=_AI,
    ),
    Rule(
        "imminent_intent.noose_on",
        _II,
        r"(?:the |a )?(?:noose|rope) (?:is )?(?:around|round|on) my neck",
    ),
    Rule(
        "imminent_intent.on_the_edge",
        _II,
        r"(?:i'm|im|i am) (?:standing|sitting|up) (?:on|at) (?:the|a) (?:edge|ledge|bridge"
        r"|roof|rooftop|tracks|railway|train tracks|cliff)",
        anchor=True,
    ),
    # 1.2.0: a stated intent or a time cue with a lethal method and no death word
    Rule(
        "imminent_intent.method_intent",
        _II,
        r"(?<!was\x20)(?<!were\x20)(?<!wasn't\x20)(?<!wasnt\x20)(?<!not\x20)(?<!never\x20)"
        r"{GOING} {ADV}(?:try to |try and |just )?" + _METHOD,
        past_category=_AI,
    ),
    Rule(
        "imminent_intent.method_timed",
        _II,
        r"(?:i'm|im|i am|i|i'll|ill|i will|want to|wanna|ready to|time to|i'm gonna|im gonna) {ADV}"
        + _METHOD
        + r"{GAP} {WHEN}|{WHEN}(?: \w+){0,3} (?:i'm|im|i am|i|i'll|ill|i will) {ADV}(?:{GOING} )?"
        r"{ADV}" + _METHOD,
        past_category=_AI,
    ),
    # 1.4.0: not being alive by a near time ("I won't be alive tomorrow"); "around/here" stay
    # the anchored/active rules (a trip also keeps one away tomorrow)
    Rule(
        "imminent_intent.not_alive_by",
        _II,
        r"(?:won't|wont|will not|not going to|not gonna|won't even|wont even) (?:still )?(?:be"
        r" alive|be breathing|live to see|live past|live through|make it past) (?:tomorrow|tmrw"
        r"|tonight|the night|past tonight|through the night|by tomorrow|by morning|by the"
        r" morning|by the weekend|this time tomorrow|the weekend|next week|after tonight"
        r"|until morning|till morning|the morning|sunrise|dawn)(?!'s)",
        self_negating=True,
    ),
    # 1.4.0: at a height and a stated intent to jump ("I'm standing on the bridge and I'm going
    # to jump"); the location alone stays the anchored imminent_intent.on_the_edge
    Rule(
        "imminent_intent.edge_jump",
        _II,
        r"(?:i'm|im|i am) (?:(?:standing|sitting|up|stood|sat|here|right here) )?(?:on|at)"
        r" (?:the|a|this|top of the|the top of the|the top of a|the edge of the|the edge of a)"
        r" (?:\w+ )?"
        r"(?:edge|ledge|bridge|roof|rooftop|tracks|railway|train tracks|cliff|balcony|overpass"
        r"|building|parking garage|car park)(?! of (?:the |my )?(?:pool|bed|seat|chair|sofa|couch"
        r"|stage|table|bath|bathtub))(?: \w+){0,8} (?:{GOING}|want to|wanna|ready to|i'm gonna"
        r"|im gonna|i'm going to|im going to) {ADV}(?:jump|let go|step off)(?! (?:in|into|right"
        r" in|on|up|around|for joy|rope|the queue|the line|ship|on the bandwagon|over|across"
        r"|ahead|back))",
    ),
    Rule(
        "imminent_intent.recent_attempt",
        _II,
        r"just (?:tried|attempted|tryed) (?:to )?(?:{KILL} {SELFANY}|kms|take {POSS}"
        r" (?:own )?life|end {POSS} (?:own )?life|{SUICIDE}|hang {SELFANY}|overdose|od)",
    ),
    # ---- plan: means at hand, preparation, planning, research -------------------------------
    Rule(
        "plan.stockpiled_pills",
        _PL,
        r"(?:sav(?:ed|ing|e)|stockpil\w*|hoard\w*|collect(?:ed|ing)|stash\w*"
        r"|squirrel\w* away|been saving) (?:up )?(?:{BIG} )?(?:of )?(?:my |some |the |these |those"
        r" |enough )?(?:\w+ )?{PILLS}",
        past_category=_AI,
    ),
    Rule(
        "plan.pills_saved_up",
        _PL,
        r"{PILLS} (?:that )?(?:i've |ive |i have |i )?(?:been )?(?:saved|stockpiled|stashed"
        r"|hoarded|saving|stockpiling|hoarding)(?: up| away)?",
        past_category=_AI,
    ),
    Rule(
        "plan.acquired_means",
        _PL,
        r"(?:bought|buy|buying|ordered|order|ordering|purchased|got|get|getting|found|have"
        r"|i've got|ive got|got hold of|stole|steal) (?:a |an |some |the |myself a |enough )?"
        r"(?:length of |new |sharp )?(?:rope|noose|razor blades?|box cutter|charcoal|helium"
        r"|exit bag|nitrogen tank|cyanide|rat poison|antifreeze|poison(?= ?(?:[.!?,;\n]|$"
        r"| already| ready| to (?:die|end|kill|take|drink|swallow)| in my| at home| for (?:myself"
        r"|me|when|to die))))(?! (?:for|to) (?:the |a |my |our |his |her |this |that |some )?"
        r"(?:\w+ )?(?:camping|climbing|work|garden|cook|cooking|bbq|barbecue|balloons|party|tie"
        r"|pull|shave|fix|trip|hike|hiking|boat|sailing|tent|gym|dog|swing|yard|crafts?|project"
        r"|class|shed|rats?|mice|slugs|weeds|pests|grill|fire|kite|birthday))",
        past_category=_AI,
    ),
    Rule(
        "plan.acquired_gun",
        _PL,
        r"(?:bought|buy|buying|ordered|purchased|got|get|getting|stole|steal|found) (?:a |an |some"
        r" |the |myself a )?(?:gun|handgun|firearm|pistol|revolver|rifle|shotgun|bullets?|ammo)",
        past_category=_AI,
        anchor=True,
    ),
    Rule(
        "plan.means_at_hand",
        _PL,
        r"(?:gun|handgun|firearm|pistol|revolver|shotgun|rope|noose|razor blades?|blades)"
        r" (?:is |are |sitting |waiting |lies |lying |hidden |kept )?(?:in|under|on) (?:the|my)"
        r" (?:drawer|desk drawer|top drawer|bedside drawer|nightstand|bedside table|closet"
        r"|wardrobe|glovebox|glove box|safe|cupboard|pillow|mattress|bed)",
        past_category=_AI,
    ),
    Rule(
        "plan.means_ready",
        _PL,
        r"(?:the |my |a )?(?:rope|noose|pills|gun|razor|blade|exit bag) (?:is |are |'s )?"
        r"(?:all )?(?:ready|set up|tied|loaded|waiting for me|prepared)(?! (?:for|to take) (?:the"
        r" trip|my trip|the week|the weekend|travel|travelling|traveling|work|school|the morning"
        r"|tomorrow morning|breakfast|holiday|vacation|camping|hunting|the range|a|my|the)\b)",
        past_category=_AI,
    ),
    Rule(
        "plan.noose",
        _PL,
        r"(?:tied|tying|tie|made|making|make|bought|have|got|learned to tie|learnt to tie"
        r"|practiced|practising|practicing|tested|testing|set up|setting up) (?:a |the |my )?"
        r"(?:noose|rope (?:from|to|on) (?:the|a|my) (?:ceiling|beam|rafter|banister|closet rod))",
        past_category=_AI,
    ),
    Rule(
        "plan.suicide_note",
        _PL,
        r"(?:(?:wrote|written|writing|write|wrote out|finished|drafted|drafting|left|leaving"
        r"|leave|started|typed|typing) (?:a |my |the |out )?(?:suicide|goodbye|farewell|final"
        r"|last) (?:note|letter|message)s?|(?:my|a) (?:suicide|goodbye) (?:note|letter)s?)",
        past_category=_AI,
    ),
    Rule(
        "plan.giving_away",
        _PL,
        r"(?:(?:giving|gave|given|give) (?:away )?(?:all |most |some |half |a lot |lots )?(?:of )?"
        r"(?:my )?(?:stuff|things|belongings|possessions|everything i own|prized possessions)"
        r" away|(?:giving|gave|given|give) away (?:all |most |some |half |a lot |lots )?(?:of )?"
        r"(?:my )?(?:stuff|things|belongings|possessions|everything i own|prized possessions))"
        r"(?!(?: \w+){0,3} (?:to charity|to the charity shop|to goodwill|before (?:i |we )?(?:move"
        r"|moving|the move|leaving|emigrating)|because (?:i'm|im|we're|were|i am|we are) moving"
        r"|for the move|when (?:i|we) moved))",
        past_category=_AI,
    ),
    Rule(
        "plan.goodbyes",
        _PL,
        r"(?:(?:saying|said|say|sayin) (?:my )?(?:last |final )?goodbyes|(?:my|a|the) (?:last"
        r"|final) goodbyes?)(?!(?: \w+){0,5} (?:move|moving|leave for|leaving for|flight|fly"
        r"|flying|trip|holiday|vacation|graduation|graduate|graduating|new job|airport|abroad"
        r"|semester|exchange|deployment|deploy|retire|retirement|emigrate|emigrating))"
        r"|this is (?:my )?goodbye|goodbye (?:forever|cruel world)",
        past_category=_AI,
    ),
    Rule(
        "plan.goodbye_everyone",
        _PL,
        r"(?:saying|said|say) goodbye to (?:everyone|everybody|you all|all of you|the world"
        r"|my family|my friends)|(?:won't|wont|will not) (?:see|talk to) (?:you|u) (?:again|ever"
        r" again)",
        anchor=True,
        past_category=_AI,
    ),
    # 1.4.0: an arrangement made for after one's death: a pet or belongings given away, letters or
    # messages left "for when I'm gone" ("I gave my dog to my sister so she's looked after when
    # I'm gone"), or anything arranged "for after I'm dead". Other arrangements "for when I'm
    # gone" are trips ("I left instructions for the plants for when I'm gone") and stay out, as
    # does "gone" with a duration or place after it ("when I'm gone for the weekend").
    Rule(
        "plan.after_im_gone",
        _PL,
        r"(?:(?:gave|given|giving|give|rehomed|rehoming|rehome|signed over|signing over"
        r"|transferred|transferring|donated|donating|(?:wrote|written|writing|write|left|leaving"
        r"|leave|recorded|recording|scheduled|scheduling|finished|hid|hidden|put|putting)(?: \w+)"
        r"{0,3} (?:letters?|notes?|messages?|emails?|videos?|recordings?)(?:,? \w+){0,10})(?:,?"
        r" \w+){0,14},?"
        r" (?:when|after|once|for when|for after) (?:i'm|im|i am|i've|ive|i have|i'll be|ill be"
        r"|i will be) (?:gone|" + _DEAD_ME + r")|(?:left|leaving|leave|wrote|written|writing|write"
        r"|sorted|sorting|arranged|arranging|set up|setting up|made sure|making sure|scheduled"
        r"|scheduling|schedule|finished|updated|updating|put|putting|signed|signing|prepared"
        r"|preparing|planned|planning|recorded|recording|hid|hidden)(?:,? \w+){0,14},? (?:when"
        r"|after|once|for when|for after) (?:i'm|im|i am|i've|ive|i have|i'll be|ill be|i will"
        r" be) (?:" + _DEAD_ME + r"))(?! (?:for|on|to|at|from|in|over|this|next|during|until|till"
        r"|a|the|two|three|\d+)(?![a-z0-9]))",
        past_category=_AI,
    ),
    # 1.4.0: a chosen method or place stated as done ("I've picked the bridge."): clause-final or
    # followed by what it is for; "I've picked the bridge for our photos" is not a plan
    Rule(
        "plan.chose_method",
        _PL,
        r"(?:i've|ive|i have|i|i've already|ive already|i already|already) (?:picked|chosen|chose"
        r"|decided on|settled on) (?:the|a|my) (?:bridge|building|method|rope|cliff|tree"
        r"|overpass|tracks|pills|gun)(?= ?(?:[.!?;\n]|$)| (?:to|i'll|ill|i will|i'm going to"
        r"|im going to|i'm gonna|im gonna|i want to) (?:use|jump|do it|die|end it|hang|take))",
        past_category=_AI,
    ),
    Rule(
        "plan.affairs_in_order",
        _PL,
        r"(?:putting|put|getting|get|got|sorting|sorted|have) (?:all )?my affairs (?:in order"
        r"|sorted)",
        past_category=_AI,
    ),
    Rule(
        "plan.will",
        _PL,
        r"(?:wrote|written|writing|made|making|updated|updating|finished) (?:my|a) (?:last )?will",
        anchor=True,
        past_category=_AI,
    ),
    Rule(
        "plan.has_plan",
        _PL,
        r"(?:have|have got|'ve got|got|made|making|make|worked out|figured out|came up with|come up"
        r" with|thought out|planned out|formed|i've|ive|there's|theres) (?:a |my |the |an actual"
        r" |a real |a solid |a detailed |a whole )?plan (?:to|for|on|of) (?:how (?:to|i'll|i'm"
        r" going to|i will|i would|i am going to) )?(?:" + _ACT + r"|{SUICIDE}|die|my death|dying"
        r"|do it|killing {SELF}|ending (?:it|my life))",
        past_category=_AI,
    ),
    Rule(
        "plan.planning_to",
        _PL,
        r"(?:planning|plan|planned|plans|planing) (?:to|on|for) {ADV}(?:" + _ACT + r"|{SUICIDE}"
        r"|my (?:own )?death|my (?:own )?suicide|killing {SELF}|ending (?:it|my life)|jump"
        r"|overdosing|" + _METHOD + r")",
        past_category=_AI,
    ),
    # 1.2.0: means named, then the thought or intent of using them on oneself
    Rule(
        "plan.means_on_self",
        _PL,
        r"(?:(?:gun|handgun|pistol|revolver|rifle|shotgun|firearm|rope|noose|knife|blade|blades"
        r"|razor|razor blades|{PILLS})(?: \w+){0,10} (?:{THOUGHT}|{WANT}|{GOING}|tempted to|urge"
        r" to|been thinking about|keep thinking about) {ADV}(?:to )?(?:use|using) (?:it|them|that"
        r"|this|those|these)|(?:use|using) (?:the|a|my|dad's|his|that|this) (?:gun|handgun|pistol"
        r"|revolver|rifle|shotgun|rope|noose|knife|blade|razor)) on {SELF}",
        past_category=_AI,
    ),
    Rule(
        "plan.know_how",
        _PL,
        r"(?:i know|i've figured out|ive figured out|i figured out|i've worked out|i worked out"
        r"|i've decided|ive decided|i decided|i've chosen|i chose) (?:exactly )?(?:how|where|when"
        r"|which way|which (?:\w+ )?(?:bridge|building|roof|cliff|method|pills|tracks|train|rope"
        r"|gun|tree|overpass)) (?:i'm|im|i am|i'll|ill|i will|i'd|id|i would|i want|to|i'm going"
        r"|im gonna|i'm gonna) (?:going to |gonna |to )?(?:" + _ACT + r"|do it|die|(?:jump|hang"
        r" myself)(?: off| from| in front of)?(?: it| there)?{CLAUSE_END})",
        past_category=_AI,
    ),
    Rule(
        "plan.picked_date",
        _PL,
        r"(?:picked|chosen|chose|set|decided on|settled on|marked) (?:a|the|my) (?:date|day|time"
        r"|spot|place|method|location|bridge)",
        anchor=True,
        past_category=_AI,
    ),
    Rule(
        "plan.research_method",
        _PL,
        r"(?:how|ways|way|best way|easiest way|quickest way|fastest way|painless ways?|methods?"
        r"|least painful ways?|most painless ways?|surest way) (?:to |of |for )(?:{KILL}"
        r" (?:myself|yourself|oneself|urself|my self|your self)|kms|commit {SUICIDE}|{SUICIDE}"
        r"|die painlessly|die quickly|die fast|die in my sleep|hang (?:myself|yourself|oneself)"
        r"|tie a noose|overdose|od|end (?:my|your|one's) life"
        r"|take (?:my|your|one's) (?:own )?life)|(?:research|researching|researched|looked up"
        r"|looking up|look up|googled|googling|google|searched|searching|search|read up on"
        r"|reading up on|reading about|read about) (?:\w+ ){0,2}(?:{SUICIDE}|overdose|hanging"
        r"|lethal|painless) (?:methods?|techniques?|options)(?! for (?:my|a|the|our|an) (?:\w+ )?"
        r"(?:exam|class|essay|paper|assignment|thesis|course|project|lecture|book|novel|story"
        r"|research|work|job|article|dissertation|module))",
        past_category=_AI,
        generic_you=True,
    ),
    Rule(
        "plan.painless_death",
        _PL,
        r"(?:painless|peaceful|quick|quickest|easiest|least painful|most painless|surest) (?:way"
        r"|ways|method|methods) (?:to|of) (?:die|dying|death|end it|suicide)",
        past_category=_AI,
    ),
    Rule(
        "plan.lethal_dose",
        _PL,
        r"(?:lethal|fatal|deadly) (?:dose|doses|amount|amounts|dosage|overdose) (?:of|for)"
        r"|how (?:many|much) (?:\w+ ){0,2}(?:{PILLS}|mg|grams) (?:\w+ ){0,4}(?:to|would|will|does"
        r"|it takes?|until|before) (?:\w+ ){0,3}(?:die|kill|overdose|od|be fatal|be lethal"
        r"|end it|stop my heart)"
        # 1.4.2: the amount left unsaid, the clause ending on "take" ("I looked up how many pills
        # it would take."); "... it would take to last the month" goes on and stays out
        r"|how (?:many|much) (?:of )?(?:\w+ ){0,2}{PILLS} (?:it would|it will|it'd|itd|would it"
        r"|will it|does it|it does|it'll|itll) (?:really )?take{CLAUSE_END}",
        past_category=_AI,
        generic_you=True,
    ),
    Rule(
        "plan.scouted",
        _PL,
        r"(?:visited|went to|been to|scouted|scouting|checked out|looked at) (?:the|a) (?:bridge"
        r"|cliff|train tracks|railway|rooftop|tallest building|overpass) (?:\w+ ){0,4}(?:to jump"
        r"|to do it|to end it|i would jump|i'll jump|i will jump)",
        past_category=_AI,
    ),
    Rule(
        "plan.rehearsal",
        _PL,
        r"(?:practice run|dry run|test run|rehears(?:ed|ing|al)|practi[cs](?:ed|ing)) (?:\w+ )?"
        r"(?:with the |with a |the |a |of )?(?:rope|noose|hanging|overdose)",
        past_category=_AI,
        anchor=True,
    ),
    # ---- active ideation: thoughts of killing oneself, self-harm, method, past attempt ------
    Rule(
        "active_ideation.past_attempt",
        _AI,
        r"(?:tried|trying|tryed|attempted|attempting|tried again|tried twice|tried once)"
        r" (?:to |and )?(?:{KILL} {SELFANY}|kms|take {POSS} (?:own )?life|end {POSS} (?:own )?life"
        r"|commit {SUICIDE}|{SUICIDE}|hang {SELFANY}|overdose|od|drown {SELFANY}|shoot {SELFANY}"
        r"|slit {POSS} wrists?|jump (?:off|from|in front of)|end it all)",
        recent_category=_II,
    ),
    Rule(
        "active_ideation.attempt_noun",
        _AI,
        r"(?:{SUICIDE}|{SUICIDAL}) attempts?|attempts? (?:at|of) {SUICIDE}|attempts? on {POSS}"
        r" (?:own )?life|survived (?:a |my |an |two |three |multiple |several )?(?:{SUICIDE} )?"
        r"attempts?|(?:after|since) my (?:{SUICIDE} )?(?:attempt|overdose|od)|(?:i've|ive|i have"
        r"|i had|i'd) (?:already |also |actually |even |previously |both )?attempted (?:before"
        r"|once|twice|three times|\d+ times|several times|multiple times|many times|a few times"
        r"|in the past)(?: (?:before|in the past|already))?(?:(?! (?:to|at|the|a|an|this|that|it"
        r"|these|those|some|before|once|twice|in)(?![a-z0-9]))"
        r"| (?:to )?(?:kill|end|take my|die|commit|suicide|overdose|hang|od|off)(?![a-z0-9]))",
        recent_category=_II,
    ),
    Rule(
        "active_ideation.overdosed",
        _AI,
        r"(?:overdosed|od'd|od'?ed|took an overdose|had an overdose){ODNOT}",
        recent_category=_II,
    ),
    # 1.4.0: "I took 40 tylenol": an overdose taken (a past attempt), imminent with a recent cue
    # ("an hour ago"); "all my pills" and doses ("50 mg") are adherence and stay out
    Rule(
        "active_ideation.took_amount",
        _AI,
        r"(?:i|i've|ive|i have|i had) {ADV}(?:took|taken|swallowed|downed) {AMOUNT} (?:of )?(?:my"
        r" |the |these |those |his |her |mom's |mums |dad's )?(?:\w+ )?{PILLS}(?! (?:(?:today"
        r"|this morning|tonight|yesterday|daily|a day|each day|every day|on time) )?(?:as"
        r" prescribed|as directed|like (?:the|my) (?:doctor|gp|psychiatrist|pharmacist)|with"
        r" (?:food|breakfast|lunch|dinner|water|a meal)|on time|for (?:my|the|a) (?:cold|headache"
        r"|flu|pain|infection|back|migraine|period|cramps)))",
        recent_category=_II,
    ),
    Rule(
        "active_ideation.aborted_attempt",
        _AI,
        r"(?:almost|nearly|came close to|was going to|was gonna|was about to) {ADV}(?:killed|kill"
        r"|hung|hanged|hang|shot|shoot|overdosed|overdose|od'd|drowned|slit) (?:{SELFANY}"
        r"|{POSS} wrists?)|stopped {SELFANY} (?:from )?(?:killing|hanging|jumping|overdosing"
        r"|cutting too deep|taking the pills)|(?:had|held|holding) the (?:pills|knife|gun|rope"
        r"|blade|razor) (?:in my hand|to my (?:head|throat|wrist|neck))",
        recent_category=_II,
    ),
    Rule(
        "active_ideation.kill_self",
        _AI,
        r"(?:{KILL}|killed|kil+ing|kilin|murdering|offing) {SELFANY}(?! (?:laughing|with laughter"
        r"|lol|lmao|at the gym|working|studying|over this))|(?<!\d\x20)(?<!\d)kms|kmys",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.off_self",
        _AI,
        r"(?:to|wanna|gonna|should|will|i'll|ill|might|just|finally|could|and) off {SELFANY}",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.kys_self",
        _AI,
        r"(?:i|i'm|im|i'll|ill|i should|i might|i will|i wanna|i want to|i'm gonna|im gonna"
        r"|i'm going to|i need to|i just wanna) (?:just |prob |probably |literally |fr )?kys",
        past_category=_DI,
        generic_you=True,
    ),
    Rule(
        "active_ideation.unalive",
        _AI,
        r"(?:to|wanna|gonna|going to|want to|thinking about|thinking of|thoughts of|urge to|will"
        r"|should|might|just|self) (?:un ?alive|unaliv(?:e|ing))|un ?alive {SELFANY}"
        r"|unaliv(?:e|ing) {SELFANY}",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.end_life",
        _AI,
        r"(?:end|ending|ended|take|taking|took) {POSS} (?:own )?(?:life|existence|miserable life"
        r"|pathetic life|worthless life)(?! (?:savings|back|in|into|apart|story|seriously"
        r"|for granted|away|over|to the next|by the horns|one day))",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.end_it_all",
        _AI,
        r"(?:end|ending|ended) (?:it all|everything|it for good|things for good|it once and for all"
        r"|it permanently|it forever|my suffering permanently)(?! (?:with|between))|ready to end"
        r" (?:it|things|everything)(?! (?:with|between|for (?:him|her|them|us)))",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.end_it",
        _AI,
        r"(?:want|wanna|need|want to just|just want to) (?:to )?(?:just )?end it(?! (?:with"
        r"|between|for (?:him|her|them|us)))",
        past_category=_DI,
        anchor=True,
    ),
    Rule(
        "active_ideation.commit_suicide",
        _AI,
        r"(?:commit|commits|committing|committed|comit|commiting) {SUICIDE}|(?:thinking|think"
        r"|thought|want|wanna|going|plan|planning|decided|try|trying|will|i'll|gonna) (?:to )?(?:do"
        r"|make) {SUICIDEVERB}|(?:wanna|gonna"
        r"|want to|going to|i will|i'll|might|should|will) {SUICIDE}(?! (?:prevention|hotline"
        r"|line|awareness|squad|rates?|watch|forest|note|notes|attempt|attempts|risk))",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.sewerslide",
        _AI,
        r"sewer ?slide|sewerslid(?:e|ing|ed)|commit (?:sudoku|toaster bath)|toaster bath",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.suicidal",
        _AI,
        r"{SUICIDAL}(?! (?:people|persons?|patients?|friends?|teens?|teenagers?|individuals?|kids"
        r"|children|man|men|woman|women|girl|boy|users?|members?|characters?|ones|folks|others"
        r"|clients?|population|callers?|posts?|content|song|songs|movie|band|prevention|hotline"
        r"|risk assessment|screening|ideation scale|tendencies run|behaviou?r in))",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.suicide_thoughts",
        _AI,
        r"{THOUGHT} {ADV}(?:{SUICIDE}|(?:killing|kiling|ending|unaliving|offing) {SELFANY}"
        r"|taking {POSS} (?:own )?life|ending {POSS} (?:own )?life|ending it(?: all)?|ending"
        r" everything|dying by {SUICIDE}|hanging {SELFANY})|(?:{SUICIDE}|killing {SELF}|ending my"
        r" (?:own )?life|ending it all) (?:is|'s|has been|keeps being|was|stays) (?:always"
        r" |constantly |still |just |all )?(?:on my mind|in my head|in my thoughts|all i (?:can )?"
        r"think about)|all i (?:can |ever )?think about is (?:{SUICIDE}|killing {SELF}|ending my"
        r" (?:own )?life)|{SUICIDE} (?:is|seems|feels like)"
        r" (?!never |not |no )(?:\w+ )?(?:the only|my only|the best|the answer|the way out"
        r"|an option|my option|the solution|the easy way out|my way out)|(?:{SUICIDE}|{SUICIDAL})"
        r" (?:thoughts|ideation"
        r"|urges|feelings|tendencies|thinking|ideations)",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.ctb",
        _AI,
        r"(?:want|wanna|going|gonna|plan|planning|ready|decided|thinking|think|thought|will|to"
        r"|should|about|could|might) (?:to |about |of |on )?(?:just )?ctb|(?:want to|wanna|thinking"
        r" about|thinking of|ready to|going to|gonna|decided to|time to|planning to|plan to|need"
        r" to) (?:just )?catch(?:ing)? the bus (?:for good|forever|permanently|once and for all)"
        r"(?! (?:now|since|because|as|after|when))",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.self_harm",
        _AI,
        r"(?:hurt|hurts|hurting|harm|harms|harming|harmed|cut|cuts|cutting|cuttin|burn|burns"
        r"|burning|burned|burnt|injure|injured|injuring|mutilate|mutilating|scratch|scratching"
        r"|punish|punishing|starve|starving) {SELFANY}(?! (?:shaving|cooking|by accident"
        r"|accidentally|on|at|while|playing|running|skating|falling|when i fell|lifting"
        r"|working out|during|with (?:a|the) (?:kitchen|bread) knife))|self ?harm(?:ing|ed|s)?"
        r"|self ?injur(?:y|ing|ed)|(?:cut|cutting|slashed|slashing|carved|carving|burned|burning)"
        r" (?:up )?my (?:arms?|wrists?|thighs?|legs?|skin|stomach|hips?|body)(?! (?:on|at"
        r"|by accident|accidentally|while|shaving))|(?:started|start|been|back to|relapsed into"
        r"|relapsed|urges? to|want to|wanna) cut(?:ting)? (?:myself )?again|(?:started|relapsed"
        r" into|back to|urges? to|urge to) cutting(?= ?(?:[.!,;\n]|$| again| myself| my))",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.method",
        _AI,
        r"(?:hang|hanging|hung|shoot|shooting|stab|stabbing|drown|drowning|poison|poisoning"
        r"|electrocute|suffocate|suffocating|gas|gassing|strangle|strangling|asphyxiate)"
        r" {SELFANY}(?! (?:in the foot|in (?:work|coffee|alcohol|booze|homework|music|books"
        r"|tears|paperwork|chores)|with (?:junk|sugar|food|fast food)))|slit {POSS} (?:wrists?"
        r"|throat)|slitting {POSS} (?:wrists?|throat)|blow {POSS} (?:brains?|head) out|(?:gun"
        r"|bullet|barrel) (?:to|in|into|through) {POSS} (?:head|mouth|brain|temple)",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.method_wish",
        _AI,
        r"(?:{WANT}|{THOUGHT}|{GOING}|should|could|might|tempted|wanted) {ADV}(?:to )?(?:just )?"
        r"(?:(?:jump|jumping|throw myself|throwing myself) (?:off|from|in front of|into|under"
        r"|onto) (?:a |the |this |that |my |some )?(?:\w+ )?(?:bridge|building|roof|train|trains"
        r"|cliff|balcony|ledge|overpass|tower|car|cars|bus|truck|lorry|traffic|river|tracks"
        r"|window)|(?:step|stepping|walk|walking|run|running) (?:in front of|into) (?:a |the )?"
        r"(?:train|bus|truck|lorry|car|traffic|oncoming traffic|sea|ocean|river|lake)|(?:drive"
        r"|driving|crash|crashing|steer|swerve|swerving) (?:my car |the car )?(?:off|into)"
        r" (?:a |the |an )?(?:\w+ )?(?:cliff|wall|tree|bridge|oncoming traffic|traffic|truck"
        r"|lorry|river|lake|barrier|pole))",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.overdose_wish",
        _AI,
        r"(?:{WANT}|{THOUGHT}|should|could|might|tempted) (?:to )?(?:just )?(?:take|swallow|down)"
        r" (?:{BIG} )(?:of )?(?:my |the )?(?:\w+ )?{PILLS}|(?:{WANT}|{THOUGHT}|should|could"
        r"|might|tempted|to) (?:to )?(?:just )?(?:overdose|overdosing|od|o\.d\.){ODNOT}"
        r"|(?:od|overdose|o d) on (?:my|all|the"
        r"|these|those|some|his|her|mom's|mums|dad's) (?:\w+ )?{PILLS}",
        past_category=_DI,
    ),
    Rule(
        "active_ideation.wont_be_around",
        _AI,
        r"(?:won't|wont|will not|not going to|not gonna) be (?:around|alive) (?:much longer|for"
        r" (?:much )?longer|for long|next (?:week|month|year)|by|anymore|any more)",
        past_category=_DI,
        self_negating=True,
    ),
    Rule(
        "active_ideation.wont_be_here",
        _AI,
        r"(?:won't|wont|will not|not going to|not gonna) be here (?:much longer"
        r"|for (?:much )?longer|for long|anymore|any more|tomorrow|next (?:week|month|year))",
        anchor=True,
        past_category=_DI,
        self_negating=True,
    ),
    # ---- passive ideation: wish to be dead, not to wake up, not to exist -------------------
    Rule(
        "passive_ideation.want_to_die",
        _PI,
        r"{WANT} {ADV}{TODIE}{ADV}{DIE}(?! (?:(?:my|his|her|your|the|our) (?:hair|clothes|shirt"
        r"|beard|eyebrows|jeans|fabric)|inside|a little|laughing|of (?:embarrass\w*"
        r"|laugh\w*|cringe|shame|boredom|old age|happiness|cuteness)|from (?:embarrass\w*"
        r"|laugh\w*|cringe|old age)|old|happy|peacefully in my sleep at))",
        past_category=_DI,
    ),
    Rule(
        "passive_ideation.wanna_die",
        _PI,
        r"(?:wanna|wana|wnna|w4nna|want|wants) {ADV}(?:die+|d1e|{DYE}|be dead)(?! (?:inside|of"
        r" (?:embarrass\w*|laugh\w*|cringe|shame)))",
        past_category=_DI,
    ),
    Rule(
        "passive_ideation.want_death",
        _PI,
        r"(?:{WANT}|welcome|welcoming|long for|longing for|pray for|praying for|wish for"
        r"|waiting for|ready for|look forward to|looking forward to|can't wait for|cant wait for"
        r"|can't wait to|cant wait to) {ADV}(?:death|my death|my own death|dying|be dead"
        r"|the end of my life|the sweet release of death)(?! (?:of|from) (?:embarrass\w*"
        r"|laugh\w*))",
        past_category=_DI,
    ),
    Rule(
        "passive_ideation.wish_dead",
        _PI,
        r"wish(?:ed|ing)? (?:that )?(?:i|i'd|id) {ADV}(?:(?:was|were|could be|would be|could|would"
        r"|had|just|have) )?{ADV}(?:dead|die|died|disappear forever|never been born|not been"
        r" born|never existed|not exist|stop existing|not wake up|never wake up|sleep forever"
        r"|go to sleep forever|fall asleep forever|be gone forever|get hit by a|be hit by a)",
        past_category=_DI,
    ),
    Rule(
        "passive_ideation.wish_not_alive",
        _PI,
        r"wish(?:ed|ing)? (?:that )?(?:i|i'd|id) (?:wasn't|wasnt|weren't|werent|was not|were not"
        r"|didn't|didnt|hadn't|hadnt) {ADV}(?:alive|born|been born|here anymore|here any more"
        r"|exist|existing|wake up)",
        past_category=_DI,
        self_negating=True,
    ),
    Rule(
        "passive_ideation.not_wake_up",
        _PI,
        r"(?:{WANT}|wish i could|wish i would|if only i could|hope i|hoping i|pray i|praying i)"
        r" {ADV}(?:to )?(?:go to sleep|fall asleep|sleep|just sleep) (?:and|&|n) {ADV}{NOTWAKE}"
        r"|(?:hope|hoping|pray|praying|wish) (?:that )?(?:i|i'll|ill|i will) (?:don't|dont|do not"
        r"|won't|wont|never|not|wouldn't) {ADV}(?:wake|waking) up|(?:don't|dont|do not|never)"
        r" {ADV}(?:{WANT}|wish) {ADV}to (?:wake|waking) up(?! (?:early|at|before|so early|for"
        r" school|for work|tomorrow morning|on|next to|beside|with|and (?:see|find|go|have|hear))"
        r"| to(?![a-z0-9])(?! (?:another (?:day|morning)|this life|this world"
        r"|face)))|{WANT} {ADV}to {NOTWAKE}|(?:{WANT}|wish i could)"
        r" {ADV}(?:to )?(?:sleep|go to sleep|fall asleep) forever|go to sleep and {NOTWAKE}",
        past_category=_DI,
        self_negating=True,
    ),
    Rule(
        "passive_ideation.dont_want_to_live",
        _PI,
        r"(?:don't|dont|do not|dnt|no longer|doesn't|doesnt|didn't|didnt|no|not) {ADV}(?:{WANT}"
        r"|feel like|see the point in|see a point in|see any point in|see a reason to|care about)"
        r" {ADV}(?:to )?(?:(?:live|living|exist|existing|go on|keep going|carry on){CLAUSE_END}"
        r"|be alive|being alive|be here {ANYMORE}|be around {ANYMORE}|go on living|keep living"
        r"|continue living|carry on living|stay alive|be on this earth|be in this world"
        r"|live {ANYMORE}|exist {ANYMORE})|(?:don't|dont|do not) (?:think|know if|know whether)"
        r" i (?:want|wanna|can) (?:to )?(?:live|be alive|keep living|go on living|stay alive)",
        past_category=_DI,
        self_negating=True,
    ),
    Rule(
        "passive_ideation.not_be_here",
        _PI,
        r"(?:{WANT}|'d rather|would rather|rather) {ADV}(?:to )?(?:just )?(?:not|never)"
        r" (?:(?:exist|be alive|wake up)|(?:be|live) (?:here|around|alive)? ?(?:{ANYMORE}"
        r"|forever|at all|on this earth|in this world))",
        past_category=_DI,
        self_negating=True,
    ),
    Rule(
        "passive_ideation.disappear_forever",
        _PI,
        r"(?:{WANT}|wish i could|wish to) {ADV}(?:to )?(?:just )?(?:dis+ap+ea?r|disapear|vanish"
        r"|fade away|cease to exist|stop existing|be erased|be gone|go away) (?:\w+ )?(?:forever"
        r"|for good|permanently|for ever|from existence|from this world|from the earth)",
        past_category=_DI,
    ),
    Rule(
        "passive_ideation.better_off_dead",
        _PI,
        r"better off dead|(?:rather|sooner) (?:be )?dead|(?:i'd|would|id) rather (?:just )?die"
        r"(?! than (?:go(?! on)|do|eat|sit|watch|listen|wear|talk|see|be seen|work|lose|admit"
        r"|read|take|sing|dance))|better off (?:if i (?:was|were|had|'d) (?:dead|gone|never been"
        r" born|died|not born|not here))|(?:everyone|everybody|they|world|family) (?:would|'d"
        r"|will) be (?:better off|happier) (?:if i (?:was|were|died|killed myself|was dead"
        r"|were dead))",
        past_category=_DI,
    ),
    # burden + absence of self ("everyone would be better off without me", "no one would miss me
    # if I was gone"): C-SSRS 1, wish to be dead / not alive. The subject (everyone, the world,
    # my family, ...) is part of the match, so it is not read as a third person; a team, class or
    # roster ("better off without me on the roster") is not a subject here and a trailing
    # qualifier other than "here/around/in their lives/in it" ends the match (distress.burden
    # still records the burden).
    Rule(
        "passive_ideation.better_off_without_me",
        _PI,
        r"(?:everyone|everybody|every one|every body|everyone else|everybody else|the world"
        r"|this world|world|they|people|my (?:family|kids|children|parents|friends|partner|wife"
        r"|husband|boyfriend|girlfriend|bf|gf|mom|mum|dad|mother|father|loved ones|son|daughter"
        r"|sister|brother)|the people (?:i love|around me|in my life)|my loved ones|you|you all"
        r"|y'all|yall|u|all of (?:you|them)|the earth)(?: would|'d|d| will|'ll| are|'re| is|'s"
        r"| might| could) {ADV}(?:all )?(?:be )?{ADV}(?:much |a lot |way |far |so much )?"
        r"(?:(?:a )?(?:better|happier|brighter|easier|nicer)(?: place| off)?) (?:without me(?:"
        r" (?:here|around|alive|in (?:their|the|your|his|her) (?:lives|life|way)|in it|in this"
        r" world|on this earth|in the picture))?(?: honestly| anyway| anyways| tbh| really| lol"
        r"| probably| i think| i guess| i know| now| tho| though)?{CLAUSE_END}"
        r"|if i (?:was|were|'m|am) (?:dead"
        r"|gone|not here|not around|not alive|never born)|if i (?:wasn't|wasnt|weren't|werent"
        r"|was not|were not) (?:here|around|alive|born|in (?:it|this world))|if i (?:died|didn't"
        r" exist|didnt exist|never existed|killed myself|had never been born|'d never been born"
        r"|was never born|were gone|was gone)|(?:once|when|after) i'?m (?:gone|dead))",
        past_category=_DI,
    ),
    Rule(
        "passive_ideation.no_one_would_miss_me",
        _PI,
        r"(?:no one|nobody|noone|no body|not one person|not a single person|not a soul)"
        r" (?:would|will|'d|is going to|gonna) {ADV}(?:care|notice|miss me|cry|be sad|mourn me"
        r"|grieve|remember me)(?: at all| anyway)? (?:if|when|once|after) (?:i'm|im|i am|i)"
        r" (?:(?:was|were|am|'m) )?(?:gone|dead|died|not here|not around|wasn't here|wasnt here"
        r"|weren't here|wasn't around|killed myself|didn't exist|didnt exist|never existed"
        r"|disappeared(?: forever| for good)?{CLAUSE_END}|stopped existing|ended it)",
        past_category=_DI,
    ),
    Rule(
        "passive_ideation.no_reason_to_live",
        _PI,
        r"(?:no|not any|not a single|nothing|zero|lost (?:my|the|any|all)|without a|without any)"
        r" (?:real |good |more )?(?:reason|reasons|point|purpose|will) (?:left )?(?:to|in|for)"
        r" (?:me |my )?(?:live|living|keep living|go on living|being alive|be alive|stay alive"
        r"|staying alive"
        r"|exist|existing|keep going|going on|carrying on)|nothing (?:left )?to live for"
        r"|no(?:thing| one| body)? (?:left )?to live for|what(?:'s| is|s) the point (?:of|in)"
        r" (?:living|life|being alive|existing|going on|staying alive)|why (?:should i|even"
        r"|bother|do i|would i) (?:keep |go on |stay |continue )?(?:living|be alive|staying alive"
        r"|existing)|life (?:is not|isn't|isnt|ain't|aint|is no longer|not) (?:\w+ )?worth"
        r" (?:living|it anymore)",
        past_category=_DI,
        self_negating=True,
    ),
    Rule(
        "passive_ideation.tired_of_living",
        _PI,
        r"(?:tired|sick|exhausted|done) (?:of|with) (?:living|being alive|existing|life itself"
        r"|breathing|waking up every day|waking up|staying alive)",
        past_category=_DI,
    ),
    Rule(
        "passive_ideation.deserve_to_die",
        _PI,
        r"(?:i|i'm|im) (?:don't|dont|do not|doesn't) deserve to (?:live|be alive|exist|be here)"
        r"|(?:i|i'm|im) (?:deserve|deserves) to (?:die|be dead)|(?:i|i'm|im) (?:shouldn't"
        r"|should not|shouldnt) (?:be alive|exist|have been born|still be alive)",
        past_category=_DI,
        self_negating=True,
    ),
    Rule(
        "passive_ideation.hit_by",
        _PI,
        r"(?:wish|hope|hoping|pray|praying|want|wanted) (?:that )?(?:a|the|some|someone|somebody"
        r"|god|the universe|a stranger) (?:\w+ )?(?:would |will |could |to )?(?:just )?(?:hit"
        r"|hits|kill|kills|shoot|shoots|run me over|runs me over|stab|end) (?:me|my life)"
        r"|(?:just )?let me die|(?:god|lord|universe) (?:would |will |could |to |please |just"
        r" |would just |will just )?(?:take|takes|kill|kills) me(?! (?:back|home|there|to|with"
        r"|seriously|through|by|as|under|out|on|places|higher))|(?:hope|hoping|wish) (?:i|to)"
        r" (?:get|got) (?:hit by"
        r"|killed|run over|cancer)|(?<!heart\x20and\x20)(?:hope|hoping|wish) (?:i|i'll|to)"
        r" (?:die|just die|die soon|drop dead|don't survive)|waiting to die|ready to die"
        r"|can'?t wait to die",
        past_category=_DI,
    ),
    Rule(
        "passive_ideation.thinking_about_death",
        _PI,
        r"(?:{THOUGHT}) {ADV}(?:dying|being dead|my death|my own death|not existing|not being"
        r" alive|not being here)|death (?:sounds|seems|feels|would be) (?:\w+ )?(?:nice|good"
        r"|peaceful|like a relief|better|easier|appealing|like the answer|a relief|a mercy"
        r"|like freedom|comforting|inviting)|(?:morbid|death) thoughts",
        past_category=_DI,
    ),
    Rule(
        "passive_ideation.all_to_end",
        _PI,
        r"(?:{WANT}) {ADV}(?:it all|everything|my life|life) to (?:just )?(?:end|be over|stop)"
        r"|(?:{WANT}|wish) {ADV}(?:it all|my life|life|everything) (?:was|were|to be|would be)"
        r" over",
        past_category=_DI,
    ),
    # ---- distress: hopelessness, burden, entrapment, "can't go on" -------------------------
    Rule(
        "distress.cant_go_on",
        _DI,
        r"(?:can'?t|cannot|cant|can not|unable to|not able to) {ADV}(?:go on|keep going|carry on"
        r"|take (?:it|this|much more|any more|anymore|it any ?more|this any ?more)|do this"
        r" (?:any ?more|no more)|handle (?:it|this|life) (?:any ?more|no more)|live like this"
        r"|keep living like this|cope|bear (?:it|this))",
        self_negating=True,
    ),
    Rule(
        "distress.hopeless",
        _DI,
        r"hopeless(?:ness)?|no hope|lost all hope|no future|no way out|trapped|no escape"
        r"|(?:life|everything|it all|my life) (?:is|feels|seems) (?:\w+ )?(?:pointless|meaningless"
        r"|hopeless|empty|over)|nothing (?:will ever|ever) (?:get|gets) better|never (?:going to"
        r"|gonna) get better",
        self_negating=True,
    ),
    Rule(
        "distress.burden",
        _DI,
        r"(?:i'm|im|i am|being|feel like|feel) (?:such |just )?(?:a|an) (?:\w+ )?burden"
        r"|burden (?:to|on|for) (?:everyone|everybody|my family|my friends|others|people|you all"
        r"|them)|(?:better|happier|easier) (?:off )?without me|(?:no one|nobody|noone) would"
        r" (?:even )?(?:care|notice|miss me)(?: if i (?:was|were|died|disappeared|left|was gone"
        r"|were gone|wasn't here))?",
        self_negating=True,
    ),
    Rule(
        "distress.self_hatred",
        _DI,
        r"i (?:really |fucking |just |so )?hate (?:my life|myself|my self|being alive|living"
        r"|existing|everything about me)|(?:i'm|im|i am|feel|feel so) (?:so |completely |totally"
        r" |utterly )?(?:worthless|useless|empty inside|numb inside|a failure|a waste of space"
        r"|a waste of oxygen|unlovable)",
    ),
    Rule(
        "distress.give_up",
        _DI,
        r"(?:give|giving|gave|given) up (?:on (?:everything|life|myself|living|it all|trying"
        r"|hope)|completely)|(?:done|finished) with (?:everything|it all|this world|life|my life)"
        r"|(?:want|wanna|wish i could|wish to|want to) (?:just )?(?:dis+ap+ea?r|disapear|vanish"
        r"|run away)|(?:tired|sick|exhausted) of (?:everything|it all|fighting|trying|this life"
        r"|my life|life)|(?:want|wanna|need) (?:the pain|it|this|everything) to (?:stop|end)",
    ),
)


# --- context cues --------------------------------------------------------------------------------

_CUE_SOURCES: dict[str, str] = {
    # a negation close before a match (not "not sure", "don't know", "never felt so", ...)
    "negation": (
        r"(?<![a-z0-9'])(?:not|never|nvr|no|nor|don'?t|dont|do not|doesn'?t|didn'?t|won'?t"
        r"|wouldn'?t|shouldn'?t|isn'?t|aren'?t|wasn'?t|ain'?t|haven'?t|hasn'?t|hadn'?t"
        r"|no longer|none|hardly|den(?:y|ies|ied|ying)|without|free of|free from|clean from"
        r"|recovered from|stopped|quit|refuse to|refused to|nope|nah)(?![a-z0-9'])"
        r"(?!\s+(?:sure|know|knowing|understand|saying|that|just|only|even\s+know|care|mind"
        r"|matter|one|idea|point|reason|way|lie|lying|joke|joking|kidding|doubt|i|i'm|im"
        r"|think|believe|see|help|feel|stop|anymore|a\s+day|wanting\s+to|longer\s+want)\b)"
        r"(?!\s+(?:felt|been|wanted|had)\s+(?:so|this|more|as|such)\b)"
    ),
    # a denial right after the match: "suicidal thoughts: none", "SI - denied", "... had stopped"
    "negation_after": (
        r"(?:\s+(?:thoughts?|ideation|feelings?|urges?|intent|plans?|tendencies|behaviou?rs?))?"
        r"\s*(?:[:?\-]\s*)?(?:no(?!\s*(?:one|body|matter|idea|way|reason|point))|none|denied"
        r"|denies|negative|nope|nil|absent)(?![a-z0-9'])"
        # 1.4.0: "killing myself isn't something I'd ever do", "... is not an option for me"
        r"|\s*(?:is|'s|was|would\s+be)?\s*(?:not|never|isn'?t|wasn'?t|won'?t|wouldn'?t|ain'?t)"
        r"\s+(?:something\s+(?:i|i'd|id|i'll|ill|i\s+would|i\s+will|i\s+want)|an\s+option"
        r"\s+for\s+me|on\s+the\s+table|happening|going\s+to\s+happen|in\s+the\s+cards)"
        r"(?![a-z0-9'])"
        r"|\s*(?:have|has|had|are|is)?\s*(?:gone\s+away|stopped|passed|disappeared|faded)"
        r"(?![a-z0-9'])"
    ),
    "hypothetical": (
        r"(?<![a-z0-9'])(?<!wonder\s)(?<!wondering\s)(?<!wondered\s)(?<!know\s)(?<!sure\s)"
        r"(?<!see\s)(?<!idea\s)(?<!what\s)(?<!as\s)(?<!ask\s)(?<!asked\s)(?:if|whether)"
        r"(?!\s+(?:i'm|im|i\s+am)\s+(?:being\s+)?honest)(?![a-z0-9'])"
        r"|(?<![a-z0-9'])(?:suppose|supposing|imagine\s+if|hypothetically|in\s+case|would\s+you"
        r"|should\s+anyone|if\s+ever|say\s+if)(?![a-z0-9'])"
    ),
    # reported speech just before the match: "told me to", "asked me if", "people say"
    "reported": (
        r"(?<![a-z0-9'])(?:told|tell|tells|telling|said|says|saying|asked|ask|asks|asking"
        r"|begged|dared|wants|wanted|want|yelled|texted|messaged|commented|wrote|write"
        r"|called|screamed)\s+(?:me|us)\s+(?:to|if|whether|that\s+i\s+should)\s*$"
        r"|(?<![a-z0-9'])(?:asked|asks|ask|asking)\s+(?:me\s+)?(?:if|whether)\b"
    ),
    # an explicit media frame in the clause: "in the movie", "the song goes"
    "fiction": (
        r"(?<![a-z0-9'])(?:in|from|of)\s+(?:the|a|this|that|my|his|her)\s+(?:\w+\s+)?"
        r"(?:movie|film|book|novel|show|series|episode|song|lyrics?|game|anime|manga|poem|play"
        r"|story|comic|fanfic|script)\b|(?<![a-z0-9'])(?:lyrics?|song\s+goes|song\s+says"
        r"|the\s+line)\b"
    ),
    # a remote-past cue in the sentence lowers the category
    "past": (
        r"(?<![a-z0-9'])(?:used\s+to|years?\s+ago|months\s+ago|a\s+long\s+time\s+ago|long\s+ago"
        r"|last\s+(?:year|summer|winter|spring|fall|autumn|month|semester|decade)|in\s+the\s+past"
        r"|when\s+i\s+was\s+(?:\d+|a\s+(?:kid|child|teen|teenager|student)|younger|little|small"
        r"|in\s+(?:high\s+school|school|college|uni|middle\s+school|grade|year\s+\d+))"
        r"|(?:in|during)\s+(?:high\s+school|middle\s+school|college|uni|my\s+teens)"
        r"|as\s+a\s+(?:kid|child|teen|teenager)|back\s+(?:then|in\s+(?:\d{4}|high\s+school"
        r"|school|college|the\s+day))|in\s+(?:19|20)\d\d|at\s+age\s+\d+|aged\s+\d+"
        r"|(?:\d+|two|three|four|five|six|seven|eight|nine|ten|several|many|a\s+few|a\s+couple"
        r"\s+of)\s+(?:years?|months)\s+ago|once\s+before|previously|at\s+the\s+time)(?![a-z0-9'])"
    ),
    # a present cue in the clause keeps the category ("suicidal again", "now I want to die")
    "present": (
        r"(?<![a-z0-9'])(?:now|again|lately|recently|these\s+days|currently|today|tonight"
        r"|still|anymore|any\s+more|right\s+now|this\s+week|this\s+month|every\s+day|everyday"
        r"|constantly|coming\s+back|back\s+again)(?![a-z0-9'])"
    ),
    # a recent cue near an attempt raises it to imminent intent
    "recent": (
        r"(?<![a-z0-9'])(?:last\s+night|yesterday|earlier\s+today|this\s+morning|today|tonight"
        r"|just\s+now|an\s+hour\s+ago|(?:a\s+few|few|two|three|\d+)\s+(?:hours|minutes|mins)\s+ago"
        r"|right\s+now|this\s+afternoon|this\s+evening)(?![a-z0-9'])"
    ),
    # quotations written by the writer about themselves: `I told her "I want to die"`
    "self_quote": (
        r"(?<![a-z0-9'])(?:i|i've|ive|i'd|id)\s+(?:\w+\s+){0,2}(?:said|say|told|tell|wrote|write"
        r"|texted|screamed|yelled|whispered|thought|think|keep\s+saying|kept\s+saying|admitted"
        r"|confessed|typed|posted|cried)\b[^\"]{0,40}$"
    ),
}

_SENTENCE_BOUNDARY_SRC = r"[.!?;\n\u2026]+"
_CLAUSE_BOUNDARY_SRC = (
    r"[.!?;:\n\u2026,()\[\]\"]+|(?<![a-z0-9'])(?:but|and|because|cause|cuz|coz|though|although"
    r"|however|yet|whereas|or|then|plus)(?![a-z0-9'])"
)
_TOKEN_SRC = r"[a-z0-9][a-z0-9']*"  # noqa: S105 (a regex, not a secret)
_QUOTE_SRC = r"\"[^\"\n]{1,500}\""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_FIRST = _words("i i'm im i've ive i'd id i'll me my myself mine we we're we've us our ourselves")
_THIRD_PRONOUNS = _words(
    "he she they he's hes she's shes they're theyre they've theyve he'd she'd they'd theyd "
    "he'll she'll they'll theyll you u ya ye yall y'all you're youre ur you've youve you'd "
    "youd you'll youll someone somebody anyone anybody everyone everybody nobody noone who "
    "whoever one people ppl"
)
_THIRD_NOUNS = _words(
    "friend friends bf gf boyfriend girlfriend bestie bff brother bro sister sis mom mum mother "
    "mama mommy mummy dad father papa daddy parent parents son daughter child children kid kids "
    "baby cousin aunt auntie uncle grandma grandpa grandmother grandfather nan nana granny "
    "husband wife partner fiance fiancee ex roommate flatmate housemate classmate classmates "
    "coworker colleague boss teacher student patient patients client clients man woman men women "
    "guy guys girl girls boy boys teen teenager teens dude lady neighbour neighbor stranger "
    "author singer rapper actor actress celebrity person poster op user users member members "
    "niece nephew stepdad stepmom stepmother stepfather spouse family relative relatives "
    "doctor therapist nurse counsellor counselor psychiatrist"
)
_MEDIA_NOUNS = _words(
    "character characters protagonist narrator hero heroine villain movie film book novel show "
    "series episode song lyrics lyric game anime manga poem play story comic fanfic script "
    "documentary article"
)
_THIRD_SG_VERBS = _words(
    "wants needs wishes tries has hasn't hasnt is isn't isnt does doesn't doesnt plans "
    "feels thinks says keeps hopes intends cuts takes hurts kills harms commits attempts seems "
    "prays longs deserves"
)
#: capitalised words that begin sentences and are not names
_NOT_NAMES = _words(
    "just still really so and but now today tonight sometimes often always also lately recently "
    "yesterday again even honestly seriously literally lol lmao omg ok okay yeah yes no well god "
    "ugh dude fuck fucking please idk tbh ngl lowkey kinda like actually basically then maybe "
    "probably everyday part most all some every when what why how where who if because since "
    "after before tomorrow this that these those there here it its it's the a an to of in on at "
    "for with my me i i'm im i've ive i'd id i'll ill mostly sometimes anyway anyways plus also "
    "dear hey hi hello edit update tl dr tldr ps sorry thanks help oh ah hmm man bro bruh fr "
    "istg imo smh welp meh nah yep yup everything nothing life death suicide suicidal "
    "depression anxiety whatever sigh wow damn shit again ever never not"
)
_OTHER_SELF = re.compile(
    r"(?<![a-z0-9'])(?:your ?self|yourselves|ur ?self|him ?self|her ?self|them ?selves|themself"
    r"|oneself|one's ?self|his|her|their|your|ur|one's|kys)(?![a-z0-9'])"
)

_MINE = re.compile(r"(?<![a-z0-9'])(?:my|me|myself|my ?self)(?![a-z0-9'])")

# A nominal mention that is nobody's own experience: advice, psychoeducation and talk about others
# on a forum ("talk to your doctor about your suicidal thoughts", "issues like self harm",
# "Suicidal thoughts are very real"). Counted only with a first-person subject, or when it reads
# as a diary fragment ("Suicidal thoughts again.", "Suicidal thoughts are back tonight").
_NOMINAL = re.compile(
    _expand(
        r"^(?:(?:{SUICIDAL}|{SUICIDE}) (?:thoughts?|ideation|ideations|urges?|feelings?"
        r"|tendencies|thinking)|thoughts? (?:of|about) {SUICIDE}|self ?harm(?:ing|s)?"
        r"|self ?injur(?:y|ing)|{SUICIDAL}|{SUICIDE})$"
    )
)
_GENERIC_BEFORE = re.compile(
    r"(?<![a-z0-9'])(?:your|ur|yours|his|her|their|any|like|regarding|re|against|prevent"
    r"|preventing|treat|treating|understand|understanding|whether|such as|including|what is"
    r"|what are)\s*$"
)
_NOUN_AFTER = re.compile(
    r"\s+(?:thoughts?|urges?|ideations?|feelings?|tendencies|thinking)(?![a-z0-9'])"
)
_THE_BEFORE = re.compile(r"(?<![a-z0-9'])the\s*$")
# After the mention, only a statement about the topic in general counts as generic ("Suicidal
# thoughts are very real", "... are common", "... can affect anyone"). Anything else that follows
# a bare mention ("Suicidal thoughts will not leave me alone", "... make it hard to breathe",
# "Self harm was the only thing that helped") is a diary's own experience and is counted.
_GENERIC_AFTER = re.compile(
    r"\s+(?:(?:is|are|isn't|isnt|aren't|arent)\s+(?:(?:very|so|really|quite|extremely|pretty"
    r"|more|most|a|an|often|usually|not|always)\s+)*(?:real|common|normal|serious|complex"
    r"|complicated|treatable|preventable|understandable|no joke|a symptom|symptoms|a sign|signs"
    r"|part of|widespread|rare|taboo|stigmatized|stigmatised|misunderstood|correlated|linked"
    r"|related|associated)"
    r"|(?:can|could|may)\s+(?:affect|happen to|hit|strike|be treated|be managed)"
    r"|(?:affects?|happens? to)\s+(?:anyone|everyone|many|lots|a lot|people|millions))"
    r"(?![a-z0-9'])"
)
_ADDRESSED = re.compile(r"(?<![a-z0-9'])(?:you|your|yours|yourself|u|ur)(?![a-z0-9'])")
_DIARY_TIME = re.compile(
    r"(?<![a-z0-9'])(?:today|tonight|again|lately|right now|this (?:week|morning|evening|month)"
    r"|all day|these days|every day|everyday|nonstop|non stop)(?![a-z0-9'])"
)

# A negation that asserts the thought: "the only reason I didn't kill myself", "haven't killed
# myself yet", "what stops me from ending it"
_REASON_BEFORE = re.compile(
    r"(?<![a-z0-9'])(?:only reason|the reason why|the reason|only thing (?:that )?(?:stops|stopped"
    r"|keeps|kept))(?![a-z0-9'])[^.!?\n]{0,30}$"
)
_YET_AFTER = re.compile(r"^[^.!?\n]{0,20}(?<![a-z0-9'])(?:yet|so far)(?![a-z0-9'])")

_WINDOW_CHARS = 160
_AFTER_CHARS = 60
_SUBJECT_TOKENS = 8


def _compile(source: str) -> re.Pattern[str]:
    return re.compile(source)


_RULE_RES: tuple[tuple[Rule, re.Pattern[str]], ...] = tuple(
    (rule, _compile(rule.expand())) for rule in RULES
)
_CUES: dict[str, re.Pattern[str]] = {name: _compile(src) for name, src in _CUE_SOURCES.items()}
_SENTENCE_RE = _compile(_SENTENCE_BOUNDARY_SRC)
_CLAUSE_RE = _compile(_CLAUSE_BOUNDARY_SRC)
_TOKEN_RE = _compile(_TOKEN_SRC)
_QUOTE_RE = _compile(_QUOTE_SRC)


# --- fingerprint ---------------------------------------------------------------------------------


def rules_fingerprint(
    rules: Sequence[Rule] | None = None, cues: dict[str, str] | None = None
) -> str:
    """SHA-256 over every expanded pattern, category and option, the cue patterns and word lists.

    Any change to a rule changes it; :func:`detector_info` reports it so a result can be traced to
    the exact rules that produced it.
    """
    payload = {
        "name": DETECTOR_NAME,
        "version": DETECTOR_VERSION,
        "rules": [
            {
                "id": rule.rule_id,
                "category": rule.category,
                "pattern": rule.expand(),
                "past": rule.past_category,
                "recent": rule.recent_category,
                "anchor": rule.anchor,
                "self_negating": rule.self_negating,
                "generic_you": rule.generic_you,
            }
            for rule in (RULES if rules is None else rules)
        ],
        "cues": dict(sorted((_CUE_SOURCES if cues is None else cues).items())),
        "boundaries": [_SENTENCE_BOUNDARY_SRC, _CLAUSE_BOUNDARY_SRC, _TOKEN_SRC, _QUOTE_SRC],
        "words": {
            "first": sorted(_FIRST),
            "third_pronouns": sorted(_THIRD_PRONOUNS),
            "third_nouns": sorted(_THIRD_NOUNS),
            "media": sorted(_MEDIA_NOUNS),
            "third_sg": sorted(_THIRD_SG_VERBS),
            "not_names": sorted(_NOT_NAMES),
            "prepositions": sorted(_PREPOSITIONS),
            "determiners": sorted(_DETERMINERS),
            "first_possessive": sorted(_FIRST_POSSESSIVE),
            "other_self": _OTHER_SELF.pattern,
        },
        "limits": [MAX_SPANS, ANCHOR_DISTANCE, _WINDOW_CHARS, _AFTER_CHARS, _SUBJECT_TOKENS],
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


@lru_cache(maxsize=1)
def detector_info() -> ModelInfo:
    """Name, version and SHA-256 of the rule set (computed once per process)."""
    return ModelInfo(name=DETECTOR_NAME, version=DETECTOR_VERSION, sha256=rules_fingerprint())


# --- normalisation -------------------------------------------------------------------------------

_ASCII_TABLE = {
    **{code: " " for code in range(32) if code != 10},
    13: "\n",
    127: " ",
    ord("`"): "'",
    # "_" is a separator here, never part of a word: the rules' word class ([\w']+) and separator
    # ([\s\-_*~/]+) would otherwise both match it, and a run of underscores could be split in
    # exponentially many ways (44 underscores after "gave" took over 20 s in 1.4.0 before this).
    ord("_"): " ",
}


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """One character to one character: lower case, plain quotes, dashes and spaces."""
    if char in "\u2018\u2019\u201a\u201b\u02bc\u02b9\u00b4\u2032`":
        return "'"
    if char in "\u201c\u201d\u201e\u201f\u00ab\u00bb\u2033\uff02":
        return '"'
    if char in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212":
        return "-"
    if char in "\r\u2028\u2029\x85":
        return "\n"
    category = unicodedata.category(char)
    if category in ("Cc", "Cf", "Zs", "Zl", "Zp", "Cs", "Co", "Cn") and char != "\n":
        return " "
    folded = unicodedata.normalize("NFKC", char)
    if folded == "_":  # a separator, never part of a word (see _ASCII_TABLE)
        return " "
    if len(folded) != 1:
        folded = char
    lowered = folded.lower()
    if len(lowered) != 1:
        lowered = folded if folded.isascii() else " "
    # drop accents so "suïcidal" and "suicidal" read alike (same length: one base letter)
    decomposed = unicodedata.normalize("NFD", lowered)
    if len(decomposed) > 1 and decomposed[0].isascii():
        return decomposed[0]
    return lowered


def normalise(text: str) -> str:
    """A same-length, lower-cased copy: offsets in it are offsets in ``text``."""
    if text.isascii():
        return text.translate(_ASCII_TABLE).lower()
    return "".join(_fold_char(char) for char in text)


# --- context -------------------------------------------------------------------------------------


@dataclass
class _Doc:
    original: str
    norm: str
    sentence_ends: list[int]  # end offsets of sentence boundaries
    sentence_starts: list[int]  # start offsets of sentence boundaries
    clause_ends: list[int]
    clause_starts: list[int]
    clause_conj: list[bool]  # whether that clause boundary is a conjunction word
    quotes: list[tuple[int, int]]

    @classmethod
    def build(cls, text: str) -> _Doc:
        norm = normalise(text)
        sentence = [(m.start(), m.end()) for m in _SENTENCE_RE.finditer(norm)]
        clause = [(m.start(), m.end(), m.group(0)[0].isalpha()) for m in _CLAUSE_RE.finditer(norm)]
        quotes = [(m.start(), m.end()) for m in _QUOTE_RE.finditer(norm)]
        return cls(
            original=text,
            norm=norm,
            sentence_ends=[end for _, end in sentence],
            sentence_starts=[start for start, _ in sentence],
            clause_ends=[end for _, end, _ in clause],
            clause_starts=[start for start, _, _ in clause],
            clause_conj=[conj for _, _, conj in clause],
            quotes=quotes,
        )

    def sentence_bounds(self, start: int, end: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.sentence_ends, start) - 1
        left = self.sentence_ends[i] if i >= 0 else 0
        j = bisect.bisect_left(self.sentence_starts, end)
        right = self.sentence_starts[j] if j < len(self.sentence_starts) else len(self.norm)
        return max(left, start - 4 * _WINDOW_CHARS), min(right, end + 4 * _WINDOW_CHARS)

    def clause_bounds(self, start: int, end: int) -> tuple[int, int, int]:
        """(clause start, clause end, index of the boundary that opens the clause or -1)."""
        i = bisect.bisect_right(self.clause_ends, start) - 1
        left = self.clause_ends[i] if i >= 0 else 0
        j = bisect.bisect_left(self.clause_starts, end)
        right = self.clause_starts[j] if j < len(self.clause_starts) else len(self.norm)
        return max(left, start - _WINDOW_CHARS), min(right, end + _AFTER_CHARS), i

    def past_scope(
        self, start: int, end: int, clause_start: int, clause_end: int, boundary: int
    ) -> tuple[int, int]:
        """Where a remote-past cue applies: the clause, and the one before when a comma (not a
        conjunction) joins them ("Years ago, I tried ..."); then the clause after, likewise."""
        s_start, s_end = self.sentence_bounds(start, end)
        left, right = clause_start, clause_end
        if boundary >= 0 and not self.clause_conj[boundary]:
            previous = self.clause_starts[boundary]
            left = max(self.clause_bounds(previous, previous)[0], s_start)
        j = boundary + 1
        if j < len(self.clause_starts) and not self.clause_conj[j]:
            following = self.clause_ends[j]
            right = min(max(right, self.clause_bounds(following, following)[1]), s_end)
        return left, right

    def in_quote(self, start: int, end: int) -> tuple[int, int] | None:
        i = bisect.bisect_right(self.quotes, (start, len(self.norm) + 1)) - 1
        if i >= 0:
            q_start, q_end = self.quotes[i]
            if q_start < start and end <= q_end:
                return q_start, q_end
        return None


def _tokens(doc: _Doc, start: int, end: int) -> list[tuple[str, int]]:
    return [(m.group(0), m.start()) for m in _TOKEN_RE.finditer(doc.norm, start, end)]


def _sentence_initial(doc: _Doc, offset: int) -> bool:
    """Whether the word at ``offset`` opens a sentence or line (capitalised there anyway)."""
    before = doc.original[max(0, offset - 40) : offset].rstrip(" \t\"'([*-")
    return offset == 0 or not before or before[-1] in ".!?:;\n\r"


_NAME_VERBS = _THIRD_SG_VERBS | _words(
    "was wasn't wasnt said told wanted tried had did took cut hurt killed died attempted "
    "thought felt will would can could might may should just also really"
)


def _verb_follows(doc: _Doc, offset: int) -> bool:
    """A sentence-initial capitalised word followed by a verb ("Aisha is ...") reads as a name;
    one followed by its object ("Grab the gun ...") is an imperative."""
    nxt = _TOKEN_RE.search(doc.norm, offset, min(len(doc.norm), offset + 24))
    return nxt is not None and nxt.group(0) in _NAME_VERBS


def _is_name(doc: _Doc, token: str, offset: int) -> bool:
    word = doc.original[offset : offset + len(token)]
    return (
        word.istitle()
        and (not _sentence_initial(doc, offset) or _verb_follows(doc, offset + len(token)))
        and token not in _NOT_NAMES
        and token not in _FIRST
        and not token.endswith("ly")
        and token.isalpha()
    )


_PREPOSITIONS = _words(
    "to with at for about from of by on in like than without over after before around near "
    "told tell telling asked ask texted called miss missed love loved hate hated lost"
)
_DETERMINERS = _words("my our the a an his her their your this that some")
_FIRST_POSSESSIVE = _words("my our")


def _after_preposition(previous: list[str]) -> bool:
    """Whether a noun follows a preposition or an object-taking verb ("to my mom", "told John")."""
    if not previous:
        return False
    if previous[-1] in _PREPOSITIONS:
        return True
    return len(previous) > 1 and previous[-1] in _DETERMINERS and previous[-2] in _PREPOSITIONS


def _subject(doc: _Doc, start: int, window_start: int, boundary: int) -> tuple[str, int]:
    """Who the match is about: ("first" | "third" | "fiction" | "none", offset of the token)."""
    tokens = _tokens(doc, window_start, start)[-_SUBJECT_TOKENS:]
    # 1.4.0: "my/our" after a preposition ("a student at my school committed suicide") does not
    # hide a third-person subject further left; without one it still reads as the writer's and
    # bounds the negation window as before ("I didn't want to tell my mom about wishing ...")
    possessive_at: int | None = None
    for i in range(len(tokens) - 1, -1, -1):
        token, offset = tokens[i]
        if token in _FIRST_POSSESSIVE and i > 0 and tokens[i - 1][0] in _PREPOSITIONS:
            if possessive_at is None:
                possessive_at = offset
            continue
        if token in _FIRST:
            return "first", offset if possessive_at is None else possessive_at
        nounish = token in _MEDIA_NOUNS or token in _THIRD_NOUNS or _is_name(doc, token, offset)
        if nounish and _after_preposition([t for t, _ in tokens[max(0, i - 2) : i]]):
            continue  # "I told my mom about wanting to die": an object, not the subject
        if token in _MEDIA_NOUNS:
            return "fiction", offset
        if token in _THIRD_PRONOUNS or token in _THIRD_NOUNS:
            return "third", offset
        if _is_name(doc, token, offset):
            return "third", offset
    if possessive_at is not None:
        return "first", possessive_at
    # a clause opened by "and"/"but" without a subject shares the previous clause's (pronouns only)
    if boundary >= 0 and doc.clause_conj[boundary]:
        opening = doc.clause_starts[boundary]
        prev_start, _, _ = doc.clause_bounds(opening, opening)
        for token, offset in reversed(
            _tokens(doc, prev_start, doc.clause_starts[boundary])[-_SUBJECT_TOKENS:]
        ):
            if token in _FIRST:
                return "first", offset
            if token in _THIRD_PRONOUNS:
                return "third", offset
    return "none", window_start


def _generic(
    doc: _Doc, rule: Rule, matched: str, start: int, end: int, clause_start: int, clause_end: int
) -> bool:
    """A nominal mention without a first-person subject that reads as talk about the topic."""
    if rule.category == _DI or not _NOMINAL.match(matched):
        return False
    norm = doc.norm
    if _DIARY_TIME.search(norm, clause_start, clause_end):
        return False
    noun = _NOUN_AFTER.match(norm, end)  # "suicidal" matched alone in "suicidal thoughts are"
    if noun is not None:
        end = noun.end()
    before = norm[max(clause_start, start - 24) : start]
    if _GENERIC_BEFORE.search(before):
        return True
    opens_clause = not norm[clause_start:start].strip(" ,;:-*\"'")
    if not (opens_clause or _THE_BEFORE.search(before) is not None):
        return False
    # a general statement, or one addressed to the reader ("... are hard to fight on your own")
    return _GENERIC_AFTER.match(norm, end) is not None or (
        _ADDRESSED.search(norm, end, clause_end) is not None
    )


def _assess(doc: _Doc, rule: Rule, start: int, end: int) -> tuple[str, tuple[str, ...]]:
    """The span's effective category and its flags (discount reasons, or ``past``)."""
    norm = doc.norm
    flags: list[str] = []
    clause_start, clause_end, boundary = doc.clause_bounds(start, end)
    window = norm[clause_start:start]
    matched = norm[start:end]

    # person
    person, subject_at = _subject(doc, start, clause_start, boundary)
    first_word = matched.split(" ", 1)[0]
    prev_tokens = _tokens(doc, max(clause_start, start - 24), start)
    prev = prev_tokens[-1][0] if prev_tokens else ""
    if not rule.generic_you and _OTHER_SELF.search(matched) and not _MINE.search(matched):
        person = "third"
    elif first_word in _THIRD_SG_VERBS and prev not in ("i", "me"):
        person = "third" if person != "fiction" else person
    if person == "third":
        flags.append("third_person")
    elif person == "fiction" or _CUES["fiction"].search(window):
        flags.append("fiction")
    elif person != "first" and _generic(doc, rule, matched, start, end, clause_start, clause_end):
        flags.append("generic")

    # negation: between the subject and the match (or close before it), or a denial just after
    if not rule.self_negating:
        neg_from = subject_at if person == "first" else clause_start
        neg_window = norm[max(neg_from, start - 48) : start]
        asserted = _REASON_BEFORE.search(norm[max(clause_start, start - 60) : start]) or (
            _YET_AFTER.match(norm[end : end + 30])  # "yet" closes a clause: look past it
        )
        if _CUES["negation"].search(neg_window) and not asserted:
            flags.append("negated")
    if _CUES["negation_after"].match(norm, end, end + 40) and "negated" not in flags:
        flags.append("negated")

    # hypothetical / conditional
    if _CUES["hypothetical"].search(window):
        flags.append("hypothetical")

    # quotation or reported speech
    quote = doc.in_quote(start, end)
    if quote is not None:
        before = norm[max(0, quote[0] - 60) : quote[0]]
        if not _CUES["self_quote"].search(before):
            flags.append("quoted")
    elif _CUES["reported"].search(norm[max(clause_start, start - 40) : start]):
        flags.append("quoted")

    discounted = tuple(flag for flag in DISCOUNT_FLAGS if flag in flags)
    if discounted:
        return rule.category, discounted

    category = rule.category
    if rule.recent_category is not None and _CUES["recent"].search(
        norm, max(clause_start, start - 80), min(clause_end, end + 80)
    ):
        category = rule.recent_category
    elif rule.past_category is not None:
        s_start, s_end = doc.past_scope(start, end, clause_start, clause_end, boundary)
        if _CUES["past"].search(norm, s_start, s_end) and not _CUES["present"].search(
            norm, clause_start, clause_end
        ):
            return rule.past_category, (PAST_FLAG,)
    return category, ()


# --- detection -----------------------------------------------------------------------------------


@dataclass
class _Hit:
    start: int
    end: int
    category: str
    rule: Rule
    flags: tuple[str, ...]

    @property
    def counted(self) -> bool:
        return not any(flag in DISCOUNT_FLAGS for flag in self.flags)


def _contained(inner: _Hit, outer: _Hit) -> bool:
    return (
        outer.start <= inner.start
        and inner.end <= outer.end
        and _RANK[outer.category] >= _RANK[inner.category]
        and (outer.start, outer.end, outer.rule.rule_id)
        != (inner.start, inner.end, inner.rule.rule_id)
    )


def _prune(hits: Iterable[_Hit]) -> list[_Hit]:
    """Drop a hit wholly inside another hit of at least its category (keeps the output small)."""
    ordered = sorted(hits, key=lambda h: (h.start, -h.end, -_RANK[h.category], h.rule.rule_id))
    kept: list[_Hit] = []
    for hit in ordered:
        if any(_contained(hit, other) for other in kept[-8:]):
            continue
        kept.append(hit)
    return kept


def detect_crisis(text: str) -> CrisisResult:
    """Scan ``text`` for crisis language; never raises on a string (or on ``None``: ``none``)."""
    if not isinstance(text, str) or not text:
        return CrisisResult(category="none", spans=(), flags=())
    try:
        return _detect(text)
    except Exception:  # a rule bug must never hide the rest of a screening: fail loudly but safe
        # Never silently "none": a crashed scan is reported as distress with an error flag so a
        # clinician sees that this text was not fully read.
        return CrisisResult(category="distress", spans=(), flags=("detector_error",))


def _detect(text: str) -> CrisisResult:
    doc = _Doc.build(text)
    counted: list[_Hit] = []
    discounted: list[_Hit] = []
    anchored: list[_Hit] = []
    seen: set[tuple[int, int, str]] = set()
    for rule, pattern in _RULE_RES:
        for match in pattern.finditer(doc.norm):
            start, end = match.span()
            if end <= start or (start, end, rule.rule_id) in seen:
                continue
            seen.add((start, end, rule.rule_id))
            category, flags = _assess(doc, rule, start, end)
            hit = _Hit(start, end, category, rule, flags)
            if not hit.counted:
                discounted.append(hit)
            elif rule.anchor:
                anchored.append(hit)
            else:
                counted.append(hit)

    anchors = sorted(h.start for h in counted if _RANK[h.category] >= _RANK["passive_ideation"])
    for hit in anchored:
        i = bisect.bisect_left(anchors, hit.start - ANCHOR_DISTANCE)
        if i < len(anchors) and anchors[i] <= hit.end + ANCHOR_DISTANCE:
            counted.append(hit)

    kept = _prune(counted)
    category = max((h.category for h in kept), key=_RANK.__getitem__, default="none")
    order = (*DISCOUNT_FLAGS, PAST_FLAG)
    flags = tuple(sorted({flag for h in [*kept, *discounted] for flag in h.flags}, key=order.index))
    # keep the highest-ranked spans when there are too many, then report them in text order
    top = sorted(kept, key=lambda h: (-_RANK[h.category], h.start))[:MAX_SPANS]
    spans = tuple(
        CrisisSpan(start=h.start, end=h.end, category=h.category, rule_id=h.rule.rule_id)
        for h in sorted(top, key=lambda h: (h.start, h.end))
    )
    dropped = _prune(discounted)[: max(0, MAX_SPANS - len(spans))]
    return CrisisResult(
        category=category,
        spans=spans,
        flags=flags,
        discounted=tuple(
            DiscountedSpan(
                start=h.start,
                end=h.end,
                category=h.category,
                rule_id=h.rule.rule_id,
                flags=h.flags,
            )
            for h in dropped
        ),
    )


__all__ = [
    "CATEGORIES",
    "DETECTOR_NAME",
    "DETECTOR_VERSION",
    "DISCOUNT_FLAGS",
    "PAST_FLAG",
    "RULES",
    "CrisisResult",
    "CrisisSpan",
    "DiscountedSpan",
    "Rule",
    "detect_crisis",
    "detector_info",
    "normalise",
    "rules_fingerprint",
]
