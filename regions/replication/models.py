"""Operational tables of replication: the outbox, the dead letters and the inbox.

None of them is replicated; each region keeps its own. Payloads hold only the
allowlisted fields of their event type (``regions.replication.events``).
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import models
from django.utils import timezone

from regions.placement import DataClass
from regions.replication.events import EVENT_TYPES

PAYLOAD_ALLOWED_KEYS = frozenset(name for event in EVENT_TYPES.values() for name in event.fields)
"""Every key a payload may hold (the residency audit scans stored payloads against it)."""


class OutboxEvent(models.Model):
    """One event still to deliver to one peer region.

    An event is written once per target region, in the transaction of the
    change it describes (same ``event_id`` on each row): every peer then has
    its own order, attempts, backoff and dead letters, so one peer's outage
    never holds back another. Delivered rows are deleted.
    """

    data_class: ClassVar[DataClass] = DataClass.OPERATIONAL
    payload_field: ClassVar[str] = "payload"
    payload_allowed_keys: ClassVar[frozenset[str]] = PAYLOAD_ALLOWED_KEYS

    id = models.BigAutoField(primary_key=True)
    """Commit order within a shard (writers of one key serialize on its row lock)."""
    event_id = models.UUIDField(default=uuid.uuid4)
    """Unique per event, shared by its rows for every target; receivers deduplicate on it."""
    event_type = models.CharField(max_length=64)
    shard_key = models.CharField(max_length=128)
    """Rows of a shard are delivered in order, one drainer at a time; shards drain in parallel."""
    object_key = models.CharField(max_length=200)
    """What the event describes (``org:acme``); newer rows of one object supersede older ones."""
    target_region = models.CharField(max_length=32)
    payload = models.JSONField()
    attempts = models.PositiveIntegerField(default=0)
    """Deliveries the peer answered with a failure for this event (transport failures not counted)."""
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["event_id", "target_region"], name="regions_outbox_event_target"),
        ]
        indexes: ClassVar = [
            models.Index(fields=["target_region", "shard_key", "id"], name="regions_outbox_shard"),
            models.Index(fields=["target_region", "id"], name="regions_outbox_target"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.target_region}"


class DeadLetter(models.Model):
    """An event a peer refused ``REPLICATION_MAX_ATTEMPTS`` times, moved out of its shard.

    Operators inspect it in the admin, then replay it (back into the outbox,
    same event id) or discard it.
    """

    data_class: ClassVar[DataClass] = DataClass.OPERATIONAL
    payload_field: ClassVar[str] = "payload"
    payload_allowed_keys: ClassVar[frozenset[str]] = PAYLOAD_ALLOWED_KEYS

    event_id = models.UUIDField()
    event_type = models.CharField(max_length=64)
    shard_key = models.CharField(max_length=128)
    object_key = models.CharField(max_length=200)
    target_region = models.CharField(max_length=32, db_index=True)
    payload = models.JSONField()
    attempts = models.PositiveIntegerField()
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    """When the event was first written to the outbox."""
    dead_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["event_id", "target_region"], name="regions_deadletter_event_target"
            ),
        ]

    def __str__(self) -> str:
        return f"dead {self.event_type} {self.event_id} -> {self.target_region}"


class InboxEvent(models.Model):
    """An event this region received and applied (or found stale): the deduplication record.

    Written in the same transaction as the apply, so an event is applied at
    most once however often it is delivered. Pruned after
    ``REPLICATION_INBOX_RETENTION_DAYS``.
    """

    data_class: ClassVar[DataClass] = DataClass.OPERATIONAL

    event_id = models.UUIDField(primary_key=True)
    origin_region = models.CharField(max_length=32)
    event_type = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16)
    """``applied`` (changed local state) or ``stale`` (an older version, ignored)."""
    deliveries = models.PositiveIntegerField(default=1)
    """How often the event arrived; more than 1 means redeliveries were deduplicated."""
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} from {self.origin_region}"
