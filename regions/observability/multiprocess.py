"""prometheus_client multiprocess mode for gunicorn workers and Celery prefork children.

Every process writes its samples to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR``; the exposition reads them all, so a scrape that
reaches any one gunicorn worker sees the sum over every worker (and counters of
workers that have exited). Without it each worker would answer with its own
counts and a scrape would be wrong.

The directory must exist before the first metric value is created and must be
empty when the server starts. The process managers call ``prepare()`` before
forking (``gunicorn.conf.py``, the ``celeryd_init`` signal): it uses the
operator's ``PROMETHEUS_MULTIPROC_DIR`` (an ``emptyDir`` in Kubernetes) or
creates a private temporary one, and clears stale files. This module imports
nothing from Django, so the gunicorn master can use it before loading the app.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
_CREATED = "_SAAS_PROMETHEUS_DIR_CREATED"


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def prepare(*, prefix: str) -> Path:
    """Use (and empty) the configured directory, or create one; switch this process to multiprocess mode."""
    configured = os.environ.get(ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix=f"saas-prometheus-{prefix}-"))
        os.environ[ENV] = str(path)
        os.environ[_CREATED] = str(path)
    if "prometheus_client" in sys.modules:
        # Already imported (say, by Django's app loading): its value class was
        # chosen from the environment at import time. No value exists yet in a
        # process manager's parent, so switching now is safe.
        from prometheus_client import values

        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


def process_dead(pid: int) -> None:
    """Drop the live gauges of an exited worker (counters and histograms stay summed)."""
    if enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def cleanup() -> None:
    """Remove the directory if ``prepare`` created it (at the process manager's exit)."""
    created = os.environ.get(_CREATED)
    if created and created == os.environ.get(ENV):
        shutil.rmtree(created, ignore_errors=True)
