"""A replica that dies costs no read: the failover backend against real killed replicas."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
from django.db import OperationalError, connections, transaction
from django.test import override_settings
from prometheus_client import REGISTRY

from regions.devstack.processes import wait_until
from regions.routing import probe, unit_of_work
from regions.routing.health import ReplicaStatus, registry
from regions.routing.state import current_state
from saas.models import User

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def make_user(harness) -> User:
    user = User.objects.create(email=f"fo-{uuid.uuid4().hex[:8]}@example.test", home_region="eu-west-1")
    stack = harness.region("eu-west-1")
    lsn = stack.primary.current_lsn()
    for replica in stack.replicas:
        replica.wait_for_replay(lsn)
    probe.probe_once()
    return user


def status_of(alias: str) -> ReplicaStatus:
    status = registry.status(alias)
    assert status is not None
    return status


def fallbacks(alias: str, outcome: str) -> float:
    labels = {"region": "eu-west-1", "alias": alias, "outcome": outcome}
    return REGISTRY.get_sample_value("saas_db_fallback_total", labels) or 0.0


@pytest.mark.slow
def test_replica_killed_under_a_loop_of_reads_fails_no_read_and_comes_back(harness, routing):
    """Readers loop in threads; replica_1 is SIGKILLed, then restarted; the background probe runs."""
    user = make_user(harness)
    victim = harness.region("eu-west-1").replicas[0]
    stop = threading.Event()
    phase = ["before"]
    served: Counter[tuple[str, str]] = Counter()
    errors: list[str] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                with unit_of_work("request") as state:
                    current = phase[0]
                    try:
                        if not User.objects.filter(pk=user.pk).exists():
                            errors.append("row missing")
                    except Exception as exc:
                        errors.append(repr(exc))
                    served[(current, state.last_alias or "?")] += 1
        finally:
            connections.close_all()

    def count(current: str, alias: str | None = None) -> int:
        return sum(n for (p, a), n in list(served.items()) if p == current and alias in (None, a))

    before = fallbacks("replica_1", "replica") + fallbacks("replica_1", "primary")
    threads = [threading.Thread(target=reader, daemon=True) for _ in range(2)]
    with override_settings(ROUTING_PROBE_INTERVAL_SECONDS=0.2):
        probe.ensure_probing()
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: count("before", "replica_1") >= 10, timeout=30, what="reads on replica_1")
            phase[0] = "down"
            victim.kill()
            wait_until(lambda: count("down") >= 100, timeout=60, what="reads while replica_1 is down")
            assert not status_of("replica_1").up
            phase[0] = "restarted"
            victim.restart()
            wait_until(
                lambda: count("restarted", "replica_1") >= 5, timeout=60, what="reads back on replica_1"
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
            probe.stop_probing()
            if not victim.process.running():
                victim.restart()
    assert errors == []
    # Reads that were on replica_1's connections when it died were retried elsewhere.
    assert fallbacks("replica_1", "replica") + fallbacks("replica_1", "primary") > before
    # While it was down (after the first failure marked it), the others served.
    assert count("down", "replica_2") > 0


def test_a_refused_connection_is_retried_elsewhere_and_the_replica_marked_down(harness, routing):
    user = make_user(harness)
    victim = harness.region("eu-west-1").replicas[0]
    connections["replica_1"].close()
    victim.stop()  # the router still believes it is up (no probe since)
    try:
        assert status_of("replica_1").up
        served: Counter[str | None] = Counter()
        for _ in range(30):
            with unit_of_work("request") as state:
                assert User.objects.filter(pk=user.pk).exists()
                served[state.last_alias] += 1
        assert served["replica_1"] == 0
        assert served["replica_2"] == 30
        status = status_of("replica_1")
        assert not status.up and "OperationalError" in status.detail
        # With no replica left, the primary serves.
        registry.mark_down("replica_2", "test")
        with unit_of_work("request") as state:
            assert User.objects.filter(pk=user.pk).exists()
            assert state.last_alias == "default"
    finally:
        victim.restart()


def test_explicit_replica_transactions_are_not_silently_moved(harness, routing):
    make_user(harness)
    victim = harness.region("eu-west-1").replicas[0]
    try:
        with pytest.raises(OperationalError), transaction.atomic(using="replica_1"):
            User.objects.using("replica_1").exists()
            victim.kill()
            User.objects.using("replica_1").count()  # the snapshot is gone: this must fail
    finally:
        connections["replica_1"].close()
        victim.restart()


def test_failing_over_needs_a_healthy_target_and_keeps_the_cursor_usable(harness, routing):
    """Iterating a queryset whose replica died between two statements of one unit."""
    users = [make_user(harness) for _ in range(3)]
    ids = {u.pk for u in users}
    victim = harness.region("eu-west-1").replicas[0]
    with unit_of_work("request") as state:
        registry.mark_down("replica_2", "test")  # so this unit's replica is replica_1
        assert User.objects.filter(pk__in=ids).count() == 3
        assert state.last_alias == "replica_1"
        victim.kill()
        try:
            assert {u.pk for u in User.objects.filter(pk__in=ids)} == ids
            assert current_state().last_alias == "default"
        finally:
            victim.restart()
