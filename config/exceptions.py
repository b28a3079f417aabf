"""One JSON error shape for every error response::

    {"error": {"code": "validation_failed", "message": "...", "status": 400,
               "request_id": "...", "fields": {...}}}

``code`` is stable: clients branch on it, never on ``message``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import VigilError
from config.middleware import current_request_id, help_unrecorded_crisis

logger = logging.getLogger("vigil.errors")

_DRF_CODES: list[tuple[type[Exception], str]] = [
    (drf.NotAuthenticated, "authentication_required"),
    (drf.AuthenticationFailed, "authentication_failed"),
    (drf.PermissionDenied, "permission_denied"),
    (drf.NotFound, "not_found"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
    (drf.Throttled, "rate_limited"),
    (drf.ParseError, "malformed_request"),
    (drf.ValidationError, "validation_failed"),
]


def error_body(
    *, code: str, message: str, status: int, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": status,
        "request_id": current_request_id(),
    }
    if extra:
        body.update(extra)
    return {"error": body}


def error_response(
    *, code: str, message: str, status: int, extra: dict[str, Any] | None = None
) -> JsonResponse:
    return JsonResponse(
        error_body(code=code, message=message, status=status, extra=extra), status=status
    )


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def _as_field_errors(detail: Any) -> dict[str, Any]:
    flat = _flatten(detail)
    if isinstance(flat, dict):
        return flat
    return {"non_field_errors": flat if isinstance(flat, list) else [flat]}


def vigil_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    view = context.get("view")
    if isinstance(exc, VigilError):
        body = error_body(code=exc.code, message=exc.message, status=exc.status, extra=exc.extra)
        # A refusal may be recorded more precisely than it is answered (never the other way).
        _record_denial(request, view, getattr(exc, "audit_reason", exc.code), exc.status)
        return Response(body, status=exc.status)
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable: %s", exc.__class__.__name__)
        crisis = help_unrecorded_crisis(request) if request is not None else None
        return Response(
            error_body(
                code="service_unavailable",
                status=503,
                message="The service is briefly unavailable. Please retry.",
                extra={"crisis": crisis} if crisis is not None else None,
            ),
            status=503,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if isinstance(exc, DatabaseError):
        return None  # a real fault: let Django's 500 handler log it with the request id
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, drf.APIException):
        return response
    code = next((c for klass, c in _DRF_CODES if isinstance(exc, klass)), "error")
    extra: dict[str, Any] = {}
    if isinstance(exc, drf.ValidationError):
        message = "Some fields are invalid."
        extra["fields"] = _as_field_errors(exc.detail)
    else:
        message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else code
    wait = getattr(exc, "wait", None)
    if isinstance(exc, drf.Throttled) and wait is not None:
        extra["retry_after_seconds"] = int(wait)
    response.data = error_body(code=code, message=message, status=response.status_code, extra=extra)
    _record_denial(request, view, code, response.status_code)
    return response


def _record_denial(request: Any, view: Any, code: str, status: int) -> None:
    """Denied requests (401/403) are written to the access log, with no request content."""
    if status not in (401, 403) or request is None:
        return
    from privacy.audit import access_denied_record  # local: privacy imports config

    access_denied_record(request=request, view=view, code=code, status=status)


# Django-level handlers, so that even errors outside DRF use the same shape.
def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(code="bad_request", message="Bad request.", status=400)


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(code="permission_denied", message="Forbidden.", status=403)


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(code="not_found", message="Not found.", status=404)


def handler500(request: HttpRequest) -> JsonResponse:
    crisis = help_unrecorded_crisis(request)
    return error_response(
        code="server_error",
        message="Internal error.",
        status=500,
        extra={"crisis": crisis} if crisis is not None else None,
    )
