"""Fixtures for the real clusters, in one place (see tests/README.md).

- ``harness``: PostgreSQL primary + 2 streaming replicas and a Redis server per
  harness region (eu-west-1, us-east-1), started once per session on free
  loopback ports and stopped by PID at the end, even when tests fail.
- ``django_db_setup``: migrates every harness region, then points the test
  process at eu-west-1 for the whole session.
- ``as_region``: run code as another region, with its settings and connections.
- ``multi_region_db``: like ``transactional_db``, and also flushes every other
  harness region afterwards.
- ``celery_worker``: start a real Celery worker process for a region.
- ``region_web``: start a real gunicorn process serving a region on its
  harness-registry port.
- ``routing``: the router's replica view reset and freshly probed.
- ``pause_replay``: ``pause_replay()`` pauses WAL replay on every eu-west-1 replica (lag made certain).
- ``terraform_early``: moto_server, the Terraform fleet apply and side plans,
  started at the session's first test when the Terraform tests are selected.
"""

from __future__ import annotations

import contextlib
import os
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.core.management import call_command

from regions.devstack.postgres import Cluster
from regions.devstack.processes import ManagedProcess, wait_until
from tests.harness.acting import acting_as
from tests.harness.pii_guard import GUARD as PII_GUARD
from tests.harness.pii_guard import user_post_init
from tests.harness.stack import HARNESS_REGIONS, REPO_ROOT, Harness, RegionStack, harness_session
from tests.terraform.early import Early
from tests.terraform.tf import missing_tools

DEFAULT_REGION = HARNESS_REGIONS[0]


_DB_FIXTURES = {"db", "transactional_db", "multi_region_db"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long chaos scenarios only with ``CHAOS_ALL=1``; database tests may read the replicas.

    ``chaos_long`` scenarios (minutes each) are deselected, not skipped, unless
    ``CHAOS_ALL=1`` (``make chaos``): ``make test`` runs the fast ones only.

    Every database test may read the replica aliases, as the router sends reads there.

    A ``django_db`` test that names no ``databases`` (and a test that only asks
    for a database fixture) gets ``databases="__all__"``. Replicas are test
    mirrors, so pytest-django neither wraps them in the test transaction nor
    flushes them: this only allows the connections.
    """
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is not None and "databases" not in marker.kwargs:
            item.add_marker(
                pytest.mark.django_db(*marker.args, **{**marker.kwargs, "databases": "__all__"}),
                append=False,
            )
        elif marker is None and _DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.django_db(databases="__all__"), append=False)
    if os.environ.get("CHAOS_ALL") != "1":
        long = [item for item in items if item.get_closest_marker("chaos_long")]
        if long:
            config.hook.pytest_deselected(items=long)
            items[:] = [item for item in items if not item.get_closest_marker("chaos_long")]


@pytest.fixture(scope="session")
def harness() -> Iterator[Harness]:
    with harness_session() as started:
        sys.stderr.write(f"\n[harness] up in {started.started_in:.1f}s: {describe(started)}\n")
        yield started
        # Before the harness removes them: the child processes' logs (PII guard).
        PII_GUARD.scan_files(started.root.rglob("*.log"))


# --- PII guard: no log line of the session contains a test user's email ------------------
# (tests/harness/pii_guard.py) It fails the run, after every test has passed, if one does.


# --- Terraform against moto -------------------------------------------------------


@pytest.fixture(scope="session")
def terraform_early(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Early]:
    """moto_server, the fleet apply and the side plans, started in the background.

    See ``tests/terraform/early.py``; every process is stopped by PID at the end.
    """
    missing = missing_tools()
    if missing:
        pytest.fail("The Terraform tests need: " + "; ".join(missing))
    early = Early.start(tmp_path_factory.mktemp("terraform"))
    try:
        yield early
    finally:
        early.stop()


@pytest.fixture(scope="session", autouse=True)
def _terraform_started_early(request: pytest.FixtureRequest) -> None:
    """When the session runs the Terraform tests, start their long work at its first test.

    The apply is mostly provider waits: it runs (niced) while the rest of the
    suite does, instead of in front of the Terraform tests.
    """
    uses = any("terraform_early" in getattr(item, "fixturenames", ()) for item in request.session.items)
    if uses and not missing_tools():
        request.getfixturevalue("terraform_early")


def pytest_sessionstart(session: pytest.Session) -> None:
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_init

    post_init.connect(user_post_init, sender=get_user_model(), weak=False)
    PII_GUARD.install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = PII_GUARD.finish()
    if (leaks or PII_GUARD.problems) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    write = terminalreporter.write_line
    write(PII_GUARD.summary())
    for problem in PII_GUARD.problems:
        write(f"[pii-guard] GUARD BROKEN: {problem}", red=True)
    for leak in PII_GUARD.finish_leaks:
        write(f"[pii-guard] LEAK {leak}", red=True)
    for leak in PII_GUARD.masked():
        write(f"[pii-guard] kept out by the log formatter (never written): {leak}", yellow=True)


def describe(harness: Harness) -> str:
    parts = []
    for code, stack in harness.regions.items():
        replicas = ",".join(str(r.port) for r in stack.replicas)
        parts.append(f"{code} pg={stack.primary.port} replicas={replicas} redis={stack.redis.port}")
    return "; ".join(parts)


@pytest.fixture(scope="session")
def django_db_setup(harness: Harness, django_db_blocker: pytest.FixtureRequest) -> Iterator[None]:
    """Migrate every harness region; the session then acts as ``DEFAULT_REGION``."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        for code in HARNESS_REGIONS:
            with acting_as(harness.region(code)):
                call_command("migrate", interactive=False, verbosity=0)
    with acting_as(harness.region(DEFAULT_REGION)):
        yield


@pytest.fixture
def as_region(
    harness: Harness, django_db_setup: None
) -> Callable[[str], AbstractContextManager[RegionStack]]:
    """``with as_region("us-east-1"): ...`` runs the body as that region's process would."""

    def enter(code: str) -> AbstractContextManager[RegionStack]:
        return acting_as(harness.region(code))

    return enter


@pytest.fixture
def multi_region_db(transactional_db: None, harness: Harness) -> Iterator[None]:
    """Committed writes in any harness region; every region is flushed afterwards."""
    yield
    for code in HARNESS_REGIONS:
        if code != DEFAULT_REGION:
            with acting_as(harness.region(code)):
                call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def celery_worker(harness: Harness, django_db_setup: None) -> Iterator[Callable[..., ManagedProcess]]:
    """Start real Celery worker processes: ``celery_worker("eu-west-1", CELERY_METRICS_PORT="9000")``.

    The region's broker queue is purged first, so messages left by earlier
    tests are not consumed. Every worker is stopped by PID afterwards.
    """
    workers: list[ManagedProcess] = []

    def start(
        code: str = DEFAULT_REGION,
        *,
        concurrency: int = 1,
        queues: str | None = None,
        include: str | None = None,
        **extra_env: str,
    ) -> ManagedProcess:
        stack = harness.region(code)
        stack.redis.client(1).flushdb()
        log = harness.root / f"{code}-worker-{len(workers)}.log"
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "saas",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname={code}-{len(workers)}@%h",
        ]
        if queues:
            argv.append(f"--queues={queues}")
        if include:  # extra task modules, e.g. test-only tasks
            argv.append(f"--include={include}")
        worker = ManagedProcess(
            name=f"{code}-worker",
            argv=argv,
            log_path=log,
            env={**stack.process_env(), **extra_env},
            cwd=REPO_ROOT,
        )
        worker.start()
        workers.append(worker)
        wait_until(
            lambda: " ready." in log.read_text(errors="replace") or not worker.running(),
            timeout=60,
            interval=0.1,
            what=f"celery worker for {code}",
        )
        if not worker.running():
            raise RuntimeError(f"celery worker for {code} exited:\n{worker.tail()}")
        return worker

    yield start
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.stop(timeout=15)


@pytest.fixture
def region_web(harness: Harness, django_db_setup: None) -> Iterator[Callable[..., ManagedProcess]]:
    """Start gunicorn for a region on its registry port: ``region_web("us-east-1")``.

    The server uses ``settings.base`` with the region's environment, so it
    sees only committed data (use ``transactional_db`` or ``multi_region_db``).
    Returns once ``/health/live`` answers; stopped by PID after the test.
    """
    servers: list[ManagedProcess] = []

    def start(
        code: str = DEFAULT_REGION, *, workers: int = 1, threads: int = 4, **extra_env: str
    ) -> ManagedProcess:
        stack = harness.region(code)
        log = harness.root / f"{code}-web-{len(servers)}.log"
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "saas.wsgi:application",
            f"--bind=127.0.0.1:{stack.web_port}",
            f"--workers={workers}",
            f"--threads={threads}",
            "--graceful-timeout=5",
            "--timeout=60",
        ]
        server = ManagedProcess(
            name=f"{code}-web",
            argv=argv,
            log_path=log,
            env={**stack.process_env(), **extra_env},
            cwd=REPO_ROOT,
        )
        server.start()
        servers.append(server)

        def live() -> bool:
            if not server.running():
                raise RuntimeError(f"gunicorn for {code} exited:\n{server.tail()}")
            with urllib.request.urlopen(f"{stack.base_url}/health/live", timeout=2) as response:
                return bool(response.status == 200)

        try:
            wait_until(live, timeout=60, interval=0.1, what=f"gunicorn for {code}")
        except TimeoutError:
            raise RuntimeError(f"gunicorn for {code} did not come up:\n{server.tail()}") from None
        return server

    yield start
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop(timeout=15)


@pytest.fixture
def rate_limits_reset(harness: Harness) -> None:
    """Empty every rate limit bucket in the harness regions' Redis (``rl:*`` keys)."""
    for stack in harness.regions.values():
        client = stack.redis.client(0)
        with contextlib.suppress(Exception):  # a test may have stopped this Redis
            keys = list(client.scan_iter(match="rl:*", count=1000))
            if keys:
                client.delete(*keys)


# --- Read/write routing ------------------------------------------------------------


@pytest.fixture
def routing(harness: Harness, django_db_setup: None) -> Iterator[None]:
    """A fresh replica view, probed now; background probing stopped afterwards."""
    from regions.routing.health import registry
    from regions.routing.probe import probe_once, stop_probing
    from regions.routing.state import forget_ambient_state

    forget_ambient_state()  # writes of earlier tests in this thread do not count
    registry.reset()
    probe_once()
    yield
    stop_probing()
    registry.reset()


@pytest.fixture
def pause_replay(harness: Harness, routing: None) -> Iterator[Callable[[], list[Cluster]]]:
    """``pause_replay()`` pauses WAL replay on every replica of ``DEFAULT_REGION``.

    Each replica first catches up, so what was committed before the call is on
    the replicas and what comes after is not. Resumed (and caught up) afterwards.
    """
    stack = harness.region(DEFAULT_REGION)
    paused: list[Cluster] = []

    def pause() -> list[Cluster]:
        for replica in stack.replicas:
            replica.pause_replay()
            paused.append(replica)
        from regions.routing.probe import probe_once

        probe_once()
        return list(stack.replicas)

    try:
        yield pause
    finally:
        for replica in paused:
            replica.resume_replay()
        lsn = stack.primary.current_lsn()
        for replica in paused:
            replica.wait_for_replay(lsn, timeout=30)
