"""Reads of the router's replica view, for readiness checks and operators."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from regions.routing.health import ReplicaStatus, registry
from regions.routing.probe import ensure_probing, probe_once


@dataclass(frozen=True, slots=True)
class LagLimits:
    max_bytes: int
    max_seconds: float


def lag_limits() -> LagLimits:
    """The limits past which the router stops reading from a replica (readiness uses the same)."""
    return LagLimits(
        max_bytes=int(settings.ROUTING_MAX_REPLICA_LAG_BYTES),
        max_seconds=float(settings.ROUTING_MAX_REPLICA_LAG_SECONDS),
    )


def replica_statuses(*, refresh: bool = False) -> list[ReplicaStatus]:
    """The probe's latest view of each replica alias, in ``DATABASE_REPLICAS`` order.

    ``refresh=True`` probes now (bounded by ``ROUTING_PROBE_TIMEOUT_SECONDS`` per
    server) instead of returning the background probe's last result. A replica
    never probed is reported down with the detail ``not probed yet``. Empty in
    the embedded mode (no replicas).
    """
    if refresh:
        probe_once()
    elif not registry.probed:
        ensure_probing()
    statuses = registry.statuses()
    return [
        statuses.get(alias)
        or ReplicaStatus(
            alias=alias,
            up=False,
            usable=False,
            replay_lsn=None,
            lag_bytes=None,
            lag_seconds=None,
            checked_at=None,
            detail="not probed yet",
        )
        for alias in settings.DATABASE_REPLICAS
    ]
