"""The risk engine's pure core: typed input events, per-patient state, rule functions, evaluation.

No Django here (a test checks it): everything the rules need arrives as arguments, so each rule
is a pure function of (rule parameters, one event, a small per-patient state) and is tested as a
table. The service layer (``risk.services``) loads the state, calls :func:`evaluate` and turns
firings into alerts.

Cost per event is constant: an event is dispatched only to the rules whose rule-set entry declares
its kind in ``reads``, and the state they read is bounded (the moods of a few local days around
the event's day, and the crisis and corroborating signals of the event's day, or of the few days
around it that a rule's window names, each day's lists capped).

Events carry ids, scores and codes only, never patient text: a crisis-language event names the
detector's category and the ids of the spans it matched, not the words.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar


class Tier(StrEnum):
    RED = "red"
    ORANGE = "orange"
    YELLOW = "yellow"


TIER_RANK: dict[str, int] = {Tier.YELLOW: 1, Tier.ORANGE: 2, Tier.RED: 3}

#: The crisis detector's categories, lowest to highest. The detector is a later issue; this is
#: the contract it must produce (``plan`` and ``imminent_intent`` are its highest categories).
CRISIS_CATEGORIES = (
    "none",
    "distress",
    "passive_ideation",
    "active_ideation",
    "plan",
    "imminent_intent",
)
CRISIS_SOURCES = ("text", "transcript")
#: The fusion's text modalities. Diary text and a video's transcript are the same kind of signal as
#: crisis language (words), so a mood fused from them alone cannot confirm it.
TEXT_MODALITIES = ("diary_text", "transcript_text")
BASELINE_SIGNALS = ("voice", "face", "mood", "text", "activity")
#: How many signals of one kind a day keeps in the state (bounds the cost of a rule).
DAY_SIGNALS_CAP = 20
#: The widest corroboration window a rule set may name (local days either side of the event's
#: day): bounds the state a crisis-language event reads, whatever a file or an override says.
CORROBORATION_WINDOW_DAYS_MAX = 3


class EngineError(ValueError):
    """A malformed event, rule set or override (the message names the field, never a value)."""


# --- input events --------------------------------------------------------------------------------
def _finite(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise EngineError(f"{name} must be a finite number")


_IDENT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _ident(name: str, value: str) -> None:
    # Ids only: letters, digits and _ . : - (no spaces), so no words can pass for an id.
    if not isinstance(value, str) or not _IDENT.match(value):
        raise EngineError(f"{name} must be an id (1 to 64 of A-Z a-z 0-9 _ . : -)")


@dataclass(frozen=True, kw_only=True)
class Event:
    """One input to the rules, on the patient's local calendar day."""

    kind: ClassVar[str] = ""
    local_date: dt.date

    def __post_init__(self) -> None:
        if not isinstance(self.local_date, dt.date) or isinstance(self.local_date, dt.datetime):
            raise EngineError("local_date must be a date")

    @property
    def source_id(self) -> str:
        raise NotImplementedError

    @property
    def dedupe_key(self) -> str:
        """The same signal delivered twice has the same key (it then attaches only once)."""
        return f"{self.kind}:{self.source_id}"

    def snapshot(self) -> dict[str, Any]:
        """The event as evidence: ids, scores and codes only (JSON-ready)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dt.date):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


@dataclass(frozen=True, kw_only=True)
class HelpPressed(Event):
    kind: ClassVar[str] = "help_pressed"
    help_request_id: str
    emergency_id: str = ""
    new_emergency: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _ident("help_request_id", self.help_request_id)

    @property
    def source_id(self) -> str:
        return self.help_request_id


@dataclass(frozen=True, kw_only=True)
class QuestionnaireScored(Event):
    kind: ClassVar[str] = "questionnaire_scored"
    response_id: str
    instrument: str
    total: int
    item9: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _ident("response_id", self.response_id)
        if self.instrument not in ("phq9", "gad7"):
            raise EngineError("instrument must be phq9 or gad7")
        if not isinstance(self.total, int) or self.total < 0:
            raise EngineError("total must be a non-negative integer")
        if self.item9 is not None and (
            not isinstance(self.item9, int) or self.item9 not in range(4)
        ):
            raise EngineError("item9 must be 0 to 3")

    @property
    def source_id(self) -> str:
        return self.response_id


@dataclass(frozen=True, kw_only=True)
class CrisisLanguage(Event):
    """The crisis detector's verdict on a diary text or a video transcript (never the words)."""

    kind: ClassVar[str] = "crisis_language"
    category: str
    source: str  # "text" (diary entry) or "transcript" (a video's speech)
    source_ref: str  # the diary entry or video id
    span_ids: tuple[str, ...] = ()
    model_version: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.category not in CRISIS_CATEGORIES:
            raise EngineError("category is not a crisis detector category")
        if self.source not in CRISIS_SOURCES:
            raise EngineError("source must be text or transcript")
        _ident("source_ref", self.source_ref)
        if not isinstance(self.span_ids, tuple) or len(self.span_ids) > 50:
            raise EngineError("span_ids must be a tuple of at most 50 ids")
        for span in self.span_ids:
            _ident("span_ids", span)

    @property
    def source_id(self) -> str:
        return f"{self.source}:{self.source_ref}"

    @property
    def dedupe_key(self) -> str:
        return f"{self.kind}:{self.source_id}:{self.category}"


@dataclass(frozen=True, kw_only=True)
class DailyMood(Event):
    """The fused mood of one local day, on -10 (worst) .. +10, with the fusion's confidence.

    ``modalities`` names the fusion's contributing modalities (``diary_text``, ``self_rated``,
    ``voice``...). ``independent_score`` is the same day fused from the contributing modalities
    other than text (:data:`TEXT_MODALITIES`), or None when no other modality contributed: only
    that score may confirm crisis language (text cannot confirm itself). A producer that does not
    know its inputs sends None, and the mood then confirms nothing.
    """

    kind: ClassVar[str] = "daily_mood"
    score: float
    confidence: float = 1.0
    model_version: str = ""
    modalities: tuple[str, ...] = ()
    independent_score: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _finite("score", self.score)
        _finite("confidence", self.confidence)
        if not -10 <= self.score <= 10:
            raise EngineError("score must be within -10 and 10")
        if not 0 <= self.confidence <= 1:
            raise EngineError("confidence must be within 0 and 1")
        if not isinstance(self.modalities, tuple) or len(self.modalities) > 16:
            raise EngineError("modalities must be a tuple of at most 16 ids")
        for modality in self.modalities:
            _ident("modalities", modality)
        if self.independent_score is not None:
            _finite("independent_score", self.independent_score)
            if not -10 <= self.independent_score <= 10:
                raise EngineError("independent_score must be within -10 and 10")
            if not independent_modalities(self.modalities):
                raise EngineError("independent_score needs a contributing modality other than text")

    @property
    def independent_code(self) -> str:
        return "+".join(independent_modalities(self.modalities))

    @property
    def source_id(self) -> str:
        return self.local_date.isoformat()


@dataclass(frozen=True, kw_only=True)
class MediaDistress(Event):
    """Distress seen in a video (face and voice together), 0 (none) .. 1."""

    kind: ClassVar[str] = "media_distress"
    video_id: str
    score: float
    model_version: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        _ident("video_id", self.video_id)
        _finite("score", self.score)
        if not 0 <= self.score <= 1:
            raise EngineError("score must be within 0 and 1")

    @property
    def source_id(self) -> str:
        return self.video_id


@dataclass(frozen=True, kw_only=True)
class BaselineDrop(Event):
    """A signal against the patient's own baseline, as a z-score (negative: worse than usual)."""

    kind: ClassVar[str] = "baseline_drop"
    signal: str
    z: float
    source_ref: str
    model_version: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.signal not in BASELINE_SIGNALS:
            raise EngineError("signal is not a known baseline signal")
        _finite("z", self.z)
        _ident("source_ref", self.source_ref)

    @property
    def source_id(self) -> str:
        return f"{self.signal}:{self.source_ref}"


@dataclass(frozen=True, kw_only=True)
class Adherence(Event):
    """How long a patient has been silent (no diary, video or questionnaire), and how active they
    were before (active local days in the window the rule names)."""

    kind: ClassVar[str] = "adherence"
    days_silent: int
    active_days_before: int
    last_input_date: dt.date | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.days_silent, int) or self.days_silent < 0:
            raise EngineError("days_silent must be a non-negative integer")
        if not isinstance(self.active_days_before, int) or self.active_days_before < 0:
            raise EngineError("active_days_before must be a non-negative integer")

    @property
    def source_id(self) -> str:
        return self.last_input_date.isoformat() if self.last_input_date else "never"


@dataclass(frozen=True, kw_only=True)
class ModelAssessment(Event):
    """A model's overall opinion. It may add evidence or raise a tier; it can never lower one."""

    kind: ClassVar[str] = "model_assessment"
    model: str
    model_version: str
    source_ref: str
    suggested_tier: str | None  # None: "low risk"
    score: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _ident("model", self.model)
        _ident("source_ref", self.source_ref)
        if self.suggested_tier is not None and self.suggested_tier not in TIER_RANK:
            raise EngineError("suggested_tier must be a tier or None")
        _finite("score", self.score)

    @property
    def source_id(self) -> str:
        return f"{self.model}:{self.source_ref}"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        HelpPressed,
        QuestionnaireScored,
        CrisisLanguage,
        DailyMood,
        MediaDistress,
        BaselineDrop,
        Adherence,
        ModelAssessment,
    )
}


# --- per-patient state ---------------------------------------------------------------------------
def independent_modalities(modalities: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The contributing modalities that are not text (so may confirm crisis language)."""
    return tuple(m for m in modalities if m not in TEXT_MODALITIES)


@dataclass(frozen=True)
class MoodRef:
    """A day's fused mood; ``independent`` is its text-free score (see :class:`DailyMood`)."""

    local_date: dt.date
    score: float
    confidence: float
    independent: float | None = None
    modalities: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignalRef:
    """A signal of one local day: ``code`` is the crisis category or the baseline signal.

    ``local_date`` is the day the signal belongs to (None: the event's own day, for a state
    built by hand). Signals carry a local day only, never a time of day: the producers hand the
    engine day-level events (see ``docs/risk.md``, "Corroboration window").
    """

    kind: str
    source_id: str
    code: str = ""
    score: float | None = None
    local_date: dt.date | None = None

    def as_evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "source_id": self.source_id,
            "code": self.code,
            "score": self.score,
        }
        if self.local_date is not None:
            out["local_date"] = self.local_date.isoformat()
        return out


@dataclass(frozen=True)
class PatientState:
    """What the rules may read besides the event: the moods of the local days around the event's
    day and the crisis and corroborating signals of the days the rules' windows cover (the
    event's day alone unless a rule names a window; each day's lists capped). Each signal names
    its day (:attr:`SignalRef.local_date`); the rules ignore the ones outside their window."""

    moods: Mapping[dt.date, MoodRef] = field(default_factory=dict)
    crisis: tuple[SignalRef, ...] = ()
    corroboration: tuple[SignalRef, ...] = ()


def day_signal(event: Event) -> tuple[str, SignalRef] | None:
    """What an event adds to its day's signals: ("crisis" | "corroboration", ref), or None."""
    day = event.local_date
    if isinstance(event, CrisisLanguage):
        return "crisis", SignalRef(event.kind, event.source_id, event.category, local_date=day)
    if isinstance(event, MediaDistress):
        return "corroboration", SignalRef(
            event.kind, event.source_id, "video", event.score, local_date=day
        )
    if isinstance(event, BaselineDrop):
        return "corroboration", SignalRef(
            event.kind, event.source_id, event.signal, event.z, local_date=day
        )
    return None


# --- rules and rule sets -------------------------------------------------------------------------
@dataclass(frozen=True)
class Bounds:
    minimum: float
    maximum: float


@dataclass(frozen=True, eq=False)
class Rule:
    id: str
    function: str
    tier: Tier | None  # None: the tier comes from the event (model assessments)
    reads: frozenset[str]
    params: Mapping[str, Any]
    deterministic: bool = False
    overridable: Mapping[str, Bounds] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True, eq=False)
class Firing:
    """A rule fired: the tier, the rule and the evidence (ids, scores, codes; JSON-ready)."""

    rule_id: str
    tier: Tier
    deterministic: bool
    local_date: dt.date
    event_kind: str
    dedupe_key: str
    evidence: Mapping[str, Any]


RuleFn = Callable[[Rule, Event, PatientState], Firing | None]


def _no_span(params: Mapping[str, Any]) -> int:
    return 0


@dataclass(frozen=True)
class FunctionSpec:
    fn: RuleFn
    kinds: frozenset[str]  # the event kinds the function understands
    params: Mapping[str, type | tuple[type, ...]]  # required in every rule-set file
    needs_moods: bool = False  # reads state.moods
    needs_day: bool = False  # reads the crisis/corroboration signals of its window's days
    #: Parameters a file may leave out: {name: (type, value when left out)}. Lets a new rule-set
    #: version add a parameter while the older files (never edited) keep loading unchanged.
    optional: Mapping[str, tuple[type | tuple[type, ...], Any]] = field(default_factory=dict)
    #: Hard limits of numeric parameters, whatever a file or a clinic's override says.
    limits: Mapping[str, Bounds] = field(default_factory=dict)
    #: How many local days either side of the event's day the function reads state.
    span: Callable[[Mapping[str, Any]], int] = _no_span

    @property
    def param_types(self) -> dict[str, type | tuple[type, ...]]:
        """Every parameter the function knows (required and optional) with its type."""
        return {**self.params, **{name: kind for name, (kind, _) in self.optional.items()}}

    def param(self, params: Mapping[str, Any], name: str) -> Any:
        """A parameter's value, or its default when the file left an optional one out."""
        if name in params:
            return params[name]
        return self.optional[name][1]


def _fire(
    rule: Rule, event: Event, *, key: str, tier: str | None = None, **evidence: Any
) -> Firing:
    chosen = Tier(tier) if tier is not None else rule.tier
    if chosen is None:
        raise EngineError(f"rule {rule.id} has no tier")
    return Firing(
        rule_id=rule.id,
        tier=chosen,
        deterministic=rule.deterministic,
        local_date=event.local_date,
        event_kind=event.kind,
        dedupe_key=f"{rule.id}:{key}",
        evidence={
            "rule_id": rule.id,
            "params": dict(rule.params),
            "event": event.snapshot(),
            **evidence,
        },
    )


def rule_help_pressed(rule: Rule, event: Event, state: PatientState) -> Firing | None:
    if isinstance(event, HelpPressed):
        return _fire(rule, event, key=event.source_id)
    return None


def rule_crisis_category(rule: Rule, event: Event, state: PatientState) -> Firing | None:
    if isinstance(event, CrisisLanguage) and event.category in rule.params["categories"]:
        return _fire(rule, event, key=event.dedupe_key)
    return None


def rule_questionnaire_item9(rule: Rule, event: Event, state: PatientState) -> Firing | None:
    if (
        isinstance(event, QuestionnaireScored)
        and event.instrument == "phq9"
        and event.item9 is not None
        and event.item9 >= rule.params["item9_at_least"]
    ):
        return _fire(rule, event, key=event.source_id)
    return None


def rule_questionnaire_total(rule: Rule, event: Event, state: PatientState) -> Firing | None:
    if (
        isinstance(event, QuestionnaireScored)
        and event.instrument == rule.params["instrument"]
        and event.total >= rule.params["total_at_least"]
    ):
        return _fire(rule, event, key=event.source_id)
    return None


def rule_mood_streak(rule: Rule, event: Event, state: PatientState) -> Firing | None:
    """``days`` consecutive local days (calendar days, whatever their length in hours) each with a
    fused mood at or below the threshold. The event may complete a streak from either side."""
    if not isinstance(event, DailyMood):
        return None
    threshold = rule.params["mood_at_or_below"]
    min_confidence = rule.params["min_confidence"]
    days = int(rule.params["days"])
    moods = dict(state.moods)
    moods[event.local_date] = MoodRef(event.local_date, event.score, event.confidence)

    def low(day: dt.date) -> bool:
        mood = moods.get(day)
        return mood is not None and mood.score <= threshold and mood.confidence >= min_confidence

    if not low(event.local_date):
        return None
    # The latest window of ``days`` consecutive days that contains the event's day.
    for end_offset in range(days - 1, -1, -1):
        end = event.local_date + dt.timedelta(days=end_offset)
        window = [end - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
        if all(low(day) for day in window):
            return _fire(
                rule,
                event,
                key=window[0].isoformat(),
                days=[day.isoformat() for day in window],
                scores=[moods[day].score for day in window],
            )
    return None


def _corroborates(ref: SignalRef, params: Mapping[str, Any]) -> bool:
    if ref.score is None:
        return False
    if ref.kind == MediaDistress.kind:
        return ref.score >= params["distress_at_or_above"]
    if ref.kind == BaselineDrop.kind:
        return (
            ref.code in params["baseline_signals"] and ref.score <= params["baseline_z_at_or_below"]
        )
    if ref.kind == DailyMood.kind:
        return ref.score <= params["mood_at_or_below"]
    return False


def _mood_ref(
    day: dt.date, confidence: float, independent: float | None, code: str, params: Mapping[str, Any]
) -> SignalRef | None:
    """The day's mood as a second signal: its text-free score only (None: text alone)."""
    if independent is None or confidence < params["min_confidence"]:
        return None
    return SignalRef(
        DailyMood.kind, day.isoformat(), code or "independent", independent, local_date=day
    )


def _day_mood_ref(state: PatientState, day: dt.date, params: Mapping[str, Any]) -> SignalRef | None:
    mood = state.moods.get(day)
    if mood is None:
        return None
    code = "+".join(independent_modalities(mood.modalities))
    return _mood_ref(day, mood.confidence, mood.independent, code, params)


def _window_days(params: Mapping[str, Any]) -> int:
    """The corroboration window: local days either side of the event's day (0: the same day)."""
    return int(FUNCTIONS["double_verification"].param(params, "window_days"))


def _in_window(
    refs: tuple[SignalRef, ...], day: dt.date, window: int
) -> list[tuple[int, SignalRef]]:
    """The signals of the days within ``window`` of ``day`` as (days apart, ref), nearest first
    (stable: the state's order within a distance). A ref without a day is of ``day`` itself."""
    near = []
    for ref in refs:
        apart = abs(((ref.local_date or day) - day).days)
        if apart <= window:
            near.append((apart, ref if ref.local_date is not None else _dated(ref, day)))
    near.sort(key=lambda pair: pair[0])
    return near


def _dated(ref: SignalRef, day: dt.date) -> SignalRef:
    return SignalRef(ref.kind, ref.source_id, ref.code, ref.score, local_date=day)


def _pair_key(crisis: SignalRef, second: SignalRef) -> str:
    # The same for either arrival order, so a pair counts once (alerts de-duplicate on it).
    return f"{crisis.source_id}+{second.kind}:{second.source_id}"


def rule_double_verification(rule: Rule, event: Event, state: PatientState) -> Firing | None:
    """Crisis language confirmed by a second, independent signal within the corroboration
    window: video distress, a voice or face state far below the patient's baseline, or a low
    fused mood.

    The window is ``window_days`` local days either side of the crisis language's day (v3: 1,
    so the day before, the day itself and the day after; a file without the parameter, v1 and
    v2, means 0: the same local day only). Either signal may arrive first, and either may lie on
    the earlier day. The nearest signal confirms first (the same day before an adjacent one).

    Independent means another kind of signal: two crisis-language findings never confirm each
    other, whatever their sources and days, and a fused mood (of any day in the window) confirms
    only through the modalities other than text that contributed to it (self-rated mood, voice,
    face, questionnaires): its text-free score (:attr:`DailyMood.independent_score`) must be at
    or below the threshold. A day whose mood comes from the diary or transcript text alone
    confirms nothing (the text would confirm itself).

    The firing's key names the pair (crisis source + second signal), the same whichever arrived
    first, so a pair fires once; its evidence names both signals with their local days.
    """
    params = rule.params
    categories = params["categories"]
    window = _window_days(params)
    if isinstance(event, CrisisLanguage):
        if event.category not in categories:
            return None
        crisis_ref = day_signal(event)[1]  # type: ignore[index]
        candidates = _in_window(state.corroboration, event.local_date, window)
        for apart in range(window + 1):
            days = {event.local_date - dt.timedelta(days=apart)}
            days.add(event.local_date + dt.timedelta(days=apart))
            for mood_day in sorted(days):
                mood_ref = _day_mood_ref(state, mood_day, params)
                if mood_ref is not None:
                    candidates.append((apart, mood_ref))
        candidates.sort(key=lambda pair: pair[0])  # stable: signals before moods at a distance
        for _, ref in candidates:
            if _corroborates(ref, params):
                return _fire(
                    rule,
                    event,
                    key=_pair_key(crisis_ref, ref),
                    crisis=crisis_ref.as_evidence(),
                    corroboration=ref.as_evidence(),
                )
        return None
    if isinstance(event, DailyMood):
        second: SignalRef | None = _mood_ref(
            event.local_date,
            event.confidence,
            event.independent_score,
            event.independent_code,
            params,
        )
    elif isinstance(event, (MediaDistress, BaselineDrop)):
        second = day_signal(event)[1]  # type: ignore[index]
    else:
        return None
    if second is None or not _corroborates(second, params):
        return None
    for _, crisis in _in_window(state.crisis, event.local_date, window):
        if crisis.code in categories:
            return _fire(
                rule,
                event,
                key=_pair_key(crisis, second),
                crisis=crisis.as_evidence(),
                corroboration=second.as_evidence(),
            )
    return None


def rule_baseline_drop(rule: Rule, event: Event, state: PatientState) -> Firing | None:
    if (
        isinstance(event, BaselineDrop)
        and event.signal in rule.params["signals"]
        and event.z <= rule.params["z_at_or_below"]
    ):
        return _fire(rule, event, key=event.source_id)
    return None


def rule_non_adherence(rule: Rule, event: Event, state: PatientState) -> Firing | None:
    if (
        isinstance(event, Adherence)
        and event.days_silent >= rule.params["days_silent_at_least"]
        and event.active_days_before >= rule.params["min_active_days_before"]
    ):
        # One firing per silence (keyed by the last input), however often the sweep looks.
        return _fire(rule, event, key=event.source_id)
    return None


def rule_model_tier(rule: Rule, event: Event, state: PatientState) -> Firing | None:
    """A model may raise an alert up to the highest tier the rule set allows it. A "low risk"
    opinion (no suggested tier) fires nothing, and nothing here can remove another rule's firing."""
    if not isinstance(event, ModelAssessment) or event.suggested_tier is None:
        return None
    if event.suggested_tier not in rule.params["allowed_tiers"]:
        return None
    if event.score < rule.params["min_score"]:
        return None
    return _fire(rule, event, key=event.source_id, tier=event.suggested_tier)


_NUM = (int, float)
FUNCTIONS: dict[str, FunctionSpec] = {
    "help_pressed": FunctionSpec(rule_help_pressed, frozenset({"help_pressed"}), {}),
    "crisis_category": FunctionSpec(
        rule_crisis_category, frozenset({"crisis_language"}), {"categories": list}
    ),
    "questionnaire_item9": FunctionSpec(
        rule_questionnaire_item9, frozenset({"questionnaire_scored"}), {"item9_at_least": int}
    ),
    "questionnaire_total": FunctionSpec(
        rule_questionnaire_total,
        frozenset({"questionnaire_scored"}),
        {"instrument": str, "total_at_least": int},
    ),
    "mood_streak": FunctionSpec(
        rule_mood_streak,
        frozenset({"daily_mood"}),
        {"mood_at_or_below": _NUM, "min_confidence": _NUM, "days": int},
        needs_moods=True,
        span=lambda params: int(params["days"]) - 1,
    ),
    "double_verification": FunctionSpec(
        rule_double_verification,
        frozenset({"crisis_language", "media_distress", "baseline_drop", "daily_mood"}),
        {
            "categories": list,
            "distress_at_or_above": _NUM,
            "baseline_signals": list,
            "baseline_z_at_or_below": _NUM,
            "mood_at_or_below": _NUM,
            "min_confidence": _NUM,
        },
        needs_moods=True,
        needs_day=True,
        # v3 added the window; v1 and v2 (no such parameter) mean the same local day only.
        optional={"window_days": (int, 0)},
        limits={"window_days": Bounds(0, CORROBORATION_WINDOW_DAYS_MAX)},
        span=_window_days,
    ),
    "baseline_drop": FunctionSpec(
        rule_baseline_drop,
        frozenset({"baseline_drop"}),
        {"signals": list, "z_at_or_below": _NUM},
    ),
    "non_adherence": FunctionSpec(
        rule_non_adherence,
        frozenset({"adherence"}),
        {"days_silent_at_least": int, "min_active_days_before": int, "window_days": int},
    ),
    "model_tier": FunctionSpec(
        rule_model_tier,
        frozenset({"model_assessment"}),
        {"allowed_tiers": list, "min_score": _NUM},
    ),
}


@dataclass(frozen=True, eq=False)
class RuleSet:
    """One versioned rule set (a file), with a clinic's threshold overrides applied."""

    version: str
    sha256: str  # of the file's bytes
    title: str
    rules: tuple[Rule, ...]
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    _by_kind: dict[str, tuple[Rule, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_kind: dict[str, list[Rule]] = {}
        for rule in self.rules:
            for kind in sorted(rule.reads):
                by_kind.setdefault(kind, []).append(rule)
        object.__setattr__(self, "_by_kind", {k: tuple(v) for k, v in by_kind.items()})

    def rules_for(self, kind: str) -> tuple[Rule, ...]:
        return self._by_kind.get(kind, ())

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def needs_day(self, kind: str) -> bool:
        return any(FUNCTIONS[r.function].needs_day for r in self.rules_for(kind))

    def mood_window_days(self, kind: str) -> int | None:
        """How many days either side of the event's day the rules for ``kind`` read moods
        (None: they read no moods)."""
        return self._window(kind, moods=True)

    def day_window_days(self, kind: str) -> int | None:
        """How many days either side of the event's day the rules for ``kind`` read crisis and
        corroborating signals (0: that day only; None: they read none)."""
        return self._window(kind, moods=False)

    def _window(self, kind: str, *, moods: bool) -> int | None:
        window: int | None = None
        for rule in self.rules_for(kind):
            spec = FUNCTIONS[rule.function]
            if spec.needs_moods if moods else spec.needs_day:
                window = max(window or 0, spec.span(rule.params))
        return window

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> RuleSet:
        """A copy with a clinic's threshold overrides. Only parameters the file declares
        ``overridable`` may change, only within their bounds; anything else is refused."""
        if not isinstance(overrides, Mapping):
            raise EngineError("overrides must be an object of {rule id: {parameter: value}}")
        known = {rule.id: rule for rule in self.rules}
        for rule_id, values in overrides.items():
            if rule_id not in known:
                raise EngineError(f"override for unknown rule {rule_id}")
            if not isinstance(values, Mapping):
                raise EngineError(f"override for {rule_id} must be an object")
            for name, value in values.items():
                bounds = known[rule_id].overridable.get(name)
                if bounds is None:
                    raise EngineError(f"{rule_id}.{name} may not be overridden")
                if isinstance(value, bool) or not isinstance(value, _NUM):
                    raise EngineError(f"{rule_id}.{name} must be a number")
                expected = FUNCTIONS[known[rule_id].function].param_types[name]
                if expected is int and not isinstance(value, int):
                    raise EngineError(f"{rule_id}.{name} must be an integer")
                if not bounds.minimum <= value <= bounds.maximum:
                    raise EngineError(
                        f"{rule_id}.{name} must be within {bounds.minimum} and {bounds.maximum}"
                    )
        rules = tuple(
            Rule(
                id=rule.id,
                function=rule.function,
                tier=rule.tier,
                reads=rule.reads,
                params={**rule.params, **dict(overrides.get(rule.id, {}))},
                deterministic=rule.deterministic,
                overridable=rule.overridable,
                description=rule.description,
            )
            for rule in self.rules
        )
        cleaned = {k: dict(v) for k, v in overrides.items() if v}
        return RuleSet(self.version, self.sha256, self.title, rules, cleaned)


def evaluate(rule_set: RuleSet, event: Event, state: PatientState | None = None) -> list[Firing]:
    """Every firing of the rules that read ``event.kind``, most urgent first (deterministic
    triggers first within a tier). Rules only add firings: none can cancel another's."""
    state = state or PatientState()
    firings = [
        firing
        for rule in rule_set.rules_for(event.kind)
        if (firing := FUNCTIONS[rule.function].fn(rule, event, state)) is not None
    ]
    firings.sort(key=lambda f: (-TIER_RANK[f.tier], not f.deterministic, f.rule_id))
    return firings


def event_from_snapshot(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from :meth:`Event.snapshot` (tasks pass events as JSON)."""
    kind = data.get("kind")
    cls = EVENT_TYPES.get(str(kind))
    if cls is None:
        raise EngineError("unknown event kind")
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in ("local_date", "last_input_date") and isinstance(value, str):
            value = dt.date.fromisoformat(value)
        elif f.name in ("span_ids", "modalities") and isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    try:
        return cls(**values)
    except TypeError:
        raise EngineError(f"malformed {kind} event") from None
