"""The stack the chaos scenarios break: two regions of ``make run`` as real processes.

``ChaosStack`` wraps a running ``regions.devstack`` ``Stack`` (eu-west-1 and
us-east-1, each with a PostgreSQL primary and streaming replica, a Redis for
cache/rate limits/breakers, a second Redis as the Celery broker, a worker,
beat and gunicorn) with what a scenario needs: URLs, DSNs, the managed
processes to stop or kill by PID, readiness, and ``ensure_whole()`` to bring
back whatever a scenario left stopped. The fixture is in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from regions.devstack.processes import chown_for_service, free_port, pid_alive, wait_until
from regions.devstack.stack import RegionProcesses, Stack, StackPlan
from tests.harness.pii_guard import GUARD as PII_GUARD
from tests.harness.stack import write_registry

REGIONS = ("eu-west-1", "us-east-1")
HOME, PEER = REGIONS


@dataclass
class ChaosStack:
    stack: Stack
    description: dict[str, Any]

    # --- where things are ---------------------------------------------------------------------

    def base_url(self, code: str = HOME) -> str:
        return str(self.description["regions"][code]["base_url"])

    def url(self, code: str, path: str) -> str:
        return self.base_url(code) + path

    def primary_dsn(self, code: str = HOME) -> str:
        return str(self.description["regions"][code]["primary_dsn"])

    def processes(self, code: str = HOME) -> RegionProcesses:
        return self.stack.processes[code]

    def query(self, code: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` on the region's primary (the checker's view, not the API's).

        The session acts as ``code`` (``saas.region``), as the region's own
        processes do, so the residency write guard lets it write its rows.
        """
        with psycopg.connect(self.primary_dsn(code), connect_timeout=5, autocommit=True) as conn:
            conn.execute("SELECT set_config('saas.region', %s, false)", (code,))
            cursor = conn.execute(sql.encode(), params)
            return list(cursor.fetchall()) if cursor.description else []

    # --- health ---------------------------------------------------------------------------------

    def readiness(self, code: str = HOME, *, timeout: float = 6.0) -> tuple[int, dict[str, Any]]:
        """``GET /health/ready``: the status code and the JSON report (``{}`` when unreachable)."""
        try:
            answer = httpx.get(self.url(code, "/health/ready"), timeout=timeout)
        except httpx.HTTPError:
            return 0, {}
        try:
            return answer.status_code, answer.json()
        except ValueError:
            return answer.status_code, {}

    def check(self, code: str, name: str) -> dict[str, Any]:
        """One check of the readiness report (``primary``, ``replica_1``, ``redis``, ``broker``)."""
        _status, report = self.readiness(code)
        return next((c for c in report.get("checks", []) if c.get("name") == name), {})

    def wait_check(self, code: str, name: str, *, status: str = "ok", timeout: float = 60.0) -> float:
        """Wait until readiness reports check ``name`` as ``status``; return the seconds it took."""
        began = time.monotonic()
        wait_until(
            lambda: self.check(code, name).get("status") == status,
            timeout=timeout,
            interval=0.1,
            what=f"{code} readiness check {name} {status!r}",
        )
        return time.monotonic() - began

    def wait_ready(self, code: str = HOME, *, status: str = "ok", timeout: float = 60.0) -> float:
        """Wait until readiness answers ``status``; return the seconds it took."""
        began = time.monotonic()
        wait_until(
            lambda: self.readiness(code)[1].get("status") == status,
            timeout=timeout,
            interval=0.1,
            what=f"{code} readiness {status!r}",
        )
        return time.monotonic() - began

    def ensure_whole(self, *, timeout: float = 90.0) -> None:
        """Start again whatever a scenario left stopped, then wait until every region is ready.

        Order as in ``Stack.up``: data stores, then workers, then web.
        """
        for code in REGIONS:
            procs = self.processes(code)
            for store in (procs.primary, procs.replica):
                if store is not None and not store.process.running():
                    store.restart()
            for redis_server in (procs.redis, procs.broker):
                if redis_server is not None and not redis_server.process.running():
                    redis_server.restart()
            for managed in (procs.worker, procs.beat):
                if managed is not None and not managed.running():
                    managed.start()
            if procs.web is not None and not procs.web.running():
                procs.web.start()
                self.stack.wait_web(procs.plan)
        for code in REGIONS:
            self.wait_ready(code, timeout=timeout)

    def pids(self) -> list[int]:
        return self.stack.pids()


@contextlib.contextmanager
def chaos_stack_running(*, separate_broker: bool = True) -> Iterator[ChaosStack]:
    """Start the two-region stack on free ports; stop every process by PID afterwards."""
    root = Path(tempfile.mkdtemp(prefix="saas-chaos-"))
    chown_for_service(root)
    registry, _ports = write_registry(root)
    ports = {code: (free_port(), free_port(), free_port()) for code in REGIONS}
    brokers = {code: free_port() for code in REGIONS} if separate_broker else None
    plan = StackPlan.make(
        root=root, codes=REGIONS, registry_path=registry, embedded=False, ports=ports, broker_ports=brokers
    )
    running = Stack(plan)
    pids: list[int] = []
    try:
        description = running.up()
        chaos = ChaosStack(running, description)
        chaos.ensure_whole()
        yield chaos
    finally:
        pids = running.pids()
        running.down()
        # Before they are removed: no test user's email in any process log (PII guard).
        PII_GUARD.scan_files(root.rglob("*.log"))
        keep = os.environ.get("CHAOS_KEEP_LOGS")
        if keep:  # for diagnosis: every process log, by region
            for log in root.rglob("*.log"):
                target = Path(keep) / log.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(log, target)
        shutil.rmtree(root, ignore_errors=True)
    left = [pid for pid in pids if pid_alive(pid)]
    assert not left, f"processes left behind: {left}"
