"""What readiness asks PostgreSQL itself: is the primary a writable server?"""

from __future__ import annotations

import asyncio

import pytest

from regions.health.checks import Primary
from regions.health.postgres import in_recovery


@pytest.mark.django_db
def test_the_primary_is_writable_and_a_replica_is_in_recovery(harness):
    assert asyncio.run(in_recovery(alias="default", timeout=2)) is False
    assert asyncio.run(in_recovery(alias="replica_1", timeout=2)) is True


@pytest.mark.django_db
def test_a_primary_alias_that_points_at_a_standby_fails_the_critical_check(harness):
    result = asyncio.run(Primary(alias="replica_1").get_result())
    assert result.error is not None
    assert result.error.message == "the primary database is in recovery (read-only)"
    assert asyncio.run(Primary().get_result()).error is None
