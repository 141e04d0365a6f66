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

_DIRECTORY_FIELDS = ("kind", "key", "home_region", "version", "origin_region")


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
    index: int
    event_id: uuid.UUID
    type: str
    shard: str
    created_at: float | None
    payload: Mapping[str, Any]


def directory_entry_check(payload: Mapping[str, Any], *, origin_region: str) -> None:
    """A ``directory.entry`` event makes sense here: sent by its origin, homed in a known region."""
    if payload["origin_region"] != origin_region:
        raise PayloadRejected("origin_mismatch", "origin_region differs from the sending region.")
    if payload["home_region"] not in get_registry().regions:
        raise PayloadRejected(
            "unknown_region", f"home_region {payload['home_region']!r} is not in the registry."
        )


def directory_entries_apply(payloads: Sequence[Mapping[str, Any]], *, origin_region: str) -> list[bool]:
    """Apply ``directory.entry`` events through the directory's remote writer; which ones changed a row."""
    from residency.services import RemoteEntry, directory_entries_apply_remote

    entries = [RemoteEntry(**{name: payload[name] for name in _DIRECTORY_FIELDS}) for payload in payloads]
    changed = directory_entries_apply_remote(entries=entries)
    return [entry in changed for entry in entries]


def _check(index: int, raw: Any, origin: str) -> _Checked:
    if not isinstance(raw, Mapping):
        raise PayloadRejected("event_invalid", "An event must be an object.")
    try:
        event_id = uuid.UUID(str(raw.get("id")))
    except ValueError:
        raise PayloadRejected("event_invalid", "The event id is not a UUID.") from None
    event_type = EVENT_TYPES.get(str(raw.get("type")))
    if event_type is None:
        raise PayloadRejected("unknown_event_type", f"Unknown event type {str(raw.get('type'))[:64]!r}.")
    payload = raw.get("payload")
    if not isinstance(payload, Mapping):
        raise PayloadRejected("payload_invalid", "The payload is not an object.")
    validate_payload(event_type, payload)
    event_type.check_function()(payload, origin_region=origin)
    created = raw.get("created_at")
    return _Checked(
        index=index,
        event_id=event_id,
        type=event_type.name,
        shard=str(raw.get("shard", ""))[:128],
        created_at=float(created) if isinstance(created, (int, float)) else None,
        payload=payload,
    )


def _inbox_claim(*, origin: str, events: Sequence[_Checked]) -> dict[uuid.UUID, bool]:
    """Record the events in the inbox in one statement; ``True`` for the ones seen for the first time.

    A redelivered event only bumps ``deliveries``. A concurrent delivery of the
    same event waits on the primary key until the first one commits. Rows go in
    event id order, so two concurrent batches never deadlock on each other.
    """
    table = InboxEvent._meta.db_table
    rows = sorted({e.event_id: e for e in events}.values(), key=lambda e: e.event_id)
    values = ", ".join(["(%s, %s, %s, %s, 1, %s)"] * len(rows))
    params: list[Any] = []
    # Adapted by the fields, as the ORM would (UUIDs are hex text on SQLite, the embedded mode).
    prep_id = InboxEvent._meta.get_field("event_id").get_db_prep_value
    received = InboxEvent._meta.get_field("received_at").get_db_prep_value(timezone.now(), connection)
    for event in rows:
        params += [prep_id(event.event_id, connection), origin, event.type, "applied", received]
    sql = (
        f"INSERT INTO {table} (event_id, origin_region, event_type, outcome, deliveries, received_at) "  # noqa: S608
        f"VALUES {values} ON CONFLICT (event_id) DO UPDATE SET deliveries = {table}.deliveries + 1 "
        "RETURNING event_id, deliveries"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    return {uuid.UUID(str(event_id)): deliveries == 1 for event_id, deliveries in fetched}


def _apply_together(event_type: str, events: Sequence[_Checked], origin: str) -> list[bool]:
    function = EVENT_TYPES[event_type].apply_function()
    with transaction.atomic():  # a savepoint: a failure leaves the batch's transaction usable
        return function([e.payload for e in events], origin_region=origin)


def _apply(events: Sequence[_Checked], origin: str) -> dict[int, Outcome]:
    """Apply fresh events: each type's events in one call; on failure, one by one to find the culprit."""
    outcomes: dict[int, Outcome] = {}
    by_type: dict[str, list[_Checked]] = {}
    for event in events:
        by_type.setdefault(event.type, []).append(event)
    for event_type, group in by_type.items():
        try:
            changed = _apply_together(event_type, group, origin)
        except Exception:
            logger.warning(
                "Applying %d %s events together failed; applying them one by one", len(group), event_type
            )
        else:
            for event, did in zip(group, changed, strict=True):
                outcomes[event.index] = Outcome(str(event.event_id), "applied" if did else "stale")
            continue
        failed: set[str] = set()
        for event in group:
            if event.shard in failed:
                outcomes[event.index] = Outcome(str(event.event_id), "blocked")
                continue
            try:
                (did,) = _apply_together(event_type, [event], origin)
            except Exception as exc:
                logger.exception("Applying replicated event %s (%s) failed", event.event_id, event_type)
                outcomes[event.index] = Outcome(
                    str(event.event_id), "error", "apply_failed", type(exc).__name__
                )
                failed.add(event.shard)
            else:
                outcomes[event.index] = Outcome(str(event.event_id), "applied" if did else "stale")
    return outcomes


def replication_batch_apply(*, origin: str, events: Sequence[Any]) -> list[Outcome]:
    """Apply a batch from ``origin`` in order, one result per event, in one transaction.

    - An event already in the inbox is a ``duplicate`` and is not applied again.
    - An event with an older version than the local one is ``stale`` (ignored).
    - An invalid event is ``rejected``; an event whose apply raised is an
      ``error``. Later events of the same shard in the batch are then
      ``blocked`` (not applied) so each shard stays in order; other shards go on.
    """
    outcomes: dict[int, Outcome] = {}
    checked: list[_Checked] = []
    failed_shards: set[str] = set()
    for index, raw in enumerate(events):
        shard = raw.get("shard") if isinstance(raw, Mapping) else None
        if isinstance(shard, str) and shard in failed_shards:
            outcomes[index] = Outcome(str(raw.get("id", ""))[:64], "blocked")
            continue
        try:
            checked.append(_check(index, raw, origin))
        except PayloadRejected as exc:
            event_id = str(raw.get("id", "")) if isinstance(raw, Mapping) else ""
            outcomes[index] = Outcome(event_id[:64], "rejected", exc.code, str(exc))
            if isinstance(shard, str):
                failed_shards.add(shard)

    with transaction.atomic():
        first_time = _inbox_claim(origin=origin, events=checked) if checked else {}
        fresh = []
        for event in checked:
            if first_time.get(event.event_id, False):
                fresh.append(event)
            else:
                outcomes[event.index] = Outcome(str(event.event_id), "duplicate")
        applied = _apply(fresh, origin)
        outcomes.update(applied)
        by_status: dict[str, list[uuid.UUID]] = {}
        for event in fresh:
            by_status.setdefault(applied[event.index].status, []).append(event.event_id)
        undo = by_status.get("error", []) + by_status.get("blocked", [])
        if undo:  # not applied: no deduplication record, so a redelivery applies them
            InboxEvent.objects.filter(event_id__in=undo).delete()
        if by_status.get("stale"):
            InboxEvent.objects.filter(event_id__in=by_status["stale"]).update(outcome="stale")
    now = time.time()
    for event in fresh:
        if applied[event.index].status == "applied" and event.created_at is not None:
            labels(REPLICATION_APPLY_LAG, origin=origin).observe(max(now - event.created_at, 0.0))
    final = [
        outcomes.get(index) or Outcome("", "error", "internal", "no outcome") for index in range(len(events))
    ]
    for outcome in final:
        labels(REPLICATION_RECEIVED, origin=origin, outcome=outcome.status).inc()
    return final


def replication_origin_valid(origin: Any) -> bool:
    """``origin`` is a region of the registry other than this one."""
    return isinstance(origin, str) and origin in get_registry().regions and origin != settings.REGION
