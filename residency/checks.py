"""System checks: every model declares where its data may live."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from regions.placement import DataClass, placement_of

TAG = "residency"


def _models(app_configs: Sequence[AppConfig] | None) -> Iterable[type[models.Model]]:
    configs = app_configs if app_configs is not None else apps.get_app_configs()
    for config in configs:
        for model in config.get_models():
            # Auto-created through tables (M2M) share their owner's class.
            if not model._meta.auto_created:
                yield model


@checks.register(TAG)
def check_data_classes(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """residency.E001: a model declares no data class. E002: a resident model has no home region."""
    messages: list[checks.CheckMessage] = []
    for model in _models(app_configs):
        placement = placement_of(model)
        if placement is None:
            messages.append(
                checks.Error(
                    f"Model {model._meta.label} declares no data class.",
                    hint="Set data_class = DataClass.RESIDENT / DIRECTORY / OPERATIONAL on the model "
                    "(regions.placement), or list a third-party model in THIRD_PARTY_DATA_CLASSES.",
                    obj=model,
                    id="residency.E001",
                )
            )
            continue
        if placement.data_class is DataClass.RESIDENT and placement.home_region_field:
            try:
                model._meta.get_field(placement.home_region_field)
            except FieldDoesNotExist:
                messages.append(
                    checks.Error(
                        f"Resident model {model._meta.label} has no {placement.home_region_field!r} field.",
                        hint="Resident rows carry their home region; the write guard and audit read it.",
                        obj=model,
                        id="residency.E002",
                    )
                )
    return messages


def replica_region_problems() -> list[str]:
    """Replicas configured outside this region's zone (the audit reports the same findings)."""
    from django.conf import settings

    from regions.registry import RegistryError, UnknownRegionError
    from regions.selectors import get_registry

    try:
        registry = get_registry()
        zone = registry.region(settings.REGION).zone
    except (RegistryError, UnknownRegionError):
        return []  # reported by the regions checks
    replicas: list[str] = list(settings.DATABASE_REPLICAS)
    placed: dict[str, str] = dict(settings.DATABASE_REPLICA_REGIONS)
    problems: list[str] = []
    if set(placed) != set(replicas):
        problems.append(
            f"REPLICA_REGIONS names {len(placed)} region(s) for {len(replicas)} replica(s); "
            "give one per replica."
        )
    for alias, code in sorted(placed.items()):
        if code not in registry.regions:
            problems.append(f"replica {alias} is placed in unknown region {code!r}.")
        elif registry.regions[code].zone != zone:
            problems.append(
                f"replica {alias} is placed in {code} (zone {registry.regions[code].zone}), "
                f"outside this region's zone {zone}."
            )
    return problems


@checks.register(TAG)
def check_replica_regions(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """residency.E010: every configured replica runs in this region's zone."""
    return [
        checks.Error(problem, hint="Fix REPLICA_REGIONS / REPLICA_DATABASE_URLS.", id="residency.E010")
        for problem in replica_region_problems()
    ]


@checks.register(TAG)
def check_home_region_columns(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """residency.E020: the write guard's trigger reads the column ``home_region`` of resident tables."""
    from residency.guard import home_region_column_problems

    return [
        checks.Error(
            f"{problem}; the residency write guard reads the column 'home_region'.",
            hint="Drop db_column from the home region field.",
            id="residency.E020",
        )
        for problem in home_region_column_problems(_models(app_configs))
    ]


@checks.register(TAG, checks.Tags.database)
def check_region_anchor(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """residency.E021: the database is anchored to another region than ``REGION`` (runs with migrate)."""
    from django.conf import settings
    from django.db import DatabaseError, connections

    from residency.guard import anchored_region

    messages: list[checks.CheckMessage] = []
    for alias in databases or ():
        if alias not in connections.settings or connections.settings[alias].get("TEST", {}).get("MIRROR"):
            continue  # replicas are read-only copies of the primary
        try:
            anchored = anchored_region(connections[alias])
        except DatabaseError:
            continue  # unreachable: the command itself reports it
        if anchored is not None and anchored != settings.REGION:
            messages.append(
                checks.Error(
                    f"Database {alias!r} belongs to region {anchored}, but REGION={settings.REGION}.",
                    hint="Point DATABASE_URL at this region's primary, or fix REGION.",
                    id="residency.E021",
                )
            )
    return messages


def cookie_and_origin_problems() -> list[tuple[str, str]]:
    """(check id, problem) for cookies shared beyond one host and inexact CSRF origins."""
    from urllib.parse import urlsplit

    from django.conf import settings

    problems: list[tuple[str, str]] = []
    for origin in settings.CSRF_TRUSTED_ORIGINS:
        parts = urlsplit(origin)
        exact = (
            parts.scheme in {"http", "https"}
            and bool(parts.hostname)
            and "*" not in origin
            and parts.path in {"", "/"}
            and not parts.query
            and not parts.fragment
        )
        if not exact:
            problems.append(
                ("residency.E022", f"CSRF_TRUSTED_ORIGINS entry {origin!r} is not an exact origin")
            )
    for name in ("SESSION_COOKIE_DOMAIN", "CSRF_COOKIE_DOMAIN"):
        if getattr(settings, name, None):
            problems.append(
                ("residency.E023", f"{name}={getattr(settings, name)!r} shares the cookie beyond this host")
            )
    return problems


@checks.register(TAG)
def check_cookies_and_origins(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """residency.E022/E023: CSRF origins are exact region origins; cookies are host-only."""
    return [
        checks.Error(
            problem,
            hint="Each region host keeps its own session and CSRF cookies (see residency/README.md).",
            id=check_id,
        )
        for check_id, problem in cookie_and_origin_problems()
    ]
