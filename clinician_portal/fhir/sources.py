"""Where each FHIR resource type comes from: the tables, who may see which rows, how a row
becomes a plain dict for the pure mappers, and keyset paging over one or several tables.

This is the read side (selectors) of the FHIR API. Every resource type is a
:class:`ResourceSpec`; :data:`REGISTRY` drives the views, ``$export`` and the
CapabilityStatement, so the statement cannot drift from what is implemented.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db.models import Exists, Model, OuterRef, Q, QuerySet

from clinician_portal.fhir.access import Principal, patients_visible
from clinician_portal.fhir.mappers import (
    audit_event,
    care_team,
    communication,
    communication_request,
    consent,
    flag,
    observation,
    organization,
    patient,
    practitioner,
    provenance,
    questionnaire_response,
    risk_assessment,
)
from clinician_portal.fhir.search import Key, Query, token_matches
from privacy.api.selectors import ANONYMOUS_UNATTRIBUTED, audit_event_client_ip
from privacy.models import AccessEvent, ConsentRecord
from risk.models import Alert, OutboxMessage
from risk.selectors import alert_superseded, alert_superseded_prefetch
from screening.instruments import INSTRUMENTS
from screening.models import CareTeam, Clinician, Organisation, Patient, QuestionnaireResponse

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def ts_key(value: dt.datetime | None) -> str:
    value = value or EPOCH
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime(TS_FORMAT)


def ts_parse(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, TS_FORMAT).replace(tzinfo=dt.UTC)


# --- de-identification of free text ------------------------------------------------------------
def text_deidentify(text: str | None, *, patient: Patient | None, record_id: Any = None) -> str:
    """Free text for export: always through the de-identifier (fails closed)."""
    if not text:
        return ""
    from privacy.deid import DenyList, deidentify
    from privacy.deid.patient import deny_list_for_patient

    deny = deny_list_for_patient(patient) if patient is not None else DenyList.build()
    return deidentify(text, deny_list=deny, record_id=record_id).text


# --- scores (added by the scoring work; mapped when the models exist) ----------------------------
def score_model(name: str) -> type[Model] | None:
    try:
        return apps.get_model("screening", name)
    except LookupError:
        return None


def _models_list(models_json: Any) -> list[dict[str, Any]]:
    """A score row's models (``models_info``: [{name, version, sha256}], or a {name: version}
    mapping) as a list of dicts."""
    if isinstance(models_json, list):
        return [m for m in models_json if isinstance(m, dict)]
    if isinstance(models_json, dict):
        return [
            {"name": str(v.get("name") or k), **v}
            if isinstance(v, dict)
            else {"name": k, "version": str(v)}
            for k, v in sorted(models_json.items())
        ]
    return []


def _model_name_version(models_json: Any, fallback_name: str) -> tuple[str, str]:
    """One (name, version) for a logical ``device`` reference naming every model used."""
    parts = [
        f"{m.get('name', '?')}:{m.get('version', '')}".rstrip(":")
        for m in _models_list(models_json)
    ]
    return fallback_name, ",".join(parts)[:200]


def _model_agents(models_json: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": str(m.get("name") or "model"),
            "version": str(m.get("version", "")),
            "sha256": str(m.get("sha256") or ""),
        }
        for m in _models_list(models_json)
    ]


# --- one table ---------------------------------------------------------------------------------
@dataclass
class RowSource:
    """One table feeding a resource type.

    ``queryset(principal)`` holds visibility; ``ts_field`` is the immutable creation time that
    orders pages (None: the primary key alone); ``to_resources(rows)`` maps a batch of rows to
    ``[(row, resource dict, patient id)]`` (a row may yield several resources)."""

    queryset: Callable[[Principal], QuerySet[Any]]
    to_resources: Callable[[list[Any]], list[tuple[Any, dict[str, Any], str | None]]]
    ts_field: str | None = "created_at"
    patient_field: str | None = "patient_id"
    date_field: str | None = None
    date_is_day: bool = False
    last_updated_field: str | None = None
    #: resource id -> primary key (None: not this source's id)
    id_to_pk: Callable[[str], Any] = field(default=lambda rid: rid)
    #: codes this source can produce (None: any) so that a ``code`` search skips others
    codes: frozenset[str] | None = None

    def _pk_sort(self, pk: Any) -> str:
        return f"{pk:020d}" if isinstance(pk, int) else str(pk)

    def _pk_value(self, text: str, model: type[Model]) -> Any:
        pk_field = model._meta.pk
        internal = pk_field.get_internal_type() if pk_field is not None else ""
        if internal in ("AutoField", "BigAutoField", "IntegerField", "BigIntegerField"):
            return int(text)
        if internal == "UUIDField":
            return uuid.UUID(text)
        return text

    def filtered(self, principal: Principal, query: Query) -> QuerySet[Any] | None:
        qs = self.queryset(principal)
        if query.ids:
            pks = []
            for rid in query.ids:
                try:
                    pk = self.id_to_pk(rid)
                    if pk is not None:
                        pks.append(self._pk_value(str(pk), qs.model))
                except (ValueError, TypeError):
                    continue
            if not pks:
                return None
            qs = qs.filter(pk__in=pks)
        if query.patients:
            if self.patient_field is None:
                return None
            qs = qs.filter(**{f"{self.patient_field}__in": _uuids(query.patients)})
        for bounds, name in ((query.date, self.date_field), (query.last_updated, None)):
            if not bounds:
                continue
            target = name if bounds is query.date else (self.last_updated_field or self.ts_field)
            if target is None:
                return None
            for bound in bounds:
                value: Any = bound.value
                if bounds is query.date and self.date_is_day:
                    value = value.date() if bound.op == "ge" else _ceil_day(value)
                qs = qs.filter(**{f"{target}__{'gte' if bound.op == 'ge' else 'lt'}": value})
        if (
            query.codes
            and self.codes is not None
            and not any(code in self.codes for _, code in query.codes)
        ):
            return None
        return qs

    def fetch(
        self, *, index: int, principal: Principal, query: Query, after: Key | None, want: int
    ) -> list[tuple[Key, dict[str, Any], str | None]]:
        qs = self.filtered(principal, query)
        if qs is None or want <= 0:
            return []
        model = qs.model
        order = [self.ts_field, "pk"] if self.ts_field else ["pk"]
        qs = qs.order_by(*order)
        position: tuple[dt.datetime | None, Any, bool] | None = None  # (ts, pk, inclusive)
        if after is not None:
            a_ts, a_idx, a_pk, _ = after
            if self.ts_field is None:
                if a_idx == index:
                    position = (None, self._pk_value(a_pk, model), True)
                elif a_idx > index:
                    return []
            else:
                ts = ts_parse(a_ts)
                if a_idx == index:
                    position = (ts, self._pk_value(a_pk, model), True)
                elif a_idx < index:
                    qs = qs.filter(**{f"{self.ts_field}__gte": ts})
                else:
                    qs = qs.filter(**{f"{self.ts_field}__gt": ts})
        out: list[tuple[Key, dict[str, Any], str | None]] = []
        batch = max(min(want * 2, 500), 20)
        while len(out) < want:
            page = qs
            if position is not None:
                p_ts, p_pk, inclusive = position
                pk_q = Q(pk__gte=p_pk) if inclusive else Q(pk__gt=p_pk)
                if self.ts_field is None:
                    page = page.filter(pk_q)
                else:
                    page = page.filter(
                        Q(**{f"{self.ts_field}__gt": p_ts}) | (Q(**{self.ts_field: p_ts}) & pk_q)
                    )
            rows = list(page[:batch])
            if not rows:
                break
            for row, resource, patient_id in self.to_resources(rows):
                row_ts = _get_path(row, self.ts_field) if self.ts_field else None
                key: Key = (ts_key(row_ts), index, self._pk_sort(row.pk), resource["id"])
                if after is not None and key <= after:
                    continue
                if not _matches(query, resource):
                    continue
                out.append((key, resource, patient_id))
            last = rows[-1]
            position = (
                _get_path(last, self.ts_field) if self.ts_field else None,
                last.pk,
                False,
            )
            if len(rows) < batch:
                break
        return out


def _get_path(obj: Any, path: str) -> Any:
    for part in path.split("__"):
        obj = getattr(obj, part)
    return obj


def _ceil_day(value: dt.datetime) -> dt.date:
    """The first day not covered by an exclusive upper bound."""
    day = value.date()
    return day if value.time() == dt.time(0) else day + dt.timedelta(days=1)


def _uuids(values: Iterable[str]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            continue
    return out


def _matches(query: Query, resource: dict[str, Any]) -> bool:
    if query.ids and resource["id"] not in query.ids:  # a row can yield several resources
        return False
    if query.codes and not token_matches(query.codes, [resource.get("code") or {}]):
        return False
    if query.categories:
        concepts = resource.get("category") or []
        if isinstance(concepts, dict):
            concepts = [concepts]
        if not token_matches(query.categories, concepts):
            return False
    if query.statuses and resource.get("status") not in query.statuses:
        return False
    if query.identifiers:
        idents = [
            {"coding": [{"system": i.get("system"), "code": i.get("value")}]}
            for i in resource.get("identifier", [])
        ]
        if not token_matches(query.identifiers, idents):
            return False
    return True


# --- resource specs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str
    documentation: str


P_ID = SearchParam("_id", "token", "Logical id.")
P_LAST = SearchParam("_lastUpdated", "date", "When the resource last changed (ge/le/gt/lt/eq).")
P_PATIENT = SearchParam("patient", "reference", "The patient (Patient/<id> or <id>).")
P_STATUS = SearchParam("status", "token", "Resource status.")
P_CODE = SearchParam("code", "token", "Code ([system]|code).")
P_CATEGORY = SearchParam("category", "token", "Category ([system]|code).")


def P_DATE(what: str) -> SearchParam:
    return SearchParam("date", "date", f"{what} (ge/le/gt/lt/eq, FHIR date or dateTime).")


@dataclass(frozen=True)
class ResourceSpec:
    type: str
    sources: tuple[RowSource, ...]
    params: tuple[SearchParam, ...]
    profile: str | None = None

    @property
    def param_names(self) -> set[str]:
        return {p.name for p in self.params} | (
            {"subject"} if "patient" in self.param_names_raw else set()
        )

    @property
    def param_names_raw(self) -> set[str]:
        return {p.name for p in self.params}

    @property
    def patient_bound(self) -> bool:
        return "patient" in self.param_names_raw or self.type == "Patient"

    def search(
        self, *, principal: Principal, query: Query, after: Key | None, count: int
    ) -> tuple[list[tuple[Key, dict[str, Any], str | None]], bool]:
        """One page: up to ``count`` items after ``after`` and whether more follow."""
        merged: list[tuple[Key, dict[str, Any], str | None]] = []
        for index, source in enumerate(self.sources):
            merged.extend(
                source.fetch(
                    index=index, principal=principal, query=query, after=after, want=count + 1
                )
            )
        merged.sort(key=lambda item: item[0])
        return merged[:count], len(merged) > count


# --- mapping of each table ---------------------------------------------------------------------
def _visible_ids(principal: Principal) -> QuerySet[Any]:
    return patients_visible(principal).values("pk")


def _patients(rows: list[Patient]) -> list[tuple[Any, dict[str, Any], str | None]]:
    return [
        (
            p,
            patient.patient_to_fhir(
                {
                    "id": p.pk,
                    "pseudonym": p.pseudonym,
                    "birth_year": p.birth_year,
                    "organisation_id": p.organisation_id,
                    "treating_clinician_id": p.treating_clinician_id,
                    "erased": p.erased_at is not None,
                    "last_updated": p.created_at,
                }
            ),
            str(p.pk),
        )
        for p in rows
    ]


def _practitioners(rows: list[Clinician]) -> list[tuple[Any, dict[str, Any], str | None]]:
    return [
        (
            c,
            practitioner.practitioner_to_fhir(
                {
                    "id": c.pk,
                    "first_name": c.user.first_name,
                    "last_name": c.user.last_name,
                    "title": c.title,
                    "active": c.user.is_active,
                    "last_updated": c.user.date_joined,
                }
            ),
            None,
        )
        for c in rows
    ]


def _organizations(rows: list[Organisation]) -> list[tuple[Any, dict[str, Any], str | None]]:
    return [
        (
            o,
            organization.organization_to_fhir(
                {"id": o.pk, "name": o.name, "slug": o.slug, "last_updated": o.created_at}
            ),
            None,
        )
        for o in rows
    ]


def _care_teams(rows: list[CareTeam]) -> list[tuple[Any, dict[str, Any], str | None]]:
    return [
        (
            t,
            care_team.care_team_to_fhir(
                {
                    "id": t.pk,
                    "name": t.name,
                    "organisation_id": t.organisation_id,
                    "member_ids": sorted(m.pk for m in t.members.all()),
                }
            ),
            None,
        )
        for t in rows
    ]


def _questionnaire_responses(
    rows: list[QuestionnaireResponse],
) -> list[tuple[Any, dict[str, Any], str | None]]:
    return [
        (
            r,
            questionnaire_response.questionnaire_response_to_fhir(
                {
                    "id": r.pk,
                    "patient_id": r.patient_id,
                    "instrument": r.instrument,
                    "answers": list(r.answers),
                    "item_texts": list(INSTRUMENTS[r.instrument].items),
                    "authored": r.client_timestamp,
                    "last_updated": r.created_at,
                }
            ),
            str(r.patient_id),
        )
        for r in rows
    ]


def _survey_observations(
    rows: list[QuestionnaireResponse],
) -> list[tuple[Any, dict[str, Any], str | None]]:
    out: list[tuple[Any, dict[str, Any], str | None]] = []
    for r in rows:
        base = {
            "response_id": r.pk,
            "patient_id": r.patient_id,
            "instrument": r.instrument,
            "total": r.total,
            "severity": r.severity,
            "item9": r.item9,
            "effective": r.client_timestamp,
            "last_updated": r.created_at,
        }
        out.append((r, observation.survey_total_to_fhir(base), str(r.patient_id)))
        if r.instrument == "phq9" and r.item9 is not None:
            out.append((r, observation.phq9_item9_to_fhir(base), str(r.patient_id)))
    return out


def _survey_obs_pk(rid: str) -> str | None:
    for suffix in ("-total", "-item9"):
        if rid.startswith("qr-") and rid.endswith(suffix):
            return rid[3 : -len(suffix)]
    return None


def _mood_pk_lookup(rid: str) -> Any:
    """A mood Observation id (mood-<patient uuid>-<date>) -> the DailyMoodScore pk."""
    model = score_model("DailyMoodScore")
    if model is None or not rid.startswith("mood-") or len(rid) != 5 + 36 + 1 + 10:
        return None
    try:
        patient_id = uuid.UUID(rid[5:41])
        day = dt.date.fromisoformat(rid[42:])
    except ValueError:
        return None
    return (
        model.objects.filter(patient_id=patient_id, local_date=day)  # type: ignore[attr-defined]
        .values_list("pk", flat=True)
        .first()
    )


def _mood_dict(row: Any) -> dict[str, Any]:
    name, version = "vigil-fusion", str(getattr(row, "fusion_version", "") or "")
    derived = []
    inputs = getattr(row, "inputs", None)
    if isinstance(inputs, dict):
        # Diary text is never exported, so diary-derived inputs are not referenced.
        for modality in ("phq9", "gad7", "voice", "face"):
            for source_id in inputs.get(modality) or []:
                if modality in ("phq9", "gad7"):
                    derived.append(f"QuestionnaireResponse/{source_id}")
                else:
                    derived.append(f"Observation/{observation.media_id(modality, source_id)}")
    return {
        "patient_id": row.patient_id,
        "local_date": row.local_date,
        "score": getattr(row, "score", None),
        "confidence": getattr(row, "confidence", None),
        "abstained": bool(getattr(row, "abstained", False)),
        "reason": str(getattr(row, "reason", "") or ""),
        "model_name": name,
        "model_version": version,
        "derived_from": derived,
        "last_updated": getattr(row, "updated_at", None) or getattr(row, "created_at", None),
    }


def _moods(rows: list[Any]) -> list[tuple[Any, dict[str, Any], str | None]]:
    return [(r, observation.mood_to_fhir(_mood_dict(r)), str(r.patient_id)) for r in rows]


def _media_video(row: Any) -> Any:
    return getattr(row, "video", None) or getattr(row, "submission", None)


def _media_dicts(row: Any) -> list[dict[str, Any]]:
    video = _media_video(row)
    video_id = getattr(row, "video_id", None) or getattr(video, "pk", row.pk)
    patient_id = getattr(row, "patient_id", None) or getattr(video, "patient_id", None)
    name, version = _model_name_version(getattr(row, "models_info", None), "vigil-media")
    out = []
    for kind, attr in (("voice", "prosody"), ("face", "face")):
        features = getattr(row, attr, None)
        if isinstance(features, dict) and isinstance(features.get("features"), dict):
            features = features["features"]
        if not isinstance(features, dict) or not features:
            continue  # not analysed (no consent): nothing to report
        if features.get("abstain"):
            features = {}  # analysed but abstained: a panel with a dataAbsentReason
        out.append(
            {
                "kind": kind,
                "video_id": video_id,
                "patient_id": patient_id,
                "effective": getattr(video, "client_timestamp", None),
                "features": features,
                "model_name": name,
                "model_version": version,
                "last_updated": getattr(row, "updated_at", None)
                or getattr(row, "created_at", None),
            }
        )
    return out


def _media(rows: list[Any]) -> list[tuple[Any, dict[str, Any], str | None]]:
    return [
        (r, observation.media_panel_to_fhir(d), str(d["patient_id"]))
        for r in rows
        for d in _media_dicts(r)
    ]


def _media_pk_lookup(rid: str) -> Any:
    model = score_model("MediaAnalysis")
    for prefix in ("voice-", "face-", "media-"):
        if model is not None and rid.startswith(prefix):
            try:
                video_id = uuid.UUID(rid[len(prefix) :])
            except ValueError:
                return None
            field_name = "video_id" if _has_field(model, "video") else "submission_id"
            return (
                model.objects.filter(**{field_name: video_id})  # type: ignore[attr-defined]
                .values_list("pk", flat=True)
                .first()
            )
    return None


def _has_field(model: type[Model], name: str) -> bool:
    return any(f.name == name for f in model._meta.get_fields())


def _media_patient_field(model: type[Model]) -> str:
    if _has_field(model, "patient"):
        return "patient_id"
    return ("video" if _has_field(model, "video") else "submission") + "__patient_id"


def _evidence_basis(alert: Alert) -> list[str]:
    """References to the resources behind one alert's own evidence items (prefetched)."""
    basis: list[str] = []
    has_mood = score_model("DailyMoodScore") is not None
    has_media = score_model("MediaAnalysis") is not None
    for item in alert.evidence_items.all():
        event = (item.snapshot or {}).get("event") or {}
        kind = event.get("kind")
        if kind == "questionnaire_scored" and event.get("response_id"):
            rid = event["response_id"]
            basis.append(f"QuestionnaireResponse/{rid}")
            basis.append(f"Observation/{observation.survey_total_id(rid)}")
            if event.get("instrument") == "phq9":
                basis.append(f"Observation/{observation.survey_item9_id(rid)}")
        elif kind == "daily_mood" and has_mood and event.get("local_date"):
            basis.append(
                f"Observation/{observation.mood_id(alert.patient_id, event['local_date'])}"
            )
        elif kind == "media_distress" and has_media and event.get("video_id"):
            basis.append(f"Observation/{observation.media_id('voice', event['video_id'])}")
        elif kind == "baseline_drop" and has_media and event.get("signal") in ("voice", "face"):
            basis.append(
                f"Observation/{observation.media_id(event['signal'], event['source_ref'])}"
            )
    return basis


def _alert_basis(alert: Alert) -> list[str]:
    """The alert's own evidence, then each alert it superseded (its RiskAssessment and Flag, and
    the resources behind its evidence): a red alert raised by a help press keeps what made the
    patient orange in its basis."""
    basis = _evidence_basis(alert)
    for lower in alert_superseded(alert=alert):
        basis.append(f"RiskAssessment/{lower.pk}")
        basis.append(f"Flag/{lower.pk}")
        basis.extend(_evidence_basis(lower))
    return list(dict.fromkeys(basis))


def _alert_notes(alert: Alert) -> list[str]:
    notes = []
    for item in alert.evidence_items.all():
        excerpt = (item.snapshot or {}).get("excerpt")
        if isinstance(excerpt, str) and excerpt:
            notes.append(text_deidentify(excerpt, patient=alert.patient, record_id=item.pk))
    if alert.resolution_note:
        notes.append(
            text_deidentify(alert.resolution_note, patient=alert.patient, record_id=alert.pk)
        )
    return notes


def _risk_assessments(rows: list[Alert]) -> list[tuple[Any, dict[str, Any], str | None]]:
    return [
        (
            a,
            risk_assessment.risk_assessment_to_fhir(
                {
                    "id": a.pk,
                    "patient_id": a.patient_id,
                    "tier": a.tier,
                    "state": a.state,
                    "rule_set_version": a.rule_set_version,
                    "rule_set_hash": a.rule_set_hash,
                    "rule_id": a.rule_id,
                    "occurred": a.created_at,
                    "basis": _alert_basis(a),
                    "notes": _alert_notes(a),
                    "last_updated": a.updated_at,
                }
            ),
            str(a.patient_id),
        )
        for a in rows
    ]


def _flags(rows: list[Alert]) -> list[tuple[Any, dict[str, Any], str | None]]:
    return [
        (
            a,
            flag.flag_to_fhir(
                {
                    "id": a.pk,
                    "patient_id": a.patient_id,
                    "tier": a.tier,
                    "state": a.state,
                    "start": a.created_at,
                    "end": a.resolved_at or a.updated_at,
                    "last_updated": a.updated_at,
                }
            ),
            str(a.patient_id),
        )
        for a in rows
    ]


def _outbox_dict(m: OutboxMessage, clinicians: dict[str, int]) -> dict[str, Any]:
    return {
        "id": m.pk,
        "alert_id": m.alert_id,
        "patient_id": m.alert.patient_id,
        "tier": m.alert.tier,
        "recipient_kind": m.recipient_kind,
        "recipient_practitioner_id": clinicians.get(m.recipient_id)
        if m.recipient_kind == "user"
        else None,
        "channel": m.channel,
        "level": m.level,
        "repeat": m.repeat,
        "state": m.state,
        "created": m.created_at,
        "sent": m.sent_at,
        "last_updated": m.updated_at,
    }


def _recipient_clinicians(rows: list[OutboxMessage]) -> dict[str, int]:
    user_ids = [
        int(m.recipient_id) for m in rows if m.recipient_kind == "user" and m.recipient_id.isdigit()
    ]
    return {
        str(user_id): pk
        for user_id, pk in Clinician.objects.filter(user_id__in=user_ids).values_list(
            "user_id", "pk"
        )
    }


def _communication_requests(
    rows: list[OutboxMessage],
) -> list[tuple[Any, dict[str, Any], str | None]]:
    clinicians = _recipient_clinicians(rows)
    return [
        (
            m,
            communication_request.communication_request_to_fhir(_outbox_dict(m, clinicians)),
            str(m.alert.patient_id),
        )
        for m in rows
    ]


def _communications(rows: list[OutboxMessage]) -> list[tuple[Any, dict[str, Any], str | None]]:
    clinicians = _recipient_clinicians(rows)
    return [
        (
            m,
            communication.communication_to_fhir(_outbox_dict(m, clinicians)),
            str(m.alert.patient_id),
        )
        for m in rows
    ]


def _consents(rows: list[Any]) -> list[tuple[Any, dict[str, Any], str | None]]:
    return [
        (
            c,
            consent.consent_to_fhir(
                {
                    "id": c.pk,
                    "patient_id": c.patient_id,
                    "organisation_id": c.patient.organisation_id,
                    "scope": c.scope,
                    "granted": c.granted,
                    "current": c.is_current,
                    "document_version": c.document_version,
                    "document_sha256": c.document_sha256,
                    "recorded": c.created_at,
                    "last_updated": c.created_at,
                }
            ),
            str(c.patient_id),
        )
        for c in rows
    ]


def _audit_events(rows: list[AccessEvent]) -> list[tuple[Any, dict[str, Any], str | None]]:
    out: list[tuple[Any, dict[str, Any], str | None]] = []
    for e in rows:
        actor = e.actor
        clinician = getattr(actor, "clinician", None) if actor is not None else None
        org = None
        if e.patient is not None:
            org = e.patient.organisation_id
        elif clinician is not None:
            org = clinician.organisation_id
        purpose = text_deidentify(e.purpose, patient=e.patient, record_id=e.pk) if e.purpose else ""
        data = {
            "id": e.pk,
            "seq": e.seq,
            "hash": e.hash,
            "prev_hash": e.prev_hash,
            "occurred": e.occurred_at,
            "actor_role": e.actor_role,
            "actor_practitioner_id": clinician.pk if clinician is not None else None,
            "actor_user_id": e.actor_id,
            "patient_id": e.patient_id,
            "action": e.action,
            "outcome": e.outcome,
            "resource_type": e.resource_type,
            "resource_id": e.resource_id,
            "status_code": e.status_code,
            "reason": e.reason,
            "purpose": purpose,
            "break_glass": e.break_glass,
            "organisation_id": org,
            "network_address": audit_event_client_ip(event=e),
        }
        out.append(
            (e, audit_event.audit_event_to_fhir(data), str(e.patient_id) if e.patient_id else None)
        )
    return out


def _alert_provenance(rows: list[Alert]) -> list[tuple[Any, dict[str, Any], str | None]]:
    return [
        (
            a,
            provenance.provenance_to_fhir(
                {
                    "id": f"alert-{a.pk}",
                    "targets": [f"RiskAssessment/{a.pk}", f"Flag/{a.pk}"],
                    "recorded": a.created_at,
                    "activity": "rule-evaluation",
                    "agents": [
                        {
                            "name": f"vigil-rules/{a.rule_id}",
                            "version": a.rule_set_version,
                            "sha256": a.rule_set_hash,
                        }
                    ],
                    "organisation_id": a.organisation_id,
                }
            ),
            str(a.patient_id),
        )
        for a in rows
    ]


def _mood_provenance(rows: list[Any]) -> list[tuple[Any, dict[str, Any], str | None]]:
    out: list[tuple[Any, dict[str, Any], str | None]] = []
    for r in rows:
        d = _mood_dict(r)
        agents = [{"name": d["model_name"], "version": d["model_version"]}]
        oid = observation.mood_id(r.patient_id, r.local_date)
        out.append(
            (
                r,
                provenance.provenance_to_fhir(
                    {
                        "id": oid,
                        "targets": [f"Observation/{oid}"],
                        "recorded": d["last_updated"],
                        "activity": "model-inference",
                        "agents": agents,
                        "organisation_id": r.patient.organisation_id,
                    }
                ),
                str(r.patient_id),
            )
        )
    return out


def _media_provenance(rows: list[Any]) -> list[tuple[Any, dict[str, Any], str | None]]:
    out: list[tuple[Any, dict[str, Any], str | None]] = []
    for r in rows:
        dicts = _media_dicts(r)
        if not dicts:
            continue
        video_id = dicts[0]["video_id"]
        agents = _model_agents(getattr(r, "models_info", None)) or [
            {"name": dicts[0]["model_name"], "version": dicts[0]["model_version"]}
        ]
        patient_obj = Patient.objects.filter(pk=dicts[0]["patient_id"]).first()
        out.append(
            (
                r,
                provenance.provenance_to_fhir(
                    {
                        "id": f"media-{video_id}",
                        "targets": [
                            f"Observation/{observation.media_id(d['kind'], video_id)}"
                            for d in dicts
                        ],
                        "recorded": dicts[0]["last_updated"],
                        "activity": "model-inference",
                        "agents": agents,
                        "organisation_id": patient_obj.organisation_id if patient_obj else 0,
                    }
                ),
                str(dicts[0]["patient_id"]),
            )
        )
    return out


def _prefixed(prefix: str) -> Callable[[str], str | None]:
    return lambda rid: rid[len(prefix) :] if rid.startswith(prefix) else None


def _audit_queryset(principal: Principal) -> QuerySet[Any]:
    org = principal.organisation_id
    return AccessEvent.objects.select_related("actor__clinician", "patient").filter(
        Q(patient__organisation_id=org)
        | Q(patient__isnull=True, actor__clinician__organisation_id=org)
        | Q(patient__isnull=True, actor__auditor__organisation_id=org)
        | Q(patient__isnull=True, actor__fhir_client__organisation_id=org)
        | ANONYMOUS_UNATTRIBUTED
    )


def _consent_queryset(principal: Principal) -> QuerySet[Any]:
    newer = ConsentRecord.objects.filter(
        patient=OuterRef("patient"), scope=OuterRef("scope"), id__gt=OuterRef("id")
    )
    return (
        ConsentRecord.objects.select_related("patient")
        .filter(patient__in=_visible_ids(principal))
        .annotate(is_current=~Exists(newer))
    )


def _score_sources(kind: str) -> tuple[RowSource, ...]:
    """Observation/Provenance sources over the score tables, when those tables exist."""
    sources: list[RowSource] = []
    mood = score_model("DailyMoodScore")
    if mood is not None:
        sources.append(
            RowSource(
                queryset=lambda p, m=mood: m.objects.select_related("patient").filter(  # type: ignore[misc]
                    patient__in=_visible_ids(p)
                ),
                to_resources=_moods if kind == "Observation" else _mood_provenance,
                ts_field="created_at" if _has_field(mood, "created_at") else "updated_at",
                date_field="local_date",
                date_is_day=True,
                last_updated_field="updated_at" if _has_field(mood, "updated_at") else None,
                id_to_pk=_mood_pk_lookup,
                codes=frozenset({"daily-mood-score"}),
            )
        )
    media = score_model("MediaAnalysis")
    if media is not None:
        patient_field = _media_patient_field(media)
        video = "video" if _has_field(media, "video") else "submission"
        sources.append(
            RowSource(
                queryset=lambda p, m=media, pf=patient_field, v=video: m.objects.select_related(
                    v
                ).filter(  # type: ignore[misc]
                    **{pf.replace("_id", "") + "__in": _visible_ids(p)}
                ),
                to_resources=_media if kind == "Observation" else _media_provenance,
                ts_field="created_at",
                patient_field=patient_field,
                date_field=f"{video}__client_timestamp",
                last_updated_field="updated_at" if _has_field(media, "updated_at") else None,
                id_to_pk=_media_pk_lookup,
                codes=frozenset({"voice-prosody-panel", "facial-expression-panel"}),
            )
        )
    return tuple(sources)


def _numeric_pk(resource_id: str) -> str | None:
    """Resources keyed by an integer primary key: anything else is no such resource."""
    return resource_id if resource_id.isdigit() else None


#: What :func:`_alert_basis` reads of the alerts a RiskAssessment's alert superseded (two
#: links, their evidence): a fixed number of queries per page, whatever the number of alerts.
ALERT_SUPERSEDED_PREFETCH = alert_superseded_prefetch(with_evidence=True)


def registry_build() -> dict[str, ResourceSpec]:
    """Every implemented resource type (built at first use, after the apps are ready)."""
    survey_codes = frozenset({"44261-6", "70274-6", "44260-8"})
    alerts = lambda p: Alert.objects.select_related("patient").filter(  # noqa: E731
        patient__in=_visible_ids(p)
    )
    outbox = lambda p: OutboxMessage.objects.select_related("alert").filter(  # noqa: E731
        alert__patient__in=_visible_ids(p)
    )
    specs = [
        ResourceSpec(
            "Patient",
            (
                RowSource(
                    queryset=patients_visible,
                    to_resources=_patients,
                    patient_field="pk",
                ),
            ),
            (P_ID, P_LAST, SearchParam("identifier", "token", "The Vigil pseudonym.")),
        ),
        ResourceSpec(
            "Practitioner",
            (
                RowSource(
                    queryset=lambda p: Clinician.objects.select_related("user").filter(
                        organisation_id=p.organisation_id
                    ),
                    to_resources=_practitioners,
                    ts_field=None,
                    patient_field=None,
                    id_to_pk=_numeric_pk,
                ),
            ),
            (P_ID,),
        ),
        ResourceSpec(
            "Organization",
            (
                RowSource(
                    queryset=lambda p: Organisation.objects.filter(pk=p.organisation_id),
                    to_resources=_organizations,
                    patient_field=None,
                    id_to_pk=_numeric_pk,
                ),
            ),
            (P_ID, P_LAST),
        ),
        ResourceSpec(
            "CareTeam",
            (
                RowSource(
                    queryset=lambda p: CareTeam.objects.prefetch_related("members").filter(
                        organisation_id=p.organisation_id
                    ),
                    to_resources=_care_teams,
                    ts_field=None,
                    patient_field=None,
                    id_to_pk=_numeric_pk,
                ),
            ),
            (P_ID,),
        ),
        ResourceSpec(
            "QuestionnaireResponse",
            (
                RowSource(
                    queryset=lambda p: QuestionnaireResponse.objects.filter(
                        patient__in=_visible_ids(p)
                    ),
                    to_resources=_questionnaire_responses,
                    date_field="client_timestamp",
                ),
            ),
            (P_ID, P_LAST, P_PATIENT, P_DATE("When it was answered (authored)"), P_STATUS),
        ),
        ResourceSpec(
            "Observation",
            (
                RowSource(
                    queryset=lambda p: QuestionnaireResponse.objects.filter(
                        patient__in=_visible_ids(p)
                    ),
                    to_resources=_survey_observations,
                    date_field="client_timestamp",
                    id_to_pk=_survey_obs_pk,
                    codes=survey_codes,
                ),
                *_score_sources("Observation"),
            ),
            (
                P_ID,
                P_LAST,
                P_PATIENT,
                P_DATE("Clinically relevant time"),
                P_CODE,
                P_CATEGORY,
                P_STATUS,
            ),
        ),
        ResourceSpec(
            "RiskAssessment",
            (
                RowSource(
                    queryset=lambda p: alerts(p).prefetch_related(
                        "evidence_items", *ALERT_SUPERSEDED_PREFETCH
                    ),
                    to_resources=_risk_assessments,
                    date_field="created_at",
                    last_updated_field="updated_at",
                ),
            ),
            (P_ID, P_LAST, P_PATIENT, P_DATE("When the alert was raised"), P_STATUS),
        ),
        ResourceSpec(
            "Flag",
            (
                RowSource(
                    queryset=alerts,
                    to_resources=_flags,
                    date_field="created_at",
                    last_updated_field="updated_at",
                ),
            ),
            (P_ID, P_LAST, P_PATIENT, P_DATE("When the flag was raised"), P_STATUS, P_CATEGORY),
        ),
        ResourceSpec(
            "CommunicationRequest",
            (
                RowSource(
                    queryset=outbox,
                    to_resources=_communication_requests,
                    patient_field="alert__patient_id",
                    date_field="created_at",
                    last_updated_field="updated_at",
                ),
            ),
            (P_ID, P_LAST, P_PATIENT, P_DATE("When it was requested"), P_STATUS, P_CATEGORY),
        ),
        ResourceSpec(
            "Communication",
            (
                RowSource(
                    queryset=lambda p: outbox(p).filter(state="sent"),
                    to_resources=_communications,
                    patient_field="alert__patient_id",
                    date_field="sent_at",
                    last_updated_field="updated_at",
                ),
            ),
            (P_ID, P_LAST, P_PATIENT, P_DATE("When it was sent"), P_STATUS, P_CATEGORY),
        ),
        ResourceSpec(
            "Consent",
            (
                RowSource(
                    queryset=_consent_queryset,
                    to_resources=_consents,
                    date_field="created_at",
                    id_to_pk=_numeric_pk,
                ),
            ),
            (P_ID, P_LAST, P_PATIENT, P_DATE("When it was recorded"), P_STATUS, P_CATEGORY),
        ),
        ResourceSpec(
            "AuditEvent",
            (
                RowSource(
                    queryset=_audit_queryset,
                    to_resources=_audit_events,
                    ts_field="occurred_at",
                    date_field="occurred_at",
                    id_to_pk=_numeric_pk,
                ),
            ),
            (P_ID, P_LAST, P_PATIENT, P_DATE("When it was recorded")),
        ),
        ResourceSpec(
            "Provenance",
            (
                RowSource(
                    queryset=alerts,
                    to_resources=_alert_provenance,
                    date_field="created_at",
                    id_to_pk=_prefixed("alert-"),
                ),
                *_score_sources("Provenance"),
            ),
            (P_ID, P_LAST, P_PATIENT),
        ),
    ]
    return {spec.type: spec for spec in specs}


_REGISTRY: dict[str, ResourceSpec] | None = None


def registry() -> dict[str, ResourceSpec]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = registry_build()
    return _REGISTRY
