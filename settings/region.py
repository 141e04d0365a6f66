"""Settings that make a process act as one region.

``region_settings(env)`` returns every setting derived from ``REGION`` and the
service URLs. ``settings/base.py`` applies it to ``os.environ``; the test
harness applies it to another region's environment to act as that region.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from regions.registry import DEFAULT_REGISTRY_PATH, RegistryError, UnknownRegionError, cached_registry
from settings.env import (
    BASE_DIR,
    REPLICA_ALIAS_PREFIX,
    Env,
    caches_from_env,
    databases_from_env,
    url_host,
)


class RegionSettings(TypedDict):
    REGION: str
    REGION_REGISTRY: str
    DATABASES: dict[str, dict[str, Any]]
    DATABASE_REPLICAS: list[str]
    DATABASE_REPLICA_REGIONS: dict[str, str]
    CACHES: dict[str, dict[str, Any]]
    REDIS_URL: str | None
    ALLOWED_HOSTS: list[str]
    CSRF_TRUSTED_ORIGINS: list[str]
    SESSION_COOKIE_DOMAIN: str | None
    CSRF_COOKIE_DOMAIN: str | None
    SESSION_COOKIE_NAME: str
    CSRF_COOKIE_NAME: str
    CELERY_BROKER_URL: str
    CELERY_TASK_ALWAYS_EAGER: bool
    CELERY_TASK_EAGER_PROPAGATES: bool
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any]


def region_settings(env: Env, *, default_region: str | None) -> RegionSettings:
    """The region-dependent settings for the environment ``env``.

    ``default_region`` is used when ``REGION`` is unset; production passes
    ``None`` so that a missing ``REGION`` fails the boot checks (regions.E020).
    """
    region = env.optional("REGION") or default_region or ""
    registry_path = env.str("REGION_REGISTRY", str(DEFAULT_REGISTRY_PATH))
    sqlite_path = env.optional("SQLITE_PATH") or str(BASE_DIR / f"db.{region or 'unset'}.sqlite3")
    databases = databases_from_env(env, region=region, default_sqlite=Path(sqlite_path))

    hosts: list[str] = []
    origins: list[str] = []
    try:
        current = cached_registry(registry_path).region(region)
    except (RegistryError, UnknownRegionError):
        # The boot checks (regions.E0xx) stop the process with the full story.
        current = None
    if current is not None:
        hosts = sorted({url_host(current.public_url), url_host(current.internal_url)})
        origins = [current.public_url]

    replicas = [alias for alias in databases if alias.startswith(REPLICA_ALIAS_PREFIX)]
    # Where each replica runs (REPLICA_REGIONS, aligned with REPLICA_DATABASE_URLS);
    # by default in this region. Checked at boot and by the residency audit.
    replica_regions = env.list("REPLICA_REGIONS") or [region] * len(replicas)
    broker_url = env.optional("CELERY_BROKER_URL")
    redis_url = env.optional("REDIS_URL")
    return {
        "REGION": region,
        "REGION_REGISTRY": registry_path,
        "DATABASES": databases,
        "DATABASE_REPLICAS": replicas,
        "DATABASE_REPLICA_REGIONS": dict(zip(replicas, replica_regions, strict=False)),
        "CACHES": caches_from_env(env, region=region),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": [*hosts, *env.list("ALLOWED_HOSTS")],
        "CSRF_TRUSTED_ORIGINS": [*origins, *env.list("CSRF_TRUSTED_ORIGINS")],
        # Cookies are host-only (no Domain attribute) and named per region, so
        # two region hosts never share a session, even on one loopback address.
        "SESSION_COOKIE_DOMAIN": None,
        "CSRF_COOKIE_DOMAIN": None,
        "SESSION_COOKIE_NAME": f"sessionid-{region}",
        "CSRF_COOKIE_NAME": f"csrftoken-{region}",
        "CELERY_BROKER_URL": broker_url or "memory://",
        # No broker configured: run tasks in-process (the embedded default).
        "CELERY_TASK_ALWAYS_EAGER": broker_url is None,
        "CELERY_TASK_EAGER_PROPAGATES": broker_url is None,
        "CELERY_BROKER_TRANSPORT_OPTIONS": {
            # Longer than any countdown or ETA we schedule (see regions/README.md).
            "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 3600),
            "global_keyprefix": f"{region}:",
        },
    }
