"""What readiness asks PostgreSQL itself: does the primary answer, and accept writes?

Replicas are not asked here: the read router's probe keeps the view of each
replica (up, replay lag in bytes and seconds) and readiness reads it
(``regions.routing.selectors.replica_statuses``, docs/decisions/0003).

The primary is asked on a connection of its own, opened with the router's
connection parameters (``regions.routing.probe.connect_kwargs``) and the
readiness timeout, with asyncio so the other checks run at the same time.
"""

from __future__ import annotations

import psycopg
from django.db import connections

from regions.routing.probe import connect_kwargs


def is_postgres(alias: str) -> bool:
    # Replica aliases use the router's PostgreSQL backend (regions.routing.backend).
    return str(connections[alias].vendor) == "postgresql"


async def in_recovery(*, alias: str, timeout: float) -> bool:
    """``pg_is_in_recovery()`` of the server behind ``alias``: true on a standby (read-only)."""
    params = {**connect_kwargs(alias, timeout=timeout), "application_name": "saas-readiness"}
    async with await psycopg.AsyncConnection.connect(autocommit=True, **params) as conn:
        cursor = await conn.execute(b"SELECT pg_is_in_recovery()")
        row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("no row")
    return bool(row[0])
