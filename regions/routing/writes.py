"""Seeing a unit's writes: every statement sent to the primary passes through here.

A Django router cannot tell writes from reads: ``db_for_write`` is also
called when an unsaved model instance is built with a related object
(``Membership(user=user)``), which writes nothing. So the router does not
count ``db_for_write`` calls; an execute wrapper on the ``default``
connection marks the unit as having written when a statement that can
change data is sent (anything but ``SELECT``, savepoints, ``SET``/``SHOW``
and the like; a ``WITH`` is counted, as it may hide an ``UPDATE``).

It costs one string check per statement on the primary. Writes that bypass
Django's cursors (a raw psycopg connection) must call ``note_write()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.backends.signals import connection_created
from django.dispatch import receiver

from regions.routing.state import note_write

PRIMARY = "default"

_READ_ONLY_VERBS = frozenset(
    {
        "SELECT",
        "SAVEPOINT",
        "RELEASE",
        "ROLLBACK",
        "SET",
        "SHOW",
        "RESET",
        "EXPLAIN",
        "FETCH",
        "MOVE",
        "CLOSE",
        "BEGIN",
        "START",
        "COMMIT",
        "VALUES",
        "TABLE",
    }
)


def is_write(sql: object) -> bool:
    """Whether a statement may change data (conservative: unknown verbs count as writes)."""
    text = sql if isinstance(sql, str) else str(sql)
    head = text.lstrip(" \t\r\n(")[:12].split(None, 1)
    return not head or head[0].upper() not in _READ_ONLY_VERBS


def notice_writes(
    execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    if many or is_write(sql):
        note_write()
    return execute(sql, params, many, context)


@receiver(connection_created, dispatch_uid="regions.routing.notice_writes")
def _install(sender: Any, connection: Any, **kwargs: Any) -> None:
    # First in the list: ``connection.execute_wrapper()`` blocks pop the last one.
    if connection.alias == PRIMARY and notice_writes not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, notice_writes)
