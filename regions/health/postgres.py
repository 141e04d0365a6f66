"""What readiness measures on PostgreSQL: the primary's WAL position and each replica's lag.

Measured directly, with a connection of its own per probe (short connect and
statement timeouts, asyncio so every server is asked at once), until the read
router's probe publishes its view of the replicas (``regions/routing/``);
readiness then reads that instead (docs/decisions/0003).

Lag of a replica:

- **bytes**: the primary's ``pg_current_wal_lsn()`` (the WAL it has written,
  so could have sent) minus the replica's ``pg_last_wal_replay_lsn()``, never
  negative. When the
  primary cannot be reached, the replica's own ``pg_last_wal_receive_lsn()``
  is the reference, and the result says so.
- **seconds**:
  - 0 when nothing is missing. An idle primary commits nothing, so the age of
    the last replayed transaction says nothing about lag.
  - The age of the last replayed transaction
    (``clock_timestamp() - pg_last_xact_replay_timestamp()``) while received
    WAL waits to be replayed (replay slow or paused): an upper bound.
  - The time since the last message from the primary
    (``pg_stat_wal_receiver.last_msg_receipt_time``) when the replica has
    replayed all it received and the primary has more: that grows only when
    streaming stalls. Where that view is not readable, the replay age again.

  Both overstate the lag of a probe that lands in the milliseconds between a
  commit after an idle period and its replay; readiness only reports it
  (``degraded``, 200) and the next probe is clean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import connections

_NOT_CONNECTION_PARAMS = frozenset(
    {
        "pool",
        "isolation_level",
        "server_side_binding",
        "assume_role",
        "cursor_factory",
        "context",
        "prepare_threshold",
    }
)


def is_postgres(alias: str) -> bool:
    # Replica aliases use the router's PostgreSQL backend (regions.routing.backend).
    return str(connections[alias].vendor) == "postgresql"


def connection_params(alias: str, *, timeout: float) -> dict[str, Any]:
    """psycopg keyword arguments for ``alias`` with the probe's short timeouts."""
    config = connections.settings[alias]
    options = {k: v for k, v in dict(config.get("OPTIONS") or {}).items() if k not in _NOT_CONNECTION_PARAMS}
    options["connect_timeout"] = max(2, math.ceil(timeout))  # libpq's minimum is 2 s
    statement_timeout = f"-c statement_timeout={max(1, int(timeout * 1000))}"
    options["options"] = f"{options.get('options', '')} {statement_timeout}".strip()
    params = {
        "dbname": config.get("NAME"),
        "user": config.get("USER"),
        "password": config.get("PASSWORD"),
        "host": config.get("HOST"),
        "port": config.get("PORT"),
        **options,
    }
    return {key: value for key, value in params.items() if value not in (None, "")}


async def _fetch_one(alias: str, sql: str, *, timeout: float) -> tuple[Any, ...]:
    params = connection_params(alias, timeout=timeout)
    async with await psycopg.AsyncConnection.connect(autocommit=True, **params) as conn:
        cursor = await conn.execute(sql.encode())
        row = await cursor.fetchone()
    if row is None:  # a SELECT without FROM always returns one row
        raise RuntimeError("no row")
    return tuple(row)


def lsn_int(lsn: str) -> int:
    """``'16/B374D848'`` as a byte position."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass(frozen=True, slots=True)
class PrimaryPosition:
    in_recovery: bool
    lsn: int | None
    """``pg_current_wal_lsn()``; ``None`` on a server in recovery."""


async def primary_position(*, alias: str = "default", timeout: float) -> PrimaryPosition:
    in_recovery, lsn = await _fetch_one(
        alias,
        "SELECT pg_is_in_recovery(),"
        " CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END",
        timeout=timeout,
    )
    return PrimaryPosition(in_recovery=bool(in_recovery), lsn=lsn_int(lsn) if lsn else None)


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """What a replica says about itself."""

    in_recovery: bool
    """False means the server is no standby (promoted, or a misconfigured URL)."""
    received_lsn: int | None
    replayed_lsn: int | None
    replay_age: float | None
    """Seconds since the commit of the last replayed transaction (``None`` before the first one)."""
    receipt_age: float | None
    """Seconds since the last message from the primary (``None`` when not streaming or not readable)."""
    replay_paused: bool


async def replica_state(*, alias: str, timeout: float) -> ReplicaState:
    in_recovery, received, replayed, replay_age, receipt_age, paused = await _fetch_one(
        alias,
        "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,"
        " EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8,"
        " (SELECT EXTRACT(EPOCH FROM clock_timestamp() - last_msg_receipt_time)::float8"
        "  FROM pg_stat_wal_receiver LIMIT 1),"
        " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END",
        timeout=timeout,
    )
    return ReplicaState(
        in_recovery=bool(in_recovery),
        received_lsn=lsn_int(received) if received else None,
        replayed_lsn=lsn_int(replayed) if replayed else None,
        replay_age=float(replay_age) if replay_age is not None else None,
        receipt_age=float(receipt_age) if receipt_age is not None else None,
        replay_paused=bool(paused),
    )


@dataclass(frozen=True, slots=True)
class ReplicaLag:
    lag_bytes: int | None
    lag_seconds: float | None
    """``None`` when unknown (nothing replayed yet)."""
    reference: str
    """``primary`` (against the primary's WAL position) or ``received`` (the primary was unreachable)."""


def replica_lag(state: ReplicaState, *, primary_lsn: int | None) -> ReplicaLag:
    """The lag of a standby in bytes and seconds (see the module docstring)."""
    reference = "primary" if primary_lsn is not None else "received"
    if state.replayed_lsn is None:
        return ReplicaLag(lag_bytes=None, lag_seconds=None, reference=reference)
    target = primary_lsn if primary_lsn is not None else (state.received_lsn or state.replayed_lsn)
    lag_bytes = max(0, target - state.replayed_lsn)
    waiting_replay = state.received_lsn is not None and state.received_lsn > state.replayed_lsn
    if lag_bytes == 0:
        age: float | None = 0.0
    elif waiting_replay or state.receipt_age is None:
        age = state.replay_age
    else:
        age = state.receipt_age
    lag_seconds = max(0.0, age) if age is not None else None
    return ReplicaLag(lag_bytes=lag_bytes, lag_seconds=lag_seconds, reference=reference)
