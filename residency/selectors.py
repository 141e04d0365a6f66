"""Reads of residency data."""

from __future__ import annotations

from residency.cache import ABSENT, CachedEntry, cached_lookup
from residency.models import DirectoryEntry


def directory_home_region(*, kind: DirectoryEntry.Kind, key: str) -> str | None:
    """The home region of a subject from the local directory copy (uncached), or ``None``."""
    return DirectoryEntry.objects.filter(kind=kind, key=key).values_list("home_region", flat=True).first()


def _directory_entry_load(*, kind: str, key: str) -> CachedEntry:
    row = (
        DirectoryEntry.objects.filter(kind=kind, key=key)
        .values_list("home_region", "version", "origin_region")
        .first()
    )
    return ABSENT if row is None else CachedEntry(*row)


def directory_lookup(*, kind: DirectoryEntry.Kind | str, key: str) -> str | None:
    """The home region of a subject, through the directory cache (the request hot path).

    Reads only this region's cache and database: never a peer region.
    """
    return cached_lookup(kind=str(kind), key=key, load=lambda: _directory_entry_load(kind=kind, key=key))
