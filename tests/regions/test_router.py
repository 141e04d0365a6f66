"""The routing rules of ``regions.router.ReadWriteRouter`` against the real replicas."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from django.db import router, transaction
from django.test import override_settings

from regions.router import ReadWriteRouter
from regions.routing import note_write, primary, unit_of_work
from regions.routing.health import ProbeResult, registry
from regions.routing.probe import probe_once
from regions.routing.state import current_state
from saas.models import User

REPLICAS = ("replica_1", "replica_2")
ALL = pytest.mark.django_db(transaction=True, databases="__all__")


def read_alias() -> str:
    return router.db_for_read(User)


@pytest.mark.django_db
def test_db_fixture_tests_run_in_a_transaction_so_they_read_the_primary():
    with unit_of_work("request"):
        assert read_alias() == "default"
        assert current_state().reasons == {"primary:atomic": 1}


@ALL
def test_reads_go_to_a_replica_and_inside_atomic_to_the_primary(routing):
    with unit_of_work("request"):
        assert read_alias() in REPLICAS
        with transaction.atomic():
            assert read_alias() == "default"
            assert User.objects.filter(pk=uuid.uuid4()).db == "default"
        assert read_alias() in REPLICAS


@ALL
def test_nested_primary_unwinds_correctly_also_on_errors(routing):
    with unit_of_work("request"):
        with primary():
            assert read_alias() == "default"
            with primary():
                assert read_alias() == "default"
            assert read_alias() == "default"  # the outer pin still holds
            with pytest.raises(ZeroDivisionError), primary():
                1 / 0  # noqa: B018
            assert read_alias() == "default"
        assert read_alias() in REPLICAS

        pin = primary()  # one instance, entered twice
        with pin, pin:
            assert read_alias() == "default"
        assert read_alias() in REPLICAS


@ALL
def test_primary_as_a_decorator_on_sync_and_async_functions(routing):
    @primary()
    def sync_read() -> str:
        return read_alias()

    @primary()
    async def async_read() -> str:
        return read_alias()

    async def unpinned_sibling(started: asyncio.Event, release: asyncio.Event) -> str:
        await started.wait()
        alias = read_alias()  # runs while the pinned task is suspended inside primary()
        release.set()
        return alias

    async def pinned(started: asyncio.Event, release: asyncio.Event) -> str:
        with primary():
            started.set()
            await release.wait()
            return read_alias()

    async def both() -> tuple[str, str, str]:
        started, release = asyncio.Event(), asyncio.Event()
        sibling, pinned_alias = await asyncio.gather(
            unpinned_sibling(started, release), pinned(started, release)
        )
        return await async_read(), sibling, pinned_alias

    with unit_of_work("request"):
        assert sync_read() == "default"
        assert read_alias() in REPLICAS
        decorated, sibling, pinned_alias = asyncio.run(both())
        assert (decorated, pinned_alias) == ("default", "default")
        assert sibling in REPLICAS  # a pin never leaks into a concurrent task
        assert read_alias() in REPLICAS


@ALL
def test_a_unit_that_wrote_reads_the_primary_and_the_next_unit_starts_clean(routing):
    with unit_of_work("request"):
        assert read_alias() in REPLICAS
        User.objects.create(email=f"w-{uuid.uuid4().hex[:8]}@example.test", home_region="eu-west-1")
        assert read_alias() == "default"
        assert current_state().reasons["primary:wrote"] == 1
    with unit_of_work("task"):
        assert read_alias() in REPLICAS
        note_write()  # raw SQL writes say so explicitly
        assert read_alias() == "default"


@ALL
def test_the_replica_is_sticky_within_a_unit_and_spread_across_units(routing):
    chosen: Counter[str] = Counter()
    for _ in range(40):
        with unit_of_work("request"):
            first = read_alias()
            assert {read_alias() for _ in range(5)} == {first}
            chosen[first] += 1
    assert set(chosen) == set(REPLICAS)


@ALL
def test_a_replica_marked_down_serves_nothing_until_it_probes_healthy(routing):
    registry.mark_down("replica_1", "test")
    with unit_of_work("request"):
        assert {read_alias() for _ in range(20)} == {"replica_2"}
    registry.mark_down("replica_2", "test")
    with unit_of_work("task"):
        assert read_alias() == "default"
        assert current_state().reasons == {"primary:replicas_down": 1}
    probe_once()
    assert set(registry.usable) == set(REPLICAS)


@ALL
def test_a_probe_that_started_before_a_failure_does_not_revive_the_replica(routing):
    started = time.monotonic()
    registry.mark_down("replica_1", "connection refused")
    registry.apply_probe(
        generation=registry.generation,
        started_at=started,
        primary_lsn=None,
        results=[ProbeResult(alias="replica_1", in_recovery=True, replay_lsn=1)],
        now=time.time(),
    )
    status: Any = registry.status("replica_1")
    assert not status.up
    probe_once()  # a probe that starts after the failure may
    status = registry.status("replica_1")
    assert status.up


@ALL
def test_replicas_lagging_past_either_limit_are_skipped(harness, pause_replay):
    pause_replay()
    User.objects.create(email=f"lag-{uuid.uuid4().hex[:8]}@example.test", home_region="eu-west-1")
    with override_settings(ROUTING_MAX_REPLICA_LAG_BYTES=1):
        probe_once()
        with unit_of_work("task"):
            assert read_alias() == "default"
            assert current_state().reasons == {"primary:replicas_lagging": 1}
    probe_once()
    with unit_of_work("task"):
        assert read_alias() in REPLICAS
    with override_settings(ROUTING_MAX_REPLICA_LAG_SECONDS=0.000001):
        probe_once()
        assert registry.usable == ()
        assert all((s.lag_seconds or 0) > 0 for s in registry.statuses().values())


@ALL
def test_models_can_ask_to_be_read_from_the_primary(routing):
    class Outbox:  # stands for a model class declaring the flag
        routing_primary_only = True

    with unit_of_work("request"):
        model: Any = Outbox
        assert router.db_for_read(model) == "default"
        assert read_alias() in REPLICAS


@ALL
def test_without_replicas_everything_uses_default(routing):
    with override_settings(DATABASE_REPLICAS=[]), unit_of_work("request"):
        assert read_alias() == "default"
        assert current_state().reasons == {}  # no decision work at all
        assert registry.probed is False


def test_writes_and_migrations_go_to_the_primary_only():
    rw = ReadWriteRouter()
    assert rw.db_for_write(User) == "default"
    assert rw.allow_migrate("default", "saas") is None
    assert rw.allow_migrate("replica_1", "saas") is False
    a, b = User(), User()
    a._state.db, b._state.db = "default", "replica_2"
    assert rw.allow_relation(a, b) is True
    b._state.db = "elsewhere"
    assert rw.allow_relation(a, b) is None


# --- The unit's cached decision (regions.routing.decisions.route_read) ---------------------


@ALL
def test_cached_reads_are_tallied_and_every_field_the_decision_depends_on_drops_the_cache(routing):
    with unit_of_work("request") as state:
        replica = read_alias()
        assert {read_alias() for _ in range(4)} == {replica}
        assert state.fast_alias == replica and state.fast_hits == 3  # answered from the cache
        assert state.reasons == {"replica:healthy": 5}  # cached reads count like decided ones

        state.wrote = True  # set directly, as tests and scripts may: no call site to remember
        assert read_alias() == "default"
        assert read_alias() == "default"
    with unit_of_work("request") as state:
        read_alias()
        state.forced_reason = "token_invalid"
        assert read_alias() == "default"
    with unit_of_work("request") as state:
        read_alias()
        state.raise_floor(1 << 60)  # a token far ahead of every replica
        assert read_alias() == "default"
        assert state.reasons["primary:token_ahead"] == 1


@ALL
def test_a_cached_replica_is_dropped_when_the_replica_stops_being_usable(routing):
    with unit_of_work("request"):
        replica = read_alias()
        read_alias()  # cached now
        registry.mark_down(replica, "test")
        other = read_alias()
        assert other != replica and other in REPLICAS


@ALL
def test_primary_pins_and_atomic_blocks_still_decide_after_a_replica_was_cached(routing):
    with unit_of_work("request"):
        replica = read_alias()
        read_alias()
        with primary():
            assert read_alias() == "default"
        assert read_alias() == replica
        with transaction.atomic():
            assert read_alias() == "default"
            assert read_alias() == "default"
        assert read_alias() == replica
        assert current_state().reasons["primary:atomic"] == 2


@ALL
def test_a_state_shared_with_a_thread_inside_atomic_never_serves_that_thread_a_replica(routing):
    """A unit's state shared by two threads (``sync_to_async(thread_sensitive=False)``):
    the thread inside ``atomic()`` reads the primary even after the other one decided a replica."""
    entered, decided, done = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, str] = {}

    def in_atomic(ctx: contextvars.Context) -> None:
        def body() -> None:
            with transaction.atomic():
                seen["first"] = read_alias()
                entered.set()
                decided.wait(10)
                seen["after_other_decided"] = read_alias()
            done.set()

        ctx.run(body)

    with unit_of_work("request") as state:
        read_alias()
        read_alias()  # a replica cached
        worker = threading.Thread(target=in_atomic, args=(contextvars.copy_context(),))
        worker.start()
        assert entered.wait(10)
        # The worker's read cached "default" on the shared state: safe here, only less offload.
        assert read_alias() == "default"
        state.forget_decision()
        outside = read_alias()  # decided in this thread, not in a transaction: a replica ...
        assert outside in REPLICAS
        assert state.fast_epoch == -1  # ... not cached while the other thread's transaction is open
        decided.set()
        assert done.wait(10)
        worker.join(10)
    assert seen == {"first": "default", "after_other_decided": "default"}


@ALL
def test_a_change_of_user_drops_the_cache_so_the_next_read_merges_that_users_token(routing, rf):
    # Logging in also writes last_login (which drops the cache too); logging out writes nothing.
    from django.contrib.auth.signals import user_logged_out

    with unit_of_work("request") as state:
        read_alias()
        read_alias()
        assert state.fast_epoch != -1
        user_logged_out.send(sender=User, request=rf.get("/"), user=None)
        assert state.fast_epoch == -1
        assert not state.wrote


@ALL
def test_the_primary_reports_atomic_blocks_and_never_fails_over(routing):
    from django.db import connections

    from regions.routing.backend.base import DatabaseWrapper, _may_fail_over
    from regions.routing.state import epoch

    primary_db = connections["default"]
    assert isinstance(primary_db, DatabaseWrapper)  # settings.env gives the primary the backend too
    assert not primary_db.in_atomic_block
    assert not _may_fail_over(primary_db)  # a broken primary connection is an error, not a retry
    assert _may_fail_over(connections["replica_1"])
    before = epoch.value
    with transaction.atomic():
        inside = epoch.value
        assert inside > before and primary_db in epoch.atomic
        with transaction.atomic():  # a savepoint: no change
            assert epoch.value == inside
    assert epoch.value > inside and primary_db not in epoch.atomic
