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
