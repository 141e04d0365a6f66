"""Celery tasks of the residency package."""

from __future__ import annotations

import datetime
import logging

from celery import shared_task
from django.conf import settings

from residency.services import violation_events_prune

logger = logging.getLogger(__name__)


@shared_task(name="residency.violation_events_prune", ignore_result=True)
def prune_violation_events() -> int:
    """Periodic (``CELERY_BEAT_SCHEDULE``): delete violation events past their retention."""
    days = int(settings.RESIDENCY_VIOLATION_RETENTION_DAYS)
    deleted = violation_events_prune(older_than=datetime.timedelta(days=days))
    logger.info("residency: pruned %d violation events older than %d days", deleted, days)
    return deleted
