"""Chaos: eu-west-1's primary is stopped under load, then started again.

Policy: while the primary is down,
- writes (and reads only the primary may serve) get ``503 primary_unavailable``
  with ``Retry-After``, never a 500; clients retry with the same Idempotency-Key;
- reads the router may send to the replica go on being served;
- readiness answers 503 (the primary check is critical).
After the restart every acknowledged write is there exactly once, and the
acknowledged organizations reach the peer region.
"""

from __future__ import annotations

import time

import pytest

from tests.chaos.figures import report
from tests.chaos.stack import HOME, ChaosStack
from tests.chaos.workload import (
    DIRECTORY,
    READ,
    WRITE,
    Tenant,
    Workload,
    check,
    figures_of,
    retry_later_only,
)

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

COMMAND = ".venv/bin/pytest tests/chaos/test_primary_stopped.py"


@pytest.mark.parametrize(
    ("scenario", "down_for"),
    [
        ("primary_stopped", 6.0),
        # Longer than ROUTING_MAX_REPLICA_LAG_SECONDS (10 s): the replica must keep serving
        # although no commit has reached it for that long. make chaos only (a minute).
        pytest.param("primary_stopped_30s", 30.0, marks=pytest.mark.chaos_long),
    ],
)
def test_primary_stopped_writes_get_503_with_retry_after_reads_go_on_nothing_lost(
    stack: ChaosStack, tenant: Tenant, scenario: str, down_for: float
) -> None:
    primary = stack.processes(HOME).primary
    load = Workload(tenant=tenant, duration=10 + down_for)
    with load.running():
        time.sleep(3)
        primary.stop()  # fast shutdown (SIGINT), by PID
        fault_start = time.monotonic()
        time.sleep(down_for / 2)
        readiness_status, readiness = stack.readiness(HOME)
        time.sleep(down_for / 2)
        fault_end = time.monotonic()
        primary.restart()
        load.wait_until_done()

    verdict = check(stack, load)
    writes_during = [a for a in load.between(fault_start, fault_end) if a.op in (WRITE, DIRECTORY)]
    refused = [a for a in writes_during if a.status == 503]
    reads_during = load.between(fault_start, fault_end, op=READ)
    served = [a for a in reads_during if a.ok]
    figures = report(
        figures_of(
            load,
            verdict,
            scenario=scenario,
            fault=f"eu-west-1 primary stopped for {down_for:.0f} s, then started",
            command=f"CHAOS_ALL=1 {COMMAND} -k 30s" if scenario.endswith("30s") else COMMAND,
            policy=retry_later_only,
            recovery_s=load.recovery_after(fault_end),
            extra={
                "writes_503_retry_after": sum(bool(a.retry_after) for a in refused),
                "reads_served_during_fault": f"{len(served)}/{len(reads_during)}",
                "readiness_during_fault": readiness_status,
            },
        )
    )
    assert load.failures(retry_later_only) == [], load.statuses()
    assert refused, "no write was attempted while the primary was down"
    assert {(a.code, bool(a.retry_after)) for a in refused} == {("primary_unavailable", True)}
    assert all(a.status in (201, 503) for a in writes_during), load.statuses()
    # Reads go on from the replica (a read the router must send to the primary, e.g. one
    # in flight as it shut down, gets the same 503 with Retry-After).
    assert len(reads_during) >= 10 and len(served) >= 0.9 * len(reads_during), figures.extra
    assert readiness_status == 503
    assert {c["name"]: c["status"] for c in readiness["checks"]}["primary"] == "failed"
    assert figures.lost_writes == 0 and figures.duplicates == 0, verdict
    assert figures.recovery_s is not None, "no write succeeded after the primary came back"
