"""Read-only access to the registry and this process's region."""

from __future__ import annotations

from django.conf import settings

from regions.registry import Region, Registry, Zone, cached_registry


def get_registry() -> Registry:
    """The registry named by ``settings.REGION_REGISTRY``, loaded once per process."""
    return cached_registry(str(settings.REGION_REGISTRY))


def current_region() -> Region:
    """This process's region (``settings.REGION``)."""
    return get_registry().region(settings.REGION)


def current_zone() -> Zone:
    return get_registry().zone_of(settings.REGION)


def allowed_regions(*, zone: str) -> tuple[Region, ...]:
    """Zone policy: a zone's allowed regions are the regions in it."""
    return get_registry().regions_in_zone(zone)
