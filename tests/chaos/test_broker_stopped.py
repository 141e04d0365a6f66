"""Chaos: eu-west-1's Celery broker (a Redis of its own in this stack) is stopped under load.

Policy: requests never depend on the broker. Directory changes commit their
outbox rows with the change; with no broker no drain task runs, so the rows
for the peer accumulate; readiness stays 200 ``degraded`` (the broker check is
not critical). Once the broker is back the beat sweep (every 5 s) and the
after-commit drains deliver every row: the outbox empties and every
acknowledged organization is in the peer's directory. The worker rides the
outage out in the same process (it reconnects; see ``regions.broker``).
"""

from __future__ import annotations

import time

import pytest

from regions.devstack.processes import wait_until
from tests.chaos.figures import report
from tests.chaos.stack import HOME, PEER, ChaosStack
from tests.chaos.workload import DIRECTORY, READ, WRITE, Tenant, Workload, check, figures_of, no_errors

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

COMMAND = ".venv/bin/pytest tests/chaos/test_broker_stopped.py"
DOWN_FOR = 6.0


def backlog(stack: ChaosStack) -> int:
    """Outbox rows of eu-west-1 not yet delivered to the peer."""
    rows = stack.query(HOME, "SELECT count(*) FROM regions_outboxevent WHERE target_region = %s", (PEER,))
    return int(rows[0][0])


def test_broker_stopped_outbox_accumulates_then_drains_and_nothing_is_lost(
    stack: ChaosStack, tenant: Tenant
) -> None:
    broker = stack.processes(HOME).broker
    assert broker is not None, "the chaos stack gives each region a broker Redis of its own"
    worker = stack.processes(HOME).worker
    assert worker is not None and worker.running()
    worker_pid = worker.pid
    load = Workload(tenant=tenant, duration=14, mix=((READ, 3), (WRITE, 2), (DIRECTORY, 3)))
    with load.running():
        time.sleep(3)
        before = backlog(stack)
        broker.stop()
        fault_start = time.monotonic()
        time.sleep(DOWN_FOR / 2)
        readiness_status, readiness = stack.readiness(HOME)
        time.sleep(DOWN_FOR / 2)
        peak, peak_at = backlog(stack), time.monotonic()
        fault_end = time.monotonic()
        broker.restart()
        load.wait_until_done()

    # The worker reconnects in the same process (regions.broker: kombu's restore of
    # unacknowledged messages used to crash it when the broker went away).
    wait_until(lambda: not worker.running() or backlog(stack) == 0, timeout=60, what="the outbox to drain")
    assert worker.running() and worker.pid == worker_pid, "the worker died:\n" + worker.tail()
    drained_after = time.monotonic() - fault_end

    verdict = check(stack, load)
    orgs_during = [
        a for a in load.between(fault_start, fault_end, op=DIRECTORY) if a.ok and a.ended <= peak_at
    ]
    figures = report(
        figures_of(
            load,
            verdict,
            scenario="broker_stopped",
            fault=f"eu-west-1 Celery broker stopped for {DOWN_FOR:.0f} s, then started",
            command=COMMAND,
            policy=no_errors,
            recovery_s=drained_after,
            extra={
                "outbox_backlog_before": before,
                "outbox_backlog_peak": peak,
                "directory_changes_during_fault": len(orgs_during),
                "readiness_during_fault": readiness_status,
            },
        )
    )
    assert load.failures(no_errors) == [], load.statuses()
    assert orgs_during, "no directory change was made while the broker was down"
    # Each organization adds one row for the peer. A drain task already running when the
    # broker stopped may still deliver a few (it loops without the broker), hence 80 %.
    assert peak - before >= 0.8 * len(orgs_during), "outbox rows did not accumulate without the broker"
    assert readiness_status == 200 and readiness["status"] == "degraded"
    assert {c["name"]: c["status"] for c in readiness["checks"]}["broker"] == "failed"
    assert figures.lost_writes == 0 and figures.duplicates == 0, verdict
    assert verdict.unreplicated == []
