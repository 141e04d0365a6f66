"""Replication between two harness regions: real PostgreSQL, Redis brokers, Celery workers, gunicorn.

eu-west-1 writes (the test process acts as its web tier) and its real worker
drains; us-east-1's gunicorn applies. eu-west-1's other peers (eu-central-1,
ap-south-1) have no servers in the harness: their rows wait behind open
breakers, which must not slow us-east-1 down.
"""

from __future__ import annotations

import os
import signal

import psycopg
import pytest
import yaml
from django.test import Client

from regions.devstack.processes import child_pids, free_port, wait_until
from regions.replication.breaker import BreakerState, breaker_reset, breaker_state
from regions.replication.events import directory_shard
from regions.replication.models import DeadLetter, InboxEvent, OutboxEvent
from residency.models import DirectoryEntry
from residency.services import directory_entry_upsert

ORG = DirectoryEntry.Kind.ORGANIZATION
US = "us-east-1"

# Fast failure handling so the scenarios finish in seconds.
WORKER_ENV = {
    "REPLICATION_BACKOFF_BASE": "0.1",
    "REPLICATION_BACKOFF_CAP": "0.5",
    "REPLICATION_BREAKER_THRESHOLD": "2",
    "REPLICATION_BREAKER_OPEN_BASE": "0.3",
    "REPLICATION_BREAKER_OPEN_CAP": "1",
    "REPLICATION_MAX_ATTEMPTS": "3",
    "REPLICATION_HTTP_TIMEOUT": "30",
}


@pytest.fixture
def replication(multi_region_db, as_region, harness):
    """Fresh breaker and drain state in both regions' Redis (it outlives a test)."""
    for code in ("eu-west-1", US):
        with as_region(code):
            for peer in ("eu-west-1", "eu-central-1", US, "ap-south-1"):
                breaker_reset(peer=peer)
        harness.region(code).redis.client(0).flushdb()
    return harness


def directory(as_region, code: str) -> dict[str, tuple[str, int]]:
    with as_region(code):
        return {
            f"{kind}:{key}": (home, version)
            for kind, key, home, version in DirectoryEntry.objects.values_list(
                "kind", "key", "home_region", "version"
            )
        }


def wait_directory(as_region, code: str, expected: dict[str, tuple[str, int]], timeout: float = 60) -> None:
    wait_until(
        lambda: directory(as_region, code) == expected,
        timeout=timeout,
        interval=0.1,
        what=f"{code} directory",
    )


def inbox(as_region) -> dict[str, InboxEvent]:
    with as_region(US):
        return {str(row.event_id): row for row in InboxEvent.objects.all()}


def us_rows_pending() -> int:
    return OutboxEvent.objects.filter(target_region=US).count()


def test_changes_flow_and_converge_after_the_peer_was_unreachable(
    replication, as_region, celery_worker, region_web
):
    celery_worker("eu-west-1", queues="replication", concurrency=2, **WORKER_ENV)
    web = region_web(US)
    directory_entry_upsert(kind=ORG, key="acme", home_region="eu-west-1")
    wait_directory(as_region, US, {"org:acme": ("eu-west-1", 1)}, timeout=30)

    web.stop()  # us-east-1 is unreachable
    for i in range(12):
        directory_entry_upsert(kind=ORG, key=f"org-{i}", home_region="eu-west-1")
    directory_entry_upsert(kind=ORG, key="acme", home_region="eu-central-1")
    directory_entry_upsert(kind=ORG, key="acme", home_region="us-east-1")
    wait_until(lambda: breaker_state(peer=US) is BreakerState.OPEN, timeout=30, what="breaker to open")
    assert directory(as_region, US) == {"org:acme": ("eu-west-1", 1)}
    assert us_rows_pending() == 14

    region_web(US)  # back
    expected = directory(as_region, "eu-west-1")
    assert expected["org:acme"] == ("us-east-1", 3)
    wait_directory(as_region, US, expected, timeout=60)
    wait_until(lambda: us_rows_pending() == 0, timeout=30, what="outbox to empty")
    assert breaker_state(peer=US) is BreakerState.CLOSED
    received = inbox(as_region)
    # Nothing applied twice: one inbox record per delivered event, each delivered once.
    # acme's versions 2 and 3 were coalesced into 3 while the peer was away.
    assert len(received) == 14
    assert {row.deliveries for row in received.values()} == {1}
    assert {row.outcome for row in received.values()} == {"applied"}
    # The unreachable peers' rows are still there, waiting, not lost.
    assert OutboxEvent.objects.filter(target_region="ap-south-1").count() == 15


def _extended_registry(harness):
    """The harness registry plus a new EU region: what a registry rollout delivers."""
    raw = yaml.safe_load(harness.registry_path.read_text())
    raw["regions"].append(
        {
            "code": "eu-north-1",
            "zone": "EU",
            "public_url": f"http://127.0.0.1:{free_port()}",
            "internal_url": f"http://127.0.0.1:{free_port()}",
            "cloud_region": "eu-north-1",
        }
    )
    path = harness.root / "registry-with-eu-north-1.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_poison_event_is_dead_lettered_while_its_shard_flows_on_and_replays_after_a_fix(
    replication, as_region, celery_worker, region_web, harness
):
    from saas.models import User

    web = region_web(US)
    worker = celery_worker("eu-west-1", queues="replication", **WORKER_ENV)
    poison_shard = directory_shard({"kind": "org", "key": "nordic"})
    candidates = (f"org-{i}" for i in range(10_000))
    same_shard = [k for k in candidates if directory_shard({"kind": "org", "key": k}) == poison_shard][:2]
    other = next(
        k for k in (f"x-{i}" for i in range(99)) if directory_shard({"kind": "org", "key": k}) != poison_shard
    )

    # eu-west-1 already knows eu-north-1; us-east-1's registry does not yet.
    directory_entry_upsert(kind=ORG, key="nordic", home_region="eu-north-1")
    for key in [*same_shard, other]:
        directory_entry_upsert(kind=ORG, key=key, home_region="eu-west-1")

    try:
        wait_until(
            lambda: DeadLetter.objects.filter(target_region=US).exists(), timeout=150, what="dead letter"
        )
    except TimeoutError:
        pending = list(
            OutboxEvent.objects.filter(target_region=US).values_list("object_key", "attempts", "last_error")
        )
        raise AssertionError(
            f"no dead letter; pending {pending}\n{worker.tail(80)}\n{web.tail(40)}"
        ) from None
    letter = DeadLetter.objects.get(target_region=US)
    assert letter.object_key == "org:nordic" and letter.attempts == 3
    assert "unknown_region" in letter.last_error
    expected = {f"org:{k}": ("eu-west-1", 1) for k in [*same_shard, other]}
    wait_directory(as_region, US, expected, timeout=30)  # the rest of its shard flowed on

    # The fix: us-east-1 gets the new registry. Then an operator replays from the admin.
    web.stop()
    region_web(US, REGION_REGISTRY=str(_extended_registry(harness)))
    admin = User.objects.create_superuser("ops@example.com", "unused-password", home_region="eu-west-1")
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/regions/deadletter/", {"action": "replay", "_selected_action": [letter.pk]}
    )
    assert response.status_code == 302
    wait_directory(as_region, US, {**expected, "org:nordic": ("eu-north-1", 1)}, timeout=30)
    assert not DeadLetter.objects.exists()
    assert inbox(as_region)[str(letter.event_id)].deliveries == 1


def test_a_worker_killed_mid_batch_is_redelivered_and_applied_exactly_once(
    replication, as_region, celery_worker, region_web, harness
):
    region_web(US)
    worker = celery_worker("eu-west-1", queues="replication", concurrency=1, **WORKER_ENV)
    us = harness.region(US).primary
    with psycopg.connect(us.dsn(), autocommit=False) as blocker:
        # Hold us-east-1's inbox: the batch reaches it and waits there, in flight.
        blocker.execute("LOCK TABLE regions_inboxevent IN EXCLUSIVE MODE")
        from django.db import transaction

        with transaction.atomic():
            for i in range(5):
                directory_entry_upsert(kind=ORG, key=f"kill-{i}", home_region="eu-west-1")

        def batch_waiting() -> bool:
            row = us.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                ("%regions_inboxevent%",),
            )
            return int(row[0][0]) >= 1

        wait_until(batch_waiting, timeout=30, what="the batch to reach us-east-1")
        children = child_pids(worker.pid)
        assert len(children) == 1
        os.kill(children[0], signal.SIGKILL)  # mid-batch: sent, not yet settled
        wait_until(lambda: "WorkerLostError" in worker.tail(200), timeout=30, what="the worker to notice")
        blocker.rollback()  # the first delivery now commits in us-east-1

    expected = {f"org:kill-{i}": ("eu-west-1", 1) for i in range(5)}
    wait_directory(as_region, US, expected, timeout=60)
    wait_until(lambda: us_rows_pending() == 0, timeout=60, what="the redelivered batch to settle")
    received = inbox(as_region)
    assert len(received) == 5
    assert {row.outcome for row in received.values()} == {"applied"}
    # Every event arrived twice (the killed batch and its redelivery) and was applied once.
    assert {row.deliveries for row in received.values()} == {2}
    assert worker.running()
