"""The cap on *degraded* reads: reads the primary serves in place of a replica.

A read is degraded when it goes to the primary only because no replica could
take it: every replica is down or lagging, a replica connection failed
mid-request, the caller's token was forged (anyone can send one), or the
per-user token store did not answer. Reads that must see the primary for
causality (the unit wrote, holds a fresh token, is in a transaction, asked
for ``primary()``) are never degraded.

Each request holds at most one slot, from its first degraded read to its end.
A process admits ``ROUTING_DEGRADED_MAX_CONCURRENCY`` such requests at once;
a request that finds no slot waits up to ``ROUTING_DEGRADED_WAIT_SECONDS``
and then fails with 503 ``read_capacity_exhausted`` and ``Retry-After``. So
when the replicas die, the primary takes at most (processes x cap) extra
concurrent requests, and everything beyond is shed instead of piling onto it.
Celery tasks and code outside a unit are not capped: worker concurrency
already bounds them, and failing a task is worse than a slower primary.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from regions.errors import ReadCapacityExhausted
from regions.metrics import DB_FALLBACK, labels
from regions.routing.state import RoutingState

_lock = threading.Lock()
_semaphore: threading.BoundedSemaphore | None = None


def _slots() -> threading.BoundedSemaphore:
    global _semaphore
    with _lock:
        if _semaphore is None:
            _semaphore = threading.BoundedSemaphore(max(1, int(settings.ROUTING_DEGRADED_MAX_CONCURRENCY)))
        return _semaphore


def admit_degraded(state: RoutingState, *, alias: str) -> None:
    """Let ``state``'s unit read from the primary in place of a replica, or raise 503.

    ``alias`` names the replica (or ``replicas``) that could not serve, for the counter.
    """
    if state.degraded_slot or state.kind != "request":
        return
    slots = _slots()
    if not slots.acquire(timeout=float(settings.ROUTING_DEGRADED_WAIT_SECONDS)):
        labels(DB_FALLBACK, alias=alias, outcome="shed").inc()
        raise ReadCapacityExhausted(
            "Too many requests are being served by the primary database while replicas are unavailable.",
            headers={"Retry-After": "1"},
        )
    state.degraded_slot = slots


def release(state: RoutingState) -> None:
    """End of the unit: give back its slot, if it held one."""
    slots, state.degraded_slot = state.degraded_slot, None
    if slots is not None:
        slots.release()


@receiver(setting_changed)
def _resize(*, setting: str, **kwargs: Any) -> None:
    global _semaphore
    if setting == "ROUTING_DEGRADED_MAX_CONCURRENCY":
        with _lock:
            _semaphore = None
