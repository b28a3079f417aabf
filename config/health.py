"""Liveness and readiness probes, and a small index page that says where to look."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
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
    status = "ok" if ready else "unavailable"
    if ready and "degraded" in checks.values():
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
