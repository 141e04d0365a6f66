"""The transactional outbox: written with the change, claimed per shard, settled, dead-lettered."""

from __future__ import annotations

import ast
import datetime as dt
import re
import threading
import uuid
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from regions.replication.events import DIRECTORY_ENTRY, directory_shard
from regions.replication.models import DeadLetter, OutboxEvent
from regions.replication.outbox import (
    dead_letter_discard,
    outbox_claim,
    outbox_coalesce,
    outbox_event_record,
    outbox_settle,
    replication_backlog,
)
from residency.models import DirectoryEntry
from residency.services import directory_entry_upsert
from tests.harness.stack import REPO_ROOT

ORG = DirectoryEntry.Kind.ORGANIZATION
PEERS = {"eu-central-1", "us-east-1", "ap-south-1"}


def keys_in_shard(shard: str, count: int, prefix: str = "org") -> list[str]:
    found = (f"{prefix}-{i}" for i in range(10_000))
    return [k for k in found if directory_shard({"kind": "org", "key": k}) == shard][:count]


@pytest.mark.django_db
def test_a_directory_write_records_one_allowlisted_event_per_peer_in_its_transaction():
    entry = directory_entry_upsert(kind=ORG, key="acme", home_region="eu-west-1")
    rows = list(OutboxEvent.objects.all())
    assert {row.target_region for row in rows} == PEERS
    assert len({row.event_id for row in rows}) == 1
    assert rows[0].payload == {
        "kind": "org",
        "key": "acme",
        "home_region": "eu-west-1",
        "version": entry.version,
        "origin_region": "eu-west-1",
    }
    assert rows[0].shard_key == directory_shard(rows[0].payload) and rows[0].object_key == "org:acme"
    assert rows[0].attempts == 0 and rows[0].next_attempt_at <= timezone.now()


@pytest.mark.django_db(transaction=True)
def test_the_event_commits_or_rolls_back_with_the_change():
    with pytest.raises(RuntimeError), transaction.atomic():
        directory_entry_upsert(kind=ORG, key="rolled-back", home_region="eu-west-1")
        raise RuntimeError("the caller fails after the write")
    assert not DirectoryEntry.objects.exists() and not OutboxEvent.objects.exists()
    with transaction.atomic():
        directory_entry_upsert(kind=ORG, key="kept", home_region="eu-west-1")
        directory_entry_upsert(kind=ORG, key="kept", home_region="us-east-1")
    versions = sorted(row.payload["version"] for row in OutboxEvent.objects.filter(target_region="us-east-1"))
    assert versions == [1, 2]


@pytest.mark.django_db
def test_personal_data_in_a_key_aborts_the_write():
    with pytest.raises(ValueError):
        directory_entry_upsert(
            kind=DirectoryEntry.Kind.LOGIN, key="alice@example.com", home_region="eu-west-1"
        )
    assert not OutboxEvent.objects.filter(object_key__contains="alice").exists()


WRITE_SQL = re.compile(
    r"(INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(\s+TABLE)?|COPY|MERGE\s+INTO)\s+\"?residency_directoryentry",
    re.IGNORECASE,
)
WRITE_METHODS = {
    "create",
    "bulk_create",
    "bulk_update",
    "update",
    "update_or_create",
    "get_or_create",
    "delete",
    "save",
    "raw",
}


def test_the_directory_service_is_the_only_writer_so_no_bulk_path_skips_the_outbox():
    """No module but residency/services.py writes DirectoryEntry rows, by ORM or by SQL.

    Every ORM write method on anything reached through ``DirectoryEntry`` (its
    manager, querysets, instances bound from it) and any SQL naming its table
    counts as a write. The service writes the outbox row in the same
    transaction, so a bulk path would have to appear here first.
    """
    allowed = {Path("residency/services.py")}
    offenders = []
    for path in sorted(REPO_ROOT.rglob("*.py")):
        relative = path.relative_to(REPO_ROOT)
        if relative.parts[0] in {".venv", "tests", "bench"} or "migrations" in relative.parts:
            continue
        source = path.read_text()
        if WRITE_SQL.search(source) and relative not in allowed:
            offenders.append(f"{relative}: SQL writing residency_directoryentry")
        if "DirectoryEntry" not in source or relative in allowed:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in WRITE_METHODS and "DirectoryEntry" in ast.unparse(node.func.value):
                    offenders.append(f"{relative}:{node.lineno}: {ast.unparse(node.func)}")
    assert offenders == []


def test_the_scan_would_catch_a_bulk_write():
    assert WRITE_SQL.search("cursor.execute('UPDATE residency_directoryentry SET home_region = %s')")
    assert not WRITE_SQL.search("SELECT key FROM residency_directoryentry")
    sample = "DirectoryEntry.objects.filter(kind='org').update(home_region='x')"
    calls = [n.func for n in ast.walk(ast.parse(sample)) if isinstance(n, ast.Call)]
    update = next(f for f in calls if isinstance(f, ast.Attribute) and f.attr == "update")
    assert isinstance(update, ast.Attribute)
    assert update.attr in WRITE_METHODS and "DirectoryEntry" in ast.unparse(update.value)


def _record(key: str, version: int = 1) -> None:
    entry = DirectoryEntry(
        kind="org", key=key, home_region="eu-west-1", version=version, origin_region="eu-west-1"
    )
    outbox_event_record(event=DIRECTORY_ENTRY, instance=entry)


@pytest.mark.django_db
def test_a_claim_takes_whole_shards_in_commit_order():
    a1, a2 = keys_in_shard("directory:01", 2)
    (b1,) = keys_in_shard("directory:02", 1)
    for key in (a1, b1, a2):
        _record(key)
    with transaction.atomic():
        rows = outbox_claim(peer="us-east-1", shards=1, limit=10)
        assert [r.payload["key"] for r in rows] == [a1, a2]  # the oldest head's shard, all of it
    with transaction.atomic():
        rows = outbox_claim(peer="us-east-1", shards=5, limit=10)
        assert [r.payload["key"] for r in rows] == [a1, b1, a2]


@pytest.mark.django_db(transaction=True)
def test_concurrent_drainers_claim_disjoint_shards_and_never_a_shard_behind_a_locked_head():
    shards = [f"directory:{n:02d}" for n in range(4)]
    keys = [k for shard in shards for k in keys_in_shard(shard, 3)]
    with transaction.atomic():
        for key in keys:
            _record(key)
    claimed_first = threading.Event()
    release = threading.Event()
    seen: dict[str, list[str]] = {}

    def first_drainer() -> None:
        with transaction.atomic():
            seen["first"] = [r.shard_key for r in outbox_claim(peer="us-east-1", shards=2, limit=100)]
            claimed_first.set()
            release.wait(10)

    thread = threading.Thread(target=first_drainer)
    thread.start()
    try:
        assert claimed_first.wait(10)
        with transaction.atomic():
            seen["second"] = [r.shard_key for r in outbox_claim(peer="us-east-1", shards=10, limit=100)]
    finally:
        release.set()
        thread.join(10)
    assert len(seen["first"]) == 6 and len(seen["second"]) == 6
    assert set(seen["first"]).isdisjoint(seen["second"])
    assert set(seen["first"]) | set(seen["second"]) == set(shards)


@pytest.mark.django_db
def test_coalescing_sends_the_newest_event_of_each_object():
    for key, version in [("acme", 1), ("globex", 1), ("acme", 2), ("acme", 3)]:
        _record(key, version)
    rows = list(OutboxEvent.objects.filter(target_region="us-east-1").order_by("id"))
    send, superseded = outbox_coalesce(rows)
    assert [(r.payload["key"], r.payload["version"]) for r in send] == [("globex", 1), ("acme", 3)]
    assert superseded == {rows[3].pk: [rows[0].pk, rows[2].pk]}


@pytest.mark.django_db
def test_settling_deletes_delivered_rows_backs_off_failures_then_dead_letters_them(settings):
    settings.REPLICATION_MAX_ATTEMPTS = 3
    _record("ok")
    _record("poison")
    _record("behind")
    rows = list(OutboxEvent.objects.filter(target_region="us-east-1").order_by("id"))
    ok, poison, behind = rows
    now = timezone.now()
    answers = {
        str(ok.event_id): ("applied", ""),
        str(poison.event_id): ("rejected", "unknown_region"),
        str(behind.event_id): ("blocked", ""),
    }
    report = outbox_settle(rows=rows, superseded={}, results=answers, now=now)
    assert (report.delivered, report.failed, report.blocked, report.dead) == (1, 1, 1, 0)
    assert not OutboxEvent.objects.filter(pk=ok.pk).exists()
    poison.refresh_from_db()
    assert poison.attempts == 1 and "unknown_region" in poison.last_error
    assert now <= poison.next_attempt_at <= now + dt.timedelta(seconds=settings.REPLICATION_BACKOFF_BASE)
    for _ in (2, 3):
        report = outbox_settle(rows=[poison], superseded={}, results=answers, now=now)
    assert report.dead == 1 and not OutboxEvent.objects.filter(pk=poison.pk).exists()
    letter = DeadLetter.objects.get()
    assert (letter.event_id, letter.attempts, letter.payload["key"]) == (poison.event_id, 3, "poison")
    assert OutboxEvent.objects.filter(pk=behind.pk, attempts=0).exists()  # blocked rows are not attempts


@pytest.mark.django_db
def test_backlog_per_peer_counts_events_age_and_dead_letters():
    _record("acme")
    OutboxEvent.objects.filter(target_region="us-east-1").update(
        created_at=timezone.now() - dt.timedelta(seconds=30)
    )
    DeadLetter.objects.create(
        event_id=uuid.uuid4(),
        event_type="directory.entry",
        shard_key="directory:00",
        object_key="org:x",
        target_region="us-east-1",
        payload={},
        attempts=8,
        created_at=timezone.now(),
    )
    backlog = {row.peer: row for row in replication_backlog()}
    assert set(backlog) == PEERS
    assert backlog["us-east-1"].events == 1 and 29 < backlog["us-east-1"].oldest_age < 120
    assert backlog["us-east-1"].dead_letters == 1 and backlog["ap-south-1"].dead_letters == 0


def _dead(key: str) -> DeadLetter:
    return DeadLetter.objects.create(
        event_id=uuid.uuid4(),
        event_type="directory.entry",
        shard_key="directory:00",
        object_key=f"org:{key}",
        target_region="us-east-1",
        payload={
            "kind": "org",
            "key": key,
            "home_region": "eu-west-1",
            "version": 1,
            "origin_region": "eu-west-1",
        },
        attempts=8,
        last_error="rejected: unknown_region",
        created_at=timezone.now(),
    )


@pytest.fixture
def admin_client(db):
    from saas.models import User

    user = User.objects.create_superuser("ops@example.com", "pw-not-used", home_region="eu-west-1")
    client = Client()
    client.force_login(user)
    return client


def test_admin_lists_inspects_replays_and_discards_dead_letters(admin_client):
    letters = [_dead(f"key-{i}") for i in range(3)]
    listing = admin_client.get("/admin/regions/deadletter/")
    assert listing.status_code == 200 and b"org:key-1" in listing.content
    detail = admin_client.get(f"/admin/regions/deadletter/{letters[0].pk}/change/")
    assert (
        detail.status_code == 200
        and b"unknown_region" in detail.content
        and b"&quot;key-0&quot;" in detail.content
    )
    response = admin_client.post(
        "/admin/regions/deadletter/",
        {"action": "replay", "_selected_action": [letters[0].pk, letters[1].pk]},
    )
    assert response.status_code == 302
    replayed = OutboxEvent.objects.filter(target_region="us-east-1").order_by("id")
    assert [(r.event_id, r.attempts) for r in replayed] == [
        (letters[0].event_id, 0),
        (letters[1].event_id, 0),
    ]
    admin_client.post(
        "/admin/regions/deadletter/", {"action": "discard", "_selected_action": [letters[2].pk]}
    )
    assert not DeadLetter.objects.exists()
    assert dead_letter_discard(ids=[letters[2].pk]) == 0
