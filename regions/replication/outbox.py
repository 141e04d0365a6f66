"""The transactional outbox: services that write, claim, settle and dead-letter events.

``outbox_event_record`` is the only way an event enters the outbox. Services
that change replicated data call it inside their own transaction (the
directory's writer does), so the event commits exactly when the change does.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from regions.replication.backoff import backoff_delay
from regions.replication.events import EventType, payload_from
from regions.replication.models import DeadLetter, OutboxEvent
from regions.selectors import get_registry

logger = logging.getLogger(__name__)


def replication_peers() -> tuple[str, ...]:
    """The regions this region replicates to: every other region of the registry."""
    return tuple(region.code for region in get_registry().peers(settings.REGION))


def outbox_event_record(*, event: EventType, instance: models.Model) -> uuid.UUID:
    """Write ``event`` about ``instance`` for every peer, in the caller's transaction.

    The payload holds the allowlisted fields of ``event`` only. After the
    transaction commits, a drain is requested for each peer.
    """
    payload = payload_from(event, instance)
    event_id = uuid.uuid4()
    peers = replication_peers()
    now = timezone.now()
    OutboxEvent.objects.bulk_create(
        OutboxEvent(
            event_id=event_id,
            event_type=event.name,
            shard_key=event.shard_key(payload),
            object_key=event.object_key(payload),
            target_region=peer,
            payload=payload,
            next_attempt_at=now,
            created_at=now,
        )
        for peer in peers
    )
    if peers:
        from regions.replication.drain import drain_request

        transaction.on_commit(functools.partial(drain_request, peers=peers), robust=True)
    return event_id


_PG_HEADS = """
WITH RECURSIVE shards(shard_key) AS (
    (SELECT shard_key FROM {table} WHERE target_region = %(peer)s ORDER BY shard_key LIMIT 1)
  UNION ALL
    SELECT (SELECT o.shard_key FROM {table} o
            WHERE o.target_region = %(peer)s AND o.shard_key > s.shard_key ORDER BY o.shard_key LIMIT 1)
    FROM shards s WHERE s.shard_key IS NOT NULL
)
SELECT h.shard_key FROM shards s
CROSS JOIN LATERAL (
    SELECT o.id FROM {table} o
    WHERE o.target_region = %(peer)s AND o.shard_key = s.shard_key ORDER BY o.id LIMIT 1
) head
JOIN {table} h ON h.id = head.id
WHERE s.shard_key IS NOT NULL AND h.next_attempt_at <= %(now)s
ORDER BY h.id LIMIT %(shards)s
FOR UPDATE OF h SKIP LOCKED
"""
"""Each shard's head by two index probes (a loose index scan on ``(target_region, shard_key, id)``):
the cost follows the number of shards, not the backlog, and needs no table statistics."""

_PG_ROWS = """
SELECT r.* FROM unnest(%(heads)s::text[]) AS s(shard_key)
CROSS JOIN LATERAL (
    SELECT * FROM {table} o WHERE o.target_region = %(peer)s AND o.shard_key = s.shard_key
    ORDER BY o.id LIMIT %(per_shard)s
) r
ORDER BY r.id LIMIT %(limit)s
"""


def outbox_claim(*, peer: str, shards: int, limit: int, now: dt.datetime | None = None) -> list[OutboxEvent]:
    """Claim up to ``shards`` shards whose head is due and return their rows in order (max ``limit``).

    Must run inside a transaction. A shard is claimed by locking its head (its
    oldest row) with ``FOR UPDATE SKIP LOCKED``: concurrent drainers take
    disjoint shards, and a row is never sent while an older row of its shard is
    pending, so every shard is delivered in order.
    """
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        table = OutboxEvent._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(_PG_HEADS.format(table=table), {"peer": peer, "now": now, "shards": shards})
            heads = [str(row[0]) for row in cursor.fetchall()]
        if not heads:
            return []
        query = _PG_ROWS.format(table=table)
        per_shard = -(-limit // len(heads))  # a prefix of each shard, about limit rows in all
        params = {"heads": heads, "peer": peer, "limit": limit, "per_shard": per_shard}
        return list(OutboxEvent.objects.raw(query, params))
    older = OutboxEvent.objects.filter(
        target_region=OuterRef("target_region"), shard_key=OuterRef("shard_key"), id__lt=OuterRef("id")
    )
    heads = list(
        OutboxEvent.objects.filter(target_region=peer, next_attempt_at__lte=now)
        .filter(~Exists(older))
        .order_by("id")
        .select_for_update(skip_locked=True)
        .values_list("shard_key", flat=True)[:shards]
    )
    if not heads:
        return []
    return list(OutboxEvent.objects.filter(target_region=peer, shard_key__in=heads).order_by("id")[:limit])


def outbox_coalesce(rows: Sequence[OutboxEvent]) -> tuple[list[OutboxEvent], dict[int, list[int]]]:
    """Keep the newest row of each object; older rows of the same object are superseded by it.

    Events carry the object's full state (with its version), so only the
    newest one matters. Returns the rows to send, in order, and for each of
    them the ids of the rows it supersedes.
    """
    newest: dict[str, OutboxEvent] = {}
    for row in rows:
        newest[row.object_key] = row
    send: list[OutboxEvent] = []
    superseded: dict[int, list[int]] = {}
    for row in rows:
        keeper = newest[row.object_key]
        if keeper.pk == row.pk:
            send.append(row)
        else:
            superseded.setdefault(keeper.pk, []).append(row.pk)
    return send, superseded


DELIVERED = frozenset({"applied", "stale", "duplicate"})
"""Per-event results after which a row is done."""
FAILED = frozenset({"rejected", "error"})
"""Per-event results that count as an attempt (backoff, then dead letter)."""


@dataclass
class Settlement:
    delivered: int = 0
    superseded: int = 0
    failed: int = 0
    dead: int = 0
    blocked: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def outbox_settle(
    *,
    rows: Sequence[OutboxEvent],
    superseded: dict[int, list[int]],
    results: dict[str, tuple[str, str]],
    now: dt.datetime | None = None,
) -> Settlement:
    """Apply a peer's per-event answers to the claimed rows (inside the claim's transaction).

    Delivered rows (and the rows they superseded) are deleted. A failed row
    backs off (full jitter, capped) and after ``REPLICATION_MAX_ATTEMPTS``
    moves to the dead letters, which unblocks its shard. Rows the peer did not
    process (``blocked`` behind a failure of their shard, or missing from the
    answer) stay as they are.
    """
    now = now or timezone.now()
    max_attempts = int(settings.REPLICATION_MAX_ATTEMPTS)
    done: list[int] = []
    dead: list[OutboxEvent] = []
    report = Settlement()
    for row in rows:
        status, detail = results.get(str(row.event_id), ("missing", "no result for this event"))
        report.outcomes[status] = report.outcomes.get(status, 0) + 1
        if status in DELIVERED:
            done += [row.pk, *superseded.get(row.pk, [])]
            report.delivered += 1
            report.superseded += len(superseded.get(row.pk, []))
        elif status in FAILED:
            row.attempts += 1
            row.last_error = f"{status}: {detail}"[:300]
            if row.attempts >= max_attempts:
                dead.append(row)
                done += [row.pk, *superseded.get(row.pk, [])]
                report.superseded += len(superseded.get(row.pk, []))
            else:
                delay = backoff_delay(
                    attempt=row.attempts,
                    base=float(settings.REPLICATION_BACKOFF_BASE),
                    cap=float(settings.REPLICATION_BACKOFF_CAP),
                )
                row.next_attempt_at = now + dt.timedelta(seconds=delay)
                row.save(update_fields=["attempts", "last_error", "next_attempt_at"])
                report.failed += 1
        else:
            report.blocked += 1
    if dead:
        DeadLetter.objects.bulk_create(_dead_letter(row, now) for row in dead)
        report.dead = len(dead)
        report.outcomes["dead"] = len(dead)
        for row in dead:
            logger.warning(
                "Replication event %s (%s) to %s dead-lettered after %d attempts: %s",
                row.event_id,
                row.event_type,
                row.target_region,
                row.attempts,
                row.last_error,
            )
    if report.superseded:
        report.outcomes["superseded"] = report.superseded
    if done:
        OutboxEvent.objects.filter(pk__in=done).delete()
    return report


def _dead_letter(row: OutboxEvent, now: dt.datetime) -> DeadLetter:
    return DeadLetter(
        event_id=row.event_id,
        event_type=row.event_type,
        shard_key=row.shard_key,
        object_key=row.object_key,
        target_region=row.target_region,
        payload=row.payload,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        dead_at=now,
    )


@transaction.atomic
def dead_letter_replay(*, ids: Iterable[int]) -> int:
    """Put dead letters back at the end of their shard's queue (same event id, attempts reset)."""
    letters = list(DeadLetter.objects.select_for_update().filter(pk__in=list(ids)).order_by("dead_at", "pk"))
    if not letters:
        return 0
    now = timezone.now()
    OutboxEvent.objects.bulk_create(
        OutboxEvent(
            event_id=letter.event_id,
            event_type=letter.event_type,
            shard_key=letter.shard_key,
            object_key=letter.object_key,
            target_region=letter.target_region,
            payload=letter.payload,
            next_attempt_at=now,
            created_at=letter.created_at,
        )
        for letter in letters
    )
    DeadLetter.objects.filter(pk__in=[letter.pk for letter in letters]).delete()
    peers = tuple(sorted({letter.target_region for letter in letters}))
    from regions.replication.drain import drain_request

    transaction.on_commit(functools.partial(drain_request, peers=peers), robust=True)
    logger.info("Replayed %d dead letters to %s", len(letters), ", ".join(peers))
    return len(letters)


@transaction.atomic
def dead_letter_discard(*, ids: Iterable[int]) -> int:
    """Drop dead letters for good (the operator decided the peer must never get them)."""
    count, _ = DeadLetter.objects.filter(pk__in=list(ids)).delete()
    logger.info("Discarded %d dead letters", count)
    return count


def outbox_due_peers(*, now: dt.datetime | None = None) -> list[str]:
    """Peers with at least one row due now."""
    now = now or timezone.now()
    return sorted(
        OutboxEvent.objects.filter(next_attempt_at__lte=now)
        .values_list("target_region", flat=True)
        .distinct()
    )


def outbox_next_due(*, peer: str) -> dt.datetime | None:
    """When the earliest shard head of ``peer`` becomes due (``None`` when the outbox is empty)."""
    older = OutboxEvent.objects.filter(
        target_region=OuterRef("target_region"), shard_key=OuterRef("shard_key"), id__lt=OuterRef("id")
    )
    value: dt.datetime | None = (
        OutboxEvent.objects.filter(target_region=peer)
        .filter(~Exists(older))
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return value


@dataclass(frozen=True)
class PeerBacklog:
    peer: str
    events: int
    oldest_age: float
    dead_letters: int


def replication_backlog(*, now: dt.datetime | None = None) -> list[PeerBacklog]:
    """Backlog, oldest unsent age and dead letters per peer (metrics, admin)."""
    now = now or timezone.now()
    stats = {
        row["target_region"]: row
        for row in OutboxEvent.objects.values("target_region").annotate(
            events=models.Count("id"), oldest=models.Min("created_at")
        )
    }
    dead = dict(
        DeadLetter.objects.values("target_region")
        .annotate(n=models.Count("id"))
        .values_list("target_region", "n")
    )
    peers = sorted(set(replication_peers()) | set(stats) | set(dead))
    out = []
    for peer in peers:
        row = stats.get(peer)
        oldest = (now - row["oldest"]).total_seconds() if row else 0.0
        out.append(
            PeerBacklog(
                peer=peer,
                events=int(row["events"]) if row else 0,
                oldest_age=max(oldest, 0.0),
                dead_letters=int(dead.get(peer, 0)),
            )
        )
    return out
