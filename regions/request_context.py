"""Per-request (or per-task) context shared across packages, kept in contextvars.

The observability middleware sets the request id; Celery signal handlers carry
it into tasks; the inter-region HTTP client sends it as ``X-Request-ID``.
"""

from __future__ import annotations

import contextvars

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()
