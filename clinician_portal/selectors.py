"""Reads behind the portal pages. Each page costs a fixed number of queries (no query per row);
every read of a patient's data is recorded as an access event first.

The daily mood score comes from ``screening.models.scores.DailyMoodScore`` when that model exists,
and otherwise from the risk engine's per-day signals (``risk.PatientDaySignals.mood``), which hold
the same fused score the rules read. Either may be empty: the pages then say "no scores yet".
"""

from __future__ import annotations

import datetime as dt
import importlib
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import (
    Count,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from clinician_portal.charts import Marker, MoodPoint
from config.errors import NotFound, PermissionDenied
from privacy.audit import Actor, access_record, access_record_patients
from privacy.breakglass import clinician_patient_access
from privacy.choices import AccessOutcome, ConsentScope
from privacy.consent import consent_has
from privacy.models import AccessEvent
from risk.choices import ACTIVE_STATES, Tier
from risk.models import Alert, AlertEvidence, AlertTransition, PatientDaySignals
from risk.selectors import (
    alert_queue_for,
    alert_superseded,
    alert_superseded_prefetch,
    alerts_visible_to,
)
from screening.models import (
    Clinician,
    DiaryEntry,
    Patient,
    QuestionnaireResponse,
    VideoSubmission,
)
from screening.services.scoring import baseline_config

TIMELINE_DAYS = 90
ADHERENCE_DAYS = 14
#: The alert page's recent window: its scores, questionnaires, videos and text analyses.
RECENT_DAYS = 14
#: Without an interval from the model, the band is +/- this many points at confidence 0,
#: shrinking linearly to nothing at confidence 1.
BAND_AT_ZERO_CONFIDENCE = 4.0


# --- the daily mood score, wherever it lives --------------------------------------------------
def _scores_model(name: str) -> Any:
    """A model of ``screening.models.scores`` (the scoring stages' results), or None where this
    installation has no such model: the portal then shows what it has without it."""
    try:
        module = importlib.import_module("screening.models.scores")
    except ImportError:
        return None
    return getattr(module, name, None)


def _score_model() -> Any:
    return _scores_model("DailyMoodScore")


def _field_names(model: Any) -> set[str]:
    return {f.name for f in model._meta.get_fields()}


def _first(row: Any, names: Iterable[str]) -> Any:
    for name in names:
        value = getattr(row, name, None)
        if value is not None:
            return value
    return None


@dataclass(frozen=True)
class DayScore:
    day: dt.date
    score: float | None
    confidence: float | None
    low: float | None
    high: float | None
    abstained: bool
    explanation: str


def _band(score: float, confidence: float | None) -> tuple[float, float]:
    half = BAND_AT_ZERO_CONFIDENCE * (1 - max(0.0, min(1.0, confidence or 0.0)))
    return max(-10.0, score - half), min(10.0, score + half)


def _explain(score: float | None, confidence: float | None, abstained: bool) -> str:
    """A plain-language sentence for a day (used when the model gave none)."""
    if abstained or score is None:
        return "No score: not enough reliable signal arrived that day."
    if score <= -5:
        mood = "very low"
    elif score < -1:
        mood = "low"
    elif score <= 1:
        mood = "about neutral"
    elif score < 5:
        mood = "good"
    else:
        mood = "very good"
    sure = (
        "fairly sure"
        if (confidence or 0) >= 0.7
        else "moderately sure"
        if (confidence or 0) >= 0.4
        else "unsure"
    )
    return f"Mood looked {mood} ({score:+.1f} on -10..+10); the estimate is {sure}."


def mood_scores(
    *, patient_ids: list[uuid.UUID], since: dt.date, until: dt.date
) -> dict[uuid.UUID, list[DayScore]]:
    """Daily scores of several patients between two local dates (inclusive), oldest first, in
    two queries: the fused ``DailyMoodScore`` rows (abstentions included, as gaps), and the risk
    engine's day signals for days without such a row."""
    found: dict[tuple[uuid.UUID, dt.date], DayScore] = {}
    model = _score_model()
    if model is not None:
        names = _field_names(model)
        date_field = "local_date" if "local_date" in names else "date"
        wanted = {
            "patient",
            date_field,
            "score",
            "fused_score",
            "mood",
            "confidence",
            "abstained",
            "ci_low",
            "ci_high",
            "band_low",
            "band_high",
            "lower",
            "upper",
            "explanation",
        }
        rows = model.objects.filter(
            **{
                "patient_id__in": patient_ids,
                f"{date_field}__gte": since,
                f"{date_field}__lte": until,
            }
        ).only(*sorted(wanted & names))  # not the JSON columns: they are not shown
        for row in rows:
            score = _first(row, ("score", "fused_score", "mood"))
            confidence = _first(row, ("confidence",))
            abstained = bool(getattr(row, "abstained", False)) or score is None
            low = _first(row, ("ci_low", "band_low", "lower"))
            high = _first(row, ("ci_high", "band_high", "upper"))
            if not abstained and (low is None or high is None):
                low, high = _band(float(score), confidence)
            explanation = _first(row, ("explanation",))
            day = getattr(row, date_field)
            found[(row.patient_id, day)] = DayScore(
                day=day,
                score=None if abstained else float(score),
                confidence=None if confidence is None else float(confidence),
                low=None if abstained or low is None else float(low),
                high=None if abstained or high is None else float(high),
                abstained=abstained,
                explanation=str(explanation or _explain(score, confidence, abstained)),
            )
    signals = PatientDaySignals.objects.filter(
        patient_id__in=patient_ids,
        local_date__gte=since,
        local_date__lte=until,
        mood__isnull=False,
    )
    for row in signals.only("patient_id", "local_date", "mood", "mood_confidence"):
        if (row.patient_id, row.local_date) in found or row.mood is None:
            continue
        low, high = _band(row.mood, row.mood_confidence)
        found[(row.patient_id, row.local_date)] = DayScore(
            day=row.local_date,
            score=row.mood,
            confidence=row.mood_confidence,
            low=low,
            high=high,
            abstained=False,
            explanation=_explain(row.mood, row.mood_confidence, False),
        )
    out: dict[uuid.UUID, list[DayScore]] = defaultdict(list)
    for (patient_id, _day), score in sorted(found.items(), key=lambda item: item[0][1]):
        out[patient_id].append(score)
    return out


def _trend(scores: list[DayScore], today: dt.date) -> float | None:
    """Mean of the last 7 days' scores minus the mean of the 7 before (None without both)."""
    recent = [s.score for s in scores if s.score is not None and (today - s.day).days < 7]
    before = [s.score for s in scores if s.score is not None and 7 <= (today - s.day).days < 14]
    if not recent or not before:
        return None
    return sum(recent) / len(recent) - sum(before) / len(before)


# --- who may see which patient ------------------------------------------------------------------
#: The portal's read of one alert.
ALERT_VIEW = "portal.alert.view"
#: The portal's alert actions, by the access-event action their service records (allowed or
#: refused): a refused portal POST is recorded under the same name.
ALERT_ACTIONS = {
    "acknowledge": "alert.acknowledge",
    "escalate": "alert.escalate_manual",
    "reassign": "alert.reassign",
    "resolve": "alert.resolve",
}


def _probe_record(
    *, actor: Actor, action: str, resource_type: str, resource_id: Any, elsewhere: bool
) -> None:
    """Record a request for a patient or alert the clinician's clinic does not hold (the page
    answers 404 either way). No ``patient_id``: another clinic's patient stays unnamed in this
    clinic's log; the reason tells an auditor a cross-clinic probe (``other_clinic``) from a
    stale or mistyped link (``not_found``)."""
    access_record(
        actor=actor,
        action=action,
        outcome=AccessOutcome.DENIED,
        resource_type=resource_type,
        resource_id=resource_id,
        status_code=404,
        reason="other_clinic" if elsewhere else "not_found",
    )


def patient_of_clinic(
    *, actor: Actor, clinician: Clinician, pseudonym: str, action: str
) -> Patient:
    """A patient of the clinician's clinic, not erased, whoever treats them (care-team checks are
    the caller's). Another clinic's patient, an erased one or an unknown pseudonym:
    :class:`NotFound`, recorded as a denied probe under ``action`` without naming the patient."""
    patient = (
        Patient.objects.select_related("organisation", "care_team", "treating_clinician__user")
        .filter(pseudonym=pseudonym, organisation_id=clinician.organisation_id)
        .first()
    )
    if patient is None or patient.erased_at is not None:
        _probe_record(
            actor=actor,
            action=action,
            resource_type="Patient",
            resource_id=pseudonym,
            elsewhere=patient is None
            and Patient.objects.filter(pseudonym=pseudonym)
            .exclude(organisation_id=clinician.organisation_id)
            .exists(),
        )
        raise NotFound("No such patient.")
    return patient


def patient_for_clinician(
    *, actor: Actor, clinician: Clinician, pseudonym: str
) -> tuple[Patient, str]:
    """The patient and why the clinician may see them (``care_team`` or ``break_glass``).

    Another clinic's patient, an erased one or an unknown pseudonym: :class:`NotFound` (nothing
    said about other clinics). A patient of the clinic outside the clinician's care teams:
    :class:`PermissionDenied`, recorded as a denied access (the page offers break-glass).
    """
    patient = patient_of_clinic(
        actor=actor, clinician=clinician, pseudonym=pseudonym, action="portal.patient.view"
    )
    access = clinician_patient_access(clinician=clinician, patient=patient)
    if access is None:
        access_record(
            actor=actor,
            action="portal.patient.view",
            patient_id=patient.pk,
            outcome=AccessOutcome.DENIED,
            resource_type="Patient",
            resource_id=patient.pk,
            status_code=403,
            reason="not_in_care_team",
        )
        raise PermissionDenied("This patient is not in your care teams.")
    return patient, access


def alert_for_clinician(
    *,
    actor: Actor,
    clinician: Clinician,
    alert_id: uuid.UUID,
    action: str = ALERT_VIEW,
) -> Alert:
    """One alert the clinician sees (open or closed). ``action`` is what the caller is about to
    do (:data:`ALERT_VIEW`, or one of :data:`ALERT_ACTIONS` for a POST): a refusal is recorded
    under it. Another clinic's, or none: NotFound (a denied probe, without the patient); one of an
    erased patient: NotFound (denied, reason ``patient_erased``: its evidence can no longer be
    decrypted); one of the clinic outside the clinician's view: PermissionDenied (recorded)."""
    alert = (
        Alert.objects.select_related(
            "patient", "assigned_to__user", "acknowledged_by", "resolved_by"
        )
        .filter(pk=alert_id, organisation_id=clinician.organisation_id)
        .first()
    )
    if alert is None:
        _probe_record(
            actor=actor,
            action=action,
            resource_type="Alert",
            resource_id=alert_id,
            elsewhere=Alert.objects.filter(pk=alert_id)
            .exclude(organisation_id=clinician.organisation_id)
            .exists(),
        )
        raise NotFound("No such alert.")

    def deny(status_code: int, reason: str) -> None:
        access_record(
            actor=actor,
            action=action,
            patient_id=alert.patient_id,
            outcome=AccessOutcome.DENIED,
            resource_type="Alert",
            resource_id=alert.pk,
            status_code=status_code,
            reason=reason,
        )

    if alert.patient.erased_at is not None:
        # The alert row stays (the clinic's safety record), but it is closed and its evidence is
        # crypto-shredded: nothing of it is shown in the portal (no queue, caseload or timeline
        # lists it either).
        deny(404, "patient_erased")
        raise NotFound("No such alert.")
    if not alerts_visible_to(clinician=clinician, active_only=False).filter(pk=alert.pk).exists():
        deny(403, "not_in_care_team")
        raise PermissionDenied("This alert belongs to another care team.")
    return alert


# --- pages that list patients (queue, caseload) ------------------------------------------------
QUEUE_READ = "portal.queue"
QUEUE_REFRESH = "portal.queue.refresh"
CASELOAD_READ = "portal.caseload"
#: The queue is opened many times a day and its rows refresh in the background every few seconds:
#: a queue read (page or refresh) puts a patient in their access trail only when no queue read of
#: this clinician put them there within this window (the page or refresh itself is recorded every
#: time, without a patient). Measured before the window applied to the page too: 682 queries and
#: 111 chained appends for one view of a 111-alert queue (bench.portal_bench).
QUEUE_REFRESH_TRAIL_WINDOW = dt.timedelta(minutes=15)


def _list_read_record(
    *,
    actor: Actor,
    action: str,
    resource_type: str,
    patient_ids: Iterable[uuid.UUID],
    quiet_since: dt.datetime | None = None,
    quiet_actions: tuple[str, ...] = (),
) -> None:
    """Record a page that lists patients: one event for the page (no patient), then one per
    patient shown (once each, in the order shown, resource ``Patient``), so that the read is in
    each patient's access trail. The page size bounds the count (at most the page's rows); the
    events are written together. With ``quiet_since``, patients already recorded by this actor
    under ``quiet_actions`` since then are left out (one query)."""
    ids = list(dict.fromkeys(patient_ids))
    if quiet_since is not None and ids and actor.user_id is not None:
        recent = set(
            AccessEvent.objects.filter(
                actor_id=actor.user_id,
                action__in=quiet_actions,
                patient_id__in=ids,
                occurred_at__gte=quiet_since,
            ).values_list("patient_id", flat=True)
        )
        ids = [pid for pid in ids if pid not in recent]
    with transaction.atomic():
        access_record(actor=actor, action=action, resource_type=resource_type)
        access_record_patients(actor=actor, action=action, patient_ids=ids)


def alert_queue(
    *,
    actor: Actor,
    clinician: Clinician,
    tier: str = "",
    state: str = "",
    assignee: str = "",
    limit: int,
    refresh: bool = False,
) -> tuple[list[Alert], bool]:
    """The first ``limit`` alerts of the clinician's queue (:func:`risk.selectors.alert_queue_for`)
    and whether there were more. Recorded before it is shown: the page (``portal.queue``) or its
    background refresh (``portal.queue.refresh``), and each patient shown, in their access trail,
    unless a queue read of this clinician recorded them within
    :data:`QUEUE_REFRESH_TRAIL_WINDOW`."""
    rows = list(
        alert_queue_for(clinician=clinician, tier=tier, state=state, assignee=assignee)[: limit + 1]
    )
    shown = rows[:limit]
    _list_read_record(
        actor=actor,
        action=QUEUE_REFRESH if refresh else QUEUE_READ,
        resource_type="Alert",
        patient_ids=[a.patient_id for a in shown],
        quiet_since=timezone.now() - QUEUE_REFRESH_TRAIL_WINDOW,
        quiet_actions=(QUEUE_READ, QUEUE_REFRESH),
    )
    return shown, len(rows) > limit


# --- alert detail -------------------------------------------------------------------------------
@dataclass
class EvidenceView:
    rule_id: str
    rule_set_version: str
    tier: str
    event_kind: str
    local_date: dt.date
    created_at: dt.datetime
    facts: list[tuple[str, str]]
    #: (before, matched, after) of a de-identified excerpt, when the evidence carries one.
    excerpt: tuple[str, str, str] | None = None


_HIDDEN_KEYS = {"rule_set", "excerpt", "span", "spans", "deterministic"}


def _excerpt(snapshot: dict[str, Any]) -> tuple[str, str, str] | None:
    """A de-identified excerpt with its matched span, if a text analysis put one in evidence
    (``excerpt`` plus ``span`` = [start, end], or ``spans`` = [[start, end], ...])."""
    text = snapshot.get("excerpt")
    if not isinstance(text, str) or not text:
        return None
    span = snapshot.get("span") or (snapshot.get("spans") or [None])[0]
    if (
        isinstance(span, (list, tuple))
        and len(span) == 2
        and all(isinstance(v, int) for v in span)
        and 0 <= span[0] <= span[1] <= len(text)
    ):
        return text[: span[0]], text[span[0] : span[1]], text[span[1] :]
    return text, "", ""


def _facts(snapshot: dict[str, Any]) -> list[tuple[str, str]]:
    facts: list[tuple[str, str]] = []
    for key, value in sorted(snapshot.items()):
        if key in _HIDDEN_KEYS:
            continue
        if isinstance(value, dict):
            inner = ", ".join(f"{k}: {v}" for k, v in sorted(value.items()))
            facts.append((key.replace("_", " "), inner))
        elif isinstance(value, list):
            facts.append((key.replace("_", " "), ", ".join(str(v) for v in value)))
        else:
            facts.append((key.replace("_", " "), str(value)))
    return facts


@dataclass
class SupersededView:
    """An earlier, lower-tier alert that this one superseded (directly, or through an alert it
    superseded), with its own evidence: what made the patient orange stays on the red alert."""

    alert: Alert
    evidence: list[EvidenceView]


@dataclass
class AlertDetail:
    alert: Alert
    deterministic: bool
    evidence: list[EvidenceView]
    transitions: list[AlertTransition]
    #: Mean daily mood of the baseline window; None: too little history there ("no baseline yet").
    baseline: float | None
    recent_scores: list[tuple[DayScore, float | None]]  # (day, difference from baseline)
    questionnaires: list[QuestionnaireResponse]
    videos: list[VideoSubmission]
    text_analyses: list[TextAnalysisView] = field(default_factory=list)
    quality_flags: dict[uuid.UUID, list[str]] = field(default_factory=dict)
    superseded: list[SupersededView] = field(default_factory=list)
    #: The baseline window (inclusive): the days before the first day shown, never a shown day.
    baseline_from: dt.date | None = None
    baseline_until: dt.date | None = None
    #: Daily moods found in the baseline window, and the minimum history a baseline needs.
    baseline_count: int = 0
    baseline_min_recordings: int = 0
    baseline_min_days: int = 0


@dataclass
class TextAnalysisView:
    local_date: dt.date
    source: str
    crisis_category: str
    valence: float
    confidence: float
    at_risk: bool
    #: (category, matched span): the matched crisis words only, never the surrounding text.
    spans: list[tuple[str, str]]


def _text_analyses(patient: Patient, since: dt.date) -> list[TextAnalysisView]:
    """The patient's recent text analyses that flagged something (crisis language or at risk),
    with the matched spans. Only the matched words are shown (the minimum a clinician needs to
    judge the alert; the rest of the diary stays behind the care-team sharing consent)."""
    TextAnalysis = _scores_model("TextAnalysis")
    if TextAnalysis is None:
        return []
    rows = (
        TextAnalysis.objects.filter(patient_id=patient.pk, local_date__gte=since)
        .exclude(crisis_category="none", at_risk=False)
        .order_by("-local_date", "-created_at")[:10]
    )
    views = []
    for row in rows:
        spans = [
            (str(s.get("category", "")), str(s.get("excerpt", "")))
            for s in (row.evidence or [])
            if isinstance(s, dict) and s.get("excerpt")
        ]
        views.append(
            TextAnalysisView(
                local_date=row.local_date,
                source=row.get_source_display(),
                crisis_category=row.crisis_category,
                valence=row.valence,
                confidence=row.confidence,
                at_risk=row.at_risk,
                spans=spans,
            )
        )
    return views


def _quality_flags(videos: list[VideoSubmission]) -> dict[uuid.UUID, list[str]]:
    """Each video's quality flags from its media analysis, when there is one (one query)."""
    MediaAnalysis = _scores_model("MediaAnalysis")
    if MediaAnalysis is None:
        return {}
    rows = MediaAnalysis.objects.filter(video_id__in=[v.pk for v in videos]).values_list(
        "video_id", "quality_flags"
    )
    return {vid: [str(f) for f in (flags or [])] for vid, flags in rows}


def _evidence_view(item: AlertEvidence) -> EvidenceView:
    snapshot = item.snapshot or {}
    return EvidenceView(
        rule_id=item.rule_id,
        rule_set_version=item.rule_set_version,
        tier=item.tier,
        event_kind=item.event_kind,
        local_date=item.local_date,
        created_at=item.created_at,
        facts=_facts(snapshot),
        excerpt=_excerpt(snapshot),
    )


#: What the alert page shows of the alerts an alert superseded.
SUPERSEDED_SHOWN_FIELDS = ("tier", "state", "rule_id", "rule_set_version", "local_date")


def _superseded_alerts(alert: Alert) -> list[Alert]:
    """The alerts this one superseded (:func:`risk.selectors.alert_superseded`), with what the
    page shows of them, in two queries."""
    prefetch_related_objects([alert], *alert_superseded_prefetch(fields=SUPERSEDED_SHOWN_FIELDS))
    return alert_superseded(alert=alert)


def _baseline(
    scores: list[DayScore], *, before: dt.date, min_recordings: int, min_days: int
) -> tuple[float | None, int]:
    """Mean daily mood of the days before ``before`` (never a day shown against it), and how
    many there were; None with less history than the scoring's own baseline needs."""
    history = [s for s in scores if s.day < before and s.score is not None]
    values = [float(s.score) for s in history if s.score is not None]
    if len(values) < min_recordings or len({s.day for s in history}) < min_days:
        return None, len(values)
    return sum(values) / len(values), len(values)


def alert_detail(*, actor: Actor, alert: Alert, today: dt.date | None = None) -> AlertDetail:
    """What fired, its evidence (and that of the earlier alerts it superseded), the history, and
    the patient's recent scores against their baseline. Recorded as an access event (one event:
    the superseded alerts' evidence is part of this page's read of the patient)."""
    access_record(
        actor=actor,
        action=ALERT_VIEW,
        patient_id=alert.patient_id,
        resource_type="Alert",
        resource_id=alert.pk,
    )
    patient = alert.patient
    today = today or _today(patient)
    superseded = _superseded_alerts(alert)
    items: dict[uuid.UUID, list[EvidenceView]] = defaultdict(list)
    for item in AlertEvidence.objects.filter(
        alert_id__in=[alert.pk, *(a.pk for a in superseded)], patient_id=alert.patient_id
    ).order_by("created_at", "id"):
        items[item.alert_id].append(_evidence_view(item))
    # The days shown are [since, today]; the baseline is the window of days just before them.
    since = today - dt.timedelta(days=RECENT_DAYS)
    config = baseline_config()
    baseline_from = since - dt.timedelta(days=config.days)
    scores = mood_scores(patient_ids=[patient.pk], since=baseline_from, until=today).get(
        patient.pk, []
    )
    baseline, baseline_count = _baseline(
        scores, before=since, min_recordings=config.min_recordings, min_days=config.min_days
    )
    videos = list(
        VideoSubmission.objects.filter(patient=patient, local_date__gte=since).order_by(
            "-created_at"
        )
    )
    return AlertDetail(
        alert=alert,
        deterministic=bool((alert.evidence or {}).get("deterministic")),
        evidence=items.get(alert.pk, []),
        transitions=list(
            AlertTransition.objects.filter(alert=alert).select_related("actor").order_by("at", "id")
        ),
        baseline=baseline,
        recent_scores=[
            (s, None if s.score is None or baseline is None else s.score - baseline)
            for s in scores
            if s.day >= since
        ],
        questionnaires=list(
            QuestionnaireResponse.objects.filter(patient=patient, local_date__gte=since)
            .only("id", "patient_id", "instrument", "total", "severity", "item9", "local_date")
            .order_by("-local_date", "-created_at")
        ),
        videos=videos,
        text_analyses=_text_analyses(patient, since),
        quality_flags=_quality_flags(videos),
        superseded=[SupersededView(alert=a, evidence=items.get(a.pk, [])) for a in superseded],
        baseline_from=baseline_from,
        baseline_until=since - dt.timedelta(days=1),
        baseline_count=baseline_count,
        baseline_min_recordings=config.min_recordings,
        baseline_min_days=config.min_days,
    )


# --- patient timeline ---------------------------------------------------------------------------
def _today(patient: Patient) -> dt.date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(patient.timezone)).date()


@dataclass
class Timeline:
    patient: Patient
    access: str
    start: dt.date
    end: dt.date
    days: int
    scores: list[DayScore]
    points: list[MoodPoint]
    markers: list[Marker]
    alerts: list[Alert]
    questionnaires: list[QuestionnaireResponse]
    diary: list[DiaryEntry]
    diary_text_shared: bool
    videos: list[VideoSubmission]
    quality_flags: dict[uuid.UUID, list[str]]


def patient_timeline(
    *,
    actor: Actor,
    patient: Patient,
    access: str,
    days: int = TIMELINE_DAYS,
    today: dt.date | None = None,
) -> Timeline:
    """Ninety days of a patient: daily scores (with gaps), questionnaires, alerts, diary entries
    (their text only with the patient's care-team sharing consent) and videos. Recorded; a
    break-glass read is flagged as such."""
    access_record(
        actor=actor,
        action="portal.patient.view",
        patient_id=patient.pk,
        resource_type="Patient",
        resource_id=patient.pk,
        break_glass=access == "break_glass",
    )
    end = today or _today(patient)
    start = end - dt.timedelta(days=days - 1)
    scores = mood_scores(patient_ids=[patient.pk], since=start, until=end).get(patient.pk, [])
    by_day = {s.day: s for s in scores}
    points = [
        MoodPoint(day=day, score=s.score, low=s.low, high=s.high)
        if (s := by_day.get(day)) is not None
        else MoodPoint(day=day, score=None)
        for day in (start + dt.timedelta(days=i) for i in range(days))
    ]
    alerts = list(
        Alert.objects.filter(patient=patient, local_date__gte=start)
        .select_related("assigned_to__user")
        .order_by("-created_at")
    )
    markers = [
        Marker(day=a.local_date, tier=a.tier, label=f"{a.get_tier_display()} alert: {a.rule_id}")
        for a in alerts
    ]
    shared = consent_has(patient=patient, scope=ConsentScope.CARE_TEAM_SHARING)
    diary = DiaryEntry.objects.filter(patient=patient, local_date__gte=start)
    videos = list(
        VideoSubmission.objects.filter(patient=patient, local_date__gte=start).order_by(
            "-created_at"
        )
    )
    return Timeline(
        patient=patient,
        access=access,
        start=start,
        end=end,
        days=days,
        scores=sorted(scores, key=lambda s: s.day, reverse=True),
        points=points,
        markers=markers,
        alerts=alerts,
        questionnaires=list(
            QuestionnaireResponse.objects.filter(patient=patient, local_date__gte=start)
            .only("id", "patient_id", "instrument", "total", "severity", "item9", "local_date")
            .order_by("-local_date", "-created_at")
        ),
        diary=list(
            (diary if shared else diary.defer("text")).order_by("-local_date", "-created_at")
        ),
        diary_text_shared=shared,
        videos=videos,
        quality_flags=_quality_flags(videos),
    )


# --- caseload -----------------------------------------------------------------------------------
@dataclass
class CaseloadRow:
    patient: Patient
    open_alerts: int
    top_tier: str
    last_score: DayScore | None
    trend: float | None
    last_contact: dt.datetime | None
    adherence_days: int
    adherence_of: int = ADHERENCE_DAYS


def caseload_patients(*, clinician: Clinician) -> QuerySet[Patient]:
    """The clinician's patients (treating, or in one of their care teams), with their open alert
    count, most urgent first."""
    open_alerts = Alert.objects.filter(patient=OuterRef("pk"), state__in=ACTIVE_STATES)
    red = open_alerts.filter(tier=Tier.RED).values("patient").annotate(n=Count("pk")).values("n")
    count = open_alerts.values("patient").annotate(n=Count("pk")).values("n")
    return (
        Patient.objects.filter(organisation_id=clinician.organisation_id, erased_at__isnull=True)
        .filter(Q(treating_clinician=clinician) | Q(care_team__in=clinician.care_teams.all()))
        .distinct()
        .only(
            "id",
            "pseudonym",
            "organisation_id",
            "treating_clinician_id",
            "care_team_id",
            "timezone",
        )
        .annotate(
            open_alerts=Coalesce(Subquery(count[:1]), 0),
            red_alerts=Coalesce(Subquery(red[:1]), 0),
        )
        .order_by("-red_alerts", "-open_alerts", "pseudonym")
    )


def caseload_rows(
    *, actor: Actor, clinician: Clinician, patients: list[Patient]
) -> list[CaseloadRow]:
    """One row per patient of the page: a fixed handful of grouped queries, whatever the count.
    Recorded first: the page (``portal.caseload``) and each patient shown, in their access trail
    (one event each: at most a page of them)."""
    ids = [p.pk for p in patients]
    _list_read_record(actor=actor, action=CASELOAD_READ, resource_type="Patient", patient_ids=ids)
    if not ids:
        return []
    # Each patient's own local day (their "today" may differ from UTC's by a day either way);
    # the grouped queries below span every patient's window and each row keeps its own days.
    todays = {p.pk: _today(p) for p in patients}
    first_day, last_day = min(todays.values()), max(todays.values())
    since = first_day - dt.timedelta(days=ADHERENCE_DAYS - 1)
    tiers: dict[uuid.UUID, str] = {}
    rank = {Tier.RED: 3, Tier.ORANGE: 2, Tier.YELLOW: 1}
    for pid, tier in Alert.objects.filter(patient_id__in=ids, state__in=ACTIVE_STATES).values_list(
        "patient_id", "tier"
    ):
        if pid not in tiers or rank[Tier(tier)] > rank[Tier(tiers[pid])]:
            tiers[pid] = tier
    scores = mood_scores(patient_ids=ids, since=first_day - dt.timedelta(days=14), until=last_day)
    last_contact: dict[uuid.UUID, dt.datetime] = {}
    active_days: dict[uuid.UUID, set[dt.date]] = defaultdict(set)
    for model in (DiaryEntry, VideoSubmission, QuestionnaireResponse):
        for pid, latest in (
            model.objects.filter(patient_id__in=ids)
            .values("patient_id")
            .annotate(latest=Max("created_at"))
            .values_list("patient_id", "latest")
        ):
            if pid not in last_contact or latest > last_contact[pid]:
                last_contact[pid] = latest
        for pid, day in (
            model.objects.filter(
                patient_id__in=ids, local_date__gte=since, local_date__lte=last_day
            )
            .values_list("patient_id", "local_date")
            .distinct()
        ):
            if 0 <= (todays[pid] - day).days < ADHERENCE_DAYS:
                active_days[pid].add(day)
    rows = []
    for patient in patients:
        today = todays[patient.pk]
        own = [s for s in scores.get(patient.pk, []) if 0 <= (today - s.day).days <= 14]
        scored = [s for s in own if s.score is not None]
        rows.append(
            CaseloadRow(
                patient=patient,
                open_alerts=getattr(patient, "open_alerts", 0),
                top_tier=tiers.get(patient.pk, ""),
                last_score=scored[-1] if scored else None,
                trend=_trend(own, today),
                last_contact=last_contact.get(patient.pk),
                adherence_days=len(active_days.get(patient.pk, ())),
            )
        )
    return rows
