"""Zone policy and the residency decision for one subject.

The policy comes from the registry only: a zone's allowed regions are the
regions in it. A subject is *served* in its home region (its resident data
lives nowhere else); anywhere else the request is sent to the home region, and
every target is checked against the subject's zone, so no decision ever points
outside it. See ``docs/decisions/0004-residency-decisions-and-write-guard.md``.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from regions.peer_health import peer_status_get
from regions.registry import Region, Registry
from regions.selectors import get_registry

logger = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    SERVED = "served"
    """This region is the subject's home region (or the subject is unknown)."""
    REDIRECTED = "redirected"
    """The subject lives in another region of the registry: 307 to its public origin."""
    UNAVAILABLE = "unavailable"
    """The home region is down (or unknown to the registry): 503, never another zone."""


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    home_region: str | None
    """The subject's home region from the directory (``None`` when unknown)."""
    target: Region | None = None
    """Where to send the request (REDIRECTED only); always a region of the subject's zone."""


SERVED_UNKNOWN = Decision(Outcome.SERVED, None)


def zone_allows(*, registry: Registry, region: str, home_region: str) -> bool:
    """Zone policy: ``region`` may hold or serve data of a subject homed in ``home_region``."""
    home = registry.regions.get(home_region)
    return home is not None and registry.is_allowed(region=region, zone=home.zone)


_peer_memo: dict[tuple[str, str], tuple[float, bool | None]] = {}
_peer_memo_lock = threading.Lock()


def home_region_down(code: str) -> bool:
    """Whether the peer health cache says ``code`` is down (unknown is not down).

    The answer is kept in process for ``RESIDENCY_PEER_HEALTH_LOCAL_TTL`` seconds,
    so a wrong-region request costs no Redis round trip; a peer going down is
    noticed that much later than the poller records it.
    """
    ttl = float(getattr(settings, "RESIDENCY_PEER_HEALTH_LOCAL_TTL", 2.0))
    memo_key = (settings.REGION, code)
    now = time.monotonic()
    found = _peer_memo.get(memo_key)
    if found is not None and found[0] > now:
        return found[1] is False
    healthy = peer_status_get(code=code).healthy
    if ttl > 0:
        with _peer_memo_lock:
            _peer_memo[memo_key] = (now + ttl, healthy)
    return healthy is False


@receiver(setting_changed)
def _forget_peers(*, setting: str, **kwargs: Any) -> None:
    if setting in {"RESIDENCY_PEER_HEALTH_LOCAL_TTL", "REGION", "CACHES"}:
        _peer_memo.clear()


def decide(*, home_region: str | None) -> Decision:
    """The residency decision for a request whose subject lives in ``home_region``."""
    if home_region is None:
        return SERVED_UNKNOWN
    here: str = settings.REGION
    if home_region == here:
        return Decision(Outcome.SERVED, home_region)
    registry = get_registry()
    target = registry.regions.get(home_region)
    if target is None or not zone_allows(registry=registry, region=target.code, home_region=home_region):
        # The directory names a region the registry does not know: never guess a host.
        logger.error("residency: directory names region %r that the registry does not list", home_region)
        return Decision(Outcome.UNAVAILABLE, home_region)
    if home_region_down(target.code):
        # A later stage fails over to an in-zone standby here; never to another zone.
        return Decision(Outcome.UNAVAILABLE, home_region)
    return Decision(Outcome.REDIRECTED, home_region, target)
