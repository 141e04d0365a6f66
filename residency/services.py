"""Writes to residency data. The service layer is the only writer of the directory."""

from __future__ import annotations

import contextlib
import datetime
import logging
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from regions.replication.events import DIRECTORY_ENTRY
from regions.replication.outbox import outbox_event_record
from residency.cache import CachedEntry, directory_cache_publish, directory_cache_publish_many
from residency.models import DirectoryEntry, ViolationEvent

logger = logging.getLogger(__name__)

STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def safe_method(method: str | None) -> str:
    """The HTTP method if it is a standard one, else ``OTHER`` (the method is client input)."""
    return method if method in STANDARD_METHODS else "OTHER"


def _publish_on_commit(entry: DirectoryEntry) -> None:
    """Refresh the directory cache once the write is visible to other connections."""
    kind, key = str(entry.kind), entry.key
    cached = CachedEntry(entry.home_region, entry.version, entry.origin_region)
    transaction.on_commit(lambda: directory_cache_publish(kind=kind, key=key, entry=cached), robust=True)


@transaction.atomic
def directory_entry_upsert(*, kind: DirectoryEntry.Kind, key: str, home_region: str) -> DirectoryEntry:
    """Create or move a directory entry, bumping its version.

    Runs inside the caller's transaction, so the entry commits (or not) with
    the organization or user it describes.
    """
    entry, created = DirectoryEntry.objects.select_for_update().get_or_create(
        kind=kind,
        key=key,
        defaults={
            "home_region": home_region,
            "version": 1,
            "origin_region": settings.REGION,
        },
    )
    if not created:
        DirectoryEntry.objects.filter(pk=entry.pk).update(
            home_region=home_region,
            version=F("version") + 1,
            origin_region=settings.REGION,
            updated_at=timezone.now(),
        )
        entry.refresh_from_db()
    _publish_on_commit(entry)
    # Replication: the event commits with the entry, or not at all.
    outbox_event_record(event=DIRECTORY_ENTRY, instance=entry)
    return entry


@transaction.atomic
def directory_entry_apply_remote(
    *, kind: DirectoryEntry.Kind, key: str, home_region: str, version: int, origin_region: str
) -> bool:
    """Apply an entry replicated from ``origin_region``. Returns whether it changed anything.

    Older versions are ignored. Equal versions written by two regions at once
    are settled the same way everywhere: the lexicographically smaller origin
    region wins, so every region converges on one value.
    """
    entry = DirectoryEntry.objects.select_for_update().filter(kind=kind, key=key).first()
    if entry is None:
        entry = DirectoryEntry.objects.create(
            kind=kind, key=key, home_region=home_region, version=version, origin_region=origin_region
        )
        _publish_on_commit(entry)
        return True
    newer = version > entry.version or (version == entry.version and origin_region < entry.origin_region)
    if not newer:
        return False
    entry.home_region = home_region
    entry.version = version
    entry.origin_region = origin_region
    entry.updated_at = timezone.now()
    entry.save(update_fields=["home_region", "version", "origin_region", "updated_at"])
    _publish_on_commit(entry)
    return True


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """A directory entry as replicated from another region."""

    kind: str
    key: str
    home_region: str
    version: int
    origin_region: str

    def wins_over(self, version: int, origin_region: str) -> bool:
        """The version rule of ``directory_entry_apply_remote``: newer, or equal from a smaller origin."""
        return self.version > version or (self.version == version and self.origin_region < origin_region)


@transaction.atomic
def directory_entries_apply_remote(*, entries: list[RemoteEntry]) -> set[RemoteEntry]:
    """Apply many replicated entries at once, with the same rule; returns the entries that changed a row.

    One ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <newer>`` on PostgreSQL
    (replication applies a whole batch in one statement); entry by entry
    elsewhere.
    """
    best: dict[tuple[str, str], RemoteEntry] = {}
    for entry in entries:
        current = best.get((entry.kind, entry.key))
        if current is None or entry.wins_over(current.version, current.origin_region):
            best[(entry.kind, entry.key)] = entry
    if connection.vendor != "postgresql":
        return {
            e
            for e in best.values()
            if directory_entry_apply_remote(
                kind=DirectoryEntry.Kind(e.kind),
                key=e.key,
                home_region=e.home_region,
                version=e.version,
                origin_region=e.origin_region,
            )
        }
    if not best:
        return set()
    table = DirectoryEntry._meta.db_table
    now = timezone.now()
    params: list[str | int | datetime.datetime] = []
    for e in best.values():
        params += [e.kind, e.key, e.home_region, e.version, e.origin_region, now]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(best))
    sql = (
        f"INSERT INTO {table} AS d (kind, key, home_region, version, origin_region, updated_at) "  # noqa: S608
        f"VALUES {values} ON CONFLICT (kind, key) DO UPDATE SET home_region = EXCLUDED.home_region, "
        "version = EXCLUDED.version, origin_region = EXCLUDED.origin_region, "
        "updated_at = EXCLUDED.updated_at "
        "WHERE EXCLUDED.version > d.version "
        "OR (EXCLUDED.version = d.version AND EXCLUDED.origin_region < d.origin_region) "
        "RETURNING kind, key"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        changed = {best[(str(kind), str(key))] for kind, key in cursor.fetchall()}
    published = [(e.kind, e.key, CachedEntry(e.home_region, e.version, e.origin_region)) for e in changed]
    transaction.on_commit(lambda: directory_cache_publish_many(entries=published), robust=True)
    return changed


@dataclass(frozen=True, slots=True)
class ViolationRecord:
    """What is kept about a wrong-region request: no personal data (see residency/README.md)."""

    region: str
    home_region: str
    target_region: str
    subject_kind: str
    subject_hash: str
    method: str
    path_template: str
    decision: str
    status: int

    def log_fields(self) -> dict[str, str | int]:
        return asdict(self)


def violation_event_record(*, record: ViolationRecord) -> ViolationEvent | None:
    """Store a violation event. Never raises: a lost event is logged, the response already left."""
    # Inside a caller's transaction a savepoint keeps a failure from breaking it;
    # otherwise one autocommit INSERT (no BEGIN/COMMIT round trips).
    in_transaction = transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic() if in_transaction else contextlib.nullcontext():
            return ViolationEvent.objects.create(
                region=record.region,
                home_region=record.home_region,
                target_region=record.target_region,
                subject_kind=record.subject_kind,
                subject_hash=record.subject_hash,
                method=safe_method(record.method),
                path_template=record.path_template[:200],
                decision=record.decision,
                status=record.status,
            )
    except DatabaseError as exc:
        logger.warning(
            "residency: violation event not stored (%s)",
            type(exc).__name__,
            extra={"residency": record.log_fields()},
        )
        return None


def violation_events_prune(*, older_than: datetime.timedelta) -> int:
    """Delete violation events older than ``older_than``; returns how many."""
    deleted, _ = ViolationEvent.objects.filter(occurred_at__lt=timezone.now() - older_than).delete()
    return deleted
