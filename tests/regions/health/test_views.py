"""``/health/live``, ``/health/ready`` and ``/health/startup`` against the harness's real services.

Disruptive tests (a stopped primary, replica or Redis) act on us-east-1, so the
session's eu-west-1 stays whole for everyone else, and always restart what they
stopped.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

from regions.devstack.postgres import Cluster
from regions.devstack.processes import wait_until
from settings.env import Env, databases_from_env
from tests.harness.acting import swapped_databases


def probe(client: Client, path: str = "/health/ready") -> tuple[int, dict[str, Any]]:
    response = client.get(path)
    return response.status_code, json.loads(response.content)


def checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in report["checks"]}


def http_get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_streaming(primary: Cluster, replicas: int) -> None:
    """After a primary restart: both walreceivers reconnect (they retry every few seconds)."""
    wait_until(
        lambda: (
            primary.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
            == [(replicas,)]
        ),
        timeout=30,
        interval=0.2,
        what="replicas to stream again",
    )


@pytest.mark.django_db
@override_settings(HEALTH_BROKER_SLOW_SECONDS=10)  # a loaded CI machine is not a slow broker
def test_ready_lists_every_dependency_with_status_duration_and_criticality(client):
    wait_until(lambda: probe(client)[1]["status"] == "ok", timeout=15, what="readiness ok")
    status, report = probe(client)
    assert status == 200
    assert report["region"] == "eu-west-1"
    by_name = checks(report)
    assert set(by_name) == {"primary", "replica_1", "replica_2", "redis", "broker"}
    assert {name for name, entry in by_name.items() if entry["critical"]} == {"primary", "redis"}
    for entry in by_name.values():
        assert entry["status"] == "ok"
        assert isinstance(entry["duration_ms"], float)
        assert "message" not in entry
    for name in ("replica_1", "replica_2"):
        assert by_name[name]["max_lag_bytes"] == settings.ROUTING_MAX_REPLICA_LAG_BYTES
        assert by_name[name]["lag_bytes"] is not None


@pytest.mark.django_db
def test_ready_shows_the_lag_of_a_paused_replica_and_is_degraded_past_the_limit(client, harness):
    eu = harness.region("eu-west-1")
    eu.replicas[0].pause_replay()
    try:
        eu.primary.execute("SELECT pg_logical_emit_message(true, 'health-test', repeat('x', 10000))")
        seen: list[tuple[int, dict[str, Any]]] = []

        def paused_replica_alone_behind() -> bool:
            seen[:] = [probe(client)]
            by_name = checks(seen[0][1])
            return (by_name["replica_1"].get("lag_bytes") or 0) >= 10_000 and by_name["replica_2"][
                "lag_bytes"
            ] == 0

        wait_until(paused_replica_alone_behind, timeout=10, what="the paused replica's lag to show")
        status, report = seen[0]
        with override_settings(ROUTING_MAX_REPLICA_LAG_BYTES=1000):
            over_status, over_limit = probe(client)
    finally:
        eu.replicas[0].resume_replay()

    assert status == 200
    replica = checks(report)["replica_1"]
    assert replica["lag_bytes"] >= 10_000
    assert replica["lag_seconds"] is not None and replica["lag_seconds"] >= 0
    assert replica["probed_seconds_ago"] < 5
    assert checks(report)["replica_2"]["status"] == "ok"
    # Past the router's limit: a warning (the router stops reading from it), degraded, still 200.
    lagging = checks(over_limit)["replica_1"]
    assert (over_status, over_limit["status"], lagging["status"]) == (200, "degraded", "warning")
    assert lagging["message"].startswith(f"lag {lagging['lag_bytes']} bytes exceeds 1000")
    assert lagging["max_lag_bytes"] == 1000


@pytest.mark.django_db
def test_one_stopped_replica_makes_readiness_degraded_with_200(client, harness, as_region):
    us = harness.region("us-east-1")
    with as_region("us-east-1"):
        us.replicas[1].stop()
        try:
            status, report = probe(client)
        finally:
            us.replicas[1].restart()
    assert (status, report["status"], report["region"]) == (200, "degraded", "us-east-1")
    by_name = checks(report)
    assert by_name["replica_2"]["status"] == "failed"
    assert by_name["replica_2"]["message"] == "cannot query the replica"
    assert by_name["replica_1"]["status"] == "ok"
    assert by_name["primary"]["status"] == "ok"
    # Probes are public: no host or port of the failed server in the answer.
    assert str(us.replicas[1].port) not in json.dumps(report)


@pytest.mark.django_db
def test_redis_is_critical_unless_rate_limits_fail_open(client, harness, as_region):
    us = harness.region("us-east-1")
    with as_region("us-east-1"):
        us.redis.stop()
        try:
            closed_status, closed = probe(client)
            with override_settings(
                RATE_LIMIT_TIERS={"free": "10/60", "critical": "10/60"},
                RATE_LIMIT_FAIL_OPEN_TIERS=["free", "critical"],
            ):
                open_status, opened = probe(client)
        finally:
            us.redis.restart()
    assert (closed_status, closed["status"]) == (503, "unavailable")
    redis = checks(closed)["redis"]
    assert (redis["status"], redis["critical"]) == ("failed", True)
    assert redis["message"].startswith("Unable to connect to Redis")
    assert checks(closed)["broker"]["status"] == "failed"  # the same Redis server
    assert (open_status, opened["status"]) == (200, "degraded")
    assert checks(opened)["redis"]["critical"] is False


@pytest.mark.django_db
def test_a_slow_broker_is_a_warning(client):
    with override_settings(HEALTH_BROKER_SLOW_SECONDS=0.000001):
        status, report = probe(client)
    broker = checks(report)["broker"]
    assert (status, report["status"], broker["status"]) == (200, "degraded", "warning")
    assert broker["message"].startswith("slow: answered in")


@pytest.mark.django_db
@pytest.mark.slow
def test_stopped_primary_fails_readiness_with_503_while_liveness_stays_200(harness, region_web):
    us = harness.region("us-east-1")
    region_web("us-east-1")
    base = us.base_url
    assert http_get(f"{base}/health/live")[0] == 200
    assert http_get(f"{base}/health/ready")[0] == 200
    us.primary.stop()
    try:
        status, report = http_get(f"{base}/health/ready")
        live_status, live = http_get(f"{base}/health/live")
        startup_status, _ = http_get(f"{base}/health/startup")
    finally:
        us.primary.restart()
        wait_streaming(us.primary, replicas=len(us.replicas))
    assert (status, report["status"]) == (503, "unavailable")
    primary = checks(report)["primary"]
    assert (primary["status"], primary["critical"]) == ("failed", True)
    assert primary["message"] == "cannot query the primary database"
    # The replicas still answer.
    assert {checks(report)[r]["status"] for r in ("replica_1", "replica_2")} <= {"ok", "warning"}
    assert (live_status, live) == (200, {"status": "ok", "region": "us-east-1"})
    assert startup_status == 503
    wait_until(lambda: http_get(f"{base}/health/ready")[0] == 200, timeout=20, what="readiness to recover")
    assert http_get(f"{base}/health/live")[0] == 200


@pytest.mark.django_db
def test_probes_answer_whatever_host_the_load_balancer_sends(client):
    # The kubelet and ALB health checks send the pod's or node's IP as Host.
    assert client.get("/health/live", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/health/ready", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/admin/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400


@pytest.mark.django_db
def test_startup_fails_while_the_registry_does_not_name_this_region(client):
    with override_settings(REGION="xx-nowhere-1"):
        status, report = probe(client, "/health/startup")
    registry = checks(report)["registry"]
    assert (status, report["status"], registry["status"]) == (503, "unavailable", "failed")
    assert registry["message"] == "invalid: regions.E021"


@pytest.mark.django_db
@pytest.mark.slow
def test_startup_fails_until_migrations_are_applied(client, harness):
    us = harness.region("us-east-1")
    us.primary.execute("DROP DATABASE IF EXISTS startup_probe WITH (FORCE)", dbname="postgres")
    us.primary.execute("CREATE DATABASE startup_probe", dbname="postgres")
    fresh = databases_from_env(
        Env({"DATABASE_URL": us.primary.dsn("startup_probe")}),
        region="us-east-1",
        default_sqlite=Path("unused"),
    )
    try:
        with swapped_databases({"default": fresh["default"]}):
            before_status, before = probe(client, "/health/startup")
            call_command("migrate", interactive=False, verbosity=0)
            after_status, after = probe(client, "/health/startup")
    finally:
        us.primary.execute("DROP DATABASE IF EXISTS startup_probe WITH (FORCE)", dbname="postgres")
    migrations = checks(before)["migrations"]
    assert (before_status, migrations["status"]) == (503, "failed")
    assert migrations["unapplied"] > 0
    assert migrations["message"] == f"{migrations['unapplied']} migration(s) not applied"
    assert checks(before)["registry"]["status"] == "ok"
    assert (after_status, after["status"]) == (200, "ok")
