"""Peer health polling (real gunicorn for us-east-1; the harness's other regions have no server)."""

from __future__ import annotations

import pytest

from regions.peer_health import peer_status_get
from regions.replication.breaker import BreakerState, Permit, breaker_acquire, breaker_failure, breaker_reset
from regions.replication.health import peer_health_poll


@pytest.mark.django_db
def test_poll_records_every_peer_and_ends_an_open_breaker_early(region_web, settings):
    settings.REPLICATION_BREAKER_THRESHOLD = 1
    settings.REPLICATION_BREAKER_OPEN_BASE = 30.0
    settings.REPLICATION_BREAKER_OPEN_CAP = 30.0
    breaker_reset(peer="us-east-1")
    permit = breaker_acquire(peer="us-east-1")
    assert isinstance(permit, Permit)
    assert breaker_failure(permit).state is BreakerState.OPEN  # open for 30 s
    region_web("us-east-1")

    assert peer_health_poll() == {"eu-central-1": False, "us-east-1": True, "ap-south-1": False}
    us = peer_status_get(code="us-east-1")
    assert us.healthy is True and us.detail == "HTTP 200"
    down = peer_status_get(code="ap-south-1")
    assert down.healthy is False and down.detail == "ConnectError"
    # us-east-1 answers again: its breaker lets a probe through now, not in 30 s.
    probe = breaker_acquire(peer="us-east-1")
    assert isinstance(probe, Permit) and probe.probe
    breaker_reset(peer="us-east-1")
