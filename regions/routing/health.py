"""What this process knows about each replica: up or down, replay LSN, lag.

The probe (``regions.routing.probe``) writes it; a failed replica connection
marks a replica down at once; token checks refresh a replica's replay LSN.
The router reads it on every decision, so reads are lock-free: the registry
swaps immutable snapshots.

A replica marked down comes back only through a probe that *started after* it
was marked down and found it healthy.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from regions.metrics import REPLICA_LAG_BYTES, REPLICA_LAG_SECONDS, REPLICA_UP, labels
from regions.routing.lsn import format_lsn
from regions.routing.state import epoch

PRIMARY_SAMPLES = 512
"""Primary LSN samples kept for the lag-in-seconds estimate (minutes of history)."""


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """The latest view of one replica. ``usable`` means the router may send reads to it."""

    alias: str
    up: bool
    """Reachable and replaying (a standby); ``False`` after a connection failure until it probes healthy."""
    usable: bool
    """Up, and lag within ``ROUTING_MAX_REPLICA_LAG_BYTES`` and ``ROUTING_MAX_REPLICA_LAG_SECONDS``."""
    replay_lsn: int | None
    lag_bytes: int | None
    lag_seconds: float | None
    checked_at: float | None
    """Unix time of the probe (or failure) this status comes from."""
    detail: str = ""

    @property
    def replay_lsn_text(self) -> str | None:
        return format_lsn(self.replay_lsn) if self.replay_lsn is not None else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "up": self.up,
            "usable": self.usable,
            "replay_lsn": self.replay_lsn_text,
            "lag_bytes": self.lag_bytes,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "checked_at": self.checked_at,
            "detail": self.detail,
        }


def lag_seconds_estimate(
    *,
    replay_lsn: int,
    primary_lsn: int,
    samples: Sequence[tuple[float, int]],
    replay_timestamp_age: float | None,
    now: float,
) -> float:
    """How old the oldest WAL is that the replica has not replayed yet (an upper bound).

    - Caught up (``replay_lsn >= primary_lsn``): 0, however long the primary
      has been idle. ``now() - pg_last_xact_replay_timestamp()`` alone would
      grow without bound on an idle primary.
    - Behind: the unreplayed WAL was written after the last primary sample the
      replica had reached (``samples`` are ``(time, primary LSN)``, oldest
      first), and every unreplayed commit is younger than the last replayed
      commit (``replay_timestamp_age``). The smaller bound wins.
    - Behind every sample and no replayed commit known: the age of the first
      sample (a lower bound; better than nothing).
    """
    if replay_lsn >= primary_lsn:
        return 0.0
    bounds: list[float] = []
    reached = [at for at, lsn in samples if lsn <= replay_lsn]
    if reached:
        bounds.append(now - reached[-1])
    if replay_timestamp_age is not None:
        bounds.append(replay_timestamp_age)
    if bounds:
        return max(0.0, min(bounds))
    return max(0.0, now - samples[0][0]) if samples else 0.0


def within_limits(lag_bytes: int | None, lag_seconds: float | None) -> bool:
    if lag_bytes is not None and lag_bytes > settings.ROUTING_MAX_REPLICA_LAG_BYTES:
        return False
    return not (lag_seconds is not None and lag_seconds > settings.ROUTING_MAX_REPLICA_LAG_SECONDS)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One replica's answer to a probe (``error`` set when it did not answer)."""

    alias: str
    in_recovery: bool = False
    replay_lsn: int | None = None
    replay_timestamp_age: float | None = None
    error: str = ""


class ReplicaRegistry:
    """The process-wide replica health view. Reset when the region or databases change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.first_probe = threading.Event()
        self._reset_locked()

    def _reset_locked(self) -> None:
        self.generation = getattr(self, "generation", 0) + 1
        self.probed = False
        self.first_probe.clear()
        self._statuses: Mapping[str, ReplicaStatus] = MappingProxyType({})
        self.usable: tuple[str, ...] = ()
        self._usable_cycle: Iterator[str] = itertools.cycle(())
        self.unusable_reason = "replicas_unknown"
        epoch.bump()  # cached read decisions named replicas of the old view
        self._down_at: dict[str, float] = {}
        self._lsn_checks: dict[str, float] = {}
        self.samples: deque[tuple[float, int]] = deque(maxlen=PRIMARY_SAMPLES)

    def reset(self) -> None:
        with self._lock:
            self._reset_locked()

    def after_fork(self) -> None:
        """In a forked child: fresh locks (a parent thread may have held them) and no data."""
        self._lock = threading.Lock()
        self.first_probe = threading.Event()
        self._reset_locked()

    # --- reads (lock-free) ------------------------------------------------------

    def statuses(self) -> Mapping[str, ReplicaStatus]:
        return self._statuses

    def status(self, alias: str) -> ReplicaStatus | None:
        return self._statuses.get(alias)

    def replay_lsn(self, alias: str) -> int:
        status = self._statuses.get(alias)
        return status.replay_lsn or 0 if status is not None else 0

    def next_usable(self) -> str | None:
        """The next usable replica, round robin (``None`` when there is none)."""
        try:
            return next(self._usable_cycle)
        except StopIteration:
            return None

    def lsn_checked_at(self, alias: str) -> float:
        return self._lsn_checks.get(alias, 0.0)

    # --- writes -------------------------------------------------------------------

    def apply_probe(
        self,
        *,
        generation: int,
        started_at: float,
        primary_lsn: int | None,
        results: Sequence[ProbeResult],
        now: float,
    ) -> None:
        """Record a probe cycle that started at ``started_at`` (monotonic clock)."""
        with self._lock:
            if generation != self.generation:
                return  # the databases changed while this probe ran
            if primary_lsn is not None:
                self.samples.append((now, primary_lsn))
            latest_primary = self.samples[-1][1] if self.samples else None
            statuses = dict(self._statuses)
            for result in results:
                statuses[result.alias] = self._judge(result, started_at, latest_primary, now)
            self._publish(statuses)
            self.probed = True
        self.first_probe.set()
        for status in statuses.values():
            export_gauges(status)

    def _judge(
        self, result: ProbeResult, started_at: float, primary_lsn: int | None, now: float
    ) -> ReplicaStatus:
        previous = self._statuses.get(result.alias)
        if result.error or not result.in_recovery or result.replay_lsn is None:
            detail = result.error or "not a streaming standby (pg_is_in_recovery() is false)"
            return ReplicaStatus(
                alias=result.alias,
                up=False,
                usable=False,
                replay_lsn=previous.replay_lsn if previous else None,
                lag_bytes=None,
                lag_seconds=None,
                checked_at=now,
                detail=detail[:300],
            )
        if previous is not None and self._down_at.get(result.alias, -1.0) > started_at:
            # Marked down while this probe was running: its "healthy" may predate the failure.
            return previous
        self._down_at.pop(result.alias, None)
        replay = result.replay_lsn
        if primary_lsn is None:
            lag_bytes, lag_seconds = None, result.replay_timestamp_age
        else:
            lag_bytes = max(0, primary_lsn - replay)
            lag_seconds = lag_seconds_estimate(
                replay_lsn=replay,
                primary_lsn=primary_lsn,
                samples=self.samples,
                replay_timestamp_age=result.replay_timestamp_age,
                now=now,
            )
        usable = within_limits(lag_bytes, lag_seconds)
        return ReplicaStatus(
            alias=result.alias,
            up=True,
            usable=usable,
            replay_lsn=replay,
            lag_bytes=lag_bytes,
            lag_seconds=lag_seconds,
            checked_at=now,
            detail="" if usable else "lag over the routing limit",
        )

    def mark_down(self, alias: str, detail: str) -> None:
        """A connection to ``alias`` broke or was refused: no reads until it probes healthy."""
        with self._lock:
            self._down_at[alias] = time.monotonic()
            previous = self._statuses.get(alias)
            status = ReplicaStatus(
                alias=alias,
                up=False,
                usable=False,
                replay_lsn=previous.replay_lsn if previous else None,
                lag_bytes=None,
                lag_seconds=None,
                checked_at=time.time(),
                detail=detail[:300],
            )
            self._publish({**self._statuses, alias: status})
        export_gauges(status)

    def note_replay_lsn(self, alias: str, lsn: int) -> None:
        """A token check read ``alias``'s replay LSN just now (LSNs only move forward)."""
        with self._lock:
            self._lsn_checks[alias] = time.monotonic()
            previous = self._statuses.get(alias)
            if previous is None or not previous.up or (previous.replay_lsn or 0) >= lsn:
                return
            self._publish({**self._statuses, alias: replace(previous, replay_lsn=lsn)})

    def _publish(self, statuses: dict[str, ReplicaStatus]) -> None:
        self._statuses = MappingProxyType(statuses)
        usable = tuple(alias for alias, status in statuses.items() if status.usable)
        if usable != self.usable:
            self.usable = usable
            self._usable_cycle = itertools.cycle(usable)
            epoch.bump()  # a cached read decision may name a replica no longer usable
        if self.usable:
            self.unusable_reason = ""
        elif any(status.up for status in statuses.values()):
            self.unusable_reason = "replicas_lagging"
        else:
            self.unusable_reason = "replicas_down"


def export_gauges(status: ReplicaStatus) -> None:
    labels(REPLICA_UP, alias=status.alias).set(1 if status.usable else 0)
    if status.lag_bytes is not None:
        labels(REPLICA_LAG_BYTES, alias=status.alias).set(status.lag_bytes)
    if status.lag_seconds is not None:
        labels(REPLICA_LAG_SECONDS, alias=status.alias).set(status.lag_seconds)


registry = ReplicaRegistry()
"""The one registry of this process."""


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    # Another region (tests acting as one), other servers, or other limits.
    if setting in {"REGION", "DATABASES", "DATABASE_REPLICAS"}:
        registry.reset()
