"""A real Celery worker process over the region's real Redis broker."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache

from regions.devstack.processes import wait_until
from regions.tasks import HEARTBEAT_KEY, heartbeat


@pytest.mark.django_db(transaction=True)
def test_task_runs_in_a_worker_of_the_same_region(celery_worker, as_region):
    with as_region("us-east-1"):
        worker = celery_worker("us-east-1")
        token = uuid.uuid4().hex
        heartbeat.delay(token)
        wait_until(
            lambda: cache.get(HEARTBEAT_KEY.format(token=token)) is not None, timeout=20, what="heartbeat"
        )
        assert cache.get(HEARTBEAT_KEY.format(token=token))["region"] == "us-east-1"
    # The eu-west-1 cache (another Redis server) never saw it.
    assert cache.get(HEARTBEAT_KEY.format(token=token)) is None
    assert worker.running()
