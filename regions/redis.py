"""The region's Redis, for what the cache API cannot express (Lua scripts, atomic state).

``region_redis()`` returns a client for ``settings.REDIS_URL``, or ``None`` in
the embedded mode without Redis: callers decide their own fallback.
"""

from __future__ import annotations

import functools
from typing import Any

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


@functools.lru_cache(maxsize=8)
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )


def region_redis() -> redis.Redis | None:
    url: str | None = settings.REDIS_URL
    if not url:
        return None
    timeout: float = getattr(settings, "REDIS_CLIENT_TIMEOUT", 0.5)
    return _client(url, timeout)


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "REDIS_URL":
        _client.cache_clear()
