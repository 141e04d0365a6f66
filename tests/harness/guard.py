"""Planting rows the residency write guard refuses, for tests of the audit.

The audit exists for data the guard never saw (rows from before it, restored
backups): tests plant such rows by disabling the guard's triggers inside one
transaction. ``ALTER TABLE ... DISABLE TRIGGER`` needs the table owner; the
harness connects as the superuser, a deployed application role cannot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from residency.guard import TRIGGER_NAME, guarded_tables


@contextlib.contextmanager
def write_guard_suspended(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Inside the block, resident rows of any region can be written on ``using``.

    The triggers are disabled and re-enabled in the block's transaction, so no
    other connection ever sees them off, and an error rolls everything back.
    Deferred foreign key checks are run first each time (PostgreSQL refuses to
    alter a table with pending trigger events).
    """
    connection = connections[using]
    qn = connection.ops.quote_name

    def alter(action: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in tables:
                cursor.execute(f"ALTER TABLE {qn(table)} {action} TRIGGER {TRIGGER_NAME}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    with transaction.atomic(using=using):
        tables = sorted(guarded_tables(connection))
        alter("DISABLE")
        yield
        alter("ENABLE ALWAYS")
