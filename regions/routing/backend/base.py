"""PostgreSQL backend of a region's aliases: reads survive a replica that dies.

``settings.env`` sets ``ENGINE = "regions.routing.backend"`` for the primary
and the replicas. On replica aliases it adds read failover; on the primary it
reports atomic blocks to the router's decision epoch.

A Django router picks an alias before the query runs and never hears how it
went, so the retry lives here:

- opening a connection fails (refused, timed out), or
- a statement fails because the connection broke (server killed, network cut),

then the replica is marked down in the registry (``regions.routing.health``),
its connection is closed, and the statement runs on another usable replica
that satisfies the unit's causal floor or, failing that, on the primary
(admitted by the degraded-read limiter). The caller's cursor continues on the
new connection, so the ORM never notices.

Not retried: anything on the primary, statements inside a transaction opened
on the replica itself (``atomic(using="replica_1")``: its snapshot is gone),
``executemany``, errors that leave the connection healthy (syntax, statement
timeout, recovery conflicts), and failures in the middle of streaming a
server-side cursor (``.iterator()``) after rows were already returned.

The primary's ``in_atomic_block`` is a property: when it changes, the
router's cached read decisions are dropped (``regions.routing.state.DecisionEpoch``),
so a read inside ``transaction.atomic()`` goes to the primary without the
router looking up the connection on every read.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from django.db import InterfaceError, OperationalError, connections
from django.db.backends.postgresql import base as postgresql
from django.db.backends.utils import CursorWrapper
from django.utils.functional import cached_property

from regions.routing.state import epoch

PRIMARY_ALIAS = "default"

_failover_off: contextvars.ContextVar[bool] = contextvars.ContextVar("routing_failover_off", default=False)


@contextlib.contextmanager
def failover_disabled() -> Iterator[None]:
    """Statements in the body fail instead of moving to another database (replica-only queries)."""
    token = _failover_off.set(True)
    try:
        yield
    finally:
        _failover_off.reset(token)


def connection_failed(db: Any, exc: BaseException) -> bool:
    """Did ``exc`` come from ``db``'s connection being gone, rather than from the statement?"""
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    raw = getattr(db, "connection", None)
    return raw is None or bool(getattr(raw, "closed", False)) or bool(getattr(raw, "broken", False))


def _may_fail_over(db: Any) -> bool:
    return (
        isinstance(db, DatabaseWrapper)
        and db.alias != PRIMARY_ALIAS
        and not _failover_off.get()
        and not db.in_atomic_block
    )


def _close_quietly(db: Any) -> None:
    with contextlib.suppress(Exception):
        db.close()


def _describe(exc: BaseException) -> str:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first_line}"[:300]


def cursor_elsewhere(failed: Any, name: str | None, exc: BaseException) -> Any:
    """A cursor on the database that takes over from ``failed``'s broken connection."""
    from regions.routing.decisions import PRIMARY, failover_target

    _close_quietly(failed)
    tried = {failed.alias}
    failed_alias, detail = failed.alias, _describe(exc)
    while True:
        target = failover_target(failed=failed_alias, tried=tried, detail=detail)
        conn: Any = connections[target]
        if target == PRIMARY:
            return conn._cursor(name)
        try:
            return postgresql.DatabaseWrapper._cursor(conn, name)  # type: ignore[attr-defined]
        except (OperationalError, InterfaceError) as again:
            if not connection_failed(conn, again):
                raise
            _close_quietly(conn)
            tried.add(target)
            failed_alias, detail = target, _describe(again)


class _FailoverMixin:
    cursor: Any
    db: Any

    def execute(self, sql: Any, params: Any = None) -> Any:
        try:
            return super().execute(sql, params)  # type: ignore[misc]
        except (OperationalError, InterfaceError) as exc:
            db = self.db
            if not _may_fail_over(db) or not connection_failed(db, exc):
                raise
            replacement = cursor_elsewhere(db, getattr(self.cursor, "name", None), exc)
            # Keep the caller's cursor object; it now drives the new connection.
            self.cursor, self.db = replacement.cursor, replacement.db
            return self.execute(sql, params)


class FailoverCursorWrapper(_FailoverMixin, CursorWrapper):
    pass


class FailoverCursorDebugWrapper(_FailoverMixin, postgresql.CursorDebugWrapper):
    pass


class DatabaseWrapper(postgresql.DatabaseWrapper):
    """``django.db.backends.postgresql`` with read failover for replica aliases."""

    @property
    def in_atomic_block(self) -> bool:
        return self._in_atomic_block

    @in_atomic_block.setter
    def in_atomic_block(self, inside: bool) -> None:
        if self.alias == PRIMARY_ALIAS and inside != self.__dict__.get("_in_atomic_block", False):
            epoch.atomic_changed(self, inside=inside)
        self._in_atomic_block = inside

    def _cursor(self, name: str | None = None) -> Any:
        try:
            return super()._cursor(name)  # type: ignore[misc]
        except (OperationalError, InterfaceError) as exc:
            if not _may_fail_over(self) or not connection_failed(self, exc):
                raise
            return cursor_elsewhere(self, name, exc)

    def make_cursor(self, cursor: Any) -> Any:
        return FailoverCursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor: Any) -> Any:
        return FailoverCursorDebugWrapper(cursor, self)

    @cached_property
    def pg_version(self) -> int:
        # Replicas run the primary's major version (streaming replication requires it):
        # ask the primary when this replica cannot answer.
        try:
            return int(super().pg_version)
        except Exception:
            if self.alias == PRIMARY_ALIAS:
                raise
            primary: Any = connections[PRIMARY_ALIAS]
            return int(primary.pg_version)
