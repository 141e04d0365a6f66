"""Celery: request id across the broker, task log context, task metrics, worker logs and metrics.

- ``before_task_publish`` puts the current request id in the message headers
  (``request_id``); ``task_prerun`` restores it into ``request_id_var`` in the
  worker, with the task name and id for the log formatter; ``task_postrun``
  clears both. Eager tasks run inside the caller's context and keep it.
- Outcomes (``saas_celery_tasks_total``) and run time
  (``saas_celery_task_duration_seconds``) are recorded in the prefork child
  that runs the task, in multiprocess mode so the parent can export them.
- ``setup_logging`` makes the worker log through Django's ``LOGGING`` (JSON
  lines with the context above) instead of Celery's own format.
- ``celeryd_init`` prepares the multiprocess directory before the pool forks;
  ``worker_ready`` serves ``/internal/metrics`` from the parent when
  ``CELERY_METRICS_PORT`` is set; ``worker_process_shutdown`` retires a child's
  live gauges.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import os
import time
from typing import Any

from celery import signals

from regions.observability import multiprocess
from regions.observability.context import request_id_valid, task_var
from regions.request_context import current_request_id, request_id_var

logger = logging.getLogger(__name__)

HEADER = "request_id"

# Per task id: the contextvar tokens to reset and the start time. A prefork
# child runs one task at a time; threads and greenlets run several.
_running: dict[str, tuple[contextvars.Token[str | None] | None, contextvars.Token[Any], float]] = {}


@signals.before_task_publish.connect
def _publish_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = current_request_id()
    if headers is not None and request_id and HEADER not in headers:
        headers[HEADER] = request_id


@signals.task_prerun.connect
def _task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id is None or task is None:
        return
    request = task.request
    id_token = None
    if not request.is_eager:
        incoming = request.get(HEADER)
        id_token = request_id_var.set(
            incoming if isinstance(incoming, str) and request_id_valid(incoming) else None
        )
    _running[task_id] = (id_token, task_var.set((task.name, task_id)), time.perf_counter())


@signals.task_postrun.connect
def _task_finished(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    from regions.metrics import CELERY_TASK_DURATION, labels

    entry = _running.pop(task_id or "", None)
    if entry is None or task is None:
        return
    id_token, task_token, started = entry
    labels(CELERY_TASK_DURATION, task=task.name).observe(time.perf_counter() - started)
    task_var.reset(task_token)
    if id_token is not None:
        request_id_var.reset(id_token)


def _outcome(task_name: str, outcome: str) -> None:
    from regions.metrics import CELERY_TASKS, labels

    labels(CELERY_TASKS, task=task_name, outcome=outcome).inc()


def _name(sender: Any = None, request: Any = None) -> str:
    name = getattr(sender, "name", None) or getattr(request, "task", None) or getattr(request, "name", None)
    return str(name or "unknown")


@signals.task_success.connect
def _succeeded(sender: Any = None, **kwargs: Any) -> None:
    _outcome(_name(sender), "succeeded")


@signals.task_failure.connect
def _failed(sender: Any = None, **kwargs: Any) -> None:
    _outcome(_name(sender), "failed")


@signals.task_retry.connect
def _retried(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    _outcome(_name(sender, request), "retried")


@signals.task_revoked.connect
def _revoked(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    _outcome(_name(sender, request), "revoked")


@signals.task_rejected.connect
def _rejected(message: Any = None, **kwargs: Any) -> None:
    headers = getattr(message, "headers", None) or {}
    _outcome(str(headers.get("task", "unknown")), "rejected")


@signals.task_internal_error.connect
def _internal_error(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    _outcome(_name(sender, request), "internal_error")


@signals.setup_logging.connect
def _setup_logging(**kwargs: Any) -> None:
    """Workers log like the web processes: Django's ``LOGGING`` (JSON lines with context)."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.celeryd_init.connect
def _prepare_metrics(**kwargs: Any) -> None:
    multiprocess.prepare(prefix="celery")


@signals.worker_ready.connect
def _serve_metrics(**kwargs: Any) -> None:
    from django.conf import settings

    port = int(settings.CELERY_METRICS_PORT)
    if port:
        from regions.observability.exposition import serve_metrics

        serve_metrics(addr=str(settings.CELERY_METRICS_ADDR), port=port)
        logger.info("metrics served on port %s at /internal/metrics", port)


@signals.worker_process_shutdown.connect
def _child_exit(**kwargs: Any) -> None:
    multiprocess.process_dead(os.getpid())


@signals.worker_shutdown.connect
def _worker_exit(**kwargs: Any) -> None:
    multiprocess.cleanup()
