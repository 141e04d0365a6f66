"""System checks for replication (run at every boot, see ``regions.boot``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

from regions.placement import DataClass, placement_of
from regions.replication.events import EVENT_TYPES

TAG = "regions"


@checks.register(TAG)
def check_replication(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """regions.E030-E033: signing keys, countdowns below the visibility timeout, PII-free event sources."""
    errors: list[checks.CheckMessage] = []
    keys = list(getattr(settings, "REPLICATION_SIGNING_KEYS", []))
    if not keys:
        errors.append(
            checks.Error(
                "REPLICATION_SIGNING_KEYS is empty: peers' batches cannot be signed or verified.",
                hint="Set REPLICATION_SIGNING_KEYS to a comma-separated list (the first key signs).",
                id="regions.E030",
            )
        )
    visibility = float(
        (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}).get("visibility_timeout", 3600)
    )
    longest = max(float(settings.REPLICATION_BACKOFF_CAP), float(settings.REPLICATION_BREAKER_OPEN_CAP))
    longest += float(settings.REPLICATION_DRAIN_BUDGET)
    if longest >= visibility:
        errors.append(
            checks.Error(
                f"The broker visibility timeout ({visibility:.0f} s) is not longer than the longest "
                f"replication countdown plus a drain ({longest:.0f} s): "
                "Redis would redeliver waiting tasks to a second worker.",
                hint="Raise CELERY_VISIBILITY_TIMEOUT or lower REPLICATION_BACKOFF_CAP / "
                "REPLICATION_BREAKER_OPEN_CAP / REPLICATION_DRAIN_BUDGET.",
                id="regions.E031",
            )
        )
    for event in EVENT_TYPES.values():
        placement = placement_of(event.model())
        if placement is None or placement.data_class is not DataClass.DIRECTORY:
            errors.append(
                checks.Error(
                    f"Replicated event type {event.name} is built from {event.source_model}, "
                    "which is not a directory-class model.",
                    hint="Only directory-class models (no personal data in clear) may be replicated.",
                    id="regions.E032",
                )
            )
    return errors


@checks.register(TAG, deploy=True)
def check_replication_keys_strong(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """regions.E033 (deploy): every signing key is long and random, not the development default."""
    weak = [
        index
        for index, key in enumerate(getattr(settings, "REPLICATION_SIGNING_KEYS", []))
        if len(key) < 32 or len(set(key)) < 8 or key.startswith("dev-")
    ]
    if not weak:
        return []
    return [
        checks.Error(
            f"REPLICATION_SIGNING_KEYS has weak keys at positions {weak}.",
            hint="Use at least 32 random characters per key (e.g. `openssl rand -hex 32`).",
            id="regions.E033",
        )
    ]
