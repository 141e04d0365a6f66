"""Chaos: eu-west-1's streaming replica is SIGKILLed under load, then restarted.

Policy: no request fails. Reads fail over from the dead replica to the primary
inside the database backend (``regions/routing/backend``), writes never used
it, and the router takes the replica back once its probe sees it caught up.
"""

from __future__ import annotations

import time

import pytest

from tests.chaos.figures import report
from tests.chaos.stack import HOME, ChaosStack
from tests.chaos.workload import READ, Tenant, Workload, check, figures_of, no_errors

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

COMMAND = ".venv/bin/pytest tests/chaos/test_replica_killed.py"
DOWN_FOR = 4.0


def test_replica_killed_and_restarted_fails_no_request(stack: ChaosStack, tenant: Tenant) -> None:
    replica = stack.processes(HOME).replica
    load = Workload(tenant=tenant, duration=13)
    with load.running():
        time.sleep(3)
        fault_start = time.monotonic()
        replica.kill()
        time.sleep(DOWN_FOR)
        fault_end = time.monotonic()
        replica.restart()
        # Whole again: the router's probe (what readiness reports) sees the replica usable.
        stack.wait_check(HOME, "replica_1", timeout=60)
        recovery = time.monotonic() - fault_end
        load.wait_until_done()

    verdict = check(stack, load)
    reads_during = load.between(fault_start, fault_end, op=READ)
    figures = report(
        figures_of(
            load,
            verdict,
            scenario="replica_killed",
            fault=f"eu-west-1 replica SIGKILLed for {DOWN_FOR:.0f} s, then restarted",
            command=COMMAND,
            policy=no_errors,
            recovery_s=recovery,
            extra={"reads_during_fault": f"{sum(a.ok for a in reads_during)}/{len(reads_during)}"},
        )
    )
    assert load.failures(no_errors) == [], load.statuses()
    assert figures.lost_writes == 0 and figures.duplicates == 0, verdict
    assert len(reads_during) >= 10, "the workload did not read while the replica was down"
