"""Replica lag as readiness computes it: the pure rules, then real servers."""

from __future__ import annotations

import asyncio

import pytest

from regions.health.postgres import ReplicaState, lsn_int, primary_position, replica_lag, replica_state
from tests.harness.procs import wait_until


def state(**overrides: object) -> ReplicaState:
    values: dict[str, object] = {
        "in_recovery": True,
        "received_lsn": 1_000,
        "replayed_lsn": 1_000,
        "replay_age": 600.0,
        "receipt_age": 0.5,
        "replay_paused": False,
    }
    values.update(overrides)
    return ReplicaState(**values)  # type: ignore[arg-type]


def test_lsn_text_is_a_byte_position():
    assert lsn_int("0/0") == 0
    assert lsn_int("16/B374D848") == (0x16 << 32) + 0xB374D848


def test_caught_up_replica_of_an_idle_primary_has_no_lag_however_old_its_last_transaction():
    lag = replica_lag(state(replay_age=3600.0), primary_lsn=1_000)
    assert (lag.lag_bytes, lag.lag_seconds, lag.reference) == (0, 0.0, "primary")


def test_replica_waiting_to_replay_counts_the_age_of_its_last_replayed_transaction():
    lag = replica_lag(state(received_lsn=5_000, replayed_lsn=1_000, replay_age=42.0), primary_lsn=6_000)
    assert (lag.lag_bytes, lag.lag_seconds) == (5_000, 42.0)


def test_replica_that_replayed_all_it_received_counts_the_silence_of_the_primary():
    lag = replica_lag(state(received_lsn=1_000, replayed_lsn=1_000, receipt_age=7.5), primary_lsn=1_800)
    assert (lag.lag_bytes, lag.lag_seconds) == (800, 7.5)
    unreadable = replica_lag(state(receipt_age=None, replay_age=12.0), primary_lsn=1_800)
    assert unreadable.lag_seconds == 12.0


def test_without_the_primary_lag_is_measured_against_the_received_wal():
    lag = replica_lag(state(received_lsn=3_000, replayed_lsn=1_000, replay_age=5.0), primary_lsn=None)
    assert (lag.lag_bytes, lag.lag_seconds, lag.reference) == (2_000, 5.0, "received")


def test_lag_is_never_negative_when_the_replica_was_sampled_after_new_wal():
    assert replica_lag(state(replayed_lsn=2_000, received_lsn=2_000), primary_lsn=1_500).lag_bytes == 0


def test_nothing_replayed_yet_is_unknown_lag():
    lag = replica_lag(state(replayed_lsn=None), primary_lsn=1_000)
    assert (lag.lag_bytes, lag.lag_seconds) == (None, None)


@pytest.mark.django_db
def test_a_paused_replica_falls_behind_the_primary_by_the_wal_written_since(harness):
    eu = harness.region("eu-west-1")
    replica = eu.replicas[0]

    async def measure() -> tuple[int | None, ReplicaState]:
        position, replica_now = await asyncio.gather(
            primary_position(timeout=2), replica_state(alias="replica_1", timeout=2)
        )
        return position.lsn, replica_now

    replica.pause_replay()
    try:
        eu.primary.execute("SELECT pg_logical_emit_message(true, 'health-test', repeat('x', 10000))")
        behind: list[int] = []

        def fell_behind() -> bool:
            primary_lsn, now = asyncio.run(measure())
            lag = replica_lag(now, primary_lsn=primary_lsn)
            behind[:] = [lag.lag_bytes or 0]
            return now.replay_paused and (lag.lag_bytes or 0) >= 10_000

        # The WAL writer flushes asynchronous commits within wal_writer_delay.
        wait_until(fell_behind, timeout=10, interval=0.05, what="the paused replica to fall behind")
    finally:
        replica.resume_replay()
    replica.wait_for_replay(eu.primary.current_lsn())

    def caught_up() -> bool:
        primary_lsn, now = asyncio.run(measure())
        return not now.replay_paused and replica_lag(now, primary_lsn=primary_lsn).lag_bytes == 0

    wait_until(caught_up, timeout=10, interval=0.05, what="the resumed replica to catch up")
