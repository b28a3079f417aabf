"""Who is asking, what they may see: token -> principal (role, clinic, SMART scopes), and the
patients each principal may see (care team and break-glass for clinicians, the clinic for
auditors and integration clients)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from rest_framework import exceptions as drf

from clinician_portal.fhir.errors import FhirError
from clinician_portal.fhir.models import FhirTokenGrant
from clinician_portal.fhir.scopes import Scope, scopes_allow, scopes_parse
from privacy.audit import Actor, client_ip
from privacy.auth import BearerTokenAuthentication
from privacy.breakglass import BREAK_GLASS, clinician_patient_access
from privacy.choices import Role
from privacy.models import ApiToken, BreakGlassAccess
from screening.models import Auditor, Clinician, Patient

CLINICAL_TYPES = frozenset(
    {
        "Patient",
        "Practitioner",
        "Organization",
        "CareTeam",
        "QuestionnaireResponse",
        "Observation",
        "RiskAssessment",
        "Flag",
        "CommunicationRequest",
        "Communication",
        "Consent",
        "Provenance",
    }
)
#: What each kind of principal may ever see, whatever its token's scopes say.
KIND_TYPES: dict[str, frozenset[str]] = {
    "clinician": CLINICAL_TYPES,
    "auditor": frozenset({"Consent", "AuditEvent"}),
    "client": CLINICAL_TYPES | {"AuditEvent"},
}
DEFAULT_SCOPES = {
    "clinician": "user/*.rs",
    "auditor": "user/Consent.rs user/AuditEvent.rs",
}
CLIENT_ROLE = "fhir_client"


@dataclass(frozen=True)
class Principal:
    kind: str  # clinician | auditor | client
    user: Any
    token: ApiToken
    organisation_id: int
    scopes: tuple[Scope, ...]
    scope_text: str
    actor: Actor
    clinician: Clinician | None = None

    def may(self, resource_type: str, interaction: str) -> bool:
        return resource_type in KIND_TYPES[self.kind] and scopes_allow(
            self.scopes, resource_type, interaction
        )


def principal_resolve(request: Any) -> Principal:
    """The principal behind the request's bearer token; FhirError 401/403 otherwise."""
    try:
        result = BearerTokenAuthentication().authenticate(request)
    except drf.AuthenticationFailed:
        raise FhirError(401, "login", "Invalid or expired token.") from None
    if result is None:
        raise FhirError(401, "login", "Authentication required (Authorization: Bearer ...).")
    user, token = result
    return principal_for_token(user=user, token=token, ip=client_ip(request))


def principal_for_token(*, user: Any, token: ApiToken, ip: str | None = None) -> Principal:
    """The principal of a token already authenticated (also used by export jobs)."""
    grant = FhirTokenGrant.objects.select_related("client").filter(token=token).first()
    if grant is not None and grant.client is not None:
        client = grant.client
        if client.revoked_at is not None:
            raise FhirError(401, "login", "Invalid or expired token.")
        return Principal(
            kind="client",
            user=user,
            token=token,
            organisation_id=client.organisation_id,
            scopes=scopes_parse(grant.scopes),
            scope_text=grant.scopes,
            actor=Actor(user_id=user.pk, role=CLIENT_ROLE, ip_address=ip),
        )
    role = str(getattr(user, "role", ""))
    kind = {Role.CLINICIAN.value: "clinician", Role.AUDITOR.value: "auditor"}.get(role)
    actor = Actor(user_id=user.pk, role=role, ip_address=ip)
    if kind is None:
        raise FhirError(403, "forbidden", "This API is for clinicians, auditors and clinics.")
    scope_text = grant.scopes if grant is not None else DEFAULT_SCOPES[kind]
    if kind == "clinician":
        clinician = Clinician.objects.filter(user=user).first()
        if clinician is None:
            raise FhirError(403, "forbidden", "No clinician profile.")
        return Principal(
            kind=kind,
            user=user,
            token=token,
            organisation_id=clinician.organisation_id,
            scopes=scopes_parse(scope_text),
            scope_text=scope_text,
            actor=actor,
            clinician=clinician,
        )
    auditor = Auditor.objects.filter(user=user).first()
    if auditor is None:
        raise FhirError(403, "forbidden", "No auditor profile.")
    return Principal(
        kind=kind,
        user=user,
        token=token,
        organisation_id=auditor.organisation_id,
        scopes=scopes_parse(scope_text),
        scope_text=scope_text,
        actor=actor,
    )


def patients_visible(principal: Principal) -> QuerySet[Patient]:
    """The patients whose records the principal may see (erased patients excluded)."""
    qs = Patient.objects.filter(organisation_id=principal.organisation_id, erased_at__isnull=True)
    clinician = principal.clinician
    if principal.kind != "clinician" or clinician is None:
        return qs
    glass = BreakGlassAccess.objects.filter(
        clinician=clinician, expires_at__gt=timezone.now()
    ).values("patient_id")
    return qs.filter(_care_team_q(clinician) | Q(pk__in=glass))


def clinic_principal(principal: Principal) -> Principal:
    """The principal as if it saw its whole clinic (every patient not erased), the view of its
    clinic's auditors and clients. Used only after a refusal, to tell whose record a request
    named (and so whose access trail it belongs in); never to answer a request."""
    if principal.clinician is None:
        return principal
    return replace(principal, clinician=None)


def _patient_pks(patient_ids: Iterable[Any]) -> list[uuid.UUID]:
    out: list[uuid.UUID] = []
    for value in patient_ids:
        try:
            out.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return out


def patients_refused(principal: Principal, patient_ids: Iterable[Any]) -> list[str]:
    """Of these patient ids (unparseable ones ignored), those of the principal's own clinic, not
    erased, that the principal may not see (clinicians: outside their care teams and without an
    unexpired break-glass), as sorted text. Never another clinic's."""
    pks = _patient_pks(patient_ids)
    if not pks:
        return []
    rows = (
        Patient.objects.filter(
            pk__in=pks, organisation_id=principal.organisation_id, erased_at__isnull=True
        )
        .exclude(pk__in=patients_visible(principal).values("pk"))
        .values_list("pk", flat=True)
    )
    return sorted(str(pk) for pk in rows)


def patients_elsewhere(principal: Principal, patient_ids: Iterable[Any]) -> bool:
    """Whether any of these ids is a patient of another clinic (a cross-clinic probe)."""
    pks = _patient_pks(patient_ids)
    return (
        bool(pks)
        and (
            Patient.objects.filter(pk__in=pks).exclude(organisation_id=principal.organisation_id)
        ).exists()
    )


def _care_team_q(clinician: Clinician) -> Q:
    return Q(treating_clinician=clinician) | Q(care_team__in=clinician.care_teams.all())


@dataclass(frozen=True)
class GlassAccess:
    """An unexpired break-glass access: its stated reason and when it ends."""

    reason: str
    expires_at: Any


def break_glass_patients(
    *, principal: Principal, patient_ids: Iterable[Any]
) -> dict[str, GlassAccess]:
    """Of these patients, those the principal sees only through break-glass (by id as text),
    with the reason and end of the latest unexpired access: set-based, for many patients at once
    (:func:`break_glass_purpose` answers for one)."""
    clinician = principal.clinician
    ids = {str(pk) for pk in patient_ids if pk}
    if principal.kind != "clinician" or clinician is None or not ids:
        return {}
    care_team = Patient.objects.filter(
        _care_team_q(clinician), pk__in=ids, organisation_id=principal.organisation_id
    ).values("pk")
    rows = (
        BreakGlassAccess.objects.filter(
            clinician=clinician,
            patient_id__in=ids,
            patient__organisation_id=principal.organisation_id,
            patient__erased_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .exclude(patient_id__in=care_team)
        .order_by("expires_at")
        .values_list("patient_id", "reason", "expires_at")
    )
    # Ordered by expiry: the latest access of each patient is the one kept.
    return {str(pk): GlassAccess(reason=reason, expires_at=ends) for pk, reason, ends in rows}


def break_glass_purpose(principal: Principal, patient_id: Any) -> tuple[bool, str]:
    """Whether access to this patient is through break-glass (and its stated reason)."""
    clinician = principal.clinician
    if principal.kind != "clinician" or clinician is None or patient_id is None:
        return False, ""
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        return False, ""
    if clinician_patient_access(clinician=clinician, patient=patient) != BREAK_GLASS:
        return False, ""
    access = (
        BreakGlassAccess.objects.filter(
            clinician=clinician, patient=patient, expires_at__gt=timezone.now()
        )
        .order_by("-expires_at")
        .first()
    )
    return True, access.reason if access else ""
