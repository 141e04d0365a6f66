"""System checks for the API's configuration (``saas.E1xx``), run at every boot."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

from saas.models import ApiToken
from saas.ratelimit import parse_tier

TAG = "saas"
MIN_RETENTION_HOURS = 24


@checks.register(TAG)
def check_api_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """saas.E101-E105: rate limit tiers, trusted proxies and idempotency retention are valid."""
    errors: list[checks.CheckMessage] = []
    specs: dict[str, str] = dict(settings.RATE_LIMIT_TIERS)
    for name, spec in specs.items():
        try:
            parse_tier(name, str(spec), fail_open=False)
        except ValueError as exc:
            errors.append(
                checks.Error(str(exc), hint="Use <requests>/<seconds>, e.g. 600/60.", id="saas.E101")
            )
    needed = {"anonymous", settings.RATE_LIMIT_SESSION_TIER, *ApiToken.Tier.values}
    for name in sorted(needed - set(specs)):
        errors.append(checks.Error(f"RATE_LIMIT_TIERS has no tier {name!r}.", id="saas.E102"))
    for name in settings.RATE_LIMIT_FAIL_OPEN_TIERS:
        if name not in specs:
            errors.append(
                checks.Error(f"RATE_LIMIT_FAIL_OPEN_TIERS names unknown tier {name!r}.", id="saas.E102")
            )
    for cidr in settings.RATE_LIMIT_TRUSTED_PROXIES:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            errors.append(
                checks.Error(f"RATE_LIMIT_TRUSTED_PROXIES: {cidr!r} is not an IP network.", id="saas.E103")
            )
    if settings.IDEMPOTENCY_RETENTION_HOURS < MIN_RETENTION_HOURS:
        errors.append(
            checks.Error(
                f"IDEMPOTENCY_RETENTION_HOURS={settings.IDEMPOTENCY_RETENTION_HOURS} is below "
                f"{MIN_RETENTION_HOURS}: clients may retry for a day.",
                id="saas.E104",
            )
        )
    if settings.IDEMPOTENCY_LEASE_SECONDS < 1:
        errors.append(checks.Error("IDEMPOTENCY_LEASE_SECONDS must be positive.", id="saas.E105"))
    for name in ("ADMIN_LOGIN_RATE_PER_CLIENT", "ADMIN_LOGIN_RATE_PER_ACCOUNT"):
        try:
            parse_tier(name, getattr(settings, name), fail_open=False)
        except ValueError as exc:
            errors.append(checks.Error(str(exc), id="saas.E101"))
    return errors
