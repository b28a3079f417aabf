"""Request plumbing: request ids, size limits, security headers, clean 503s."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("vigil_request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

Handler = Callable[[HttpRequest], HttpResponse]


def current_request_id() -> str:
    return _request_id.get()


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


def _json_error(
    code: str, message: str, status: int, *, crisis: dict[str, Any] | None = None
) -> JsonResponse:
    body: dict[str, Any] = {
        "error": {
            "code": code,
            "message": message,
            "status": status,
            "request_id": current_request_id(),
        }
    }
    if crisis is not None:
        body["error"]["crisis"] = crisis
    return JsonResponse(body, status=status)


class RequestIdMiddleware:
    """Gives every request an id (or keeps a well-formed one from the client) for logs and errors.

    It also refuses bodies larger than the limits before anything reads them.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        rid = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = _request_id.set(rid)
        try:
            response = self._too_large(request) or self.get_response(request)
            response["X-Request-ID"] = rid
            return response
        finally:
            _request_id.reset(token)

    @staticmethod
    def _too_large(request: HttpRequest) -> HttpResponse | None:
        is_multipart = request.content_type == "multipart/form-data"
        limit = (
            settings.VIGIL_VIDEO_MAX_BYTES + 64 * 1024
            if is_multipart
            else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if 0 <= length <= limit:
            return None
        if request.method == "POST" and is_help_request(request):
            # The help button never refuses a press: its body is optional (a key and a time), so
            # one that is too large or has a broken length is left unread, never a 413/400.
            request.META["CONTENT_LENGTH"] = "0"
            return None
        if length < 0:
            return _json_error("bad_request", "Invalid Content-Length.", 400)
        return _json_error(
            "payload_too_large", f"The request body is larger than {limit} bytes.", 413
        )


class SecurityHeadersMiddleware:
    """Headers Django does not set by itself: a strict CSP and a restrictive permissions policy."""

    CSP = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.CSP)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.path.startswith("/api/"):
            response.setdefault("Cache-Control", "no-store")
        return response


class DatabaseUnavailableMiddleware:
    """A database that is down or restarting gives a clean 503 in the error shape, never a trace."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            logging.getLogger("vigil.errors").warning(
                "database unavailable: %s", exception.__class__.__name__
            )
            response = _json_error(
                "service_unavailable",
                "The service is briefly unavailable. Please retry.",
                503,
                crisis=help_unrecorded_crisis(request),
            )
            response["Retry-After"] = "5"
            return response
        return None


def is_help_request(request: HttpRequest) -> bool:
    """Whether the request is for the help button (URL ``api:help``, resolved like Django does,
    so a script prefix or a trailing slash changes nothing). Asked only on refusal and error
    paths, never on a normal request."""
    from django.urls import Resolver404, resolve

    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return match.view_name == "api:help"


def help_unrecorded_crisis(request: HttpRequest) -> dict[str, Any] | None:
    """For the help button's endpoint: the crisis resources to put in an error answer (the press
    could not be recorded, but the patient must still see where to get help); None elsewhere."""
    if not is_help_request(request):
        return None
    from screening.crisis import crisis_resources_unrecorded

    return crisis_resources_unrecorded(
        accept_language=request.META.get("HTTP_ACCEPT_LANGUAGE", ""),
        default_locale=settings.LANGUAGE_CODE,
    )
