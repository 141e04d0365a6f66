"""The Celery application. Settings come from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

import regions.observability.celery  # noqa: F401  (request id in task headers, task metrics, worker logs)
from regions import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")

broker.install()  # the worker survives a lost Redis broker (see regions/broker.py)

app = Celery("saas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _boot_checks(**kwargs: Any) -> None:
    """A worker with a bad registry or REGION refuses to start."""
    from regions.boot import assert_boot_checks

    assert_boot_checks()
