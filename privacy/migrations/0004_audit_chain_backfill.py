"""Create the audit chain's head row and chain the access events recorded before the chain existed
(in id order), so that an existing database verifies."""

from django.db import migrations

from privacy import chain

CHAIN_HEAD_ID = 1


def chain_existing_events(apps, schema_editor):
    AccessEvent = apps.get_model("privacy", "AccessEvent")
    AuditChainHead = apps.get_model("privacy", "AuditChainHead")
    db = schema_editor.connection.alias
    events = AccessEvent._base_manager.using(db)  # never the append-only guard
    last = (
        events.filter(seq__isnull=False).order_by("-seq").values_list("seq", "hash").first()
    )
    seq, prev_hash = last if last is not None else (0, chain.GENESIS_HASH)
    fields = ("id", *[name for name in chain.CHAINED_FIELDS if name != "seq"])
    after = 0
    while True:
        batch = list(
            events.filter(seq__isnull=True, id__gt=after).order_by("id").values(*fields)[:2000]
        )
        if not batch:
            break
        for row in batch:
            seq += 1
            digest = chain.event_hash({**row, "seq": seq}, prev_hash)
            events.filter(pk=row["id"]).update(seq=seq, prev_hash=prev_hash, hash=digest)
            prev_hash = digest
        after = batch[-1]["id"]
    AuditChainHead.objects.using(db).update_or_create(
        pk=CHAIN_HEAD_ID, defaults={"seq": seq, "hash": prev_hash}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0003_audit_chain_break_glass"),
    ]

    operations = [
        migrations.RunPython(chain_existing_events, migrations.RunPython.noop),
    ]
