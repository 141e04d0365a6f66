"""An unreachable database, told apart from a failed statement; writes a request can do without.

``database_unreachable(exc)`` is true for errors that say the server cannot be
reached or is going away (connection refused or reset, a pool that found no
connection, an administrator or crash shutdown), and false for errors of the
statement itself (syntax, constraint, statement timeout, deadlock, recovery
conflict), which leave the server up. ``regions.problems`` answers the first
kind with ``503 primary_unavailable`` and ``Retry-After`` instead of a 500:
replica failures never get there (reads fail over, see ``backend/base.py``),
so what is left is the primary, and a client should retry later.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from django.db import DatabaseError, InterfaceError, OperationalError, connections

from regions.routing.state import current_state

logger = logging.getLogger(__name__)

PRIMARY = "default"

_CONNECTION_EXCEPTION_CLASS = "08"
"""SQLSTATE class 08: connection exception."""
_SERVER_GOING_AWAY = frozenset({"57P01", "57P02", "57P03"})
"""admin_shutdown, crash_shutdown, cannot_connect_now (starting up or shutting down)."""


def database_unreachable(exc: BaseException) -> bool:
    """Did ``exc`` come from a database server that cannot be reached, rather than from the statement?"""
    if isinstance(exc, InterfaceError):
        return True  # the connection was already closed under us
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    if sqlstate is None:
        # No server diagnostic: the client library failed (refused, reset, pool timeout).
        return True
    return str(sqlstate).startswith(_CONNECTION_EXCEPTION_CLASS) or sqlstate in _SERVER_GOING_AWAY


@contextlib.contextmanager
def best_effort_write(what: str) -> Iterator[None]:
    """Run a bookkeeping write the request can do without (a token's ``last_used_at``).

    When the primary cannot be reached the write is skipped and logged, and the
    unit's routing state is left as before the attempt (nothing was written),
    so the request's reads keep going to the replicas. Inside a transaction, or
    for any other error, the exception propagates as usual.
    """
    state = current_state()
    wrote, write_seq = state.wrote, state.write_seq
    try:
        yield
    except DatabaseError as exc:
        if connections[PRIMARY].in_atomic_block or not database_unreachable(exc):
            raise
        state.wrote, state.write_seq = wrote, write_seq
        logger.warning("%s skipped: the primary database cannot be reached (%s)", what, type(exc).__name__)
