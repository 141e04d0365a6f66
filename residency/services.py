"""Writes to residency data. The service layer is the only writer of the directory."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from residency.models import DirectoryEntry


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
        DirectoryEntry.objects.create(
            kind=kind, key=key, home_region=home_region, version=version, origin_region=origin_region
        )
        return True
    newer = version > entry.version or (version == entry.version and origin_region < entry.origin_region)
    if not newer:
        return False
    entry.home_region = home_region
    entry.version = version
    entry.origin_region = origin_region
    entry.updated_at = timezone.now()
    entry.save(update_fields=["home_region", "version", "origin_region", "updated_at"])
    return True
