"""privacy.audit.access_record_patients: one event per patient of a listed page, appended as a
batch (one head lock) into the same hash chain that single appends build."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from privacy import chain
from privacy.audit import Actor, access_record, access_record_patients, audit_chain_head
from privacy.chain_verify import audit_chain_verify
from privacy.models import AccessEvent

pytestmark = pytest.mark.django_db


def _actor(world: Any) -> Actor:
    return Actor(user_id=world.clinician.user_id, role="clinician")


def test_a_batch_is_a_run_of_ordinary_chained_events(world: Any) -> None:
    actor = _actor(world)
    access_record(actor=actor, action="before")
    ids = [world.patient_a.pk, world.patient_b.pk, world.patient_a.pk]
    assert access_record_patients(actor=actor, action="portal.caseload", patient_ids=ids) == 3
    access_record(actor=actor, action="after")

    rows = list(AccessEvent.objects.order_by("seq"))
    seqs = [e.seq for e in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(rows)))  # contiguous, no gap, no fork
    batch = [e for e in rows if e.action == "portal.caseload"]
    assert [e.patient_id for e in batch] == ids  # in the order given
    assert {(e.resource_type, e.outcome) for e in batch} == {("Patient", "allowed")}
    assert [e.resource_id for e in batch] == [str(i) for i in ids]
    for previous, event in itertools.pairwise(rows):
        assert event.prev_hash == previous.hash
    assert audit_chain_head().hash == rows[-1].hash
    assert audit_chain_verify().ok


def test_each_batched_hash_is_what_a_single_append_would_compute(world: Any) -> None:
    access_record_patients(
        actor=_actor(world), action="portal.queue", patient_ids=[world.patient_a.pk]
    )
    (event,) = AccessEvent.objects.filter(action="portal.queue")
    from privacy.audit import chain_event_values

    assert event.hash == chain.event_hash(chain_event_values(event), event.prev_hash)


def test_an_empty_batch_appends_nothing(world: Any) -> None:
    head = audit_chain_head()
    assert access_record_patients(actor=_actor(world), action="x", patient_ids=[]) == 0
    assert audit_chain_head() == head


def test_a_tampered_batched_event_is_detected(world: Any) -> None:
    from django.db import connection

    access_record_patients(
        actor=_actor(world),
        action="portal.caseload",
        patient_ids=[world.patient_a.pk, world.patient_b.pk],
    )
    victim = AccessEvent.objects.filter(action="portal.caseload").order_by("seq").first()
    assert victim is not None
    with connection.cursor() as cursor:  # what an attacker with database access could do
        cursor.execute(
            "UPDATE privacy_accessevent SET action = %s WHERE id = %s",
            ["portal.nothing", victim.pk],
        )
    assert not audit_chain_verify().ok
