"""Log context beyond the request id, kept in contextvars.

``regions.request_context.request_id_var`` is the cross-package contract; the
variables here only feed the log formatter: the route template of the request
being served and the Celery task being run.
"""

from __future__ import annotations

import contextvars
import re
import uuid

route_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("route", default=None)
task_var: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("task", default=None)
"""``(task name, task id)`` while a Celery task runs."""

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
"""Well formed: 8-128 characters of letters, digits and ``. _ : -``, starting alphanumeric.

Enough for UUIDs, nginx ``$request_id`` (32 hex), AWS and W3C style ids, and
nothing that could forge a log field or a header.
"""


def request_id_valid(value: str | None) -> bool:
    return value is not None and _REQUEST_ID.fullmatch(value) is not None


def request_id_new() -> str:
    return uuid.uuid4().hex
