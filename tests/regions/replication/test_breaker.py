"""The per-peer circuit breaker, shared through the region's real Redis."""

from __future__ import annotations

import random
import threading
import time

import pytest

from regions.replication.breaker import (
    BreakerState,
    Denied,
    Permit,
    breaker_acquire,
    breaker_failure,
    breaker_release,
    breaker_reset,
    breaker_state,
    breaker_success,
)

PEER = "ap-south-1"


@pytest.fixture
def fast_breaker(db, settings):
    settings.REPLICATION_BREAKER_THRESHOLD = 3
    settings.REPLICATION_BREAKER_OPEN_BASE = 0.2
    settings.REPLICATION_BREAKER_OPEN_CAP = 0.4
    settings.REPLICATION_HTTP_TIMEOUT = 1.0
    breaker_reset(peer=PEER)
    yield
    breaker_reset(peer=PEER)


def _open() -> float:
    outcome = None
    for _ in range(3):
        permit = breaker_acquire(peer=PEER)
        assert isinstance(permit, Permit) and not permit.probe
        outcome = breaker_failure(permit, rng=random.Random(1))
    assert outcome is not None and outcome.state is BreakerState.OPEN
    return outcome.retry_after


def _wait_for_probe_window(retry_after: float) -> None:
    time.sleep(retry_after + 0.05)


@pytest.mark.usefixtures("fast_breaker")
def test_consecutive_failures_open_it_and_an_open_breaker_denies():
    permit = breaker_acquire(peer=PEER)
    assert isinstance(permit, Permit)
    breaker_failure(permit)
    breaker_success(permit)  # a success resets the count
    retry_after = _open()
    assert 0.2 <= retry_after <= 0.4
    assert breaker_state(peer=PEER) is BreakerState.OPEN
    denied = breaker_acquire(peer=PEER)
    assert isinstance(denied, Denied) and 0 < denied.retry_after <= 0.4


@pytest.mark.usefixtures("fast_breaker")
def test_exactly_one_process_gets_the_half_open_probe():
    _wait_for_probe_window(_open())
    barrier = threading.Barrier(8)
    permits: list[object] = []

    def contend() -> None:
        barrier.wait(5)
        permits.append(breaker_acquire(peer=PEER))

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    probes = [p for p in permits if isinstance(p, Permit)]
    assert len(probes) == 1 and probes[0].probe
    assert breaker_state(peer=PEER) is BreakerState.HALF_OPEN
    assert sum(isinstance(p, Denied) for p in permits) == 7


@pytest.mark.usefixtures("fast_breaker")
def test_probe_success_closes_and_probe_failure_reopens_for_longer():
    _wait_for_probe_window(_open())
    probe = breaker_acquire(peer=PEER)
    assert isinstance(probe, Permit) and probe.probe
    stale = Permit(peer=PEER, probe=False, token="someone-else")
    breaker_success(stale)  # a success from a request sent before the breaker opened
    assert breaker_state(peer=PEER) is BreakerState.HALF_OPEN
    outcome = breaker_failure(probe)
    assert outcome.state is BreakerState.OPEN and outcome.retry_after <= 0.4
    _wait_for_probe_window(outcome.retry_after)
    probe = breaker_acquire(peer=PEER)
    assert isinstance(probe, Permit) and probe.probe
    breaker_success(probe)
    assert breaker_state(peer=PEER) is BreakerState.CLOSED
    assert isinstance(breaker_acquire(peer=PEER), Permit)


@pytest.mark.usefixtures("fast_breaker")
def test_an_unused_or_abandoned_probe_lease_passes_to_another_process(settings):
    _wait_for_probe_window(_open())
    probe = breaker_acquire(peer=PEER)
    assert isinstance(probe, Permit)
    assert isinstance(breaker_acquire(peer=PEER), Denied)
    breaker_release(probe)  # nothing was sent
    second = breaker_acquire(peer=PEER)
    assert isinstance(second, Permit) and second.probe
    # The prober dies without a word: its lease expires (HTTP timeout + 5 s).
    denied = breaker_acquire(peer=PEER)
    assert isinstance(denied, Denied) and 5.0 < denied.retry_after <= 6.0
