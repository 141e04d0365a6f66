"""Celery tasks of the SaaS core."""

from __future__ import annotations

import logging

from celery import shared_task

from saas.idempotency import idempotency_records_purge

logger = logging.getLogger(__name__)


@shared_task(name="saas.idempotency_records_purge", ignore_result=True)
def purge_idempotency_records() -> int:
    """Periodic (``CELERY_BEAT_SCHEDULE``): delete idempotency records past their retention."""
    deleted = idempotency_records_purge()
    logger.info("purged %d idempotency records", deleted)
    return deleted
