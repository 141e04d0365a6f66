"""Chaos: eu-west-1's Celery worker SIGKILLed in the middle of a replication batch; applied exactly once.

While the workload runs (reads, keyed document writes, organization creates
whose directory entries replicate), the worker is stopped for a moment so a
backlog builds up. us-east-1's inbox is then held with a table lock and the
worker started: its first batch (the backlog) reaches us-east-1 and waits there: in flight, claimed
in eu-west-1 (its outbox rows locked in an open transaction), not yet applied.
Then the worker is killed by PID with SIGKILL, pool process and parent both, as
the OOM killer or a lost node would. The lock is released, so us-east-1 commits
the batch the dead worker will never hear about. eu-west-1's transaction died
with the worker's connection, so the rows are due again; a new worker (started
after a pause, while writes keep coming) and the beat's sweep send them again.

Checked: every acknowledged write present once in eu-west-1; every directory
entry in us-east-1 at eu-west-1's version; no version written twice in
us-east-1 (a trigger counts the writes); the killed batch's events arrived
twice and were applied once; nothing dead-lettered.
"""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest

from regions.devstack.processes import child_pids, wait_until
from tests.chaos.replication_checks import (
    apply_log,
    assert_replicated_once,
    replication_report,
    replication_settled,
    report_replication,
    start_and_wait,
)
from tests.chaos.stack import HOME, PEER, ChaosStack
from tests.chaos.workload import DIRECTORY, READ, WRITE, Tenant, Workload, check

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

BACKLOG_BUILDUP = 2.0
"""Seconds without a worker before the batch that gets killed, so it carries a backlog."""
WORKER_DOWN = 2.0
"""Seconds between the kill and the new worker: writes keep coming meanwhile."""


def _batch_waiting_in_peer(chaos: ChaosStack) -> bool:
    rows = chaos.query(
        PEER,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
        ("%regions_inboxevent%",),
    )
    return int(rows[0][0]) >= 1


def _claimed_in_origin(chaos: ChaosStack) -> int:
    """Outbox rows for the peer locked by an open transaction (a drainer's claim)."""
    rows = chaos.query(
        HOME,
        "SELECT count(*) FROM regions_outboxevent WHERE target_region = %s "
        "AND id NOT IN (SELECT id FROM regions_outboxevent WHERE target_region = %s FOR UPDATE SKIP LOCKED)",
        (PEER, PEER),
    )
    return int(rows[0][0])


def test_worker_killed_mid_batch_applies_every_event_exactly_once(stack: ChaosStack, tenant: Tenant) -> None:
    home = stack.processes(HOME)
    worker = home.worker
    assert worker is not None and worker.pid is not None
    replication_settled(stack, timeout=60)  # what earlier scenarios left, before we start
    load = Workload(tenant=tenant, duration=90, threads=2, mix=((READ, 4), (WRITE, 3), (DIRECTORY, 3)))
    with apply_log(stack) as log:
        before = replication_report(stack)
        with load.running():
            time.sleep(2)  # replication flowing
            worker.stop(timeout=15)  # a backlog builds up, so the next batch is a big one
            time.sleep(BACKLOG_BUILDUP)
            with psycopg.connect(stack.primary_dsn(PEER), autocommit=False) as blocker:
                blocker.execute("LOCK TABLE regions_inboxevent IN EXCLUSIVE MODE")
                start_and_wait(worker)
                wait_until(
                    lambda: _batch_waiting_in_peer(stack), timeout=30, interval=0.05, what="a batch in flight"
                )
                claimed = _claimed_in_origin(stack)
                victims = [*child_pids(worker.pid), worker.pid]
                for pid in victims:  # the pool process in the batch, then its parent
                    os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
                worker.proc.wait(10)  # type: ignore[union-attr]
                # The dead worker's claim ends with its connection: the rows are due again.
                wait_until(
                    lambda: _claimed_in_origin(stack) == 0, timeout=30, what="the claim to be released"
                )
                blocker.rollback()  # us-east-1 now applies the batch nobody will hear about
            time.sleep(WORKER_DOWN)
            backlog_while_down = replication_report(stack).backlog
            start_and_wait(worker)  # a new worker
        after, _ = replication_settled(stack, timeout=90)
        recovered = time.monotonic() - killed if after.settled else None
        verdict = check(stack, load, peer=PEER)
        writes = log.writes()

    redelivered = after.redelivered - before.redelivered
    report_replication(
        load,
        verdict,
        after=after,
        writes=writes,
        scenario="worker_killed_mid_batch",
        fault=f"SIGKILL of {HOME}'s Celery worker (pool and parent) with a batch in flight; new worker "
        f"{WORKER_DOWN:g} s later",
        command="pytest tests/chaos/test_worker_killed.py",
        recovery_s=recovered,
        extra={
            "shards_in_flight": claimed,
            "backlog_while_down": backlog_while_down,
            "redelivered_once_applied": redelivered,
        },
    )
    assert_replicated_once(load, verdict, after=after, writes=writes)
    assert claimed > 0, "no shard was claimed when the worker died"
    # The killed batch reached us-east-1 and was applied there; its redelivery was recognised.
    assert redelivered > 0, (claimed, after)
