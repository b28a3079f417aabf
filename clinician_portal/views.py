"""Portal views: read the form or query, call one service or selector, render a template."""

from __future__ import annotations

import csv
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib.auth import login, logout
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from clinician_portal import selectors
from clinician_portal.access import (
    SESSION_LAST_SEEN,
    SESSION_MFA,
    SESSION_PENDING,
    any_staff_view,
    auditor_view,
    clinician_view,
    portal_headers,
    portal_signed_in,
)
from clinician_portal.charts import mood_chart_svg
from clinician_portal.services import (
    LockedOut,
    LoginRefused,
    idle_timeout_seconds,
    portal_logout_record,
    portal_password_check,
    portal_totp_check,
    queue_refresh_seconds,
    totp_enrolment_start,
    totp_is_enrolled,
)
from privacy.api import selectors as audit_selectors
from privacy.audit import Actor, access_record, client_ip
from privacy.breakglass import break_glass_open, break_glass_review
from privacy.chain_verify import ChainVerification, audit_chain_last, audit_chain_verify
from privacy.choices import AccessOutcome, ActorRole, ConsentScope, Role
from risk.choices import AlertState, Disposition, Tier
from risk.errors import AlertTransitionInvalid, ResolutionIncomplete
from risk.selectors import alert_assignees_for
from risk.services import alert_acknowledge, alert_escalate_manual, alert_reassign, alert_resolve
from screening.models import Auditor, Clinician, User

QUEUE_LIMIT = 200
CASELOAD_PAGE = 50
AUDIT_PAGE = 50


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request)


def _clinician(request: HttpRequest) -> Clinician:
    return Clinician.objects.select_related("organisation").get(user_id=int(request.user.pk or 0))


def _auditor(request: HttpRequest) -> Auditor:
    return Auditor.objects.select_related("organisation").get(user_id=int(request.user.pk or 0))


# --- sign in -------------------------------------------------------------------------------------
class PasswordForm(forms.Form):
    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        max_length=256, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class CodeForm(forms.Form):
    code = forms.CharField(
        label="6-digit code",
        max_length=8,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9 ]*",
                "autofocus": True,
            }
        ),
    )


def _home(user: Any) -> str:
    if getattr(user, "role", "") == Role.AUDITOR:
        return reverse("portal:audit-events")
    return reverse("portal:queue")


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/portal/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@portal_headers
def login_view(request: HttpRequest) -> HttpResponse:
    """Step 1: username and password."""
    if portal_signed_in(request):
        return redirect(_home(request.user))
    form = PasswordForm(request.POST or None)
    error = ""
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            result = portal_password_check(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                ip=client_ip(request),
            )
        except (LoginRefused, LockedOut) as exc:
            error, status = exc.message, exc.status
        else:
            request.session.cycle_key()
            request.session[SESSION_PENDING] = {"id": result.user.pk, "at": time.time()}
            url = reverse("portal:login-verify")
            nxt = _safe_next(request, "")
            return HttpResponseRedirect(url + (f"?next={nxt}" if nxt else ""))
    elif request.method == "POST":
        error, status = "Enter your username and password.", 400
    return render(
        request,
        "clinician_portal/login.html",
        {
            "form": form,
            "error": error,
            "idle": request.GET.get("idle") == "1",
            "next": request.GET.get("next", ""),
        },
        status=status,
    )


PENDING_SECONDS = 5 * 60


def _pending_user(request: HttpRequest) -> User | None:
    pending = request.session.get(SESSION_PENDING)
    if not isinstance(pending, dict) or time.time() - float(pending.get("at", 0)) > PENDING_SECONDS:
        return None
    user_id = pending.get("id")
    if not isinstance(user_id, int):
        return None
    return User.objects.filter(pk=user_id, is_active=True).first()


@portal_headers
def login_verify_view(request: HttpRequest) -> HttpResponse:
    """Step 2: the TOTP code. On a first sign-in, the secret is shown once to enrol."""
    user = _pending_user(request)
    if user is None:
        return redirect("portal:login")
    form = CodeForm(request.POST or None)
    error, status = "", 200
    enrolment: tuple[str, str] | None = None
    enrolled = totp_is_enrolled(user=user)
    if request.method == "POST" and form.is_valid():
        try:
            portal_totp_check(user=user, code=form.cleaned_data["code"], ip=client_ip(request))
        except (LoginRefused, LockedOut) as exc:
            error, status = exc.message, exc.status
            if isinstance(exc, LockedOut):
                request.session.pop(SESSION_PENDING, None)
        else:
            request.session.pop(SESSION_PENDING, None)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            request.session[SESSION_MFA] = True
            request.session[SESSION_LAST_SEEN] = time.time()
            request.session.set_expiry(max(idle_timeout_seconds(), 60))
            return HttpResponseRedirect(_safe_next(request, _home(user)))
    elif request.method == "POST":
        error, status = "Enter the 6-digit code.", 400
    if not enrolled and request.method == "GET":
        enrolment = totp_enrolment_start(user=user)
    return render(
        request,
        "clinician_portal/login_verify.html",
        {
            "form": form,
            "error": error,
            "enrolment": enrolment,
            "enrolled": enrolled,
            "next": request.GET.get("next", ""),
        },
        status=status,
    )


@require_POST
@portal_headers
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        portal_logout_record(user=request.user, ip=client_ip(request), reason="user")
    logout(request)
    return redirect("portal:login")


@any_staff_view
def home_view(request: HttpRequest) -> HttpResponse:
    return redirect(_home(request.user))


# --- alert queue ---------------------------------------------------------------------------------
def _queue_context(
    request: HttpRequest, clinician: Clinician, *, refresh: bool = False
) -> dict[str, Any]:
    tier = request.GET.get("tier", "")
    state = request.GET.get("state", "")
    assignee = request.GET.get("assignee", "")
    tier = tier if tier in Tier.values else ""
    state = state if state in (AlertState.OPEN, AlertState.ACKNOWLEDGED) else ""
    rows, truncated = selectors.alert_queue(
        actor=_actor(request),
        clinician=clinician,
        tier=tier,
        state=state,
        assignee=assignee,
        limit=QUEUE_LIMIT,
        refresh=refresh,
    )
    now = timezone.now()
    items = [
        {
            "alert": a,
            "seconds_left": int((a.ack_deadline - now).total_seconds()),
            "breached": a.state == AlertState.OPEN and a.ack_deadline <= now,
        }
        for a in rows
    ]
    return {
        "items": items,
        "truncated": truncated,
        "limit": QUEUE_LIMIT,
        "tier": tier,
        "state": state,
        "assignee": assignee,
        "tiers": Tier.choices,
        "states": [(AlertState.OPEN, "Open"), (AlertState.ACKNOWLEDGED, "Acknowledged")],
        "now": now,
        "refresh_seconds": queue_refresh_seconds(),
        "query": request.GET.urlencode(),
    }


@require_GET
@clinician_view
def queue_view(request: HttpRequest) -> HttpResponse:
    clinician = _clinician(request)
    return render(request, "clinician_portal/queue.html", _queue_context(request, clinician))


@require_GET
@clinician_view
def queue_fragment_view(request: HttpRequest) -> HttpResponse:
    """The queue's rows only, for the page's background refresh (not counted as activity, but
    recorded like the page)."""
    clinician = _clinician(request)
    context = _queue_context(request, clinician, refresh=True)
    return render(request, "clinician_portal/_queue_rows.html", context)


# --- alert detail and actions --------------------------------------------------------------------
class ResolveForm(forms.Form):
    disposition = forms.ChoiceField(choices=[("", "Choose…"), *Disposition.choices])
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=4000)


class ReassignForm(forms.Form):
    assignee = forms.TypedChoiceField(coerce=int, choices=[])


def _detail_context(
    request: HttpRequest, clinician: Clinician, alert_id: uuid.UUID
) -> dict[str, Any]:
    actor = _actor(request)
    alert = selectors.alert_for_clinician(actor=actor, clinician=clinician, alert_id=alert_id)
    detail = selectors.alert_detail(actor=actor, alert=alert)
    assignees = list(alert_assignees_for(alert=alert))
    now = timezone.now()
    return {
        "detail": detail,
        "alert": alert,
        "assignees": assignees,
        "resolve_form": ResolveForm(),
        "dispositions": Disposition.choices,
        "active": alert.state in (AlertState.OPEN, AlertState.ACKNOWLEDGED),
        "seconds_left": int((alert.ack_deadline - now).total_seconds()),
        "breached": alert.state == AlertState.OPEN and alert.ack_deadline <= now,
    }


@require_GET
@clinician_view
def alert_detail_view(request: HttpRequest, alert_id: uuid.UUID) -> HttpResponse:
    context = _detail_context(request, _clinician(request), alert_id)
    return render(request, "clinician_portal/alert_detail.html", context)


def _after_action(request: HttpRequest, alert_id: uuid.UUID, message: str) -> HttpResponse:
    from django.contrib import messages

    messages.success(request, message)
    return redirect("portal:alert", alert_id=alert_id)


def _may_act(request: HttpRequest, alert_id: uuid.UUID, name: str) -> None:
    """Visibility first: another clinic's alert is a 404, one outside the clinician's view a 403,
    whatever the action; a refusal is recorded under the attempted action (``name``, a key of
    :data:`selectors.ALERT_ACTIONS`)."""
    selectors.alert_for_clinician(
        actor=_actor(request),
        clinician=_clinician(request),
        alert_id=alert_id,
        action=selectors.ALERT_ACTIONS[name],
    )


def _action(request: HttpRequest, alert_id: uuid.UUID, run: Any, done: str) -> HttpResponse:
    """Run an action the clinician may take (checked first, by :func:`_may_act`)."""
    try:
        run()
    except AlertTransitionInvalid as exc:
        from django.contrib import messages

        messages.error(request, exc.message)
        return redirect("portal:alert", alert_id=alert_id)
    return _after_action(request, alert_id, done)


@require_POST
@clinician_view
def alert_acknowledge_view(request: HttpRequest, alert_id: uuid.UUID) -> HttpResponse:
    actor = _actor(request)
    _may_act(request, alert_id, "acknowledge")
    return _action(
        request,
        alert_id,
        lambda: alert_acknowledge(actor=actor, alert_id=alert_id),
        "Alert acknowledged.",
    )


@require_POST
@clinician_view
def alert_escalate_view(request: HttpRequest, alert_id: uuid.UUID) -> HttpResponse:
    actor = _actor(request)
    _may_act(request, alert_id, "escalate")
    return _action(
        request,
        alert_id,
        lambda: alert_escalate_manual(actor=actor, alert_id=alert_id),
        "Alert escalated to the next level.",
    )


@require_POST
@clinician_view
def alert_reassign_view(request: HttpRequest, alert_id: uuid.UUID) -> HttpResponse:
    actor = _actor(request)
    _may_act(request, alert_id, "reassign")  # before the form: a refusal is not a 400
    raw = request.POST.get("assignee", "")
    if not raw.isdigit():
        from config.errors import ValidationFailed

        raise_fields = {"assignee": ["Choose a clinician."]}
        raise ValidationFailed(fields=raise_fields)
    return _action(
        request,
        alert_id,
        lambda: alert_reassign(actor=actor, alert_id=alert_id, clinician_id=int(raw)),
        "Alert reassigned.",
    )


@require_POST
@clinician_view
def alert_resolve_view(request: HttpRequest, alert_id: uuid.UUID) -> HttpResponse:
    actor = _actor(request)
    clinician = _clinician(request)
    _may_act(request, alert_id, "resolve")  # before the form: a refusal is not a 400
    form = ResolveForm(request.POST)
    try:
        if not form.is_valid():
            raise ResolutionIncomplete(
                fields={k: [str(m) for m in v] for k, v in form.errors.items()}
            )
        return _action(
            request,
            alert_id,
            lambda: alert_resolve(
                actor=actor,
                alert_id=alert_id,
                disposition=form.cleaned_data["disposition"],
                note=form.cleaned_data["note"],
            ),
            "Alert resolved.",
        )
    except ResolutionIncomplete as exc:
        context = _detail_context(request, clinician, alert_id)
        context["resolve_form"] = form
        context["resolve_errors"] = exc.extra.get("fields", {})
        return render(request, "clinician_portal/alert_detail.html", context, status=400)


# --- patients ------------------------------------------------------------------------------------
@require_GET
@clinician_view
def caseload_view(request: HttpRequest) -> HttpResponse:
    clinician = _clinician(request)
    paginator = Paginator(selectors.caseload_patients(clinician=clinician), CASELOAD_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    rows = selectors.caseload_rows(
        actor=_actor(request), clinician=clinician, patients=list(page.object_list)
    )
    return render(request, "clinician_portal/caseload.html", {"rows": rows, "page": page})


@require_GET
@clinician_view
def patient_view(request: HttpRequest, pseudonym: str) -> HttpResponse:
    clinician = _clinician(request)
    actor = _actor(request)
    try:
        patient, access = selectors.patient_for_clinician(
            actor=actor, clinician=clinician, pseudonym=pseudonym
        )
    except selectors.PermissionDenied:
        return render(
            request,
            "clinician_portal/break_glass.html",
            {"pseudonym": pseudonym, "form": BreakGlassForm(), "denied": True},
            status=403,
        )
    timeline = selectors.patient_timeline(actor=actor, patient=patient, access=access)
    chart = mood_chart_svg(
        points=timeline.points, markers=timeline.markers, start=timeline.start, days=timeline.days
    )
    return render(
        request,
        "clinician_portal/patient.html",
        {"t": timeline, "chart": chart, "has_scores": bool(timeline.scores)},
    )


class BreakGlassForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        min_length=10,
        max_length=500,
        help_text="Why you need this record now. Recorded and reviewed by an auditor.",
    )


@require_POST
@clinician_view
def break_glass_view(request: HttpRequest, pseudonym: str) -> HttpResponse:
    clinician = _clinician(request)
    patient = selectors.patient_of_clinic(
        actor=_actor(request),
        clinician=clinician,
        pseudonym=pseudonym,
        action="break_glass.open",
    )
    form = BreakGlassForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "clinician_portal/break_glass.html",
            {"pseudonym": pseudonym, "form": form, "denied": True},
            status=400,
        )
    break_glass_open(
        actor=_actor(request),
        clinician=clinician,
        patient=patient,
        reason=form.cleaned_data["reason"],
    )
    return redirect("portal:patient", pseudonym=pseudonym)


# --- auditor console -----------------------------------------------------------------------------
class EventFilterForm(forms.Form):
    patient = forms.CharField(required=False, max_length=32, label="Patient (pseudonym)")
    actor = forms.CharField(
        required=False, max_length=150, label="Actor (staff username or patient pseudonym)"
    )
    role = forms.ChoiceField(
        required=False, choices=[("", "Any"), *ActorRole.choices], label="Actor role"
    )
    ip = forms.GenericIPAddressField(required=False, label="Client IP (not signed in)")
    action = forms.CharField(required=False, max_length=64)
    outcome = forms.ChoiceField(required=False, choices=[("", "Any"), *AccessOutcome.choices])
    break_glass = forms.ChoiceField(
        required=False, choices=[("", "Any"), ("1", "Break-glass only"), ("0", "Not break-glass")]
    )
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class ConsentFilterForm(forms.Form):
    patient = forms.CharField(required=False, max_length=32, label="Patient (pseudonym)")
    scope = forms.ChoiceField(required=False, choices=[("", "Any"), *ConsentScope.choices])
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


def _day_start(day: dt.date | None) -> dt.datetime | None:
    if day is None:
        return None
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _day_after(day: dt.date | None) -> dt.datetime | None:
    if day is None:
        return None
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)


def _page(request: HttpRequest, rows: Any) -> tuple[list[Any], int, bool]:
    """A page of ``rows`` without counting them all (offset + one extra row)."""
    try:
        number = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        number = 1
    offset = (number - 1) * AUDIT_PAGE
    chunk = list(rows[offset : offset + AUDIT_PAGE + 1])
    return chunk[:AUDIT_PAGE], number, len(chunk) > AUDIT_PAGE


def _filter_errors(form: forms.Form) -> list[str]:
    """Each invalid filter, named by its label (``Since: Enter a valid date.``)."""
    return [
        f"{form[name].label if name in form.fields else name}: {message}"
        for name, messages in form.errors.items()
        for message in messages
    ]


def _bad_filters(request: HttpRequest, template: str, form: forms.Form) -> HttpResponse:
    """An invalid filter is a 400: the page with its form and the errors, nothing listed (and
    nothing exported). Ignoring the bad value, or every filter, would list more than was asked."""
    return render(
        request,
        template,
        {"form": form, "filter_errors": _filter_errors(form)},
        status=400,
    )


@require_GET
@auditor_view
def audit_events_view(request: HttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET)
    if not form.is_valid():
        return _bad_filters(request, "clinician_portal/audit_events.html", form)
    filters = form.cleaned_data
    bg = filters.get("break_glass", "")
    events = audit_selectors.audit_events_list(
        actor=_actor(request),
        auditor=_auditor(request),
        patient=filters.get("patient") or None,
        actor_name=filters.get("actor") or None,
        role=filters.get("role") or None,
        ip=filters.get("ip") or None,
        action=filters.get("action") or None,
        outcome=filters.get("outcome") or None,
        break_glass=None if bg == "" else bg == "1",
        since=_day_start(filters.get("since")),
        until=_day_after(filters.get("until")),
    ).select_related("actor")
    rows, number, more = _page(request, events)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "clinician_portal/audit_events.html",
        {"form": form, "events": rows, "page": number, "more": more, "query": query.urlencode()},
    )


_CSV_RISKY = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_CSV_RISKY) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@auditor_view
def audit_consents_view(request: HttpRequest) -> HttpResponse:
    form = ConsentFilterForm(request.GET)
    if not form.is_valid():
        return _bad_filters(request, "clinician_portal/audit_consents.html", form)
    filters = form.cleaned_data
    records = audit_selectors.audit_consents_list(
        actor=_actor(request),
        auditor=_auditor(request),
        patient=filters.get("patient") or None,
        scope=filters.get("scope") or None,
        since=_day_start(filters.get("since")),
        until=_day_after(filters.get("until")),
    )
    if request.GET.get("export") == "csv":
        writer = csv.writer(_Echo())

        def lines() -> Iterator[str]:
            yield writer.writerow(
                [
                    "recorded_at",
                    "patient",
                    "scope",
                    "decision",
                    "document_version",
                    "document_sha256",
                    "source",
                    "actor_role",
                    "delete_derived",
                ]
            )
            for r in records.iterator(chunk_size=500):
                yield writer.writerow(
                    [
                        _csv_cell(v)
                        for v in (
                            r.created_at.isoformat(),
                            r.patient.pseudonym,
                            r.scope,
                            "grant" if r.granted else "withdraw",
                            r.document_version,
                            r.document_sha256,
                            r.source,
                            r.actor.role,
                            "yes" if r.delete_derived else "no",
                        )
                    ]
                )

        stream = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        stream["Content-Disposition"] = 'attachment; filename="consent-ledger.csv"'
        return stream  # type: ignore[return-value]
    rows, number, more = _page(request, records)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "clinician_portal/audit_consents.html",
        {"form": form, "records": rows, "page": number, "more": more, "query": query.urlencode()},
    )


@require_GET
@auditor_view
def audit_break_glass_view(request: HttpRequest) -> HttpResponse:
    reviewed = request.GET.get("reviewed", "")
    accesses = audit_selectors.audit_break_glass_list(
        actor=_actor(request),
        auditor=_auditor(request),
        reviewed=None if reviewed == "" else reviewed == "1",
    )
    rows, number, more = _page(request, accesses)
    return render(
        request,
        "clinician_portal/audit_break_glass.html",
        {"accesses": rows, "page": number, "more": more, "reviewed": reviewed},
    )


@require_POST
@auditor_view
def audit_break_glass_review_view(request: HttpRequest, access_id: uuid.UUID) -> HttpResponse:
    from django.contrib import messages

    actor = _actor(request)
    access = audit_selectors.audit_break_glass_get(
        actor=actor, auditor=_auditor(request), access_id=access_id
    )
    verdict = request.POST.get("verdict", "")
    if verdict not in ("appropriate", "inappropriate"):
        from config.errors import ValidationFailed

        raise ValidationFailed(fields={"verdict": ["Choose appropriate or inappropriate."]})
    break_glass_review(
        actor=actor,
        access=access,
        appropriate=verdict == "appropriate",
        note=request.POST.get("note", ""),
    )
    messages.success(request, "Review recorded.")
    return redirect("portal:audit-break-glass")


@auditor_view
def audit_chain_view(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    if request.method == "POST":
        access_record(actor=actor, action="audit.chain.verify", resource_type="AuditChain")
        result: ChainVerification | None = audit_chain_verify()
        ran = True
    else:
        access_record(actor=actor, action="audit.chain", resource_type="AuditChain")
        result = audit_chain_last()
        ran = False
    return render(request, "clinician_portal/audit_chain.html", {"result": result, "ran": ran})
