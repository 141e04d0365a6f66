"""Boot checks for routing configuration (regions.E030-E032)."""

from __future__ import annotations

import copy

import pytest
from django.conf import settings
from django.test import override_settings

from regions.routing.checks import check_routing


def ids() -> list[str | None]:
    return [message.id for message in check_routing()]


def test_the_shipped_configuration_passes():
    assert ids() == []


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_a_replica_without_the_failover_backend_stops_boot():
    databases = copy.deepcopy(settings.DATABASES)
    databases["replica_1"]["ENGINE"] = "django.db.backends.postgresql"
    with override_settings(DATABASES=databases):
        assert ids() == ["regions.E030"]


def test_replicas_without_the_router_stop_boot():
    with override_settings(DATABASE_ROUTERS=[]):
        assert ids() == ["regions.E031"]


def test_nonsense_limits_stop_boot():
    with override_settings(
        ROUTING_MAX_REPLICA_LAG_SECONDS=0,
        ROUTING_PROBE_INTERVAL_SECONDS=-1,
        ROUTING_DEGRADED_WAIT_SECONDS="x",
    ):
        assert ids() == ["regions.E032"] * 3
