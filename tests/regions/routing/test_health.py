"""Replica health and lag: the estimate, the probe against real replicas, the selector."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from regions.devstack.processes import wait_until
from regions.routing import probe
from regions.routing.health import lag_seconds_estimate, registry
from regions.routing.lsn import format_lsn, parse_lsn
from regions.routing.selectors import lag_limits, replica_statuses
from saas.models import User

ALL = pytest.mark.django_db(transaction=True, databases="__all__")


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, {"region": "eu-west-1", **labels})
    assert value is not None, name
    return value


# --- the estimate ------------------------------------------------------------------


def test_a_caught_up_replica_has_no_lag_however_idle_the_primary():
    assert (
        lag_seconds_estimate(
            replay_lsn=500, primary_lsn=500, samples=[(0.0, 500)], replay_timestamp_age=3600.0, now=3600.0
        )
        == 0.0
    )


def test_lag_is_bounded_by_the_last_sample_the_replica_reached():
    samples = [(100.0, 10), (101.0, 20), (102.0, 30)]
    # Replayed up to 20: the missing WAL was written after t=101.
    assert lag_seconds_estimate(
        replay_lsn=20, primary_lsn=30, samples=samples, replay_timestamp_age=None, now=103.0
    ) == pytest.approx(2.0)
    # After an hour of idling then one write, the replay timestamp is an hour old,
    # but the sample history knows better.
    assert lag_seconds_estimate(
        replay_lsn=20, primary_lsn=30, samples=samples, replay_timestamp_age=3600.0, now=103.0
    ) == pytest.approx(2.0)
    # The replay timestamp wins when it is the tighter bound.
    assert lag_seconds_estimate(
        replay_lsn=20, primary_lsn=30, samples=samples, replay_timestamp_age=0.5, now=103.0
    ) == pytest.approx(0.5)


def test_a_replica_behind_all_history_reports_at_least_the_history():
    samples = [(100.0, 10), (101.0, 20)]
    assert lag_seconds_estimate(
        replay_lsn=5, primary_lsn=20, samples=samples, replay_timestamp_age=None, now=110.0
    ) == pytest.approx(10.0)


def test_lsn_text_round_trips():
    assert format_lsn(0x16B374D848) == "16/B374D848"
    assert parse_lsn("16/B374D848") == 0x16B374D848
    for bad in ("", "16", "/1", "x/1", "123456789/0"):
        with pytest.raises(ValueError):
            parse_lsn(bad)


# --- the probe against the real replicas ---------------------------------------------


@ALL
def test_idle_primary_gives_zero_lag_though_the_last_replayed_commit_is_old(harness, routing):
    stack = harness.region("eu-west-1")
    User.objects.create(email=f"idle-{uuid.uuid4().hex[:8]}@example.test", home_region="eu-west-1")
    lsn = stack.primary.current_lsn()
    for replica in stack.replicas:
        replica.wait_for_replay(lsn)
    # Let the last replayed commit age (no writes meanwhile: the primary is idle).
    wait_until(
        lambda: all(
            r.execute("SELECT now() - pg_last_xact_replay_timestamp() > interval '1 second'")[0][0]
            for r in stack.replicas
        ),
        timeout=10,
        what="the last replayed commit to be a second old",
    )
    probe.probe_once()
    for status in replica_statuses():
        assert (status.up, status.usable, status.lag_bytes, status.lag_seconds) == (True, True, 0, 0.0)


@ALL
def test_a_paused_replica_shows_lag_in_bytes_and_seconds(harness, pause_replay):
    pause_replay()  # probes once: samples the primary where the replicas are
    User.objects.create(email=f"lag-{uuid.uuid4().hex[:8]}@example.test", home_region="eu-west-1")
    probe.probe_once()
    statuses: list[Any] = replica_statuses()
    assert [s.alias for s in statuses] == ["replica_1", "replica_2"]
    for status in statuses:
        assert status.up and status.usable  # within the default limits
        assert status.lag_bytes > 0
        assert status.lag_seconds > 0
        assert status.replay_lsn_text == format_lsn(status.replay_lsn)
        assert time.time() - status.checked_at < 60
        assert status.as_dict()["replay_lsn"] == status.replay_lsn_text
        assert sample("saas_replica_lag_bytes", alias=status.alias) > 0


@ALL
def test_a_stopped_replica_is_down_and_comes_back_when_it_probes_healthy(harness, routing):
    victim = harness.region("eu-west-1").replicas[1]
    victim.stop()
    try:
        statuses = replica_statuses(refresh=True)
        assert [(s.alias, s.up) for s in statuses] == [("replica_1", True), ("replica_2", False)]
        assert statuses[1].detail  # the error, for operators
        assert registry.usable == ("replica_1",)
        assert sample("saas_replica_up", alias="replica_2") == 0
    finally:
        victim.restart()
    assert all(s.up for s in replica_statuses(refresh=True))
    assert sample("saas_replica_up", alias="replica_2") == 1


@ALL
def test_the_background_probe_runs_at_randomized_intervals(routing, monkeypatch):
    waits: list[float] = []
    real_uniform = random.uniform

    def spy(low: float, high: float) -> float:
        value = real_uniform(low, high)
        waits.append(value)
        return value

    monkeypatch.setattr(random, "uniform", spy)  # the probe draws its jitter here
    registry.reset()
    with override_settings(ROUTING_PROBE_INTERVAL_SECONDS=0.05):
        probe.ensure_probing()  # starts the thread and waits for its first cycle
        assert registry.probed
        first: Any = replica_statuses()[0].checked_at
        wait_until(lambda: len(waits) >= 3, timeout=20, what="three probe cycles")
        assert replica_statuses()[0].checked_at > first
        probe.stop_probing()
    assert all(0.5 <= w <= 1.5 for w in waits)
    assert len(set(waits)) > 1


@ALL
def test_the_selector_probes_in_line_when_nothing_is_known(routing):
    registry.reset()
    with override_settings(ROUTING_PROBE_INTERVAL_SECONDS=0.0):
        statuses = replica_statuses()  # probes once in line when nothing is known
    assert all(s.up for s in statuses)
    assert lag_limits().max_bytes > 0


def test_selector_without_probe_data_or_replicas():
    with override_settings(DATABASE_REPLICAS=[]):
        assert replica_statuses() == []
