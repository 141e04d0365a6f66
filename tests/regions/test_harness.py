"""The harness itself: real streaming replication, isolated regions, acting as a region."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.db import connections

from saas.models import User


def email() -> str:
    return f"harness-{uuid.uuid4().hex[:10]}@example.test"


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_row_on_eu_primary_streams_to_eu_replicas_and_never_reaches_us(harness):
    eu, us = harness.region("eu-west-1"), harness.region("us-east-1")
    address = email()
    User.objects.create(email=address, home_region="eu-west-1")
    lsn = eu.primary.current_lsn()

    for index, replica in enumerate(eu.replicas, start=1):
        replica.wait_for_replay(lsn)  # waits on the replay LSN, never on a sleep
        assert User.objects.using(f"replica_{index}").filter(email=address).exists()

    for cluster in (us.primary, *us.replicas):
        assert cluster.execute("SELECT count(*) FROM saas_user WHERE email = %s", (address,)) == [(0,)]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_paused_replay_hides_new_rows_on_the_replica_until_resumed(harness):
    replica = harness.region("eu-west-1").replicas[0]
    replica.pause_replay()
    try:
        address = email()
        User.objects.create(email=address, home_region="eu-west-1")
        lsn = harness.region("eu-west-1").primary.current_lsn()
        assert not replica.has_replayed(lsn)
        assert not User.objects.using("replica_1").filter(email=address).exists()
    finally:
        replica.resume_replay()
    replica.wait_for_replay(lsn)
    assert User.objects.using("replica_1").filter(email=address).exists()


def test_replicas_are_read_only_hot_standbys(harness):
    for stack in harness.regions.values():
        for replica in stack.replicas:
            assert replica.execute("SELECT pg_is_in_recovery()") == [(True,)]
            with pytest.raises(Exception, match="read-only transaction"):
                replica.execute("CREATE TABLE nope (id int)")
        assert stack.primary.execute("SELECT pg_is_in_recovery()") == [(False,)]
        streaming = stack.primary.execute(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        )
        assert streaming == [(len(stack.replicas),)]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_as_region_switches_settings_and_connections(harness, as_region, multi_region_db):
    assert settings.REGION == "eu-west-1"
    eu_port = harness.region("eu-west-1").primary.port
    us_port = harness.region("us-east-1").primary.port
    address = email()
    with as_region("us-east-1"):
        assert settings.REGION == "us-east-1"
        assert connections["default"].settings_dict["PORT"] == us_port
        assert settings.CACHES["default"]["LOCATION"].endswith(f":{harness.region('us-east-1').redis.port}/0")
        User.objects.create(email=address, home_region="us-east-1")
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT current_setting('saas.region')")
            assert cursor.fetchone() == ("us-east-1",)
    assert settings.REGION == "eu-west-1"
    assert connections["default"].settings_dict["PORT"] == eu_port
    assert not User.objects.filter(email=address).exists()
    us_rows = harness.region("us-east-1").primary.execute(
        "SELECT count(*) FROM saas_user WHERE email = %s", (address,)
    )
    assert us_rows == [(1,)]


@pytest.mark.django_db
def test_as_region_keeps_the_outer_test_transaction(as_region):
    address = email()
    User.objects.create(email=address, home_region="eu-west-1")
    with as_region("us-east-1"):
        assert not User.objects.filter(email=address).exists()
    assert User.objects.filter(email=address).exists()


@pytest.mark.django_db(transaction=True)
def test_region_web_serves_the_region_on_its_registry_port(harness, region_web):
    import json
    import urllib.request

    from regions.selectors import get_registry

    region_web("us-east-1")
    us = harness.region("us-east-1")
    assert get_registry().region("us-east-1").public_url == us.base_url
    with urllib.request.urlopen(f"{us.base_url}/health/live", timeout=5) as response:
        assert json.loads(response.read())["region"] == "us-east-1"


def test_standbys_are_named_in_pg_stat_replication(harness):
    for code, stack in harness.regions.items():
        names = {row[0] for row in stack.primary.execute("SELECT application_name FROM pg_stat_replication")}
        assert names == {f"{code}-replica{i}" for i in range(1, len(stack.replicas) + 1)}
