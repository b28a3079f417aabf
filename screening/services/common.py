"""Helpers shared by the input services: the patient's local day, timestamps, idempotency."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from config.errors import IdempotencyConflict, ValidationFailed
from screening.models import Patient

M = TypeVar("M", bound=models.Model)


def local_day(*, client_timestamp: dt.datetime, tz_name: str) -> dt.date:
    """The patient's calendar day: the timestamp seen on a wall clock in their time zone."""
    return client_timestamp.astimezone(zoneinfo.ZoneInfo(tz_name)).date()


@functools.cache
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def resolve_timezone(*, patient: Patient, tz_name: str | None) -> str:
    """The IANA zone to file an input under. Only names the model's own validator accepts: the
    zoneinfo loader also opens files such as ``posixrules`` or ``right/UTC`` that are not zones.
    """
    name = tz_name or patient.timezone
    try:
        if name not in _known_timezones():
            raise zoneinfo.ZoneInfoNotFoundError(name)
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(fields={"timezone": [f"Unknown time zone: {name[:64]}"]}) from None
    return name


def check_client_timestamp(client_timestamp: dt.datetime) -> None:
    """Refuse timestamps from the future (beyond clock skew) or older than the offline window."""
    if client_timestamp.tzinfo is None:
        raise ValidationFailed(fields={"client_timestamp": ["Must include a UTC offset."]})
    now = timezone.now()
    skew = dt.timedelta(seconds=settings.VIGIL_CLIENT_CLOCK_SKEW_SECONDS)
    if client_timestamp > now + skew:
        raise ValidationFailed(fields={"client_timestamp": ["Is in the future."]})
    if client_timestamp < now - dt.timedelta(days=settings.VIGIL_CLIENT_BACKDATE_DAYS):
        raise ValidationFailed(
            fields={
                "client_timestamp": [f"Is older than {settings.VIGIL_CLIENT_BACKDATE_DAYS} days."]
            }
        )


def idempotent_create(
    *,
    model: type[M],
    patient: Patient,
    idempotency_key: Any,
    create: Callable[[], M],
    same: Callable[[M], bool],
) -> tuple[M, bool]:
    """Create once per (patient, idempotency key). A retry returns the first result (``False``);
    a retry with different content is a conflict. Safe under concurrent retries.
    """
    existing = model._default_manager.filter(
        patient=patient, idempotency_key=idempotency_key
    ).first()
    if existing is None:
        try:
            with transaction.atomic():
                return create(), True
        except IntegrityError:
            existing = model._default_manager.filter(
                patient=patient, idempotency_key=idempotency_key
            ).first()
            if existing is None:
                raise
    if not same(existing):
        raise IdempotencyConflict()
    return existing, False
