"""Structured logs: one JSON object a line, with the region and request context.

Every line carries ``region``, and when known ``request_id``, ``route`` (the
URL pattern, never the raw path), ``task_name``/``task_id``. The access log line
written by the request context middleware adds ``method``, ``status``,
``duration_ms`` and ``user_id`` (a UUID; never an email, a name or an IP).

Two layers keep personal data out:

1. Code logs ids, never emails, names, IPs or document text (docs/decisions/0003).
2. As a safety net for messages we do not write ourselves (Django's
   ``Not Found: <path>``, Celery's task return values, database errors quoting a
   key), both formatters replace anything shaped like an email address with
   ``[email]`` and drop extra fields that are known to carry arguments or
   request objects (Celery's ``data``, Django's ``request``).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from regions.observability.context import route_var, task_var
from regions.request_context import current_request_id

EMAIL = re.compile(r"[A-Za-z0-9.!#$%&*+^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
"""An address as it shows up in text: the local part stops at ``/ = ? ' "`` so paths and
query strings around it survive."""
EMAIL_PLACEHOLDER = "[email]"

DROPPED_EXTRA_FIELDS = frozenset(
    {
        "data",  # Celery: the task's args, kwargs and return value
        "request",  # Django: the request object (path, headers)
        "args",
        "kwargs",
        "email",
        "ip",
        "remote_addr",
        "client_ip",
        "password",
        "token",
    }
)


def scrub(text: str) -> str:
    """``text`` with every email address replaced by ``[email]``."""
    return EMAIL.sub(EMAIL_PLACEHOLDER, text) if "@" in text else text


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list | tuple):
        return [_scrub_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _scrub_value(item) for key, item in value.items()}
    return value


def _region() -> str:
    from django.conf import settings

    if settings.configured:
        return str(getattr(settings, "REGION", "") or "")
    return os.environ.get("REGION", "")


def log_context() -> dict[str, str]:
    """The context fields of a line logged now (region, request id, route, task)."""
    context = {"region": _region()}
    request_id = current_request_id()
    if request_id:
        context["request_id"] = request_id
    route = route_var.get()
    if route is not None:
        context["route"] = route
    task = task_var.get()
    if task is not None:
        context["task_name"], context["task_id"] = task
    return context


class JsonFormatter(_JsonFormatter):
    """python-json-logger's formatter with our context, field names and PII net."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        super().__init__(*args, **kwargs)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        for key in DROPPED_EXTRA_FIELDS & log_data.keys():
            del log_data[key]
        for key, value in log_context().items():
            log_data.setdefault(key, value)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: _scrub_value(value) for key, value in log_data.items()}


class PlainFormatter(logging.Formatter):
    """Human-readable lines for local development (``LOG_FORMAT=plain``), same context and net."""

    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{key}={value}" for key, value in log_context().items())
        return scrub(f"{super().format(record)} [{context}]")


def logging_config(*, level: str, fmt: str) -> dict[str, Any]:
    """The ``LOGGING`` dict: every line to stderr through one formatter."""
    formatter = (
        {"()": "regions.observability.logs.JsonFormatter", "fmt": "%(levelname)s %(name)s %(message)s"}
        if fmt == "json"
        else {
            "()": "regions.observability.logs.PlainFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "default"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Through the root handler only: no second, plain console line in DEBUG
            # and no mail_admins (Django's defaults for this logger).
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            # One access line per request is written by the request context middleware.
            "django.server": {"level": "WARNING"},
        },
    }
