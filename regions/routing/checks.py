"""System checks for read/write routing (run at every boot, see ``regions.boot``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

REPLICA_ENGINE = "regions.routing.backend"
ROUTER = "regions.router.ReadWriteRouter"

_POSITIVE = (
    "ROUTING_MAX_REPLICA_LAG_BYTES",
    "ROUTING_MAX_REPLICA_LAG_SECONDS",
    "ROUTING_PROBE_TIMEOUT_SECONDS",
    "ROUTING_DEGRADED_MAX_CONCURRENCY",
    "PRIMARY_UNAVAILABLE_RETRY_AFTER",
)
_NON_NEGATIVE = (
    "ROUTING_PROBE_INTERVAL_SECONDS",
    "ROUTING_PROBE_FIRST_WAIT_SECONDS",
    "ROUTING_REPLAY_LSN_CACHE_SECONDS",
    "ROUTING_DEGRADED_WAIT_SECONDS",
)


@checks.register("regions")
def check_routing(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """regions.E030-E032: replicas use the failover backend, the router is on, limits make sense."""
    problems: list[checks.CheckMessage] = []
    replicas = list(getattr(settings, "DATABASE_REPLICAS", []))
    for alias in replicas:
        engine = settings.DATABASES.get(alias, {}).get("ENGINE")
        if engine != REPLICA_ENGINE:
            problems.append(
                checks.Error(
                    f"Replica alias {alias!r} uses ENGINE {engine!r}; replicas must be PostgreSQL "
                    f"streaming replicas served by {REPLICA_ENGINE!r}.",
                    hint="Give REPLICA_DATABASE_URLS postgres:// URLs (settings.env sets the engine).",
                    id="regions.E030",
                )
            )
    if replicas and ROUTER not in list(settings.DATABASE_ROUTERS):
        problems.append(
            checks.Error(
                f"Replicas are configured but DATABASE_ROUTERS does not include {ROUTER!r}.",
                id="regions.E031",
            )
        )
    for name in (*_POSITIVE, *_NON_NEGATIVE):
        value = getattr(settings, name, None)
        if not isinstance(value, (int, float)) or value < 0 or (name in _POSITIVE and value == 0):
            bound = "positive" if name in _POSITIVE else "zero or more"
            problems.append(checks.Error(f"{name}={value!r} must be a number, {bound}.", id="regions.E032"))
    return problems
