"""Liveness and readiness probes, and a small index page that says where to look."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET


@require_GET
def liveness(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readiness(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unavailable"
    try:
        from config.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception:
        checks["broker"] = "unavailable"
    ready = checks["database"] == "ok"
    if ready:
        checks["escalation"] = _escalation_check()
        checks.update(_overdue_checks())
    status = "ok" if ready else "unavailable"
    if ready and any(value in ("degraded", "unavailable") for value in checks.values()):
        status = "degraded"  # still serving (200); an operator must act
    return JsonResponse({"status": status, "checks": checks}, status=200 if ready else 503)


def _escalation_check() -> str:
    """ "degraded" while an open alert has nobody in its escalation chain reachable (the alert
    ids are in the error log and the admin; no count or id here, the probe is unauthenticated)."""
    try:
        from risk.choices import AlertState
        from risk.models import Alert

        stalled = Alert.objects.filter(
            state=AlertState.OPEN, unreachable_since__isnull=False
        ).exists()
    except Exception:
        return "unavailable"
    return "degraded" if stalled else "ok"


#: How late an escalation or a notification may be before the probe calls it stalled. Beat sends
#: the escalation sweep every 30 s and the outbox relay every 10 s; each due row is handled by the
#: next run, so anything this far past due means beat is not running, no worker consumes the
#: queue, or the workers are too busy to run the sweeps (their messages expire unrun).
OVERDUE_AFTER = dt.timedelta(minutes=2)


def _overdue_checks() -> dict[str, str]:
    """``escalation_sweep`` / ``notifications``: "degraded" while an open alert's escalation or a
    pending notification is more than :data:`OVERDUE_AFTER` past due. This is what shows that
    escalation has silently stopped (a forgotten ``celery beat``, a worker that does not consume
    the ``default`` queue): nothing else would, until a patient's alert went unanswered."""
    try:
        from risk.choices import AlertState, OutboxState
        from risk.models import Alert, OutboxMessage

        before = timezone.now() - OVERDUE_AFTER
        late_alert = Alert.objects.filter(
            state=AlertState.OPEN, next_escalation_at__lt=before
        ).exists()
        late_message = OutboxMessage.objects.filter(
            state=OutboxState.PENDING, next_attempt_at__lt=before
        ).exists()
    except Exception:
        return {"escalation_sweep": "unavailable", "notifications": "unavailable"}
    return {
        "escalation_sweep": "degraded" if late_alert else "ok",
        "notifications": "degraded" if late_message else "ok",
    }


@require_GET
def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "service": "Vigil",
            "api": "/api/v1/",
            "schema": "/api/schema/",
            "docs": "/api/docs/",
            "admin": "/admin/",
            "health": "/readyz",
        }
    )
