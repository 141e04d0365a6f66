"""Celery tasks of replication. They run on the ``replication`` queue (``CELERY_TASK_ROUTES``)."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from regions.metrics import (
    REPLICATION_BACKLOG,
    REPLICATION_BREAKER_STATE,
    REPLICATION_DEAD_LETTERS,
    REPLICATION_OLDEST_UNSENT,
    labels,
)
from regions.replication.breaker import breaker_state
from regions.replication.drain import drain_peer, drain_request
from regions.replication.health import peer_health_poll
from regions.replication.models import InboxEvent
from regions.replication.outbox import outbox_due_peers, replication_backlog


@shared_task(name="replication.drain", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def drain(peer: str, scheduled: bool = False) -> int:
    """Deliver ``peer``'s due outbox events. Safe to run twice: rows are claimed with SKIP LOCKED."""
    return drain_peer(peer=peer, scheduled=scheduled)


@shared_task(name="replication.sweep", ignore_result=True)
def sweep() -> list[str]:
    """Beat: request a drain for every peer with due events (catches lost triggers)."""
    peers = outbox_due_peers()
    drain_request(peers=peers, force=True)
    return peers


@shared_task(name="replication.poll_peer_health", ignore_result=True)
def poll_peer_health() -> dict[str, bool]:
    """Beat: poll every peer's readiness and record it for residency failover."""
    return peer_health_poll()


@shared_task(name="replication.report_metrics", ignore_result=True)
def report_metrics() -> None:
    """Beat: backlog, oldest unsent age, dead letters and breaker state per peer."""
    for row in replication_backlog():
        labels(REPLICATION_BACKLOG, peer=row.peer).set(row.events)
        labels(REPLICATION_OLDEST_UNSENT, peer=row.peer).set(row.oldest_age)
        labels(REPLICATION_DEAD_LETTERS, peer=row.peer).set(row.dead_letters)
        labels(REPLICATION_BREAKER_STATE, peer=row.peer).set(int(breaker_state(peer=row.peer)))


@shared_task(name="replication.prune_inbox", ignore_result=True)
def prune_inbox() -> int:
    """Beat: forget deduplication records older than the retention period."""
    cutoff = timezone.now() - dt.timedelta(days=int(settings.REPLICATION_INBOX_RETENTION_DAYS))
    deleted, _ = InboxEvent.objects.filter(received_at__lt=cutoff).delete()
    return deleted
