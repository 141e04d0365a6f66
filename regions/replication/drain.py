"""Draining the outbox: claim a batch, send it signed to the peer, settle the answers.

``drain_request`` asks for a drain after a commit (debounced per peer in
Redis, so a burst of writes enqueues one task). ``drain_peer`` is the task's
body: it loops over batches until nothing is due or its time budget is spent,
asks for a parallel helper whenever a batch came back full, and schedules
itself for the moment the next backoff or breaker period ends. The beat sweep
(``tasks.sweep``) covers anything those triggers miss.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from regions.metrics import REPLICATION_BATCHES, REPLICATION_SENT, labels
from regions.redis import region_redis
from regions.replication.breaker import (
    Denied,
    breaker_acquire,
    breaker_failure,
    breaker_release,
    breaker_success,
)
from regions.replication.client import PeerUnavailable, encode_batch, post_batch
from regions.replication.models import OutboxEvent
from regions.replication.outbox import outbox_claim, outbox_coalesce, outbox_next_due, outbox_settle

logger = logging.getLogger(__name__)

_NOW_FLAG = "replication:drain-now:{peer}"
_LATER_FLAG = "replication:drain-later:{peer}"
_FLAG_TTL = 10


def _eager() -> bool:
    return bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))


def drain_request(*, peers: Iterable[str], force: bool = False) -> None:
    """Enqueue a drain for each peer unless one is already waiting in the queue.

    ``force`` (the beat sweep) enqueues even then: should a queued drain have
    been lost with its flag still set, the sweep must not wait for the flag to
    expire.
    """
    from regions.replication.tasks import drain

    client = region_redis()
    for peer in peers:
        try:
            flag = _NOW_FLAG.format(peer=peer)
            if client is not None and not client.set(flag, 1, nx=True, ex=_FLAG_TTL) and not force:
                continue
        except redis.RedisError as exc:
            logger.warning("Drain debounce unavailable (%s); enqueueing anyway", exc)
        try:
            drain.apply_async(kwargs={"peer": peer}, retry=False)
        except Exception:
            # The beat sweep will find the rows; never fail the caller's request.
            logger.exception("Could not enqueue a replication drain for %s", peer)


def drain_schedule(*, peer: str, delay: float) -> None:
    """Drain ``peer`` again in ``delay`` seconds (one scheduled drain per peer at a time)."""
    if _eager():
        return  # eager tasks would run at once: the sweep (or the next write) retries instead
    from regions.replication.tasks import drain

    delay = max(0.05, min(delay, float(settings.REPLICATION_BACKOFF_CAP)))
    due = time.time() + delay
    client = region_redis()
    key = _LATER_FLAG.format(peer=peer)
    try:
        if client is not None:
            current = client.get(key)
            if current is not None and float(current) <= due + 0.05:
                return
            client.set(key, repr(due), ex=math.ceil(delay) + _FLAG_TTL)
    except redis.RedisError as exc:
        logger.warning("Drain scheduling flag unavailable: %s", exc)
    try:
        drain.apply_async(kwargs={"peer": peer, "scheduled": True}, countdown=delay, retry=False)
    except Exception:
        logger.exception("Could not schedule a replication drain for %s", peer)


def drain_started(*, peer: str, scheduled: bool) -> None:
    """Clear the flag of the trigger that started this drain, so new triggers enqueue again."""
    client = region_redis()
    if client is None:
        return
    try:
        client.delete((_LATER_FLAG if scheduled else _NOW_FLAG).format(peer=peer))
    except redis.RedisError:
        pass


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    progress: bool = False
    """Whether any claimed row was settled (delivered, backed off or dead-lettered)."""
    transport_error: str | None = None

    @property
    def full(self) -> bool:
        return self.claimed >= int(settings.REPLICATION_BATCH_SIZE)


def _event(row: OutboxEvent) -> dict[str, object]:
    return {
        "id": str(row.event_id),
        "type": row.event_type,
        "shard": row.shard_key,
        "created_at": row.created_at.timestamp(),
        "payload": row.payload,
    }


def drain_batch(*, peer: str) -> BatchReport:
    """Claim one batch for ``peer``, send it and settle it, in one transaction.

    The claimed rows stay locked while the batch is in flight. If the process
    dies, PostgreSQL rolls the transaction back and the rows are claimed
    again; the peer deduplicates by event id, so they are applied once.
    """
    report = BatchReport()
    with transaction.atomic():
        rows = outbox_claim(
            peer=peer,
            shards=int(settings.REPLICATION_SHARDS_PER_CLAIM),
            limit=int(settings.REPLICATION_BATCH_SIZE),
        )
        report.claimed = len(rows)
        if not rows:
            return report
        send, superseded = outbox_coalesce(rows)
        report.sent = len(send)
        body = encode_batch(target=peer, events=[_event(row) for row in send])
        try:
            answers = post_batch(peer=peer, body=body)
        except PeerUnavailable as exc:
            labels(REPLICATION_BATCHES, peer=peer, outcome="transport_error").inc()
            report.transport_error = str(exc)
            return report  # nothing changed: the rows stay due
        labels(REPLICATION_BATCHES, peer=peer, outcome="ok").inc()
        settled = outbox_settle(
            rows=send,
            superseded=superseded,
            results={event_id: (r.status, r.detail) for event_id, r in answers.items()},
        )
        report.failed = settled.failed + settled.dead
        report.progress = settled.delivered + settled.failed + settled.dead > 0
    for outcome, count in settled.outcomes.items():
        labels(REPLICATION_SENT, peer=peer, outcome=outcome).inc(count)
    return report


def drain_peer(*, peer: str, scheduled: bool = False, budget: float | None = None) -> int:
    """Drain ``peer`` until nothing is due or the budget is spent. Returns the events claimed."""
    drain_started(peer=peer, scheduled=scheduled)
    deadline = time.monotonic() + (float(settings.REPLICATION_DRAIN_BUDGET) if budget is None else budget)
    claimed = 0
    while True:
        permit = breaker_acquire(peer=peer)
        if isinstance(permit, Denied):
            drain_schedule(peer=peer, delay=permit.retry_after)
            return claimed
        try:
            report = drain_batch(peer=peer)
        except Exception:
            breaker_release(permit)
            raise
        claimed += report.claimed
        if report.transport_error is None and report.claimed and not report.progress:
            report.transport_error = "the peer answered without results for the claimed events"
        if report.transport_error is not None:
            outcome = breaker_failure(permit)
            logger.warning(
                "Replication to %s failed (%s); breaker %s, retry in %.1fs",
                peer,
                report.transport_error,
                outcome.state.name.lower(),
                outcome.retry_after,
            )
            drain_schedule(peer=peer, delay=outcome.retry_after)
            return claimed
        if report.claimed == 0:
            breaker_release(permit)
            break
        breaker_success(permit)
        if report.full and not _eager():
            drain_request(peers=[peer])  # a helper takes other shards in parallel
        if time.monotonic() >= deadline:
            drain_request(peers=[peer])
            return claimed
    next_due = outbox_next_due(peer=peer)
    if next_due is not None:
        # Rows in backoff: come back when the first is due. Rows due already are
        # held by a concurrent drainer (or just became due): look again shortly.
        drain_schedule(peer=peer, delay=max((next_due - timezone.now()).total_seconds(), 0.25))
    return claimed
