"""Typed parsing of the environment, and the settings built from it.

Every setting that differs between deployments comes from an environment
variable. The functions here are pure: they read a mapping (``os.environ`` in a
process, a region's env dict in the test harness), so the test harness builds
exactly the settings a region's process would build.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Env:
    """Read typed values from a mapping of environment variables."""

    values: Mapping[builtins.str, builtins.str]

    def str(self, name: builtins.str, default: builtins.str | None = None) -> builtins.str:
        value = self.values.get(name)
        if value is None or value == "":
            if default is None:
                raise ImproperlyConfigured(f"Environment variable {name} is required.")
            return default
        return value

    def optional(self, name: builtins.str) -> builtins.str | None:
        value = self.values.get(name)
        return value if value else None

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        raw = self.values.get(name)
        if raw is None:
            return default
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(f"Environment variable {name}={raw!r} is not a boolean (use true/false).")

    def int(self, name: builtins.str, default: builtins.int) -> builtins.int:
        raw = self.values.get(name)
        if raw is None or raw == "":
            return default
        try:
            return builtins.int(raw)
        except ValueError:
            raise ImproperlyConfigured(f"Environment variable {name}={raw!r} is not an integer.") from None

    def float(self, name: builtins.str, default: builtins.float) -> builtins.float:
        raw = self.values.get(name)
        if raw is None or raw == "":
            return default
        try:
            return builtins.float(raw)
        except ValueError:
            raise ImproperlyConfigured(f"Environment variable {name}={raw!r} is not a number.") from None

    def list(
        self, name: builtins.str, default: builtins.list[builtins.str] | None = None
    ) -> builtins.list[builtins.str]:
        raw = self.values.get(name)
        if raw is None or raw.strip() == "":
            return builtins.list(default or [])
        return [item.strip() for item in raw.split(",") if item.strip()]


REPLICA_ALIAS_PREFIX = "replica_"


def replica_alias(index: int) -> str:
    """The database alias of the ``index``-th replica (1-based)."""
    return f"{REPLICA_ALIAS_PREFIX}{index}"


def _database(url: str, *, region: str, env: Env, replica: bool) -> dict[str, Any]:
    try:
        config: dict[str, Any] = dict(dj_database_url.parse(url))
    except ValueError as exc:
        raise ImproperlyConfigured(f"Malformed database URL: {exc}") from None
    engine = config.get("ENGINE", "")
    options: dict[str, Any] = dict(config.get("OPTIONS") or {})
    if engine == "django.db.backends.postgresql":
        # The region code travels with every connection. The residency write
        # guard (a trigger) compares it with each row's home region.
        options["options"] = f"-c saas.region={region}"
        options.setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", 3))
        if env.bool("DB_POOL", default=False):
            options["pool"] = {
                "min_size": env.int("DB_POOL_MIN", 1),
                "max_size": env.int("DB_POOL_MAX", 8),
                "timeout": env.float("DB_POOL_TIMEOUT", 5.0),
            }
            config["CONN_MAX_AGE"] = 0
        else:
            config["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", 60)
            config["CONN_HEALTH_CHECKS"] = True
    config["OPTIONS"] = options
    if engine == "django.db.backends.postgresql":
        # PostgreSQL plus, on replicas, read failover, and on the primary, atomic blocks
        # reported to the router's decision cache (regions/routing/backend).
        config["ENGINE"] = "regions.routing.backend"
    if replica:
        # Replicas are never flushed or created by the test runner.
        config["TEST"] = {"MIRROR": "default"}
    return config


def databases_from_env(env: Env, *, region: str, default_sqlite: Path) -> dict[str, dict[str, Any]]:
    """``DATABASES`` for a region: ``default`` is the primary, ``replica_N`` the replicas.

    ``DATABASE_URL`` names the region primary; ``REPLICA_DATABASE_URLS`` is a
    comma-separated list of streaming replicas. With neither set, the embedded
    default is one SQLite file and no replica.
    """
    primary_url = env.optional("DATABASE_URL") or f"sqlite:///{default_sqlite}"
    databases = {"default": _database(primary_url, region=region, env=env, replica=False)}
    for index, url in enumerate(env.list("REPLICA_DATABASE_URLS"), start=1):
        databases[replica_alias(index)] = _database(url, region=region, env=env, replica=True)
    return databases


def caches_from_env(env: Env, *, region: str) -> dict[str, dict[str, Any]]:
    """``CACHES``: Redis when ``REDIS_URL`` is set, else process-local memory."""
    redis_url = env.optional("REDIS_URL")
    if redis_url is None:
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "KEY_PREFIX": region,
            }
        }
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": region,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": env.float("REDIS_CONNECT_TIMEOUT", 0.5),
                "SOCKET_TIMEOUT": env.float("REDIS_TIMEOUT", 0.5),
            },
        }
    }


def url_host(url: str) -> str:
    """The host part of a URL, lower-cased, without port."""
    return (urlsplit(url).hostname or "").lower()
