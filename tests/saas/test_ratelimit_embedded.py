"""Rate limits in the embedded mode (no REDIS_URL): the same GCRA, per process."""

from __future__ import annotations

from django.test import override_settings

from saas.ratelimit import rate_limit_check, tier


def test_without_redis_the_limit_still_holds_in_process():
    with override_settings(REDIS_URL=None):
        anonymous = tier("anonymous")
        key = "ip:embedded-test"
        decisions = [rate_limit_check(tier=anonymous, key=key) for _ in range(anonymous.limit + 1)]
    assert all(d.allowed for d in decisions[:-1])
    assert decisions[0].remaining == anonymous.limit - 1
    assert not decisions[-1].allowed and decisions[-1].retry_after > 0
