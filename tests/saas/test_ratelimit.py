"""Rate limits: GCRA in the harness's real Redis, headers, 429, concurrency, Redis down."""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import RequestFactory
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from saas.models import ApiToken
from saas.ratelimit import client_ip, rate_limit_check, tier


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"region": "eu-west-1", **labels}) or 0.0


def set_tier(org, role: str, name: str) -> None:
    ApiToken.objects.filter(organization=org.org, user=org.members[role].user).update(tier=name)


def test_every_api_response_carries_the_policy_and_the_remaining_quota(acme, settings):
    settings.RATE_LIMIT_TIERS = {**settings.RATE_LIMIT_TIERS, "standard": "10/60"}
    first = acme.client("member").get("/api/v1/me")
    assert first.status_code == 200
    assert first["RateLimit-Policy"] == '"standard";q=10;w=60'
    assert re.fullmatch(r'"standard";r=9;t=\d+', first["RateLimit"])
    second = acme.client("member").get("/api/v1/me")
    assert re.fullmatch(r'"standard";r=8;t=\d+', second["RateLimit"])


def test_over_the_limit_is_a_429_problem_with_retry_after(acme, settings):
    settings.RATE_LIMIT_TIERS = {**settings.RATE_LIMIT_TIERS, "free": "3/3600"}
    set_tier(acme, "member", "free")
    client = acme.client("member")
    before = metric("saas_rate_limit_rejections_total", tier="free")
    statuses = [client.get("/api/v1/me").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/v1/me")
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert 1000 <= int(refused["Retry-After"]) <= 1200  # one request per 1200 s
    assert refused["RateLimit"].startswith('"free";r=0;')
    assert metric("saas_rate_limit_rejections_total", tier="free") == before + 2
    # Another client is not affected.
    assert acme.client("admin").get("/api/v1/me").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_limit_holds_under_concurrent_requests(settings, rate_limits_reset, harness):
    from django.db import connections

    from tests.saas.conftest import build_org

    org = build_org()
    settings.RATE_LIMIT_TIERS = {**settings.RATE_LIMIT_TIERS, "free": "7/3600"}
    set_tier(org, "member", "free")
    # The requests read the token (and its tier) from the replicas: let them see the new tier.
    eu = harness.region("eu-west-1")
    lsn = eu.primary.current_lsn()
    for replica in eu.replicas:
        replica.wait_for_replay(lsn)
    barrier = threading.Barrier(8)

    def burst(_: int) -> list[int]:
        try:
            client = org.client("member")
            barrier.wait(timeout=30)
            return [client.get("/api/v1/me").status_code for _ in range(3)]
        finally:
            for conn in connections.all():
                conn.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [s for batch in pool.map(burst, range(8)) for s in batch]
    assert statuses.count(200) == 7, statuses
    assert statuses.count(429) == 24 - 7


def test_gcra_refills_one_request_per_interval_on_the_redis_clock(harness):
    limited = tier("anonymous").__class__(name="t", limit=2, period=3600, fail_open=False)
    key = "gcra-unit"
    harness.region("eu-west-1").redis.client(0).delete(f"rl:t:{key}")
    first, second, third = (rate_limit_check(tier=limited, key=key) for _ in range(3))
    assert (first.allowed, first.remaining) == (True, 1)
    assert (second.allowed, second.remaining) == (True, 0)
    assert not third.allowed and 1790 < third.retry_after <= 1800
    # Move the stored theoretical arrival time back by one interval: one more request fits.
    client = harness.region("eu-west-1").redis.client(0)
    client.set(f"rl:t:{key}", int(client.get(f"rl:t:{key}")) - 1_800_000_000)
    assert rate_limit_check(tier=limited, key=key).allowed


def test_anonymous_clients_are_limited_by_address(settings):
    settings.RATE_LIMIT_TIERS = {**settings.RATE_LIMIT_TIERS, "anonymous": "2/3600"}
    client = APIClient()
    statuses = [client.get("/api/v1/orgs").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    other = APIClient(REMOTE_ADDR="10.1.2.3")
    assert other.get("/api/v1/orgs").status_code == 401


def test_the_client_ip_comes_only_from_trusted_proxy_hops(settings):
    rf = RequestFactory()
    settings.RATE_LIMIT_TRUSTED_PROXIES = ["10.0.0.0/8"]
    spoofed = rf.get("/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip(spoofed) == "203.0.113.9"  # the peer is not our proxy
    via_lb = rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7")
    assert client_ip(via_lb) == "198.51.100.7"  # 1.2.3.4 was written by the client itself
    two_hops = rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.7, 10.9.9.9")
    assert client_ip(two_hops) == "198.51.100.7"
    garbled = rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert client_ip(garbled) == "10.0.0.5"
    settings.RATE_LIMIT_TRUSTED_PROXIES = []
    assert client_ip(via_lb) == "10.0.0.5"


def test_paths_outside_the_api_are_not_limited(settings, db):
    settings.RATE_LIMIT_TIERS = {**settings.RATE_LIMIT_TIERS, "anonymous": "1/3600"}
    for _ in range(3):
        assert not APIClient().get("/health/live").has_header("RateLimit")


@pytest.fixture
def redis_down(harness):
    redis = harness.region("eu-west-1").redis
    redis.stop()
    try:
        yield
    finally:
        redis.restart()


def test_with_redis_down_the_critical_tier_is_served_and_logged(acme, redis_down, caplog):
    set_tier(acme, "member", "critical")
    before = metric("saas_rate_limit_backend_errors_total", policy="open")
    with caplog.at_level(logging.WARNING, logger="saas.ratelimit"):
        response = acme.client("member").get(f"/api/v1/orgs/{acme.slug}")
    assert response.status_code == 200
    assert response["RateLimit-Policy"].startswith('"critical"')
    assert metric("saas_rate_limit_backend_errors_total", policy="open") == before + 1
    record = next(r for r in caplog.records if r.name == "saas.ratelimit")
    assert "failing open" in record.getMessage()
    assert "127.0.0.1" not in record.getMessage()


@pytest.mark.parametrize("who", ["standard", "free", "anonymous"])
def test_with_redis_down_other_tiers_fail_closed_with_a_503_problem(acme, redis_down, caplog, who):
    if who == "anonymous":
        client = APIClient()
    else:
        set_tier(acme, "member", who)
        client = acme.client("member")
    before = metric("saas_rate_limit_backend_errors_total", policy="closed")
    with caplog.at_level(logging.WARNING, logger="saas.ratelimit"):
        response = client.get(f"/api/v1/orgs/{acme.slug}")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limiter_unavailable"
    assert int(response["Retry-After"]) > 0
    assert metric("saas_rate_limit_backend_errors_total", policy="closed") == before + 1
    assert any("failing closed" in r.getMessage() for r in caplog.records)


def test_fail_open_tiers_are_configurable(acme, redis_down, settings):
    settings.RATE_LIMIT_FAIL_OPEN_TIERS = ["standard"]
    assert acme.client("member").get(f"/api/v1/orgs/{acme.slug}").status_code == 200
