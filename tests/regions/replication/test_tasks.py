"""Beat tasks: the sweep requests drains; metrics report backlog, age, dead letters and breaker state."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from regions.metrics import (
    REPLICATION_BACKLOG,
    REPLICATION_BREAKER_STATE,
    REPLICATION_DEAD_LETTERS,
    REPLICATION_OLDEST_UNSENT,
    labels,
)
from regions.redis import region_redis
from regions.replication.breaker import Permit, breaker_acquire, breaker_failure, breaker_reset
from regions.replication.models import OutboxEvent
from regions.replication.tasks import report_metrics, sweep
from residency.models import DirectoryEntry
from residency.services import directory_entry_upsert


def gauge(metric, peer: str) -> float:
    return float(labels(metric, peer=peer)._value.get())


@pytest.mark.django_db
def test_sweep_requests_a_drain_for_each_peer_with_due_rows():
    client = region_redis()
    assert client is not None
    client.delete(*(f"replication:drain-now:{p}" for p in ("eu-central-1", "us-east-1", "ap-south-1")))
    directory_entry_upsert(kind=DirectoryEntry.Kind.ORGANIZATION, key="acme", home_region="eu-west-1")
    OutboxEvent.objects.filter(target_region="ap-south-1").update(
        next_attempt_at=timezone.now() + dt.timedelta(minutes=5)
    )
    assert sweep() == ["eu-central-1", "us-east-1"]
    assert client.exists("replication:drain-now:us-east-1")
    assert not client.exists("replication:drain-now:ap-south-1")


@pytest.mark.django_db
def test_metrics_report_backlog_age_dead_letters_and_breaker(settings):
    settings.REPLICATION_BREAKER_THRESHOLD = 1
    breaker_reset(peer="us-east-1")
    directory_entry_upsert(kind=DirectoryEntry.Kind.ORGANIZATION, key="acme", home_region="eu-west-1")
    directory_entry_upsert(kind=DirectoryEntry.Kind.ORGANIZATION, key="globex", home_region="eu-west-1")
    OutboxEvent.objects.filter(target_region="us-east-1").update(
        created_at=timezone.now() - dt.timedelta(seconds=90)
    )
    permit = breaker_acquire(peer="us-east-1")
    assert isinstance(permit, Permit)
    breaker_failure(permit)
    report_metrics()
    assert gauge(REPLICATION_BACKLOG, "us-east-1") == 2
    assert 89 <= gauge(REPLICATION_OLDEST_UNSENT, "us-east-1") < 300
    assert gauge(REPLICATION_DEAD_LETTERS, "us-east-1") == 0
    assert gauge(REPLICATION_BREAKER_STATE, "us-east-1") == 2
    assert gauge(REPLICATION_BREAKER_STATE, "ap-south-1") == 0
    breaker_reset(peer="us-east-1")
