"""The database router: writes to the region primary, reads where ``regions.routing`` decides.

Set in ``settings.DATABASE_ROUTERS``. The decision itself (causal tokens,
replica health and lag, transactions, ``primary()``) lives in
``regions.routing.decisions``; see ``regions/README.md`` ("Read/write routing").
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Model

from regions.routing.decisions import route_read, route_write


class ReadWriteRouter:
    """Primary for writes and migrations; a healthy, caught-up replica for reads when safe."""

    # The decision function itself (no wrapper call): it runs for every ORM read.
    db_for_read = staticmethod(route_read)

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return route_write()

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        # The primary and its replicas hold the same data.
        region_aliases = {None, "default", *settings.DATABASE_REPLICAS}
        if obj1._state.db in region_aliases and obj2._state.db in region_aliases:
            return True
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        # Replicas are read-only copies of the primary: migrations run on the primary only.
        return False if db in settings.DATABASE_REPLICAS else None
