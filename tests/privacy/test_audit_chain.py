"""The audit hash chain: appends, verification, and tampering done straight in the database.

Tampering uses raw SQL through ``connection.cursor()``: the ORM refuses to change or delete
access events (append-only), which is exactly what an attacker with database access bypasses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib
import io
import itertools
import threading
import uuid
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor

from privacy import chain
from privacy.audit import Actor, access_record, audit_anchor_record
from privacy.chain_verify import (
    LAST_RESULT_CACHE_KEY,
    ChainVerification,
    audit_chain_last,
    audit_chain_verify,
)
from privacy.management.commands.verify_audit_chain import Command as VerifyCommand
from privacy.models import AccessEvent, AppendOnlyError, AuditAnchor, AuditChainHead
from tests.conftest import new_key, now_iso

EVENTS = "privacy_accessevent"
HEAD = "privacy_auditchainhead"
ANCHORS = "privacy_auditanchor"


# --- helpers --------------------------------------------------------------------------------------
def sql(statement: str, params: list[Any] | tuple[Any, ...] = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, list(params))


def append_mixed(n: int, *, patient_ids: list[Any] | None = None) -> list[AccessEvent]:
    """``n`` events with every field varied: roles, outcomes, IPv4/IPv6, purposes, break-glass."""
    patient_ids = patient_ids or [None]
    roles = ["patient", "clinician", "auditor", "system", "anonymous"]
    ips = [None, "10.0.0.7", "2001:db8::1", "::ffff:192.0.2.1", "2001:0db8:0000::0002"]
    events = []
    for i in range(n):
        events.append(
            access_record(
                actor=Actor(user_id=None, role=roles[i % len(roles)], ip_address=ips[i % len(ips)]),
                action=["diary.read", "auth.login", "consent.grant", "help.create"][i % 4],
                patient_id=patient_ids[i % len(patient_ids)],
                outcome="denied" if i % 7 == 3 else "allowed",
                resource_type="DiaryEntry" if i % 2 else "",
                resource_id=uuid.uuid4() if i % 3 == 0 else "",
                status_code=[None, 200, 403, 404][i % 4],
                reason="not_owner" if i % 5 == 0 else "",
                purpose="Crisis call: reviewing plan — ünïcode ✓" if i % 6 == 0 else "",
                break_glass=i % 9 == 0,
            )
        )
    return events


def seq_map() -> dict[int, int]:
    """seq -> id of every chained event."""
    return dict(AccessEvent.objects.filter(seq__isnull=False).values_list("seq", "id"))


def run_command(*args: str) -> tuple[int, str, str]:
    """Run ``manage.py verify_audit_chain`` the way the shell does (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    command = VerifyCommand(stdout=out, stderr=err)
    # run_from_argv closes the database connections at the end, which would end the test's
    # transaction: keep them.
    with mock.patch.object(connections, "close_all"):
        try:
            command.run_from_argv(["manage.py", "verify_audit_chain", *args])
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def assert_break(kind: str, seq: int | None, event_id: int | None = None) -> ChainVerification:
    result = audit_chain_verify(batch_size=4)
    assert not result.ok
    assert result.first_break is not None
    assert (result.first_break.kind, result.first_break.seq) == (kind, seq), result.first_break
    if event_id is not None:
        assert result.first_break.event_id == event_id
    status, out, err = run_command("--batch-size", "3")
    assert status == 1
    assert f"{kind} at seq {seq}" in err, err
    assert "OK" not in out
    return result


# --- the canonical form ---------------------------------------------------------------------------
FIXED = {
    "seq": 7,
    "occurred_at": dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
    "actor_id": 12,
    "actor_role": "clinician",
    "patient_id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "action": "diary.read",
    "outcome": "allowed",
    "resource_type": "DiaryEntry",
    "resource_id": "abc",
    "status_code": 200,
    "reason": "",
    "request_id": "req-1",
    "ip_address": "2001:db8::1",
    "purpose": "",
    "break_glass": False,
}


def test_the_canonical_form_is_sorted_compact_json_in_utc_with_microseconds():
    text = chain.canonical_bytes(FIXED).decode()
    assert text.startswith('{"action":"diary.read","actor_id":12,"actor_role":"clinician",')
    assert '"occurred_at":"2026-01-02T03:04:05.000006Z"' in text
    assert '"patient_id":"12345678-1234-5678-1234-567812345678"' in text
    assert '"ip_address":"2001:0db8:0000:0000:0000:0000:0000:0001"' in text
    assert " " not in text
    mapped = chain.canonical_bytes({**FIXED, "ip_address": "::ffff:192.0.2.1", "purpose": "ü"})
    assert b'"ip_address":"0000:0000:0000:0000:0000:ffff:c000:0201"' in mapped
    assert b'"purpose":"\\u00fc"' in mapped


def test_the_hash_format_is_frozen():
    # Any change to the serialisation breaks every stored chain: this value must never change.
    canonical = chain.canonical_bytes(FIXED)
    assert (
        chain.event_hash(FIXED, chain.GENESIS_HASH)
        == hashlib.sha256(canonical + chain.GENESIS_HASH.encode()).hexdigest()
    )
    assert chain.event_hash(FIXED, chain.GENESIS_HASH) == (
        "a691214d61986a31f2c06f77a87d78a409c66012ff4258725bd49ab0a6176068"
    )


def test_equivalent_values_hash_alike_and_any_change_differs():
    same = {
        **FIXED,
        "occurred_at": dt.datetime(
            2026, 1, 1, 22, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=-5))
        ),
        "patient_id": "12345678123456781234567812345678",
        "ip_address": "2001:0db8:0000:0000:0000:0000:0000:0001",
        "actor_id": "12",
    }
    base = chain.event_hash(FIXED, chain.GENESIS_HASH)
    assert chain.event_hash(same, chain.GENESIS_HASH) == base
    for name, value in [
        ("seq", 8),
        ("action", "diary.list"),
        ("actor_id", None),
        ("patient_id", None),
        ("break_glass", True),
        ("purpose", " "),
        ("occurred_at", FIXED["occurred_at"] + dt.timedelta(microseconds=1)),
    ]:
        assert chain.event_hash({**FIXED, name: value}, chain.GENESIS_HASH) != base, name
    assert chain.event_hash(FIXED, "1" * 64) != base


def test_naive_timestamps_and_missing_fields_are_refused():
    with pytest.raises(ValueError):
        chain.event_hash({**FIXED, "occurred_at": dt.datetime(2026, 1, 1)}, chain.GENESIS_HASH)
    with pytest.raises(KeyError):
        chain.event_hash({k: v for k, v in FIXED.items() if k != "purpose"}, chain.GENESIS_HASH)


# --- appends --------------------------------------------------------------------------------------
def test_the_chain_verifies_after_many_mixed_appends(world, client_a):
    for text in ("one", "two"):
        client_a.post(
            "/api/v1/diary-entries",
            {"idempotency_key": new_key(), "client_timestamp": now_iso(), "text": text},
            format="json",
        )
    client_a.get("/api/v1/diary-entries")
    world.client_for(world.clinician.user).get("/api/v1/me")  # denied: staff on a patient route
    append_mixed(120, patient_ids=[None, world.patient_a.pk, str(world.patient_b.pk)])

    seqs = seq_map()
    total = AccessEvent.objects.count()
    assert sorted(seqs) == list(range(1, total + 1))
    rows = list(AccessEvent.objects.order_by("seq").values("seq", "prev_hash", "hash"))
    assert rows[0]["prev_hash"] == chain.GENESIS_HASH
    for before, after in itertools.pairwise(rows):
        assert after["prev_hash"] == before["hash"]
    head = AuditChainHead.objects.get()
    assert (head.seq, head.hash) == (rows[-1]["seq"], rows[-1]["hash"])

    for batch_size in (1, 7, 1000):
        result = audit_chain_verify(batch_size=batch_size)
        assert result.ok, result.first_break
        assert (result.events_checked, result.head_seq, result.head_hash) == (
            total,
            head.seq,
            head.hash,
        )
    status, out, err = run_command()
    assert status == 0, err
    assert out.strip().count("\n") == 0
    assert out.startswith("OK") and f"head seq {head.seq}" in out and head.hash in out


def test_stored_events_rehash_to_their_hash_and_keep_the_hashed_time(world):
    event = access_record(
        actor=Actor(user_id=world.clinician.user_id, role="clinician", ip_address="::1"),
        action="diary.read",
        patient_id=world.patient_a.pk,
        purpose="x" * 600,
        reason="r" * 100,
    )
    stored = AccessEvent.objects.values(*chain.CHAINED_FIELDS, "prev_hash", "hash").get(pk=event.pk)
    assert stored["occurred_at"] == event.occurred_at
    assert len(stored["purpose"]) == 500 and len(stored["reason"]) == 64
    assert chain.event_hash(stored, stored["prev_hash"]) == stored["hash"] == event.hash


def test_events_stay_append_only_through_the_orm(world):
    event = access_record(actor=Actor.system(), action="x")
    with pytest.raises(AppendOnlyError):
        AccessEvent.objects.filter(pk=event.pk).update(action="y")
    with pytest.raises(AppendOnlyError):
        event.delete()


def test_a_rolled_back_append_leaves_no_gap(world):
    append_mixed(3)
    with pytest.raises(RuntimeError), transaction.atomic():
        access_record(actor=Actor.system(), action="doomed")
        raise RuntimeError("the caller's transaction fails")
    append_mixed(2)
    assert not AccessEvent.objects.filter(action="doomed").exists()
    assert audit_chain_verify().ok


def test_a_missing_head_row_is_recreated_from_the_last_event(world):
    append_mixed(5)
    sql(f"DELETE FROM {HEAD}")  # noqa: S608
    event = access_record(actor=Actor.system(), action="after")
    assert event.seq == AccessEvent.objects.count()
    assert audit_chain_verify().ok


def test_the_data_migration_chains_events_recorded_before_the_chain(world):
    append_mixed(9)
    # As in a database migrated from 0003: events with no seq or hashes, and no head.
    sql(f"UPDATE {EVENTS} SET seq = NULL, prev_hash = '', hash = ''")  # noqa: S608
    sql(f"DELETE FROM {HEAD}")  # noqa: S608
    assert audit_chain_verify().first_break.kind == "inserted"
    name = "0004_audit_chain_backfill"
    migration = importlib.import_module(f"privacy.migrations.{name}")
    state = MigrationExecutor(connection).loader.project_state(("privacy", name))
    migration.chain_existing_events(state.apps, SimpleNamespace(connection=connection))
    ids = list(AccessEvent.objects.order_by("id").values_list("id", flat=True))
    assert list(AccessEvent.objects.order_by("seq").values_list("id", flat=True)) == ids
    assert audit_chain_verify().ok
    access_record(actor=Actor.system(), action="next")
    assert audit_chain_verify().ok


def test_the_result_is_stored_as_the_last_verification(world):
    from django.core.cache import cache

    append_mixed(2)
    assert audit_chain_last() is None
    result = audit_chain_verify()
    assert cache.get(LAST_RESULT_CACHE_KEY)["head_seq"] == result.head_seq
    assert audit_chain_last() == result
    audit_chain_verify(store=False)
    assert audit_chain_last() == result


def test_an_empty_chain_verifies(db):
    result = audit_chain_verify()
    assert result.ok
    assert (result.events_checked, result.head_seq, result.head_hash) == (0, 0, chain.GENESIS_HASH)


# --- tampering ------------------------------------------------------------------------------------
@pytest.fixture
def chained(world: Any) -> dict[int, int]:
    append_mixed(30, patient_ids=[world.patient_a.pk, None])
    assert audit_chain_verify().ok
    return seq_map()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("action", "diary.list"),
        ("outcome", "x"),
        ("purpose", "edited"),
        ("actor_role", "robot"),
        ("break_glass", True),
        ("status_code", 201),
        ("ip_address", "192.0.2.99"),
    ],
)
def test_an_edited_field_is_named_at_its_seq(chained, column, value):
    target = 12
    sql(f"UPDATE {EVENTS} SET {column} = %s WHERE seq = %s", [value, target])  # noqa: S608
    assert_break("altered", target, chained[target])


def test_an_edited_time_is_detected(chained):
    sql(
        f"UPDATE {EVENTS} SET occurred_at = %s WHERE seq = %s",  # noqa: S608
        [dt.datetime(2020, 1, 1, tzinfo=dt.UTC), 5],
    )
    assert_break("altered", 5, chained[5])


def test_an_edited_and_rehashed_event_is_named_by_the_next_link(chained):
    target = 8
    sql(f"UPDATE {EVENTS} SET action = 'diary.list' WHERE seq = %s", [target])  # noqa: S608
    row = AccessEvent.objects.values(*chain.CHAINED_FIELDS, "prev_hash").get(seq=target)
    sql(
        f"UPDATE {EVENTS} SET hash = %s WHERE seq = %s",  # noqa: S608
        [chain.event_hash(row, row["prev_hash"]), target],
    )
    assert_break("altered", target, chained[target])


def test_a_deleted_event_is_named_at_its_seq(chained):
    sql(f"DELETE FROM {EVENTS} WHERE seq = %s", [17])  # noqa: S608
    result = assert_break("deleted", 17)
    assert result.first_break is not None
    assert result.first_break.event_id == chained[18]  # the next surviving event


def test_the_first_event_deleted_is_detected(chained):
    sql(f"DELETE FROM {EVENTS} WHERE seq IN (1, 2)")  # noqa: S608
    assert_break("deleted", 1)


@pytest.mark.parametrize(("a", "b"), [(10, 11), (4, 21)])
def test_swapped_events_are_reported_as_reordered(chained, a, b):
    spare = 10**9  # a free seq to swap through (seq 0 and below are refused by the database)
    sql(f"UPDATE {EVENTS} SET seq = %s WHERE seq = %s", [spare, a])  # noqa: S608
    sql(f"UPDATE {EVENTS} SET seq = %s WHERE seq = %s", [a, b])  # noqa: S608
    sql(f"UPDATE {EVENTS} SET seq = %s WHERE seq = %s", [b, spare])  # noqa: S608
    result = assert_break("reordered", a, chained[b])
    assert result.first_break is not None
    assert f"written at seq {b}" in result.first_break.message


def test_only_the_first_of_several_breaks_is_reported(chained):
    sql(f"UPDATE {EVENTS} SET action = 'x' WHERE seq = 25")  # noqa: S608
    sql(f"DELETE FROM {EVENTS} WHERE seq = 9")  # noqa: S608
    assert_break("deleted", 9)


def _truncate(keep: int) -> None:
    sql(f"DELETE FROM {EVENTS} WHERE seq > %s", [keep])  # noqa: S608


def test_a_truncated_tail_is_caught_by_the_head(chained):
    _truncate(max(chained) - 3)
    assert_break("truncated", max(chained) - 2)


def test_a_truncated_tail_with_a_rewound_head_is_caught_by_the_anchors(chained):
    anchor = audit_anchor_record()
    last = max(chained)
    assert anchor is not None and anchor.seq == last
    append_mixed(4)
    _truncate(last - 4)
    row = AccessEvent.objects.values_list("hash", flat=True).get(seq=last - 4)
    sql(f"UPDATE {HEAD} SET seq = %s, hash = %s", [last - 4, row])  # noqa: S608
    result = assert_break("truncated", last - 3)
    assert result.first_break is not None and f"seq {last}" in result.first_break.message
    # Deleting the anchor rows too does not hide it: the anchor file still has the anchor.
    sql(f"DELETE FROM {ANCHORS}")  # noqa: S608
    result = assert_break("truncated", last - 3)
    assert result.first_break is not None
    assert "anchor file line 1" in result.first_break.message


def test_a_rewritten_tail_is_caught_by_the_anchors(chained):
    assert audit_anchor_record() is not None
    last = max(chained)
    # The attacker rewrites the last event, re-hashes it and moves the head: the walk passes.
    sql(f"UPDATE {EVENTS} SET action = 'nothing.here' WHERE seq = %s", [last])  # noqa: S608
    row = AccessEvent.objects.values(*chain.CHAINED_FIELDS, "prev_hash").get(seq=last)
    digest = chain.event_hash(row, row["prev_hash"])
    sql(f"UPDATE {EVENTS} SET hash = %s WHERE seq = %s", [digest, last])  # noqa: S608
    sql(f"UPDATE {HEAD} SET hash = %s", [digest])  # noqa: S608
    assert_break("rewritten", last, chained[last])


def test_an_event_written_around_the_chain_is_reported(chained):
    AccessEvent.objects.create(actor_role="system", action="sneaked", outcome="allowed")
    result = assert_break_kind_only("inserted")
    assert result.first_break is not None and result.first_break.seq is None


def test_an_event_beyond_the_head_is_reported(chained):
    last = max(chained)
    before = AccessEvent.objects.values_list("hash", flat=True).get(seq=last - 1)
    sql(f"UPDATE {HEAD} SET seq = %s, hash = %s", [last - 1, before])  # noqa: S608
    assert_break("inserted", last, chained[last])


# --- events at seq 0 or below (before the start of the chain) -------------------------------------
SEQ_CHECK = "privacy_accessevent_seq_positive"


def forge_at(seq: int) -> None:
    """An event written by SQL at ``seq``, around :func:`access_record`."""
    sql(
        f"INSERT INTO {EVENTS} (seq, prev_hash, hash, occurred_at, actor_role, action, outcome, "  # noqa: S608
        "resource_type, resource_id, reason, request_id, purpose, break_glass) VALUES "
        "(%s, '', '', CURRENT_TIMESTAMP, 'clinician', 'diary.read', 'allowed', '', '', '', '', "
        "'forged', %s)",
        [seq, False],
    )


@contextlib.contextmanager
def without_the_seq_check() -> Any:
    """As on a database without the ``seq >= 1`` CHECK constraint (never added, or dropped)."""
    if connection.vendor == "sqlite":
        sql("PRAGMA ignore_check_constraints = ON")
        try:
            yield
        finally:
            sql("PRAGMA ignore_check_constraints = OFF")
    else:  # dropped inside the test's transaction, so it comes back with the rollback
        sql("SET CONSTRAINTS ALL IMMEDIATE")  # no ALTER TABLE while deferred checks are pending
        sql(f"ALTER TABLE {EVENTS} DROP CONSTRAINT {SEQ_CHECK}")
        sql("SET CONSTRAINTS ALL DEFERRED")
        yield


@pytest.mark.parametrize("seq", [0, -7])
def test_the_database_refuses_an_event_at_seq_zero_or_below(chained, seq):
    with pytest.raises(IntegrityError), transaction.atomic():
        forge_at(seq)
    assert not AccessEvent.objects.filter(seq__lte=0).exists()


@pytest.mark.parametrize("seq", [0, -7])
def test_a_forged_event_at_seq_zero_or_below_is_reported(chained, seq):
    with without_the_seq_check():
        forge_at(seq)
    forged = AccessEvent.objects.get(seq=seq)
    result = assert_break("inserted", seq, forged.id)
    assert result.first_break is not None and "before the start" in result.first_break.message


def test_the_lowest_of_several_events_below_the_chain_is_named(chained):
    with without_the_seq_check():
        forge_at(0)
        forge_at(-7)
    assert_break("inserted", -7, AccessEvent.objects.get(seq=-7).id)


def test_the_last_event_moved_below_the_chain_with_a_rewound_head_is_reported(chained):
    """Hiding an event: move it to seq -1 and rewind the head to the one before it."""
    last = max(chained)
    before = AccessEvent.objects.values_list("hash", flat=True).get(seq=last - 1)
    with without_the_seq_check():
        sql(f"UPDATE {EVENTS} SET seq = -1 WHERE seq = %s", [last])  # noqa: S608
    sql(f"UPDATE {HEAD} SET seq = %s, hash = %s", [last - 1, before])  # noqa: S608
    assert_break("inserted", -1, chained[last])


def assert_break_kind_only(kind: str) -> ChainVerification:
    result = audit_chain_verify()
    assert result.first_break is not None and result.first_break.kind == kind, result
    status, _, err = run_command()
    assert status == 1 and kind in err
    return result


def test_call_command_raises_with_a_non_zero_status(chained):
    sql(f"DELETE FROM {EVENTS} WHERE seq = 3")  # noqa: S608
    with pytest.raises(CommandError) as raised:
        call_command("verify_audit_chain")
    assert raised.value.returncode == 1
    assert "deleted at seq 3" in str(raised.value)


def test_unreadable_anchor_lines_are_counted_not_fatal(chained, settings):
    audit_anchor_record()
    with open(settings.VIGIL_AUDIT_ANCHOR_FILE, "a") as handle:
        handle.write("not json\n\n{}\n")
    result = audit_chain_verify()
    assert result.ok
    assert result.anchor_lines_unreadable == 2
    assert result.anchors_checked == 2  # the row and the file line


# --- concurrency (PostgreSQL) ---------------------------------------------------------------------
THREADS, PER_THREAD = 8, 25


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_form_one_chain(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL: concurrent writers serialise on the head's row lock there "
            "(SQLite allows one writer at a time anyway); CI runs this on PostgreSQL"
        )
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(PER_THREAD):
                access_record(
                    actor=Actor(user_id=None, role="system", ip_address=f"10.0.{n}.{i}"),
                    action=f"load.{n}",
                    resource_id=i,
                )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    total = THREADS * PER_THREAD
    seqs = list(AccessEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1))
    for n in range(THREADS):
        assert AccessEvent.objects.filter(action=f"load.{n}").count() == PER_THREAD
    result = audit_chain_verify()
    assert result.ok, result.first_break
    assert (result.events_checked, result.head_seq) == (total, total)
    assert AuditAnchor.objects.count() == 0
