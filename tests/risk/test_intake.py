"""risk.intake: producers hand over scores, risk decides the tier (only risk/ turns scores into
tiers). A text model's at-risk decision suggests yellow; "low risk" fires nothing."""

from __future__ import annotations

import datetime as dt
import pathlib

from risk import intake
from risk.models import Alert

TODAY = dt.date(2026, 11, 20)


def _assess(rw, *, at_risk: bool, probability: float, ref: str = "entry-1"):
    return intake.text_risk_assessed(
        patient=rw.patient,
        local_date=TODAY,
        model="vigil-text",
        model_version="test-1",
        source_ref=ref,
        at_risk=at_risk,
        probability=probability,
    )


def test_an_at_risk_text_opinion_raises_a_yellow_model_opinion(rw):
    _assess(rw, at_risk=True, probability=0.61)
    alert = Alert.objects.get(patient=rw.patient)
    assert (alert.tier, alert.rule_id) == (intake.TEXT_AT_RISK_TIER, "model_opinion")
    assert alert.tier == "yellow"
    (item,) = alert.evidence_items.all()
    assert item.event_kind == "model_assessment"
    event = item.snapshot["event"]
    assert (event["model"], event["model_version"]) == ("vigil-text", "test-1")
    assert event["score"] == 0.61


def test_a_low_risk_text_opinion_fires_nothing(rw):
    _assess(rw, at_risk=False, probability=0.99)  # the decision counts, not the raw number
    assert not Alert.objects.filter(patient=rw.patient).exists()


def test_screening_names_no_tier():
    """The producers hand over decisions and scores; no tier is written in screening/."""
    root = pathlib.Path(__file__).resolve().parents[2] / "screening"
    offenders = [
        str(path.relative_to(root.parent))
        for path in root.rglob("*.py")
        if "suggested_tier" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
