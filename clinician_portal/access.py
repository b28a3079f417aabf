"""Who may open a portal page: a signed-in (password + TOTP) clinician or auditor, active within
the idle timeout. Errors render as portal pages (HTML), with the statuses the API would use.

- Not signed in (or only half-way): a redirect to the sign-in page (401 for the queue's
  background refresh, whose script then goes to the sign-in page).
- Idle longer than ``VIGIL_PORTAL_IDLE_TIMEOUT_SECONDS``: signed out (audited) and redirected.
  The queue's background refresh (header ``X-Portal-Poll``) does not count as activity, so an
  unattended screen still signs out.
- Wrong role: 403, recorded as a denied access.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from clinician_portal.services import idle_timeout_seconds, portal_logout_record
from config.errors import NotFound, PermissionDenied, ValidationFailed, VigilError
from privacy.audit import Actor, access_record, client_ip
from privacy.choices import AccessOutcome, Role

SESSION_MFA = "portal_mfa"
SESSION_LAST_SEEN = "portal_last_seen"
SESSION_PENDING = "portal_pending_user"
POLL_HEADER = "X-Portal-Poll"

View = Callable[..., HttpResponse]


def error_page(request: HttpRequest, *, status: int, title: str, message: str) -> HttpResponse:
    return render(
        request,
        "clinician_portal/error.html",
        {"title": title, "message": message, "status": status},
        status=status,
    )


def _to_login(request: HttpRequest, *, idle: bool = False) -> HttpResponse:
    if request.headers.get(POLL_HEADER):
        return HttpResponse(status=401)
    params = {"next": request.get_full_path()} if request.method == "GET" else {}
    if idle:
        params["idle"] = "1"
    url = reverse("portal:login") + ("?" + urlencode(params) if params else "")
    return HttpResponseRedirect(url)


def portal_headers(view: View) -> View:
    """No caching, and ``Referrer-Policy: same-origin`` instead of the site's ``no-referrer``:
    with ``no-referrer`` browsers send ``Origin: null`` on form posts, which Django's CSRF
    check (rightly) refuses. Same-origin still sends nothing to other sites."""

    @functools.wraps(view)
    @never_cache
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "same-origin"
        return response

    return wrapped


def portal_signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and request.session.get(SESSION_MFA))


def portal_view(*roles: str) -> Callable[[View], View]:
    """Guard a portal view: signed in with both factors, not idle, one of ``roles``."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        @portal_headers
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not portal_signed_in(request):
                return _to_login(request)
            now = time.time()
            last = request.session.get(SESSION_LAST_SEEN)
            if not isinstance(last, (int, float)) or now - last > idle_timeout_seconds():
                user = request.user
                portal_logout_record(user=user, ip=client_ip(request), reason="idle")  # type: ignore[arg-type]
                logout(request)
                return _to_login(request, idle=True)
            if not request.headers.get(POLL_HEADER):
                request.session[SESSION_LAST_SEEN] = now
            if request.user.role not in roles:  # type: ignore[union-attr]
                access_record(
                    actor=Actor.from_request(request),
                    action=f"portal.{view.__name__}",
                    outcome=AccessOutcome.DENIED,
                    resource_type="PortalPage",
                    status_code=403,
                    reason="wrong_role",
                )
                return error_page(
                    request,
                    status=403,
                    title="Not for your role",
                    message="This page is not part of your role's portal.",
                )
            try:
                return view(request, *args, **kwargs)
            except NotFound as exc:
                return error_page(request, status=404, title="Not found", message=exc.message)
            except PermissionDenied as exc:
                return error_page(request, status=403, title="Not allowed", message=exc.message)
            except ValidationFailed as exc:
                fields = exc.extra.get("fields") or {}
                detail = " ".join(m for msgs in fields.values() for m in msgs) or exc.message
                return error_page(request, status=400, title="Check the form", message=detail)
            except VigilError as exc:
                return error_page(
                    request, status=exc.status, title="Could not do that", message=exc.message
                )

        return wrapped

    return decorate


clinician_view = portal_view(Role.CLINICIAN)
auditor_view = portal_view(Role.AUDITOR)
any_staff_view = portal_view(Role.CLINICIAN, Role.AUDITOR)
