"""System checks for the health, metrics and log settings (regions.E07x), run at every boot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

from regions.observability.exposition import parse_networks

MIN_TOKEN_LENGTH = 32


@checks.register("regions")
def check_observability_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    networks = tuple(settings.METRICS_ALLOWED_NETWORKS)
    try:
        parse_networks(networks)
    except ValueError as exc:
        messages.append(
            checks.Error(
                f"METRICS_ALLOWED_NETWORKS: {exc}.", hint="Use CIDRs such as 10.0.0.0/8.", id="regions.E070"
            )
        )
    token = settings.METRICS_TOKEN
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        messages.append(
            checks.Error(f"METRICS_TOKEN must be at least {MIN_TOKEN_LENGTH} characters.", id="regions.E071")
        )
    if not networks and not token:
        messages.append(
            checks.Warning(
                "Neither METRICS_ALLOWED_NETWORKS nor METRICS_TOKEN is set: "
                "/internal/metrics refuses every scrape.",
                id="regions.W070",
            )
        )
    if settings.LOG_FORMAT not in {"json", "plain"}:
        messages.append(
            checks.Error(f"LOG_FORMAT={settings.LOG_FORMAT!r}: use json or plain.", id="regions.E072")
        )
    for name in ("HEALTH_CHECK_TIMEOUT", "HEALTH_BROKER_SLOW_SECONDS", "ROUTING_MAX_REPLICA_LAG_SECONDS"):
        if float(getattr(settings, name)) <= 0:
            messages.append(checks.Error(f"{name} must be positive.", id="regions.E073"))
    if int(settings.ROUTING_MAX_REPLICA_LAG_BYTES) <= 0:
        messages.append(checks.Error("ROUTING_MAX_REPLICA_LAG_BYTES must be positive.", id="regions.E073"))
    return messages
