"""Reads of residency data."""

from __future__ import annotations

from residency.models import DirectoryEntry


def directory_home_region(*, kind: DirectoryEntry.Kind, key: str) -> str | None:
    """The home region of a subject from the local directory copy, or ``None``."""
    return DirectoryEntry.objects.filter(kind=kind, key=key).values_list("home_region", flat=True).first()
