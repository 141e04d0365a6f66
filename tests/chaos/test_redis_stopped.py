"""Chaos: eu-west-1's Redis (cache, sessions, rate limits, idempotency claims, breakers) is stopped.

Policy (``saas/ratelimit.py``, ``RATE_LIMIT_FAIL_OPEN_TIERS``): tiers that fail
open (``critical`` by default) are served without a limit; the others fail
closed with ``503 rate_limiter_unavailable`` and ``Retry-After``. Readiness
answers 503 while a tier fails closed (the Redis check is critical then).
Idempotency keys still apply each write once without Redis (the record's
unique scope on the primary). After the restart limits apply again.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.chaos.figures import report
from tests.chaos.stack import HOME, ChaosStack
from tests.chaos.workload import Attempt, Tenant, Workload, check, figures_of, no_errors, tenant_create

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

COMMAND = ".venv/bin/pytest tests/chaos/test_redis_stopped.py"
DOWN_FOR = 5.0


def fails_closed(attempt: Attempt) -> bool:
    """A fail-closed tier: served, or 503 rate_limiter_unavailable with Retry-After."""
    if attempt.status == 503:
        return attempt.code == "rate_limiter_unavailable" and bool(attempt.retry_after)
    return no_errors(attempt)


def test_redis_stopped_fail_open_tier_is_served_fail_closed_tier_gets_503_and_readiness_says_so(
    stack: ChaosStack, tenant: Tenant
) -> None:
    standard = tenant_create(stack)  # the standard tier fails closed
    redis_server = stack.processes(HOME).redis
    load = Workload(tenant=tenant, duration=12)  # critical tier: fails open
    closed = Workload(tenant=standard, duration=12, threads=0, readers=1, pace=0.1)
    with load.running(), closed.running():
        time.sleep(3)
        redis_server.stop()
        fault_start = time.monotonic()
        time.sleep(DOWN_FOR / 2)
        readiness_status, readiness = stack.readiness(HOME)
        time.sleep(DOWN_FOR / 2)
        fault_end = time.monotonic()
        redis_server.restart()
        stack.wait_ready(HOME, timeout=30)
        ready_after = time.monotonic() - fault_end
        closed.wait_until_done()

    verdict = check(stack, load)
    served_open = [a for a in load.between(fault_start, fault_end) if a.ok]
    refused_closed = [a for a in closed.between(fault_start, fault_end) if a.status == 503]
    first_closed_ok = closed.recovery_after(fault_end, op="read")
    figures = figures_of(
        load,
        verdict,
        scenario="redis_stopped",
        fault=f"eu-west-1 Redis stopped for {DOWN_FOR:.0f} s, then started",
        command=COMMAND,
        policy=no_errors,
        recovery_s=max(ready_after, first_closed_ok or 0.0),
        extra={
            "fail_open_served_during_fault": len(served_open),
            "fail_closed_503_retry_after": len(refused_closed),
            "readiness_during_fault": readiness_status,
        },
    )
    # Both clients count: the fail-closed one under its own policy.
    figures.requests += len(closed.attempts)
    figures.failures += len(closed.failures(fails_closed))
    report(figures)

    assert load.failures(no_errors) == [], load.statuses()
    assert closed.failures(fails_closed) == [], closed.statuses()
    assert len(served_open) >= 10, "the fail-open tier was not served while Redis was down"
    assert refused_closed, "the fail-closed tier was not refused while Redis was down"
    assert readiness_status == 503
    redis_check = {c["name"]: c for c in readiness["checks"]}["redis"]
    assert redis_check["status"] == "failed" and redis_check["critical"] is True
    assert figures.lost_writes == 0 and figures.duplicates == 0, verdict
    assert first_closed_ok is not None, "the fail-closed tier was not served again after the restart"
    # Limits apply again: the standard tier's answer carries its remaining quota.
    again = httpx.get(f"{standard.base_url}/api/v1/me", headers=standard.auth, timeout=10)
    assert again.status_code == 200 and again.headers["RateLimit"].startswith('"standard";r=')
