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
import threading
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
from regions.routing.health import ReplicaStatus
from regions.routing.selectors import lag_limits, replica_statuses


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


@dataclasses.dataclass
class Primary(ProbeCheck):
    """This region's primary answers and accepts writes (not in recovery). Critical."""

    alias: str = "default"

    async def run(self) -> None:
        if not postgres.is_postgres(self.alias):
            # The embedded SQLite default: the library's SELECT 1 check.
            await asyncio.get_running_loop().run_in_executor(None, Database(alias=self.alias).run)
            return
        try:
            standby = await postgres.in_recovery(alias=self.alias, timeout=self.timeout.total_seconds())
        except Exception as exc:
            raise ServiceUnavailable("cannot query the primary database") from exc
        if standby:
            raise ServiceUnavailable("the primary database is in recovery (read-only)")


class ReplicaView:
    """The read router's view of every replica, fetched once per readiness run.

    The background probe's latest view when it is fresh (younger than twice
    the probe interval); otherwise (no background probe, or a stalled one) a
    probe now, which also refreshes what the router reads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._statuses: dict[str, ReplicaStatus] | None = None

    def get(self, alias: str) -> ReplicaStatus | None:
        with self._lock:
            if self._statuses is None:
                self._statuses = {status.alias: status for status in self._fetch()}
        return self._statuses.get(alias)

    @staticmethod
    def _fetch() -> list[ReplicaStatus]:
        interval = float(settings.ROUTING_PROBE_INTERVAL_SECONDS)
        if interval > 0:
            statuses = replica_statuses()
            now = time.time()
            if all(s.checked_at is not None and now - s.checked_at <= 2 * interval for s in statuses):
                return statuses
        return replica_statuses(refresh=True)


_NOT_A_STANDBY = "not a streaming standby"


@dataclasses.dataclass
class Replica(ProbeCheck):
    """A streaming replica is up (answers, is a standby) and within the router's lag limits.

    Not critical: reads fall back to another replica or the primary. Down is a
    failure, lagging past a limit (the router stops reading from it) a warning;
    both make the probe ``degraded``. The numbers are the router's: readiness
    reports what routing acts on.
    """

    alias: str = "replica_1"
    view: ReplicaView = dataclasses.field(default_factory=ReplicaView, repr=False, compare=False)
    critical: bool = dataclasses.field(default=False, repr=False)

    @property
    def name(self) -> str:
        return self.alias

    def run(self) -> None:
        status = self.view.get(self.alias)
        limits = lag_limits()
        self.details.update(max_lag_bytes=limits.max_bytes, max_lag_seconds=limits.max_seconds)
        if status is None or status.checked_at is None:
            raise ServiceUnavailable("not probed yet")
        self.details.update(
            lag_bytes=status.lag_bytes,
            lag_seconds=None if status.lag_seconds is None else round(status.lag_seconds, 3),
            probed_seconds_ago=round(max(0.0, time.time() - status.checked_at), 3),
        )
        if not status.up:
            # The router's detail names hosts and ports: not for a public probe.
            if status.detail.startswith(_NOT_A_STANDBY):
                raise ServiceUnavailable("not a standby: the server is not in recovery")
            raise ServiceUnavailable("cannot query the replica")
        problems = []
        if status.lag_bytes is not None and status.lag_bytes > limits.max_bytes:
            problems.append(f"lag {status.lag_bytes} bytes exceeds {limits.max_bytes}")
        if status.lag_seconds is not None and status.lag_seconds > limits.max_seconds:
            problems.append(f"lag {status.lag_seconds:.1f} s exceeds {limits.max_seconds:g} s")
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
