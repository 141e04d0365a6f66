"""What this region knows about its peers' health.

A beat task (replication/health) polls each peer's ``/health/ready`` and
records the result here; residency failover and the admin read it. The hot
path only reads the region's Redis (or the local cache in embedded mode): no
cross-region call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache

_KEY = "peer-health:{code}"
STALE_AFTER_SECONDS = 30.0
"""A status older than this is unknown: a stopped poller must not freeze 'healthy'."""


@dataclass(frozen=True, slots=True)
class PeerStatus:
    code: str
    healthy: bool | None
    """``None`` when unknown (never polled, or the last result is stale)."""
    checked_at: float | None
    detail: str = ""


def peer_status_record(
    *, code: str, healthy: bool, detail: str = "", checked_at: float | None = None
) -> None:
    """Record the outcome of polling ``code``'s readiness."""
    cache.set(
        _KEY.format(code=code),
        {"healthy": healthy, "checked_at": checked_at or time.time(), "detail": detail[:200]},
        timeout=int(STALE_AFTER_SECONDS * 4),
    )


def peer_status_get(*, code: str, now: float | None = None) -> PeerStatus:
    """The last known status of peer ``code``."""
    raw = cache.get(_KEY.format(code=code))
    if not isinstance(raw, dict):
        return PeerStatus(code=code, healthy=None, checked_at=None)
    checked_at = float(raw.get("checked_at") or 0.0)
    if (now or time.time()) - checked_at > STALE_AFTER_SECONDS:
        return PeerStatus(code=code, healthy=None, checked_at=checked_at, detail="stale")
    return PeerStatus(
        code=code, healthy=bool(raw.get("healthy")), checked_at=checked_at, detail=str(raw.get("detail", ""))
    )
