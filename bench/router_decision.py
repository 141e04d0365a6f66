"""Routing decision cost per query: ``ReadWriteRouter`` vs django-multidb-router's ``PinningReplicaRouter``.

Starts eu-west-1's PostgreSQL primary and two streaming replicas (the test
harness), probes them once (the background probe is off, so nothing else runs
in the process), then times ``django.db.router.db_for_read(User)``, the call
every ORM read makes, with each router installed in turn. Rounds alternate
between the routers; each figure is the median over rounds of the mean cost
of one call in a tight loop of ``N`` calls.

Cases, ours / theirs:

- read, nothing written: the unit's replica (sticky) / the next replica (cycle);
- read after a write: the primary / the primary (pinned thread);
- request start + first read: a fresh unit (contextvars set and reset) and
  its first decision, which picks a replica / the middleware's thread-local
  flag and a read;
- the same with a token the probe already knows is replayed / with the pin cookie;
- read inside ``transaction.atomic()``: the primary (theirs: not handled, a replica);
- informational: a fresh token ahead of the probe's view, so the one
  ``pg_last_wal_replay_lsn()`` query is made (LSN cache off).

    .venv/bin/python -m bench.router_decision            # 15 rounds x 20,000 calls
    .venv/bin/python -m bench.router_decision --quick    # 5 rounds x 5,000 calls
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import Row, cli

NAME = "router_decision"


def _per_call_ns(call: Callable[[], Any], n: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(n):
        call()
    return (time.perf_counter_ns() - started) / n


def run(quick: bool) -> list[Row]:
    from tests.harness.stack import harness_session

    rounds, n = (5, 5_000) if quick else (15, 20_000)
    with harness_session(codes=("eu-west-1",), replicas=2) as harness:
        os.environ.update(harness.region("eu-west-1").env())
        os.environ.update(LOG_LEVEL="WARNING", ROUTING_PROBE_INTERVAL_SECONDS="0")
        import django

        django.setup()
        import multidb
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connections, router, transaction
        from django.test.utils import override_settings
        from multidb import pinning

        from regions.router import ReadWriteRouter
        from regions.routing import unit_of_work
        from regions.routing.decisions import fresh_replay_lsn
        from regions.routing.health import registry
        from regions.routing.probe import probe_once, stop_probing
        from regions.routing.state import RoutingState, current_state
        from saas.models import User

        call_command("migrate", interactive=False, verbosity=0)
        settings.REPLICA_DATABASES = list(settings.DATABASE_REPLICAS)  # multidb's setting
        probe_once()
        assert set(registry.usable) == {"replica_1", "replica_2"}, registry.statuses()
        ours, theirs = ReadWriteRouter(), multidb.PinningReplicaRouter()
        known = min(registry.replay_lsn(alias) for alias in registry.usable)

        def install(instance: Any) -> None:
            router.routers = [instance]

        def read() -> str:
            return router.db_for_read(User)

        def first_read_of_a_unit() -> str:
            with unit_of_work("request"):
                return router.db_for_read(User)

        def first_read_with_replayed_token() -> str:
            state = RoutingState(kind="request", floor_lsn=known)
            with unit_of_work("request", state):
                return router.db_for_read(User)

        cases: dict[str, dict[str, Callable[[], float]]] = {}

        def ours_case(setup: Callable[[], None], call: Callable[[], Any]) -> Callable[[], float]:
            def measure() -> float:
                install(ours)
                with unit_of_work("request"):
                    setup()
                    call()  # warm: the unit's replica is chosen
                    return _per_call_ns(call, n)

            return measure

        def theirs_case(pinned: bool, call: Callable[[], Any]) -> Callable[[], float]:
            def measure() -> float:
                install(theirs)
                (pinning.pin_this_thread if pinned else pinning.unpin_this_thread)()
                try:
                    return _per_call_ns(call, n)
                finally:
                    pinning.unpin_this_thread()

            return measure

        def wrote() -> None:
            current_state().wrote = True

        def nothing() -> None:
            return None

        def ours_atomic() -> float:
            install(ours)
            with unit_of_work("request"), transaction.atomic():
                return _per_call_ns(read, n)

        def theirs_atomic() -> float:
            install(theirs)
            with transaction.atomic():
                return _per_call_ns(read, n)

        def ours_plain(call: Callable[[], Any]) -> Callable[[], float]:
            def measure() -> float:
                install(ours)
                return _per_call_ns(call, n)

            return measure

        cases["read, nothing written"] = {
            "ours": ours_case(nothing, read),
            "theirs": theirs_case(False, read),
        }
        cases["read after a write"] = {"ours": ours_case(wrote, read), "theirs": theirs_case(True, read)}

        # Per request: ours opens a unit (contextvars) and makes its first decision;
        # theirs sets its thread-local pin flag, as its middleware does, and reads.
        def theirs_request(pinned: bool) -> Callable[[], str]:
            flag = pinning.pin_this_thread if pinned else pinning.unpin_this_thread

            def call() -> str:
                flag()
                return router.db_for_read(User)

            return call

        cases["request start + first read"] = {
            "ours": ours_plain(first_read_of_a_unit),
            "theirs": theirs_case(False, theirs_request(False)),
        }
        cases["request start + first read, token already replayed (theirs: pin cookie)"] = {
            "ours": ours_plain(first_read_with_replayed_token),
            "theirs": theirs_case(True, theirs_request(True)),
        }
        cases["read inside transaction.atomic()"] = {"ours": ours_atomic, "theirs": theirs_atomic}

        # Sanity: the routers decide what the cases say.
        install(ours)
        with unit_of_work("request"):
            assert read().startswith("replica_")
            wrote()
            assert read() == "default"
        assert first_read_with_replayed_token().startswith("replica_")
        install(theirs)
        assert read().startswith("replica_")

        results: dict[str, dict[str, list[float]]] = {c: {"ours": [], "theirs": []} for c in cases}
        for index in range(rounds):
            order = ("ours", "theirs") if index % 2 == 0 else ("theirs", "ours")
            for case, measures in cases.items():
                for who in order:
                    results[case][who].append(measures[who]())

        # Informational: a fresh token makes its one replay-LSN query (cache off).
        install(ours)
        fresh_samples = []
        with override_settings(ROUTING_REPLAY_LSN_CACHE_SECONDS=0):
            for _ in range(200 if quick else 1000):
                # A floor far past what the replicas have: the router asks one, then reads the primary.
                state = RoutingState(kind="request", floor_lsn=known + (1 << 40))
                started = time.perf_counter_ns()
                with unit_of_work("request", state):
                    router.db_for_read(User)
                fresh_samples.append(time.perf_counter_ns() - started)
            fresh_replay_lsn("replica_1")  # the query works (and raises if not)
        stop_probing()
        connections.close_all()

    rows: list[Row] = []
    print("\ncase | ours (ns/call) | django-multidb-router (ns/call) | ratio", file=sys.stderr)
    for case, timings in results.items():
        mine, baseline = statistics.median(timings["ours"]), statistics.median(timings["theirs"])
        print(f"{case} | {mine:,.0f} | {baseline:,.0f} | {mine / baseline:.2f}x", file=sys.stderr)
        per_request = case.startswith("request start")
        ratio = mine / baseline
        rows.append(
            Row(
                benchmark=NAME,
                figure=f"router {'cost per request' if per_request else 'decision cost per query'}: {case}",
                value=mine / 1000,
                unit="µs",
                baseline=baseline / 1000,
                baseline_label="PinningReplicaRouter",
                target="informational (ours opens a causal unit)" if per_request else "ratio <= 1.0x",
                passed=None if per_request else ratio <= 1.0,
                notes=f"{rounds} rounds x {n} calls, median of round means; "
                "both through django.db.router.db_for_read(User)",
            )
        )
    fresh = statistics.median(fresh_samples) / 1000
    rows.append(
        Row(
            benchmark=NAME,
            figure="first read of a unit with a fresh token (one replay-LSN query, cache off)",
            value=fresh,
            unit="µs",
            baseline=None,
            baseline_label="—",
            target="informational: the one query a fresh token may cost",
            passed=None,
        )
    )
    return rows


def main() -> None:
    cli(NAME, __doc__, run)


if __name__ == "__main__":
    main()
