"""Celery tasks owned by the regions package."""

from __future__ import annotations

import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

HEARTBEAT_KEY = "worker-heartbeat:{token}"


@shared_task(name="regions.heartbeat", ignore_result=True)
def heartbeat(token: str) -> None:
    """Record that a worker of this region ran: the broker round trip for health checks."""
    cache.set(HEARTBEAT_KEY.format(token=token), {"region": settings.REGION, "at": time.time()}, 300)


# Replication's tasks live with it; importing them here registers them with Celery.
from regions.replication import tasks as _replication_tasks  # noqa: E402, F401
