# ruff: noqa: S608 - SQL here is built from module constants and quoted table names only
"""The residency write guard: a resident row of another region is never written here.

Defence in depth below the application. Every resident table (every model
whose data class is ``resident``, ``regions.placement``) gets a row trigger in
the database, so the ORM, ``bulk_create``, ``QuerySet.update``, raw SQL and
even ``COPY`` are all checked by the same code.

PostgreSQL
    - The region is **anchored in the database**: ``residency_region_anchor``
      holds one row, written by migration ``0004`` from ``REGION``. Triggers
      refuse any update, delete or truncate of it.
    - Every connection states its region (``-c saas.region=<code>``,
      ``settings/env.py``). The guard requires the stated region to equal the
      anchor, so a connection configured for another region, or a session that
      runs ``SET saas.region = ...``, cannot write any resident row.
    - ``INSERT``/``UPDATE`` of a row whose ``home_region`` (new or old) is not the
      anchored region fails with SQLSTATE ``RSD01``. ``DELETE`` is allowed:
      removing another region's residue is the remedy, not a violation.
    - The triggers are ``ENABLE ALWAYS``, so ``session_replication_role = replica``
      does not switch them off. Dropping or disabling them needs the table
      owner: the application must run as a role that owns no table (see
      ``residency/README.md``).
    - ``install_write_guard`` runs after every ``migrate`` (``post_migrate``) and
      adds the trigger to every resident table that lacks it, so tables added
      later are covered without a hand-written migration.

SQLite (embedded mode)
    The same anchor table and ``BEFORE INSERT/UPDATE`` triggers. Not covered:
    there is no per-connection region (the file is one region's by
    construction), and no privileges: anyone who can write the file can drop
    the triggers.

A blocked write reaches the application as ``regions.errors.ResidencyViolation``
(through an execute wrapper on every connection), is counted in
``RESIDENCY_BLOCKED_WRITE`` and logged with the table and region codes only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

from regions.errors import ConfigurationError, ResidencyViolation
from regions.metrics import RESIDENCY_BLOCKED_WRITE, labels
from regions.placement import HOME_REGION_FIELD, DataClass, placement_of

logger = logging.getLogger(__name__)

ANCHOR_TABLE = "residency_region_anchor"
TRIGGER_NAME = "residency_write_guard"
SQLSTATE = "RSD01"
"""SQLSTATE of a blocked write (PostgreSQL)."""
ANCHOR_SQLSTATE = "RSD02"
"""SQLSTATE of an attempt to change the anchor (PostgreSQL)."""
SQLITE_MARKER = "residency_violation"
_REGION_CODE = re.compile(r"^[a-z]{2}-[a-z]+-[0-9]{1,2}$")


# --- PostgreSQL ------------------------------------------------------------------------

_PG_ANCHOR = f"""
CREATE TABLE IF NOT EXISTS {ANCHOR_TABLE} (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    region text NOT NULL CHECK (region ~ '^[a-z]{{2}}-[a-z]+-[0-9]{{1,2}}$'),
    anchored_at timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION residency_anchor_protect() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'residency: the region anchor of this database is written once and never changed'
        USING ERRCODE = '{ANCHOR_SQLSTATE}';
END $$;
CREATE OR REPLACE TRIGGER residency_anchor_protect
    BEFORE UPDATE OR DELETE ON {ANCHOR_TABLE}
    FOR EACH ROW EXECUTE FUNCTION residency_anchor_protect();
CREATE OR REPLACE TRIGGER residency_anchor_protect_truncate
    BEFORE TRUNCATE ON {ANCHOR_TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION residency_anchor_protect();
ALTER TABLE {ANCHOR_TABLE} ENABLE ALWAYS TRIGGER residency_anchor_protect;
ALTER TABLE {ANCHOR_TABLE} ENABLE ALWAYS TRIGGER residency_anchor_protect_truncate;
"""

# Values echoed in the error are region codes only (anything else is client data).
_PG_GUARD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {TRIGGER_NAME}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    anchored text;
    claimed text := nullif(current_setting('saas.region', true), '');
    offending text;
    code_re constant text := '^[a-z]{{2}}-[a-z]+-[0-9]{{1,2}}$';
BEGIN
    SELECT region INTO anchored FROM {ANCHOR_TABLE};
    IF anchored IS NULL THEN
        RAISE EXCEPTION 'residency: this database has no region anchor (run migrate)'
            USING ERRCODE = '{SQLSTATE}', TABLE = TG_TABLE_NAME, DETAIL = '';
    END IF;
    IF claimed IS DISTINCT FROM anchored THEN
        RAISE EXCEPTION 'residency: a connection for region % cannot write resident rows of region %',
                CASE WHEN claimed ~ code_re THEN claimed ELSE '(none or invalid)' END, anchored
            USING ERRCODE = '{SQLSTATE}', TABLE = TG_TABLE_NAME, DETAIL = '';
    END IF;
    IF NEW.home_region IS DISTINCT FROM anchored THEN
        offending := NEW.home_region;
    ELSIF TG_OP = 'UPDATE' AND OLD.home_region IS DISTINCT FROM anchored THEN
        offending := OLD.home_region;
    ELSE
        RETURN NEW;
    END IF;
    offending := CASE WHEN offending ~ code_re THEN offending ELSE '(none or invalid)' END;
    RAISE EXCEPTION 'residency: a % row homed in % cannot be written in region %',
            TG_TABLE_NAME, offending, anchored
        USING ERRCODE = '{SQLSTATE}', TABLE = TG_TABLE_NAME, DETAIL = offending,
              HINT = 'Resident rows are written only in their home region.';
END $$;
"""


def _pg_create_trigger(table: str, qn: Callable[[str], str]) -> str:
    return (
        f"CREATE OR REPLACE TRIGGER {TRIGGER_NAME} BEFORE INSERT OR UPDATE ON {qn(table)} "
        f"FOR EACH ROW EXECUTE FUNCTION {TRIGGER_NAME}();\n"
        f"ALTER TABLE {qn(table)} ENABLE ALWAYS TRIGGER {TRIGGER_NAME};"
    )


_PG_GUARDED = f"""
SELECT c.relname FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgname = '{TRIGGER_NAME}' AND t.tgenabled = 'A' AND NOT t.tgisinternal
  AND c.relnamespace = current_schema()::regnamespace
"""


# --- SQLite --------------------------------------------------------------------------

_SQLITE_ANCHOR = f"""
CREATE TABLE IF NOT EXISTS {ANCHOR_TABLE} (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    region TEXT NOT NULL CHECK (region <> ''),
    anchored_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TRIGGER IF NOT EXISTS residency_anchor_no_update BEFORE UPDATE ON {ANCHOR_TABLE}
BEGIN SELECT RAISE(ABORT, 'residency: the region anchor never changes'); END;
CREATE TRIGGER IF NOT EXISTS residency_anchor_no_delete BEFORE DELETE ON {ANCHOR_TABLE}
BEGIN SELECT RAISE(ABORT, 'residency: the region anchor never changes'); END;
"""


def _sqlite_create_trigger(table: str, qn: Callable[[str], str]) -> str:
    anchored = f"(SELECT region FROM {ANCHOR_TABLE})"
    message = f"'{SQLITE_MARKER}: a {table} row of another region cannot be written here'"
    return (
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGER_NAME}_{table}_ins BEFORE INSERT ON {qn(table)} "
        f"WHEN NEW.home_region IS NOT {anchored} BEGIN SELECT RAISE(ABORT, {message}); END;\n"
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGER_NAME}_{table}_upd BEFORE UPDATE ON {qn(table)} "
        f"WHEN NEW.home_region IS NOT {anchored} OR OLD.home_region IS NOT {anchored} "
        f"BEGIN SELECT RAISE(ABORT, {message}); END;"
    )


_SQLITE_GUARDED = f"""
SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name = '{TRIGGER_NAME}_' || tbl_name || '_upd'
"""


# --- Installation ----------------------------------------------------------------------


def resident_tables(models: Iterable[type[Model]] | None = None) -> list[str]:
    """Every table the guard must cover: concrete resident models with a home region column."""
    tables: set[str] = set()
    for model in apps.get_models() if models is None else models:
        placement = placement_of(model)
        if placement is None or placement.data_class is not DataClass.RESIDENT:
            continue
        if model._meta.proxy or not model._meta.managed or placement.home_region_field is None:
            continue
        tables.add(model._meta.db_table)
    return sorted(tables)


def home_region_column_problems(models: Iterable[type[Model]]) -> list[str]:
    """Resident models whose home region column is not literally ``home_region`` (the trigger reads it)."""
    problems = []
    for model in models:
        placement = placement_of(model)
        if placement is None or placement.home_region_field is None:
            continue
        field = next((f for f in model._meta.concrete_fields if f.name == placement.home_region_field), None)
        if field is not None and field.column != HOME_REGION_FIELD:
            problems.append(f"{model._meta.label}.{field.name} is stored in column {field.column!r}")
    return problems


def _run_script(connection: BaseDatabaseWrapper, script: str) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for statement in filter(None, (s.strip() for s in script.split(";\n"))):
                cursor.execute(statement if statement.endswith(";") else statement + ";")
        else:
            cursor.execute(script)


def create_anchor(connection: BaseDatabaseWrapper, *, region: str) -> None:
    """Create the anchor table and write this database's region (migration 0004)."""
    if not _REGION_CODE.match(region):
        raise ValueError(f"REGION={region!r} is not a region code; set REGION before migrating.")
    if connection.vendor == "postgresql":
        _run_script(connection, _PG_ANCHOR)
        insert = f"INSERT INTO {ANCHOR_TABLE} (region) VALUES (%s) ON CONFLICT (singleton) DO NOTHING"
    elif connection.vendor == "sqlite":
        _run_script(connection, _SQLITE_ANCHOR)
        insert = f"INSERT OR IGNORE INTO {ANCHOR_TABLE} (singleton, region) VALUES (1, %s)"
    else:
        return
    with connection.cursor() as cursor:
        cursor.execute(insert, [region])
    verify_anchor(connection, region=region)


def anchored_region(connection: BaseDatabaseWrapper) -> str | None:
    """The region this database is anchored to, or ``None`` before migration 0004."""
    if ANCHOR_TABLE not in connection.introspection.table_names():
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT region FROM {ANCHOR_TABLE}")
        row = cursor.fetchone()
    return str(row[0]) if row else None


class AnchorMismatch(ConfigurationError):
    """``REGION`` names another region than the one the database is anchored to."""


def verify_anchor(connection: BaseDatabaseWrapper, *, region: str) -> None:
    anchored = anchored_region(connection)
    if anchored is not None and anchored != region:
        raise AnchorMismatch(
            f"Database {connection.alias!r} is anchored to region {anchored}, but REGION={region}. "
            "Point DATABASE_URL at this region's primary."
        )


def guarded_tables(connection: BaseDatabaseWrapper) -> set[str]:
    """Tables that carry an enabled guard trigger."""
    sql = {"postgresql": _PG_GUARDED, "sqlite": _SQLITE_GUARDED}.get(connection.vendor)
    if sql is None:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {str(row[0]) for row in cursor.fetchall()}


def install_write_guard(
    connection: BaseDatabaseWrapper, *, models: Iterable[type[Model]] | None = None
) -> list[str]:
    """Add the guard to every resident table that lacks it. Returns the tables it added it to.

    ``models`` defaults to every installed model.
    """
    if connection.vendor not in {"postgresql", "sqlite"}:
        return []
    if anchored_region(connection) is None:
        return []  # migration 0004 not applied yet (or rolled back)
    verify_anchor(connection, region=settings.REGION)
    if connection.vendor == "postgresql":
        _run_script(connection, _PG_GUARD_FUNCTION)
    existing = set(connection.introspection.table_names())
    guarded = guarded_tables(connection)
    missing = [t for t in resident_tables(models) if t in existing and t not in guarded]
    create = _pg_create_trigger if connection.vendor == "postgresql" else _sqlite_create_trigger
    for table in missing:
        _run_script(connection, create(table, connection.ops.quote_name))
    if missing:
        logger.info("residency: write guard installed on %s", ", ".join(missing))
    return missing


def remove_write_guard(connection: BaseDatabaseWrapper) -> None:
    """Undo migration 0004: drop the triggers, the function and the anchor (owner only)."""
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in guarded_tables(connection):
                cursor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER_NAME} ON {qn(table)}")
            cursor.execute(f"DROP FUNCTION IF EXISTS {TRIGGER_NAME}()")
            cursor.execute(f"DROP TABLE IF EXISTS {ANCHOR_TABLE}")
            cursor.execute("DROP FUNCTION IF EXISTS residency_anchor_protect()")
        elif connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'residency%%'"
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f"DROP TRIGGER IF EXISTS {qn(name)}")
            cursor.execute(f"DROP TABLE IF EXISTS {ANCHOR_TABLE}")


def write_guard_problems(connection: BaseDatabaseWrapper) -> list[str]:
    """What is wrong with the guard on ``connection`` (readiness, audit): empty when whole."""
    if connection.vendor not in {"postgresql", "sqlite"}:
        return [f"no write guard for the {connection.vendor} backend"]
    anchored = anchored_region(connection)
    if anchored is None:
        return ["the database has no region anchor (run migrate)"]
    problems = []
    if anchored != settings.REGION:
        problems.append(f"the database is anchored to {anchored}, not {settings.REGION}")
    existing = set(connection.introspection.table_names())
    guarded = guarded_tables(connection)
    problems += [
        f"resident table {t} has no enabled write guard"
        for t in resident_tables()
        if t in existing and t not in guarded
    ]
    return problems


# --- Errors ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockedWrite:
    table: str
    row_region: str


def blocked_write(exc: BaseException) -> BlockedWrite | None:
    """The guard's refusal inside a database error, if that is what it is."""
    cause = exc.__cause__ or exc
    if getattr(cause, "sqlstate", None) == SQLSTATE:
        diag = getattr(cause, "diag", None)
        table = str(getattr(diag, "table_name", None) or "?")
        detail = str(getattr(diag, "message_detail", None) or "")
        return BlockedWrite(table=table, row_region=detail if _REGION_CODE.match(detail) else "")
    message = str(cause)
    if message.startswith(f"{SQLITE_MARKER}: a "):
        return BlockedWrite(table=message.split(" ")[2], row_region="")
    return None


def guard_execute_wrapper(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """Turn the guard's database error into ``ResidencyViolation`` (never logging row values)."""
    try:
        return execute(sql, params, many, context)
    except DatabaseError as exc:
        blocked = blocked_write(exc)
        if blocked is None:
            raise
        labels(RESIDENCY_BLOCKED_WRITE, table=blocked.table).inc()
        logger.warning(
            "residency: write blocked on %s (row region %s, this region %s)",
            blocked.table,
            blocked.row_region or "unknown",
            settings.REGION,
            extra={"residency": {"table": blocked.table, "row_region": blocked.row_region}},
        )
        raise ResidencyViolation(
            f"A {blocked.table} row of another region cannot be written in {settings.REGION}.",
            extra={"table": blocked.table, "region": settings.REGION},
        ) from exc


def attach_execute_wrapper(*, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """``connection_created`` receiver: every connection reports blocked writes clearly."""
    if guard_execute_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.append(guard_execute_wrapper)
