"""factory_boy factories. People are created through the real services (keys, roles)."""

from __future__ import annotations

import datetime as dt
import uuid

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
