"""factory_boy factories. People are created through the real services (keys, roles)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import factory
from django.utils import timezone

from screening.models import CareTeam, Clinician, DiaryEntry, Organisation, Patient
from screening.services.people import auditor_create, clinician_create, patient_create

PASSWORD = "correct-horse-battery-staple"


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Clinic {n}")
    slug = factory.Sequence(lambda n: f"clinic-{n}")
    timezone = "America/New_York"


class CareTeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CareTeam

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


def make_clinician(*, team: CareTeam, username: str | None = None) -> Clinician:
    return clinician_create(
        organisation=team.organisation,
        username=username or f"clin-{uuid.uuid4().hex[:8]}",
        password=PASSWORD,
        care_teams=[team],
    )


def make_auditor(*, organisation: Organisation, username: str | None = None):  # type: ignore[no-untyped-def]
    return auditor_create(
        organisation=organisation,
        username=username or f"aud-{uuid.uuid4().hex[:8]}",
        password=PASSWORD,
    )


def make_patient(
    *,
    team: CareTeam,
    clinician: Clinician,
    username: str | None = None,
    tz: str = "America/New_York",
    locale: str = "en-US",
    display_name: str = "Test Patient",
) -> Patient:
    return patient_create(
        organisation=team.organisation,
        treating_clinician=clinician,
        care_team=team,
        username=username or f"pat-{uuid.uuid4().hex[:8]}",
        password=PASSWORD,
        display_name=display_name,
        timezone=tz,
        locale=locale,
    )


class DiaryEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DiaryEntry

    idempotency_key = factory.LazyFunction(uuid.uuid4)
    text = factory.Faker("sentence")
    client_timestamp = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=5))
    timezone = "America/New_York"
    local_date = factory.LazyAttribute(lambda o: o.client_timestamp.date())


def make_superseded_alert(by: Any, *, tier: str, rule_id: str, events: list[dict[str, Any]]) -> Any:
    """An earlier, lower-tier alert of ``by``'s patient that ``by`` superseded, with one evidence
    item per event snapshot (``event["kind"]`` is the item's kind)."""
    from risk.models import Alert, AlertEvidence

    lower = Alert.objects.create(
        patient_id=by.patient_id,
        organisation_id=by.organisation_id,
        tier=tier,
        state="superseded",
        rule_set_version=by.rule_set_version,
        rule_set_hash=by.rule_set_hash,
        rule_id=rule_id,
        evidence={},
        local_date=by.local_date,
        ack_deadline=timezone.now(),
        superseded_by=by,
    )
    for event in events:
        AlertEvidence.objects.create(
            alert=lower,
            patient_id=lower.patient_id,
            rule_id=rule_id,
            rule_set_version=lower.rule_set_version,
            tier=tier,
            event_kind=event["kind"],
            dedupe_key=f"{event['kind']}:{uuid.uuid4()}",
            local_date=lower.local_date,
            snapshot={"event": event},
        )
    return lower


def make_day_moods(patient: Any, *, today: dt.date, values: dict[int, float]) -> None:
    """The rules' per-day state with a fused mood on each day ``days before today -> mood``."""
    from risk.models import PatientDaySignals

    for ago, mood in values.items():
        PatientDaySignals.objects.create(
            patient=patient,
            local_date=today - dt.timedelta(days=ago),
            mood=mood,
            mood_confidence=0.8,
        )
