"""Why a FHIR read or search found nothing, for the access log only (the answer never changes:
404 for a read, an empty Bundle for a search, so existence is never revealed).

A request naming a patient of the caller's own clinic whom the caller may not see belongs in that
patient's access trail (``not_in_care_team``, with the patient), as the portal records a refused
view; one naming another clinic's record is a probe (``other_clinic``, no patient)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from clinician_portal.fhir.access import (
    Principal,
    clinic_principal,
    patients_elsewhere,
    patients_refused,
)
from clinician_portal.fhir.search import Query
from clinician_portal.fhir.sources import ResourceSpec


def _clinic_path(patient_field: str | None, model: Any) -> str | None:
    """The lookup from a source's row to its clinic's id (None: the row belongs to no clinic)."""
    if patient_field == "pk":  # the Patient table itself
        return "organisation_id"
    if patient_field:
        return patient_field.removesuffix("_id") + "__organisation_id"
    if any(f.name == "organisation" for f in model._meta.get_fields()):
        return "organisation_id"
    return None


def _held_elsewhere(spec: ResourceSpec, principal: Principal, resource_id: str) -> bool:
    """Whether the id is a row of another clinic in one of the type's tables (a cross-clinic
    probe, as the portal's ``elsewhere``). Row level: nothing of that row is mapped or shown."""
    for source in spec.sources:
        model = source.queryset(principal).model
        path = _clinic_path(source.patient_field, model)
        if path is None:
            continue
        try:
            pk = source.id_to_pk(resource_id)
            if pk is None:
                continue
            pk = model._meta.pk.to_python(str(pk))
        except (ValidationError, ValueError, TypeError):
            continue
        rows = model._default_manager.filter(pk=pk, **{f"{path}__isnull": False})
        if rows.exclude(**{path: principal.organisation_id}).exists():
            return True
    return False


def read_refusal_find(
    *, spec: ResourceSpec, principal: Principal, resource_id: str
) -> tuple[str | None, str]:
    """Why a read found nothing, for the access log only (the answer is 404 whatever it is).

    A resource of a patient of the caller's own clinic whom the caller may not see (a colleague
    outside the care team) is that patient's: ``not_in_care_team`` with the patient, as the
    portal records a refused view, so that it shows in the patient's access log and in the
    auditors' per-patient search. Another clinic's resource (``other_clinic``) or none at all
    (``not_found``) is a probe, recorded without a patient (the portal's ``_probe_record``)."""
    clinic = clinic_principal(principal)
    if clinic is not principal:
        items, _ = spec.search(
            principal=clinic, query=Query(ids=[resource_id]), after=None, count=1
        )
        if items and items[0][2]:
            return items[0][2], "not_in_care_team"
    return None, "other_clinic" if _held_elsewhere(spec, principal, resource_id) else "not_found"


def search_refusals_find(
    *, spec: ResourceSpec, principal: Principal, query: Query
) -> tuple[list[str], bool]:
    """The patients a search named that the caller may not see though they are of its own clinic
    (by ``patient``/``subject``, ``Patient?_id``, or the ``_id`` of one of their resources), and
    whether it named another clinic's patient. Their rows are never in the answer; this only says
    whose access trail the attempt belongs in."""
    named = list(query.patients)
    if spec.type == "Patient":
        named.extend(query.ids)
    elsewhere = patients_elsewhere(principal, named)
    clinic = clinic_principal(principal)
    if query.ids and spec.type != "Patient" and clinic is not principal:
        found, _ = spec.search(
            principal=clinic, query=Query(ids=list(query.ids)), after=None, count=len(query.ids)
        )
        named.extend(p for _, _, p in found if p)
    return patients_refused(principal, named), elsewhere
