"""FHIR HTTP views: translate requests to selectors/services and answers to FHIR JSON.

Every error of these routes is an OperationOutcome (never the /api/v1 JSON error shape)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt

from clinician_portal.fhir import services
from clinician_portal.fhir.access import (
    Principal,
    break_glass_purpose,
    principal_resolve,
)
from clinician_portal.fhir.capability import capability_statement
from clinician_portal.fhir.errors import FhirError, operation_outcome
from clinician_portal.fhir.models import ExportStatus, FhirExportJob
from clinician_portal.fhir.refusals import read_refusal_find, search_refusals_find
from clinician_portal.fhir.search import (
    Query,
    count_parse,
    cursor_decode,
    cursor_encode,
    date_bounds,
    query_fingerprint,
    query_parse,
)
from clinician_portal.fhir.sources import registry
from privacy.audit import Actor, access_record, client_ip
from privacy.choices import AccessOutcome

logger = logging.getLogger("vigil.fhir")

FHIR_JSON = "application/fhir+json"
_JSON_FORMATS = {"json", "application/json", "application/fhir+json", "fhir+json"}
_XML_FORMATS = {"xml", "application/xml", "application/fhir+xml", "text/xml"}


def base_url(request: HttpRequest) -> str:
    configured = getattr(settings, "VIGIL_FHIR_BASE_URL", "") or ""
    if configured:
        return configured.rstrip("/") + "/"
    return request.build_absolute_uri("/fhir/")


def page_size() -> int:
    return int(getattr(settings, "VIGIL_FHIR_PAGE_SIZE", 50))


def _content_type(request: HttpRequest) -> str:
    fmt = request.GET.get("_format", "")
    if fmt in ("json", "application/json"):
        return "application/json; charset=utf-8"
    return f"{FHIR_JSON}; charset=utf-8"


def _check_format(request: HttpRequest) -> None:
    fmt = request.GET.get("_format")
    if fmt is not None and fmt not in _JSON_FORMATS:
        if fmt in _XML_FORMATS:
            raise FhirError(406, "not-supported", "Only JSON is supported (_format=json).")
        raise FhirError(400, "invalid", "Unknown _format.")
    accept = request.headers.get("Accept", "")
    if accept and fmt is None:
        kinds = [a.split(";")[0].strip() for a in accept.split(",")]
        if kinds and all(k in _XML_FORMATS for k in kinds):
            raise FhirError(406, "not-supported", "Only JSON is supported.")


def fhir_response(request: HttpRequest, body: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type=_content_type(request),
    )


def outcome_response(request: HttpRequest, error: FhirError) -> HttpResponse:
    response = fhir_response(
        request, operation_outcome(code=error.code, message=error.message), status=error.status
    )
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="vigil-fhir"'
    return response


def fhir_view(view: Callable[..., Any]) -> Callable[..., HttpResponse]:
    """Errors -> OperationOutcome; refusals (401/403) -> the access log."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            _check_format(request)
            return view(request, *args, **kwargs)
        except FhirError as error:
            if error.status in (401, 403) and not getattr(request, "_fhir_audited", False):
                _record_refusal(request, error, kwargs.get("resource_type", ""))
            return outcome_response(request, error)
        except Exception as exc:
            logger.exception("FHIR request failed: %s", exc.__class__.__name__)
            return outcome_response(request, FhirError(500, "exception", "Internal error."))

    return csrf_exempt(wrapper)


def _record_refusal(request: HttpRequest, error: FhirError, resource_type: str) -> None:
    principal = getattr(request, "_fhir_principal", None)
    actor = principal.actor if principal else Actor(None, "anonymous", client_ip(request))
    try:
        access_record(
            actor=actor,
            action="fhir.request",
            outcome=AccessOutcome.DENIED,
            resource_type=resource_type,
            status_code=error.status,
            reason=error.code,
        )
    except Exception:  # never let logging change the answer
        logger.exception("could not record a refused FHIR request")


def _principal(request: HttpRequest) -> Principal:
    principal = principal_resolve(request)
    request._fhir_principal = principal  # type: ignore[attr-defined]
    return principal


def _method(request: HttpRequest, *allowed: str) -> None:
    if request.method not in allowed:
        raise FhirError(405, "not-supported", f"Use {' or '.join(allowed)}.")


# --- metadata ------------------------------------------------------------------------------------
@fhir_view
def metadata(request: HttpRequest) -> HttpResponse:
    _method(request, "GET")
    statement = capability_statement(
        specs=registry(), base_url=base_url(request), date=timezone.now().date().isoformat()
    )
    return fhir_response(request, statement)


# --- read and search -----------------------------------------------------------------------------
def _spec(resource_type: str) -> Any:
    spec = registry().get(resource_type)
    if spec is None:
        raise FhirError(404, "not-supported", "Unknown or unsupported resource type.")
    return spec


def _audit_patient(
    principal: Principal,
    *,
    action: str,
    patient_id: str | None,
    resource_type: str,
    resource_id: str = "",
    outcome: str = AccessOutcome.ALLOWED,
    status: int = 200,
    reason: str = "",
) -> None:
    glass, purpose = break_glass_purpose(principal, patient_id) if patient_id else (False, "")
    access_record(
        actor=principal.actor,
        action=action,
        patient_id=patient_id,
        outcome=outcome,
        resource_type=resource_type,
        resource_id=resource_id,
        status_code=status,
        reason=reason,
        purpose=purpose,
        break_glass=glass,
    )


@fhir_view
def read(request: HttpRequest, resource_type: str, resource_id: str) -> HttpResponse:
    _method(request, "GET")
    spec = _spec(resource_type)
    principal = _principal(request)
    if not principal.may(resource_type, "read"):
        raise FhirError(403, "forbidden", "The token's scopes do not allow reading this type.")
    items, _ = spec.search(principal=principal, query=Query(ids=[resource_id]), after=None, count=1)
    request._fhir_audited = True  # type: ignore[attr-defined]
    if not items:
        refused_patient, reason = read_refusal_find(
            spec=spec, principal=principal, resource_id=resource_id
        )
        _audit_patient(
            principal,
            action="fhir.read",
            patient_id=refused_patient,
            resource_type=resource_type,
            resource_id=resource_id[:64],
            outcome=AccessOutcome.DENIED,
            status=404,
            reason=reason,
        )
        raise FhirError(404, "not-found", f"{resource_type}/{resource_id} is not known.")
    _, resource, patient_id = items[0]
    _audit_patient(
        principal,
        action="fhir.read",
        patient_id=patient_id,
        resource_type=resource_type,
        resource_id=resource_id,
    )
    response = fhir_response(request, resource)
    if resource.get("meta", {}).get("lastUpdated"):
        response["Last-Modified"] = resource["meta"]["lastUpdated"]
    return response


@fhir_view
def search(request: HttpRequest, resource_type: str) -> HttpResponse:
    _method(request, "GET", "POST")
    spec = _spec(resource_type)
    principal = _principal(request)
    if not principal.may(resource_type, "search"):
        raise FhirError(403, "forbidden", "The token's scopes do not allow searching this type.")
    params = {k: request.GET.getlist(k) for k in request.GET}
    if request.method == "POST":
        if not (request.content_type or "").startswith("application/x-www-form-urlencoded"):
            raise FhirError(415, "not-supported", "POST searches are form-encoded.")
        params.update({k: request.POST.getlist(k) for k in request.POST})
    query = query_parse(params, spec.param_names)
    count = count_parse(
        (params.get("_count") or [""])[-1],
        default=page_size(),
        maximum=int(getattr(settings, "VIGIL_FHIR_MAX_PAGE_SIZE", 1000)),
    )
    fingerprint = query_fingerprint(resource_type, params)
    cursor = (params.get("_cursor") or [""])[-1]
    after = cursor_decode(cursor, fingerprint) if cursor else None
    items, more = spec.search(principal=principal, query=query, after=after, count=count)
    base = base_url(request)
    request._fhir_audited = True  # type: ignore[attr-defined]
    patients = sorted({p for _, _, p in items if p})
    # A search naming a patient the caller may not see answers as if there were nothing (200, no
    # entries: existence is not revealed), but it is recorded as what it was, a refused attempt
    # on that patient's record (denied, ``not_in_care_team``, with the patient: their access log
    # and the auditors' per-patient view show it). One naming another clinic's patient is a probe
    # (denied, ``other_clinic``, no patient). The patient-less "allowed, results:0" event is
    # written only when neither applies: it would otherwise tell an auditor that an allowed,
    # empty search took place where a refusal did.
    refused, elsewhere = search_refusals_find(spec=spec, principal=principal, query=query)
    for patient_id in refused:
        _audit_patient(
            principal,
            action="fhir.search",
            patient_id=patient_id,
            resource_type=resource_type,
            outcome=AccessOutcome.DENIED,
            reason="not_in_care_team",
        )
    if elsewhere:
        _audit_patient(
            principal,
            action="fhir.search",
            patient_id=None,
            resource_type=resource_type,
            outcome=AccessOutcome.DENIED,
            reason="other_clinic",
        )
    if not patients and not refused and not elsewhere:
        _audit_patient(
            principal,
            action="fhir.search",
            patient_id=None,
            resource_type=resource_type,
            reason=f"results:{len(items)}",
        )
    for patient_id in patients:
        _audit_patient(
            principal,
            action="fhir.search",
            patient_id=patient_id,
            resource_type=resource_type,
            reason=f"results:{sum(1 for _, _, p in items if p == patient_id)}",
        )
    query_items = [(k, v) for k, vs in params.items() if k != "_cursor" for v in vs]
    self_link = f"{base}{resource_type}" + (f"?{urlencode(query_items)}" if query_items else "")
    links = [{"relation": "self", "url": self_link}]
    if more and items:
        token = cursor_encode(items[-1][0], fingerprint)
        links.append(
            {
                "relation": "next",
                "url": f"{base}{resource_type}?{urlencode([*query_items, ('_cursor', token)])}",
            }
        )
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": timezone.now().isoformat(timespec="seconds").replace("+00:00", "Z"),
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for _, resource, _ in items
        ],
    }
    if not bundle["entry"]:
        del bundle["entry"]
    return fhir_response(request, bundle)


@fhir_view
def search_post(request: HttpRequest, resource_type: str) -> HttpResponse:
    return search(request, resource_type=resource_type)


# --- token endpoint (OAuth 2.0 client credentials; answers are RFC 6749 JSON) -----------------
@csrf_exempt
def token(request: HttpRequest) -> HttpResponse:
    def oauth_error(code: str, status: int) -> HttpResponse:
        response = HttpResponse(
            json.dumps({"error": code}), status=status, content_type="application/json"
        )
        response["Cache-Control"] = "no-store"
        return response

    if request.method != "POST":
        return oauth_error("invalid_request", 405)
    if request.POST.get("grant_type") != "client_credentials":
        return oauth_error("unsupported_grant_type", 400)
    basic = services.basic_credentials(request.headers.get("Authorization", ""))
    client_id, secret = basic or (
        request.POST.get("client_id", ""),
        request.POST.get("client_secret", ""),
    )
    try:
        raw, api_token, scopes = services.client_credentials_exchange(
            client_id=client_id,
            client_secret=secret,
            scope=request.POST.get("scope", ""),
            ip=client_ip(request),
        )
    except FhirError as error:
        return oauth_error(
            error.message if error.message.startswith("invalid") else "invalid_request",
            error.status,
        )
    expires_in = int((api_token.expires_at - timezone.now()).total_seconds())
    response = HttpResponse(
        json.dumps(
            {"access_token": raw, "token_type": "bearer", "expires_in": expires_in, "scope": scopes}
        ),
        content_type="application/json",
    )
    response["Cache-Control"] = "no-store"
    return response


# --- bulk export ---------------------------------------------------------------------------------
def _kickoff(request: HttpRequest, level: str, group_id: str = "") -> HttpResponse:
    _method(request, "GET", "POST")
    principal = _principal(request)
    if "respond-async" not in request.headers.get("Prefer", ""):
        raise FhirError(400, "invalid", "Bulk export needs the header Prefer: respond-async.")
    fmt = request.GET.get("_outputFormat")
    if fmt and fmt not in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
        raise FhirError(400, "not-supported", "Only NDJSON output is supported.")
    types = [t for t in ",".join(request.GET.getlist("_type")).split(",") if t]
    since_raw = request.GET.get("_since")
    since: dt.datetime | None = None
    if since_raw:
        since = date_bounds(since_raw)[0].value
    job = services.export_kickoff(
        principal=principal,
        level=level,
        group_id=group_id,
        types=types,
        since=since,
        request_url=request.build_absolute_uri(),
    )
    services.export_enqueue(job=job)
    response = HttpResponse(status=202)
    response["Content-Location"] = f"{base_url(request)}$export-status/{job.pk}"
    return response


@fhir_view
def export_system(request: HttpRequest) -> HttpResponse:
    return _kickoff(request, "system")


@fhir_view
def export_patient(request: HttpRequest) -> HttpResponse:
    return _kickoff(request, "patient")


@fhir_view
def export_group(request: HttpRequest, group_id: str) -> HttpResponse:
    return _kickoff(request, "group", group_id)


def _own_job(request: HttpRequest, job_id: str) -> tuple[Principal, FhirExportJob]:
    """The caller's own export job. A malformed id (the route accepts any 36 characters of
    ``[0-9a-f-]``) is a job that does not exist: 404, never a lookup error."""
    principal = _principal(request)
    try:
        pk = uuid.UUID(job_id)
    except ValueError:
        raise FhirError(404, "not-found", "No such export job.") from None
    job = FhirExportJob.objects.filter(pk=pk, requester=principal.user).first()
    if job is None:
        raise FhirError(404, "not-found", "No such export job.")
    return principal, job


@fhir_view
def export_status(request: HttpRequest, job_id: str) -> HttpResponse:
    _method(request, "GET", "DELETE")
    principal, job = _own_job(request, job_id)
    if request.method == "DELETE":
        services.export_delete(job=job)
        return HttpResponse(status=202)
    if job.status in (ExportStatus.QUEUED, ExportStatus.RUNNING):
        response = HttpResponse(status=202)
        response["X-Progress"] = job.status
        response["Retry-After"] = "5"
        return response
    if job.status == ExportStatus.FAILED:
        raise FhirError(500, "exception", "The export failed.")
    services.export_access_check(job=job, principal=principal)
    body = services.export_manifest(job=job, base_url=base_url(request))
    response = HttpResponse(json.dumps(body), content_type="application/json")
    expires = services.export_expires_at(job=job, principal=principal)
    response["Expires"] = http_date(expires.timestamp())
    return response


@fhir_view
def export_file(request: HttpRequest, job_id: str, name: str) -> StreamingHttpResponse:
    """The requester's own file, decrypted as a stream (checked end to end before the first
    byte: a damaged file is a 500 OperationOutcome, never a partial download). Served only while
    the requester may still see every patient in the job (else 404, and the job is shredded)."""
    _method(request, "GET")
    principal, job = _own_job(request, job_id)
    if job.status != ExportStatus.COMPLETE or name not in {o["name"] for o in job.output}:
        raise FhirError(404, "not-found", "No such export file.")
    services.export_access_check(job=job, principal=principal)
    chunks = services.export_file_stream(job=job, name=name)
    services.export_download_record(job=job, principal=principal, name=name)
    response = StreamingHttpResponse(chunks, content_type="application/fhir+ndjson")
    response["Cache-Control"] = "no-store"
    return response


@fhir_view
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    raise FhirError(404, "not-found", "No such FHIR endpoint.")
