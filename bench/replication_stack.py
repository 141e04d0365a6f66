"""Two real regions for the replication benchmarks: PostgreSQL, Redis, gunicorn, Celery worker and beat.

The benchmark process acts as eu-west-1's web tier (it writes through the
directory service); eu-west-1's real Celery worker drains; us-east-1's real
gunicorn applies. No streaming replicas: they play no part in replication.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from regions.devstack.processes import ManagedProcess, wait_until
from tests.harness.stack import REPO_ROOT, Harness, harness_session

EU, US = "eu-west-1", "us-east-1"


@dataclass
class Stack:
    harness: Harness
    processes: list[ManagedProcess] = field(default_factory=list)

    def start(self, name: str, code: str, argv: list[str], **env: str) -> ManagedProcess:
        stack = self.harness.region(code)
        process = ManagedProcess(
            name=name,
            argv=[sys.executable, "-m", *argv],
            log_path=self.harness.root / f"{name}-{len(self.processes)}.log",
            env={**stack.process_env(), **env},
            cwd=REPO_ROOT,
        )
        process.start()
        self.processes.append(process)
        return process

    def web(self, code: str = US, workers: int = 2) -> ManagedProcess:
        stack = self.harness.region(code)
        server = self.start(
            f"{code}-web",
            code,
            [
                "gunicorn",
                "saas.wsgi:application",
                f"--bind=127.0.0.1:{stack.web_port}",
                f"--workers={workers}",
                "--threads=4",
                "--graceful-timeout=5",
            ],
        )

        def live() -> bool:
            return httpx.get(f"{stack.base_url}/health/live", timeout=2).status_code == 200

        wait_until(live, timeout=60, interval=0.1, what=f"gunicorn for {code}")
        return server

    def worker(self, code: str = EU, concurrency: int = 2, **env: str) -> ManagedProcess:
        self.harness.region(code).redis.client(1).flushdb()
        worker = self.start(
            f"{code}-worker",
            code,
            [
                "celery",
                "-A",
                "saas",
                "worker",
                "-Q",
                "celery,replication",
                f"--concurrency={concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
                f"--hostname={code}-{len(self.processes)}@%h",
            ],
            **env,
        )
        wait_until(
            lambda: " ready." in worker.log_path.read_text(errors="replace"),
            timeout=60,
            interval=0.2,
            what=f"celery worker for {code}",
        )
        return worker

    def beat(self, code: str = EU) -> ManagedProcess:
        schedule = self.harness.root / f"{code}-beat-schedule"
        return self.start(
            f"{code}-beat",
            code,
            ["celery", "-A", "saas", "beat", "--loglevel=WARNING", f"--schedule={schedule}"],
        )

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):
                process.stop(timeout=15)


@contextlib.contextmanager
def two_regions() -> Iterator[Stack]:
    """Start both regions' databases and Redis, migrate them, and act as eu-west-1."""
    with harness_session(codes=(EU, US), replicas=0) as harness:
        os.environ.update(harness.region(EU).env())
        import django

        django.setup()
        from django.core.management import call_command

        from tests.harness.acting import acting_as

        for code in (EU, US):
            with acting_as(harness.region(code)):
                call_command("migrate", interactive=False, verbosity=0)
        stack = Stack(harness)
        try:
            with acting_as(harness.region(EU)):
                yield stack
        except BaseException:
            for process in stack.processes:
                print(f"--- {process.name} (last lines)\n{process.tail(25)}", file=sys.stderr)
            raise
        finally:
            stack.stop_all()
            from django.db import connections

            connections.close_all()


def write_at_rate(*, rate: float, seconds: float, prefix: str, writers: int = 4) -> dict[str, float]:
    """Create directory entries at ``rate`` per second in total, one transaction each; key -> commit time.

    Several writer threads (each its own database connection), as several web
    processes would write: one thread alone cannot keep the pace on a loaded
    2-core machine.
    """
    import threading

    from django.db import connections

    from residency.models import DirectoryEntry
    from residency.services import directory_entry_upsert

    committed: dict[str, float] = {}
    total = int(rate * seconds)
    started = time.perf_counter()

    def write(offset: int) -> None:
        try:
            for i in range(offset, total, writers):
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                key = f"{prefix}-{i}"
                directory_entry_upsert(kind=DirectoryEntry.Kind.ORGANIZATION, key=key, home_region=EU)
                committed[key] = time.time()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    achieved = total / (time.perf_counter() - started)
    print(f"  wrote {len(committed)} entries at {achieved:.0f}/s", file=sys.stderr)
    return committed


def applied_at(harness: Harness, keys: list[str]) -> dict[str, float]:
    """When each key was applied in us-east-1 (its entry's ``updated_at``), read straight from its primary."""
    rows = harness.region(US).primary.execute(
        "SELECT key, extract(epoch FROM updated_at) FROM residency_directoryentry "
        "WHERE kind = 'org' AND key = ANY(%s)",
        (keys,),
    )
    return {str(key): float(epoch) for key, epoch in rows}  # type: ignore[arg-type]


def wait_applied(harness: Harness, keys: list[str], timeout: float) -> dict[str, float]:
    found: dict[str, float] = {}

    def done() -> bool:
        found.update(applied_at(harness, keys))
        return len(found) == len(keys)

    wait_until(done, timeout=timeout, interval=0.2, what=f"{len(keys)} entries in {US}")
    return found


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]
