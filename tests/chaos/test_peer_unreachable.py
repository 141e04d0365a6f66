"""Chaos: the peer region unreachable, then partitioned; replication converges, once, and the breaker cycles.

eu-west-1 keeps serving the workload (reads, keyed document writes, organization
creates whose directory entries replicate to us-east-1). Then:

1. **Unreachable**: us-east-1's gunicorn is stopped (as ``bench.replication_partition``
   does): every batch fails to connect; the breaker for us-east-1 opens, the
   rows wait in the outbox (never dead-lettered).
2. **Partition**: us-east-1 is back but the link between the regions loses
   every answer (``regions.devstack.netfault.Link`` in ``drop_answers`` mode):
   batches reach us-east-1 and are applied there, eu-west-1 never hears so and
   times out. The hardest case for "applied once": every such batch is sent again.
3. **Healed**: the link passes again.

Then every acknowledged write is checked: present in eu-west-1 exactly once,
and every directory entry of eu-west-1 in us-east-1 at the same version; a
trigger on us-east-1's directory proves no version was written twice; the
breaker was open during the outage and is closed at the end.

``make test`` runs it with the breaker and retries scaled down (a 6 s outage,
a 5 s partition); ``make chaos`` also runs the full 60 s outage with the
production defaults.
"""

from __future__ import annotations

import time

import pytest

from regions.devstack.netfault import Link
from tests.chaos.replication_checks import (
    FAST_REPLICATION_ENV,
    BreakerWatch,
    apply_log,
    assert_replicated_once,
    registry_with_internal_url,
    replication_report,
    replication_settled,
    report_replication,
    restarted,
)
from tests.chaos.stack import HOME, PEER, ChaosStack
from tests.chaos.workload import Tenant, Workload, check

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


def run_scenario(
    chaos: ChaosStack,
    tenant: Tenant,
    *,
    scenario: str,
    outage: float,
    partition: float,
    settings_env: dict[str, str],
    command: str,
) -> None:
    home, peer = chaos.processes(HOME), chaos.processes(PEER)
    assert home.worker is not None and home.beat is not None and peer.web is not None
    link = Link(upstream_port=peer.plan.web_port).start()
    # eu-west-1's worker (drains) and beat (peer health) reach us-east-1 through the link.
    env = {
        "REGION_REGISTRY": str(registry_with_internal_url(chaos, region=PEER, url=link.url)),
        **settings_env,
    }
    breaker = BreakerWatch(chaos)
    try:
        with restarted(home.beat, env=env), restarted(home.worker, env=env), apply_log(chaos) as log:
            replication_settled(chaos, timeout=60)  # what earlier scenarios left, before we start
            breaker.reset()
            before = replication_report(chaos)
            load = Workload(tenant=tenant, duration=2 + outage + partition + 60, threads=2, max_requests=8000)
            with breaker.watching():
                with load.running():
                    time.sleep(2)  # replication flowing
                    fault_start = time.monotonic()
                    peer.web.stop()
                    time.sleep(outage)
                    backlog_in_outage = replication_report(chaos).backlog
                    link.mode = "drop_answers"
                    chaos.ensure_whole()  # us-east-1's gunicorn back, behind the partition
                    partition_start = time.monotonic()
                    time.sleep(partition)
                    link.mode = "pass"
                    healed = time.monotonic()
                # Recovery: from the heal until us-east-1 holds everything eu-west-1 acknowledged.
                after, _ = replication_settled(chaos, timeout=120 if outage > 30 else 60)
            converged_after = time.monotonic() - healed if after.settled else None
            verdict = check(chaos, load, peer=PEER)
            writes = log.writes()
            final_state = breaker.state()
    finally:
        link.stop()

    redelivered = after.redelivered - before.redelivered
    report_replication(
        load,
        verdict,
        after=after,
        writes=writes,
        scenario=scenario,
        fault=f"{PEER} unreachable {outage:g} s, then answers lost {partition:g} s",
        command=command,
        recovery_s=converged_after,
        extra={
            "breaker": breaker.path(),
            "backlog_in_outage": backlog_in_outage,
            "redelivered_once_applied": redelivered,
            "dropped_answer_chunks": link.dropped_chunks,
        },
    )
    assert_replicated_once(load, verdict, after=after, writes=writes)
    assert backlog_in_outage > 0, "the workload changed no directory entry during the outage"
    assert breaker.seen("open", between=(fault_start, partition_start)), breaker.path()
    assert final_state == "closed" and breaker.states[-1][1] == "closed", breaker.path()
    # The partition really lost answers of applied batches, and the peer applied them once.
    assert link.dropped_chunks > 0 and redelivered > 0, (link.dropped_chunks, after)


def test_peer_unreachable_then_partitioned_converges_once(stack: ChaosStack, tenant: Tenant) -> None:
    run_scenario(
        stack,
        tenant,
        scenario="peer_unreachable_fast",
        outage=6,
        partition=5,
        settings_env=FAST_REPLICATION_ENV,
        command="pytest tests/chaos/test_peer_unreachable.py -k converges_once",
    )


@pytest.mark.chaos_long
def test_peer_unreachable_60s_then_partitioned_with_production_settings(
    stack: ChaosStack, tenant: Tenant
) -> None:
    run_scenario(
        stack,
        tenant,
        scenario="peer_unreachable_60s",
        outage=60,
        partition=25,
        settings_env={},
        command="CHAOS_ALL=1 pytest tests/chaos/test_peer_unreachable.py -k production_settings",
    )
