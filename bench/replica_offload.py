"""Replica offload and read-your-writes violations under real replica lag.

Starts eu-west-1's PostgreSQL primary and two streaming replicas (the test
harness) and delays every replica's replay by 200 ms with PostgreSQL's own
``recovery_min_apply_delay``, so the lag is real. 50 simulated users, each
with a row of their own, send requests through Django's full request handling
(test client, cookies kept per user): 10 % writes of their own row, 90 % reads
(half their own row, half someone else's), separated by exponential think
times. Every user's sequence of operations and think times is the same for
every router (seeded). A read of one's own row that returns a value older
than one's last acknowledged write is a read-your-writes violation.

Routers, each for the same duration after a warm-up:

- ``ReadWriteRouter`` with ``RoutingMiddleware`` (LSN causal tokens);
- django-multidb-router's ``PinningReplicaRouter`` with its middleware and a
  15 s pin cookie after every POST (the baseline the issue names);
- control: multidb's ``ReplicaRouter`` (every read on a replica, no pin), to
  show the lag is real and the check can fail.

    .venv/bin/python -m bench.replica_offload            # 15 s warm-up + 45 s per router
    .venv/bin/python -m bench.replica_offload --quick    # 5 s warm-up + 15 s per router
"""

from __future__ import annotations

import heapq
import os
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import Row, cli

NAME = "replica_offload"
USERS = 50
WRITE_SHARE = 0.10
LAG = "200ms"
WORKERS = 8
SEED = 20261203

urlpatterns: list[Any] = []  # filled in by _routes() once Django is set up


def _routes() -> None:
    from django.db import router
    from django.http import HttpRequest, JsonResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    from saas.models import User

    @csrf_exempt
    def write(request: HttpRequest, pk: str) -> JsonResponse:
        User.objects.filter(pk=pk).update(name=request.POST["value"])
        return JsonResponse({"ok": True})

    def read(request: HttpRequest, pk: str) -> JsonResponse:
        alias = router.db_for_read(User)  # exactly where this read goes
        name = User.objects.using(alias).filter(pk=pk).values_list("name", flat=True).first()
        return JsonResponse({"value": int(name or 0), "alias": alias})

    urlpatterns[:] = [path("u/<uuid:pk>/write", write), path("u/<uuid:pk>", read)]


@dataclass
class Tally:
    reads: int = 0
    replica_reads: int = 0
    own_reads: int = 0
    own_replica_reads: int = 0
    writes: int = 0
    violations: int = 0
    errors: int = 0
    read_ms: list[float] = field(default_factory=list)


def _phase(
    label: str,
    *,
    middleware: list[str],
    routers: list[str],
    warmup: float,
    measure: float,
    think: float,
    ids: list[str],
) -> Tally:
    from django.db import connections
    from django.test import Client
    from django.test.utils import override_settings

    tally = Tally()
    lock = threading.Lock()
    with override_settings(MIDDLEWARE=middleware, DATABASE_ROUTERS=routers):
        clients = [Client() for _ in ids]
        streams = [random.Random(SEED + index) for index in range(len(ids))]
        written = [0] * len(ids)
        begin = time.monotonic()
        measure_from, end = begin + warmup, begin + warmup + measure
        heap = [(begin + streams[i].expovariate(1 / think), i) for i in range(len(ids))]
        heapq.heapify(heap)
        ready = threading.Condition()

        expiries: list[dict[str, float]] = [{} for _ in ids]

        def send(i: int, method: str, path: str, data: dict[str, str] | None = None) -> Any:
            """A request from user ``i``'s browser: cookies expire as ``Max-Age`` says.

            (Django's test client keeps cookies forever, which would pin a time
            pin's users to the primary for good.)
            """
            client, now = clients[i], time.monotonic()
            for name, expires in list(expiries[i].items()):
                if expires <= now:
                    client.cookies.pop(name, None)
                    del expiries[i][name]
            response = client.post(path, data) if method == "POST" else client.get(path)
            for name, morsel in response.cookies.items():
                if morsel["max-age"] != "":
                    expiries[i][name] = time.monotonic() + int(morsel["max-age"])
            return response

        def operate(i: int) -> None:
            rng = streams[i]
            counted = time.monotonic() >= measure_from
            if rng.random() < WRITE_SHARE:
                value = written[i] + 1
                response = send(i, "POST", f"/u/{ids[i]}/write", {"value": str(value)})
                if response.status_code != 200:
                    raise RuntimeError(f"write answered {response.status_code}")
                written[i] = value
                if counted:
                    with lock:
                        tally.writes += 1
                return
            own = rng.random() < 0.5
            target = i if own else rng.randrange(len(ids))
            started = time.perf_counter()
            response = send(i, "GET", f"/u/{ids[target]}")
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"read answered {response.status_code}")
            body = response.json()
            if not counted:
                return
            with lock:
                tally.reads += 1
                tally.read_ms.append(elapsed)
                on_replica = body["alias"] != "default"
                tally.replica_reads += on_replica
                if target == i:
                    tally.own_reads += 1
                    tally.own_replica_reads += on_replica
                    tally.violations += body["value"] < written[i]

        def worker() -> None:
            try:
                while True:
                    with ready:
                        while True:
                            now = time.monotonic()
                            if now >= end:
                                return
                            if heap and heap[0][0] <= now:
                                _, i = heapq.heappop(heap)
                                break
                            ready.wait(min(0.05, heap[0][0] - now) if heap else 0.05)
                    try:
                        operate(i)
                    except Exception as exc:
                        with lock:
                            tally.errors += 1
                        print(f"[{label}] {exc!r}", file=sys.stderr)
                    with ready:
                        heapq.heappush(heap, (time.monotonic() + streams[i].expovariate(1 / think), i))
                        ready.notify()
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker, name=f"user-worker-{n}") for n in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return tally


def run(quick: bool) -> list[Row]:
    from tests.harness.stack import harness_session

    warmup, measure = (5.0, 15.0) if quick else (15.0, 45.0)
    think = 1.0
    with harness_session(codes=("eu-west-1",), replicas=2) as harness:
        stack = harness.region("eu-west-1")
        for replica in stack.replicas:
            with (replica.data_dir / "postgresql.conf").open("a") as conf:
                conf.write(f"\nrecovery_min_apply_delay = '{LAG}'\n")
            replica.execute("SELECT pg_reload_conf()")
        os.environ.update(stack.env())
        os.environ.update(LOG_LEVEL="WARNING", ROUTING_PROBE_INTERVAL_SECONDS="0.5")
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connections
        from django.test.utils import override_settings

        from regions.routing.probe import stop_probing
        from saas.models import User

        call_command("migrate", interactive=False, verbosity=0)
        _routes()
        for replica in stack.replicas:
            delay = replica.execute("SHOW recovery_min_apply_delay")[0][0]
            assert delay == LAG, delay
        users = [
            User.objects.create(email=f"offload-{n}@bench.test", home_region="eu-west-1", name="0")
            for n in range(USERS)
        ]
        lsn = stack.primary.current_lsn()
        for replica in stack.replicas:
            replica.wait_for_replay(lsn, timeout=30)
        ids = [str(user.pk) for user in users]
        settings.REPLICA_DATABASES = list(settings.DATABASE_REPLICAS)  # multidb's setting
        base = ["django.middleware.common.CommonMiddleware"]
        phases = {
            "LSN tokens (ReadWriteRouter)": (
                ["regions.routing.middleware.RoutingMiddleware", *base],
                ["regions.router.ReadWriteRouter"],
            ),
            "15 s time pin (PinningReplicaRouter)": (
                ["multidb.middleware.PinningRouterMiddleware", *base],
                ["multidb.PinningReplicaRouter"],
            ),
            "control: replica always (ReplicaRouter)": (base, ["multidb.ReplicaRouter"]),
        }
        tallies: dict[str, Tally] = {}
        with override_settings(
            ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"], DEBUG=False, MULTIDB_PINNING_SECONDS=15
        ):
            for label, (middleware, routers) in phases.items():
                User.objects.update(name="0")
                lsn = stack.primary.current_lsn()
                for replica in stack.replicas:
                    replica.wait_for_replay(lsn, timeout=30)
                tallies[label] = _phase(
                    label,
                    middleware=middleware,
                    routers=routers,
                    warmup=warmup,
                    measure=measure,
                    think=think,
                    ids=ids,
                )
                tally = tallies[label]
                print(
                    f"[{label}] reads {tally.reads}, on replicas {tally.replica_reads}, "
                    f"writes {tally.writes}, violations {tally.violations}, errors {tally.errors}",
                    file=sys.stderr,
                )
        stop_probing()
        connections.close_all()

    rows: list[Row] = []
    ours = tallies["LSN tokens (ReadWriteRouter)"]
    pin = tallies["15 s time pin (PinningReplicaRouter)"]
    control = tallies["control: replica always (ReplicaRouter)"]
    workload = (
        f"{USERS} users, {WRITE_SHARE:.0%} writes, replay delayed {LAG}, think time exp(mean {think:g} s), "
        f"{measure:g} s measured after {warmup:g} s warm-up"
    )
    for label, tally in tallies.items():
        share = 100 * tally.replica_reads / max(1, tally.reads)
        baseline = pin if tally is not pin else None
        rows.append(
            Row(
                benchmark=NAME,
                figure=f"{label}: reads served by replicas",
                value=share,
                unit="%",
                baseline=None if baseline is None else 100 * baseline.replica_reads / max(1, baseline.reads),
                baseline_label="15 s time pin" if baseline is not None else "—",
                target=">= 95 %" if tally is ours else "informational",
                passed=share >= 95 if tally is ours else None,
                notes=(
                    f"{tally.reads} reads ({tally.own_reads} of one's own row, "
                    f"{100 * tally.own_replica_reads / max(1, tally.own_reads):.1f} % of those on replicas), "
                    f"{tally.writes} writes, {tally.errors} errors, median read "
                    f"{statistics.median(tally.read_ms) if tally.read_ms else 0:.2f} ms; {workload}"
                ),
            )
        )
        rows.append(
            Row(
                benchmark=NAME,
                figure=f"{label}: read-your-writes violations",
                value=tally.violations,
                unit="reads",
                baseline=None,
                baseline_label="—",
                target="0" if tally is not control else "> 0 (shows the lag is real)",
                passed=tally.violations == 0 if tally is not control else tally.violations > 0,
            )
        )
    return rows


def main() -> None:
    cli(NAME, __doc__, run)


if __name__ == "__main__":
    main()
