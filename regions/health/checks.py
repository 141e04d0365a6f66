"""The checks behind ``/health/ready`` and ``/health/startup``, on django-health-check 4.x.

Each is a ``health_check.HealthCheck`` (the library runs it with a timeout,
times it, maps exceptions and logs failures) plus two things the library has
no notion of: ``critical`` (a failure makes the probe fail, 503, rather than
degraded, 200) and ``details`` (numbers for the JSON report, such as a
replica's lag).

Messages are what a load balancer or a peer region may read: they name the
problem, never a host, a port or a credential (those go to the log).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import time
from typing import Any

import redis.asyncio
from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connections
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from regions.health import postgres


def check_timeout() -> datetime.timedelta:
    return datetime.timedelta(seconds=float(settings.HEALTH_CHECK_TIMEOUT))


@dataclasses.dataclass
class ProbeCheck(HealthCheck):
    """A check with a report name, a criticality and details for the JSON report."""

    critical: bool = dataclasses.field(default=True, repr=False)
    timeout: datetime.timedelta = dataclasses.field(default_factory=check_timeout, repr=False)
    details: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return type(self).__name__.lower()


class PrimaryProbe:
    """One query of the primary per readiness run, shared by the primary and replica checks."""

    def __init__(self, *, alias: str = "default", timeout: float) -> None:
        self.alias = alias
        self.timeout = timeout
        self._task: asyncio.Future[postgres.PrimaryPosition] | None = None

    async def position(self) -> postgres.PrimaryPosition:
        if self._task is None:
            self._task = asyncio.ensure_future(
                postgres.primary_position(alias=self.alias, timeout=self.timeout)
            )
        return await asyncio.shield(self._task)


@dataclasses.dataclass
class Primary(ProbeCheck):
    """This region's primary answers and accepts writes (not in recovery). Critical."""

    alias: str = "default"
    probe: PrimaryProbe | None = dataclasses.field(default=None, repr=False, compare=False)

    async def run(self) -> None:
        if not postgres.is_postgres(self.alias):
            # The embedded SQLite default: the library's SELECT 1 check.
            await asyncio.get_running_loop().run_in_executor(None, Database(alias=self.alias).run)
            return
        probe = self.probe or PrimaryProbe(alias=self.alias, timeout=self.timeout.total_seconds())
        try:
            position = await probe.position()
        except Exception as exc:
            raise ServiceUnavailable("cannot query the primary database") from exc
        if position.in_recovery:
            raise ServiceUnavailable("the primary database is in recovery (read-only)")


@dataclasses.dataclass
class Replica(ProbeCheck):
    """A streaming replica answers, is a standby, and its lag is within the router's limits.

    Not critical: reads fall back to another replica or the primary. Down or
    not a standby is a failure; lagging past a limit (the router stops reading
    from it) or paused replay is a warning. Both make the probe ``degraded``.
    """

    alias: str = "replica_1"
    probe: PrimaryProbe | None = dataclasses.field(default=None, repr=False, compare=False)
    critical: bool = dataclasses.field(default=False, repr=False)

    @property
    def name(self) -> str:
        return self.alias

    async def _primary_lsn(self) -> int | None:
        if self.probe is None:
            return None
        try:
            # Do not let a hung primary make this replica look hung too.
            position = await asyncio.wait_for(self.probe.position(), self.timeout.total_seconds() / 2)
        except Exception:
            return None
        return position.lsn

    async def run(self) -> None:
        if not postgres.is_postgres(self.alias):
            await asyncio.get_running_loop().run_in_executor(None, Database(alias=self.alias).run)
            return
        primary_lsn, state = await asyncio.gather(
            self._primary_lsn(),
            postgres.replica_state(alias=self.alias, timeout=self.timeout.total_seconds()),
            return_exceptions=True,
        )
        if isinstance(state, BaseException):
            raise ServiceUnavailable("cannot query the replica") from state
        if not state.in_recovery:
            raise ServiceUnavailable("not a standby: the server is not in recovery")
        lag = postgres.replica_lag(state, primary_lsn=primary_lsn if isinstance(primary_lsn, int) else None)
        max_bytes = int(settings.ROUTING_MAX_REPLICA_LAG_BYTES)
        max_seconds = float(settings.ROUTING_MAX_REPLICA_LAG_SECONDS)
        self.details.update(
            lag_bytes=lag.lag_bytes,
            lag_seconds=None if lag.lag_seconds is None else round(lag.lag_seconds, 3),
            max_lag_bytes=max_bytes,
            max_lag_seconds=max_seconds,
            lag_reference=lag.reference,
            replay_paused=state.replay_paused,
        )
        problems = []
        if state.replay_paused:
            problems.append("replay is paused")
        if lag.lag_bytes is not None and lag.lag_bytes > max_bytes:
            problems.append(f"lag {lag.lag_bytes} bytes exceeds {max_bytes}")
        if lag.lag_seconds is not None and lag.lag_seconds > max_seconds:
            problems.append(f"lag {lag.lag_seconds:.1f} s exceeds {max_seconds:g} s")
        if problems:
            raise ServiceWarning("; ".join(problems))


@dataclasses.dataclass
class RegionRedis(Redis):
    """The region's Redis answers PING (library check) with our criticality and report name.

    Critical when a rate limit tier fails closed (not in
    ``RATE_LIMIT_FAIL_OPEN_TIERS``), or when no policy is configured: then a
    Redis outage refuses requests.
    """

    critical: bool = dataclasses.field(default_factory=lambda: redis_critical(), repr=False)
    timeout: datetime.timedelta = dataclasses.field(default_factory=check_timeout, repr=False)
    details: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return "redis"


def redis_critical() -> bool:
    """Whether losing Redis refuses requests: some rate limit tier fails closed (saas/ratelimit.py).

    Without a rate limit configuration the policy is unknown, so Redis counts as critical.
    """
    tiers = getattr(settings, "RATE_LIMIT_TIERS", None)
    if not tiers:
        return True
    fail_open = set(getattr(settings, "RATE_LIMIT_FAIL_OPEN_TIERS", ()))
    return any(name not in fail_open for name in tiers)


def redis_client_factory(url: str, timeout: float) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


@dataclasses.dataclass
class Broker(ProbeCheck):
    """The Celery broker accepts a connection (and, for Redis, answers PING). Not critical.

    Unreachable is a failure, slower than ``HEALTH_BROKER_SLOW_SECONDS`` a
    warning; either makes readiness ``degraded``: requests are still served,
    only background work (outbox drain, e-mails) waits.
    """

    critical: bool = dataclasses.field(default=False, repr=False)

    def run(self) -> None:
        timeout = self.timeout.total_seconds()
        started = time.perf_counter()
        connection = current_app.connection_for_write(
            transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout}
        )
        connection.connect_timeout = timeout
        try:
            connection.ensure_connection(max_retries=0)
        except Exception as exc:
            raise ServiceUnavailable("cannot connect to the broker") from exc
        finally:
            connection.release()
        elapsed = time.perf_counter() - started
        self.details["latency_ms"] = round(elapsed * 1000, 1)
        slow = float(settings.HEALTH_BROKER_SLOW_SECONDS)
        if elapsed > slow:
            raise ServiceWarning(f"slow: answered in {elapsed:.2f} s (limit {slow:g} s)")


@dataclasses.dataclass
class Registry(ProbeCheck):
    """The region registry is valid and names this process's ``REGION`` (system checks regions.E0xx)."""

    def run(self) -> None:
        from regions.checks import check_current_region, check_registry

        errors = [message for message in (*check_registry(), *check_current_region()) if message.is_serious()]
        if errors:
            raise ServiceUnavailable("invalid: " + ", ".join(sorted({str(m.id) for m in errors})))


@dataclasses.dataclass
class Migrations(ProbeCheck):
    """Every migration is applied on the primary."""

    alias: str = "default"

    def run(self) -> None:
        from django.db.migrations.executor import MigrationExecutor

        connection = connections[self.alias]
        try:
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as exc:
            raise ServiceUnavailable("cannot read the migration state") from exc
        finally:
            connection.close()  # this probe thread's own connection
        if plan:
            self.details["unapplied"] = len(plan)
            raise ServiceUnavailable(f"{len(plan)} migration(s) not applied")
