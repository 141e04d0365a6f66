"""Receiving replicated events: deduplicate by event id, apply in order, answer per event."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from regions.metrics import REPLICATION_APPLY_LAG, REPLICATION_RECEIVED, labels
from regions.replication.events import EVENT_TYPES, PayloadRejected, validate_payload
from regions.replication.models import InboxEvent
from regions.selectors import get_registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    event_id: str
    status: str
    """``applied``, ``stale``, ``duplicate``, ``rejected``, ``error`` or ``blocked``."""
    code: str = ""
    detail: str = ""

    def as_json(self) -> dict[str, str]:
        body = {"id": self.event_id, "status": self.status}
        if self.code:
            body["code"] = self.code
        if self.detail:
            body["detail"] = self.detail
        return body


@dataclass(frozen=True, slots=True)
class _Checked:
    event_id: uuid.UUID
    type: str
    shard: str
    created_at: float | None
    payload: Mapping[str, Any]


def apply_directory_entry(payload: Mapping[str, Any], *, origin_region: str) -> bool:
    """Apply a ``directory.entry`` event through the directory's remote writer."""
    from residency.models import DirectoryEntry
    from residency.services import directory_entry_apply_remote

    if payload["origin_region"] != origin_region:
        raise PayloadRejected("origin_mismatch", "origin_region differs from the sending region.")
    registry = get_registry()
    if payload["home_region"] not in registry.regions:
        raise PayloadRejected(
            "unknown_region", f"home_region {payload['home_region']!r} is not in the registry."
        )
    return directory_entry_apply_remote(
        kind=DirectoryEntry.Kind(payload["kind"]),
        key=payload["key"],
        home_region=payload["home_region"],
        version=payload["version"],
        origin_region=payload["origin_region"],
    )


def _check(raw: Any) -> _Checked:
    if not isinstance(raw, Mapping):
        raise PayloadRejected("event_invalid", "An event must be an object.")
    try:
        event_id = uuid.UUID(str(raw.get("id")))
    except ValueError:
        raise PayloadRejected("event_invalid", "The event id is not a UUID.") from None
    event_type = EVENT_TYPES.get(str(raw.get("type")))
    if event_type is None:
        raise PayloadRejected("unknown_event_type", f"Unknown event type {str(raw.get('type'))[:64]!r}.")
    validate_payload(event_type, raw.get("payload"))  # type: ignore[arg-type]
    created = raw.get("created_at")
    return _Checked(
        event_id=event_id,
        type=event_type.name,
        shard=str(raw.get("shard", ""))[:128],
        created_at=float(created) if isinstance(created, (int, float)) else None,
        payload=raw["payload"],
    )


def _inbox_claim(*, origin: str, events: Sequence[_Checked]) -> dict[uuid.UUID, bool]:
    """Record the events in the inbox in one statement; ``True`` for the ones seen for the first time.

    A redelivered event only bumps ``deliveries``. A concurrent delivery of the
    same event waits on the primary key until the first one commits.
    """
    table = InboxEvent._meta.db_table
    rows = sorted({e.event_id: e for e in events}.values(), key=lambda e: e.event_id)
    values = ", ".join(["(%s, %s, %s, %s, 1, %s)"] * len(rows))
    params: list[Any] = []
    received = timezone.now()
    for event in rows:
        params += [event.event_id, origin, event.type, "applied", received]
    sql = (
        f"INSERT INTO {table} (event_id, origin_region, event_type, outcome, deliveries, received_at) "  # noqa: S608
        f"VALUES {values} ON CONFLICT (event_id) DO UPDATE SET deliveries = {table}.deliveries + 1 "
        "RETURNING event_id, deliveries"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    return {uuid.UUID(str(event_id)): deliveries == 1 for event_id, deliveries in fetched}


def replication_batch_apply(*, origin: str, events: Sequence[Any]) -> list[Outcome]:
    """Apply a batch from ``origin`` in order, one result per event, in one transaction.

    - An event already in the inbox is a ``duplicate`` and is not applied again.
    - An event with an older version than the local one is ``stale`` (ignored).
    - An invalid event is ``rejected``; an event whose apply raised is an
      ``error``. Later events of the same shard in the batch are then
      ``blocked`` (not applied) so each shard stays in order; other shards go on.
    """
    outcomes: list[Outcome | None] = [None] * len(events)
    checked: list[tuple[int, _Checked]] = []
    failed_shards: set[str] = set()
    for index, raw in enumerate(events):
        try:
            event = _check(raw)
        except PayloadRejected as exc:
            event_id = str(raw.get("id", "")) if isinstance(raw, Mapping) else ""
            outcomes[index] = Outcome(event_id[:64], "rejected", exc.code, str(exc))
            shard = raw.get("shard") if isinstance(raw, Mapping) else None
            if isinstance(shard, str):
                failed_shards.add(shard)
            continue
        if event.shard in failed_shards:
            outcomes[index] = Outcome(str(event.event_id), "blocked")
            continue
        checked.append((index, event))

    with transaction.atomic():
        first_time = _inbox_claim(origin=origin, events=[e for _, e in checked]) if checked else {}
        undo: list[uuid.UUID] = []
        stale: list[uuid.UUID] = []
        for index, event in checked:
            event_id = str(event.event_id)
            if not first_time.get(event.event_id, False):
                outcomes[index] = Outcome(event_id, "duplicate")
                continue
            if event.shard in failed_shards:
                outcomes[index] = Outcome(event_id, "blocked")
                undo.append(event.event_id)
                continue
            try:
                # The writer runs in its own savepoint: a failure rolls back this event only.
                changed = EVENT_TYPES[event.type].apply_function()(event.payload, origin_region=origin)
            except PayloadRejected as exc:
                outcomes[index] = Outcome(event_id, "rejected", exc.code, str(exc))
            except Exception as exc:
                logger.exception("Applying replicated event %s (%s) failed", event_id, event.type)
                outcomes[index] = Outcome(event_id, "error", "apply_failed", type(exc).__name__)
            else:
                outcomes[index] = Outcome(event_id, "applied" if changed else "stale")
                if not changed:
                    stale.append(event.event_id)
                elif event.created_at is not None:
                    lag = max(time.time() - event.created_at, 0.0)
                    labels(REPLICATION_APPLY_LAG, origin=origin).observe(lag)
                continue
            failed_shards.add(event.shard)
            undo.append(event.event_id)
        if undo:
            InboxEvent.objects.filter(event_id__in=undo).delete()
        if stale:
            InboxEvent.objects.filter(event_id__in=stale).update(outcome="stale")
    final = [outcome or Outcome("", "error", "internal", "no outcome") for outcome in outcomes]
    for outcome in final:
        labels(REPLICATION_RECEIVED, origin=origin, outcome=outcome.status).inc()
    return final


def replication_origin_valid(origin: Any) -> bool:
    """``origin`` is a region of the registry other than this one."""
    return isinstance(origin, str) and origin in get_registry().regions and origin != settings.REGION
