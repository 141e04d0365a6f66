"""Admin for replication: the outbox (read-only) and the dead letters (inspect, replay, discard)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from regions.admin_base import ReadOnlyAdmin
from regions.replication.models import DeadLetter, InboxEvent, OutboxEvent
from regions.replication.outbox import dead_letter_discard, dead_letter_replay


class _ReadOnly(ReadOnlyAdmin):
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return admin.ModelAdmin.has_delete_permission(self, request, obj)


def _payload(obj: OutboxEvent | DeadLetter) -> str:
    return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))


@admin.register(OutboxEvent)
class OutboxEventAdmin(_ReadOnly):
    list_display = (
        "id",
        "event_type",
        "object_key",
        "target_region",
        "attempts",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("target_region", "event_type")
    search_fields = ("event_id", "object_key", "shard_key")
    readonly_fields = ("payload_pretty",)
    exclude = ("payload",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # undelivered events leave only by delivery or dead-lettering

    @admin.display(description="payload")
    def payload_pretty(self, obj: OutboxEvent) -> str:
        return _payload(obj)


@admin.register(DeadLetter)
class DeadLetterAdmin(_ReadOnly):
    list_display = ("id", "event_type", "object_key", "target_region", "attempts", "last_error", "dead_at")
    list_filter = ("target_region", "event_type")
    search_fields = ("event_id", "object_key", "last_error")
    readonly_fields = ("payload_pretty",)
    exclude = ("payload",)
    actions = ("replay", "discard")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # discard (logged) instead of a silent delete

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and admin.ModelAdmin.has_change_permission(self, request, obj)

    @admin.display(description="payload")
    def payload_pretty(self, obj: DeadLetter) -> str:
        return _payload(obj)

    @admin.action(description="Replay the selected dead letters", permissions=["change"])
    def replay(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        count = dead_letter_replay(ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"Replayed {count} dead letters.", messages.SUCCESS)

    @admin.action(description="Discard the selected dead letters", permissions=["change"])
    def discard(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        count = dead_letter_discard(ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"Discarded {count} dead letters.", messages.WARNING)


@admin.register(InboxEvent)
class InboxEventAdmin(ReadOnlyAdmin):
    """Events received from peers (idempotency record of the apply endpoint)."""

    list_display = ("event_id", "origin_region", "event_type", "outcome", "deliveries", "received_at")
    list_filter = ("origin_region", "event_type", "outcome")
    search_fields = ("event_id",)
    date_hierarchy = "received_at"
