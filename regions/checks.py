"""System checks for region configuration. They run at every boot (see ``regions.boot``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

from regions.registry import RegistryError, cached_registry

TAG = "regions"


@checks.register(TAG)
def check_registry(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """regions.E001-E011: the registry file is readable and valid as a whole."""
    path = str(settings.REGION_REGISTRY)
    try:
        cached_registry(path)
    except RegistryError as exc:
        return [
            checks.Error(f"Region registry {path}: {problem.message}", id=problem.check_id)
            for problem in exc.problems
        ]
    return []


@checks.register(TAG)
def check_current_region(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """regions.E020/E021: ``REGION`` is set and names a region of the registry."""
    try:
        registry = cached_registry(str(settings.REGION_REGISTRY))
    except RegistryError:
        return []  # reported by check_registry
    valid = ", ".join(registry.codes)
    region = getattr(settings, "REGION", "")
    if not region:
        return [
            checks.Error(
                f"REGION is not set. Valid region codes: {valid}.",
                hint="Set the REGION environment variable to this deployment's region code.",
                id="regions.E020",
            )
        ]
    if region not in registry.regions:
        return [
            checks.Error(
                f"REGION={region!r} is not in the registry. Valid region codes: {valid}.",
                hint=f"Fix REGION or add the region to {registry.path}.",
                id="regions.E021",
            )
        ]
    return []


@checks.register(TAG, deploy=True)
def check_https_urls(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """regions.W001: deployed regions use https origins."""
    try:
        registry = cached_registry(str(settings.REGION_REGISTRY))
    except RegistryError:
        return []
    return [
        checks.Warning(
            f"Region {region.code!r} {name} {url!r} is not https.",
            id="regions.W001",
        )
        for region in registry.regions.values()
        for name, url in (("public_url", region.public_url), ("internal_url", region.internal_url))
        if not url.startswith("https://")
    ]
