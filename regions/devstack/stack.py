"""The local multi-region stack: plan it, start it in order, describe it, stop it by PID.

Real mode (PostgreSQL and Redis binaries present), per region:
    PostgreSQL primary + streaming replica, Redis, migrations, Celery worker,
    Celery beat, gunicorn.
Embedded mode (binaries missing), per region:
    SQLite, process-local cache, Celery tasks run in the web process right
    after commit (so replication to peers still happens, from the web
    process), no replica, no beat (no periodic sweeps or peer polling).

Everything lives under ``root`` (``.run/`` for ``make run``). Running again
reuses the data: clusters, migrations and the demo data set are kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regions.devstack.processes import ManagedProcess, chown_for_service, run, wait_until
from regions.registry import Registry, load_registry

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_REGISTRY = REPO_ROOT / "regions" / "registry.local.yaml"
DEFAULT_REGIONS = ("eu-west-1", "eu-central-1", "us-east-1")

PG_BASE_PORT = 15400
"""Region number i (registry order) gets primary ``PG_BASE_PORT + 10*i``, its replica ``+1``."""
REDIS_BASE_PORT = 16400

# Secrets shared by every region of the local fleet, generated once per .run/.
SHARED_SECRETS: dict[str, Callable[[], str]] = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(48),
    "DIRECTORY_SECRET": lambda: secrets.token_urlsafe(32),
    "AUDIT_SIGNING_KEYS": lambda: f"local1:{secrets.token_urlsafe(32)}",
    "REPLICATION_SIGNING_KEYS": lambda: secrets.token_urlsafe(32),
    "METRICS_TOKEN": lambda: secrets.token_urlsafe(24),
}


def postgres_available() -> bool:
    from regions.devstack.postgres import pg_bin_dir

    try:
        pg_bin_dir()
    except RuntimeError:
        return False
    return True


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


@dataclass
class RegionPlan:
    """Where one region's processes listen and keep their data."""

    code: str
    web_url: str
    pg_port: int
    replica_port: int
    redis_port: int
    directory: Path
    broker_port: int | None = None
    """A Redis of its own for the Celery broker; ``None`` uses db 1 of the region's Redis."""

    @property
    def web_port(self) -> int:
        return int(self.web_url.rsplit(":", 1)[1])

    @property
    def env_file(self) -> Path:
        return self.directory / "env"


@dataclass
class StackPlan:
    root: Path
    registry_path: Path
    regions: list[RegionPlan]
    embedded: bool
    web_workers: int = 1
    web_threads: int = 4
    peer_poll_seconds: float = 1.0

    @classmethod
    def make(
        cls,
        *,
        root: Path,
        codes: Sequence[str] = DEFAULT_REGIONS,
        registry_path: Path = LOCAL_REGISTRY,
        embedded: bool | None = None,
        pg_base_port: int = PG_BASE_PORT,
        redis_base_port: int = REDIS_BASE_PORT,
        ports: dict[str, tuple[int, int, int]] | None = None,
        broker_ports: dict[str, int] | None = None,
    ) -> StackPlan:
        """Plan the regions ``codes`` from the registry at ``registry_path``.

        ``ports`` (tests) maps a region to (primary, replica, redis) ports;
        otherwise they follow from the region's position in the registry.
        ``broker_ports`` (tests) gives a region a second Redis, on that port,
        as its Celery broker, so the broker can fail without the cache, the
        rate limits and the breakers; by default the broker is db 1 of the
        region's Redis, as in production (one managed Redis per region).
        """
        registry = load_registry(registry_path)
        unknown = [c for c in codes if c not in registry.regions]
        if unknown:
            raise ValueError(
                f"unknown region(s) {', '.join(unknown)}; the registry lists {', '.join(registry.codes)}"
            )
        order = {code: index for index, code in enumerate(registry.codes)}
        plans = []
        for code in codes:
            index = order[code]
            pg, replica, redis = (ports or {}).get(
                code, (pg_base_port + 10 * index, pg_base_port + 10 * index + 1, redis_base_port + index)
            )
            plans.append(
                RegionPlan(
                    code=code,
                    web_url=registry.region(code).public_url,
                    pg_port=pg,
                    replica_port=replica,
                    redis_port=redis,
                    directory=root / code,
                    broker_port=(broker_ports or {}).get(code),
                )
            )
        if embedded is None:
            embedded = not (postgres_available() and redis_available())
        return cls(root=root, registry_path=registry_path, regions=plans, embedded=embedded)

    @property
    def registry(self) -> Registry:
        return load_registry(self.registry_path)


@dataclass
class RegionProcesses:
    plan: RegionPlan
    primary: Any = None
    replica: Any = None
    redis: Any = None
    broker: Any = None
    """The broker's own Redis, when the plan gives it one (``RegionPlan.broker_port``)."""
    worker: ManagedProcess | None = None
    beat: ManagedProcess | None = None
    web: ManagedProcess | None = None

    def all(self) -> list[Any]:
        return [
            p
            for p in (self.web, self.beat, self.worker, self.replica, self.primary, self.redis, self.broker)
            if p
        ]

    def pids(self) -> dict[str, int]:
        named = {
            "web": self.web,
            "beat": self.beat,
            "worker": self.worker,
            "postgres_replica": self.replica,
            "postgres_primary": self.primary,
            "redis": self.redis,
            "broker": self.broker,
        }
        return {name: proc.pid for name, proc in named.items() if proc is not None and proc.pid}


Say = Callable[[str], None]


@dataclass
class Stack:
    plan: StackPlan
    say: Say = field(default=lambda message: print(message, file=sys.stderr, flush=True))
    processes: dict[str, RegionProcesses] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)

    # --- environment --------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        path = self.plan.root / "secrets.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        missing = {name: make() for name, make in SHARED_SECRETS.items() if name not in stored}
        if missing:
            stored.update(missing)
            path.write_text(json.dumps(stored, indent=2))
            path.chmod(0o600)
        return stored

    def region_env(self, plan: RegionPlan) -> dict[str, str]:
        """The environment variables with which ``manage.py`` acts as this region."""
        env = {
            "DJANGO_SETTINGS_MODULE": "settings.base",
            "REGION": plan.code,
            "REGION_REGISTRY": str(self.plan.registry_path),
            "DEBUG": "false",
            "AUDIT_LOG_PATHS": ",".join(str(plan.directory / f"{n}.log") for n in ("web", "worker", "beat")),
            "PEER_HEALTH_PATH": "/health/ready",
            "PEER_HEALTH_POLL_SECONDS": str(self.plan.peer_poll_seconds),
            "PEER_HEALTH_TIMEOUT": "1.0",
            "RESIDENCY_PEER_HEALTH_LOCAL_TTL": "1.0",
            **self.secrets(),
        }
        if self.plan.embedded:
            env["SQLITE_PATH"] = str(plan.directory / "db.sqlite3")
        else:
            env.update(
                DATABASE_URL=f"postgres://postgres@127.0.0.1:{plan.pg_port}/saas",
                REPLICA_DATABASE_URLS=f"postgres://postgres@127.0.0.1:{plan.replica_port}/saas",
                REDIS_URL=f"redis://127.0.0.1:{plan.redis_port}/0",
                CELERY_BROKER_URL=f"redis://127.0.0.1:{plan.broker_port}/0"
                if plan.broker_port
                else f"redis://127.0.0.1:{plan.redis_port}/1",
            )
        return env

    def process_env(self, plan: RegionPlan) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}}
        return {**keep, "PYTHONUNBUFFERED": "1", **self.region_env(plan)}

    def write_env_file(self, plan: RegionPlan) -> None:
        lines = [f"{name}={value}" for name, value in sorted(self.region_env(plan).items())]
        plan.env_file.write_text("\n".join(lines) + "\n")
        plan.env_file.chmod(0o600)

    # --- steps ----------------------------------------------------------------------------

    def _managed(self, plan: RegionPlan, name: str, argv: list[str]) -> ManagedProcess:
        return ManagedProcess(
            name=f"{plan.code}-{name}",
            argv=argv,
            log_path=plan.directory / f"{name}.log",
            env=self.process_env(plan),
            cwd=REPO_ROOT,
        )

    def manage(self, plan: RegionPlan, *args: str, timeout: float = 300) -> str:
        result = run(
            [sys.executable, str(REPO_ROOT / "manage.py"), *args], env=self.process_env(plan), timeout=timeout
        )
        return result.stdout

    def start_databases(self) -> None:
        from regions.devstack.postgres import Cluster, basebackup, initdb

        sockets = self.plan.root / "sockets"
        sockets.mkdir(parents=True, exist_ok=True)
        chown_for_service(sockets)
        chown_for_service(self.plan.root)
        created: list[Any] = []
        for plan in self.plan.regions:
            procs = self.processes[plan.code]
            data = plan.directory / "pg-primary"
            fresh = not (data / "PG_VERSION").exists()
            if fresh:
                shutil.rmtree(data, ignore_errors=True)
                initdb(data)
            procs.primary = Cluster(
                f"{plan.code}-primary", data, plan.pg_port, sockets, plan.directory / "pg-primary.log"
            )
            if fresh:
                procs.primary.write_conf(durable=True)
                created.append(procs.primary)
            procs.primary.start()
            from regions.devstack.redis import RedisServer

            procs.redis = RedisServer(
                f"{plan.code}-redis", plan.redis_port, plan.directory / "redis", persist=True
            )
            procs.redis.start()
            if plan.broker_port:
                procs.broker = RedisServer(
                    f"{plan.code}-broker", plan.broker_port, plan.directory / "broker", persist=True
                )
                procs.broker.start()
        for plan in self.plan.regions:
            procs = self.processes[plan.code]
            procs.primary.wait_ready()
            procs.redis.wait_ready()
            if procs.broker is not None:
                procs.broker.wait_ready()
            if procs.primary in created:
                procs.primary.execute("CREATE DATABASE saas", dbname="postgres")
        for plan in self.plan.regions:
            procs = self.processes[plan.code]
            data = plan.directory / "pg-replica"
            if not (data / "PG_VERSION").exists():
                shutil.rmtree(data, ignore_errors=True)
                basebackup(data_dir=data, name=f"{plan.code}-replica1", primary=procs.primary, durable=True)
            procs.replica = Cluster(
                f"{plan.code}-replica1",
                data,
                plan.replica_port,
                sockets,
                plan.directory / "pg-replica.log",
                primary=procs.primary,
            )
            procs.replica.start()
        for procs in self.processes.values():
            procs.replica.wait_ready()

    def migrate_and_seed(self) -> dict[str, dict[str, Any]]:
        def one(plan: RegionPlan) -> tuple[str, dict[str, Any]]:
            self.manage(plan, "migrate", "--noinput")
            out = self.manage(plan, "seed_demo", "--json", "--state", str(plan.directory / "demo.json"))
            return plan.code, json.loads(out)

        with ThreadPoolExecutor(max_workers=2) as pool:
            return dict(pool.map(one, self.plan.regions))

    def start_workers(self) -> None:
        if self.plan.embedded:
            # No broker: tasks run inside the web process; the periodic ones in a small loop.
            for plan in self.plan.regions:
                procs = self.processes[plan.code]
                procs.beat = self._managed(
                    plan, "beat", [sys.executable, str(REPO_ROOT / "manage.py"), "run_periodic"]
                )
                procs.beat.start()
            return
        for plan in self.plan.regions:
            procs = self.processes[plan.code]
            procs.worker = self._managed(
                plan,
                "worker",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "saas",
                    "worker",
                    "--loglevel=INFO",
                    "--concurrency=1",
                    "--queues=celery,replication",
                    "--without-gossip",
                    "--without-mingle",
                    f"--hostname={plan.code}@%h",
                ],
            )
            procs.beat = self._managed(
                plan,
                "beat",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "saas",
                    "beat",
                    "--loglevel=INFO",
                    f"--schedule={plan.directory / 'celerybeat-schedule'}",
                ],
            )
            procs.worker.start()
            procs.beat.start()
        for plan in self.plan.regions:
            worker = self.processes[plan.code].worker
            if worker is not None:
                self._wait_worker(plan, worker)

    def _wait_worker(self, plan: RegionPlan, worker: ManagedProcess) -> None:
        def ready() -> bool:
            return " ready." in worker.log_path.read_text(errors="replace") or not worker.running()

        wait_until(ready, timeout=90, interval=0.2, what=f"celery worker of {plan.code}")
        if not worker.running():
            raise RuntimeError(f"celery worker of {plan.code} exited:\n{worker.tail()}")

    def start_web(self) -> None:
        for plan in self.plan.regions:
            procs = self.processes[plan.code]
            procs.web = self._managed(
                plan,
                "web",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "saas.wsgi:application",
                    f"--bind=127.0.0.1:{plan.web_port}",
                    f"--workers={self.plan.web_workers}",
                    f"--threads={self.plan.web_threads}",
                    "--graceful-timeout=5",
                    "--timeout=60",
                ],
            )
            procs.web.start()
        for plan in self.plan.regions:
            self.wait_web(plan)

    def wait_web(self, plan: RegionPlan, timeout: float = 90) -> None:
        web = self.processes[plan.code].web
        if web is None:
            raise RuntimeError(f"web of {plan.code} was not started")

        def ready() -> bool:
            if not web.running():
                raise RuntimeError(f"gunicorn of {plan.code} exited:\n{web.tail()}")
            with urllib.request.urlopen(f"{plan.web_url}/health/live", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)

        wait_until(ready, timeout=timeout, interval=0.2, what=f"web of {plan.code}")

    # --- the whole thing --------------------------------------------------------------------

    def up(self) -> dict[str, Any]:
        """Start every region in order; on any failure stop what started, then re-raise."""
        self.plan.root.mkdir(parents=True, exist_ok=True)
        for plan in self.plan.regions:
            plan.directory.mkdir(parents=True, exist_ok=True)
            self.processes[plan.code] = RegionProcesses(plan)
            self.write_env_file(plan)
        try:
            if not self.plan.embedded:
                self._step("databases and Redis", self.start_databases)
            demo = self._step("migrations and demo data", self.migrate_and_seed)
            self._step("Celery workers and beat", self.start_workers)
            self._step("web servers", self.start_web)
        except BaseException:
            self.down()
            raise
        description = self.describe(demo)
        (self.plan.root / "stack.json").write_text(json.dumps(description, indent=2))
        return description

    def _step(self, name: str, action: Callable[[], Any]) -> Any:
        began = time.monotonic()
        self.say(f"[stack] {name} ...")
        result = action()
        self.say(f"[stack] {name}: ready in {time.monotonic() - began:.1f}s")
        return result

    def down(self) -> None:
        """Stop every process by PID: web, beat, workers, replicas, primaries, Redis, brokers."""
        for role in ("web", "beat", "worker", "replica", "primary", "redis", "broker"):
            for procs in self.processes.values():
                proc = getattr(procs, role)
                if proc is None:
                    continue
                with contextlib.suppress(Exception):
                    proc.stop()

    def pids(self) -> list[int]:
        return [pid for procs in self.processes.values() for pid in procs.pids().values()]

    def describe(self, demo: dict[str, dict[str, Any]]) -> dict[str, Any]:
        regions: dict[str, Any] = {}
        for plan in self.plan.regions:
            procs = self.processes[plan.code]
            env = self.region_env(plan)
            seeded = demo.get(plan.code, {})
            regions[plan.code] = {
                "zone": self.plan.registry.region(plan.code).zone,
                "base_url": plan.web_url,
                "admin_url": f"{plan.web_url}/admin/",
                "primary_dsn": env.get("DATABASE_URL", f"sqlite:///{env.get('SQLITE_PATH')}"),
                "replica_dsns": env["REPLICA_DATABASE_URLS"].split(",")
                if env.get("REPLICA_DATABASE_URLS")
                else [],
                "redis_url": env.get("REDIS_URL"),
                "broker_url": env.get("CELERY_BROKER_URL"),
                "env_file": str(plan.env_file),
                "admin": seeded.get("admin", {}),
                "demo": seeded.get("demo", {}),
                "pids": procs.pids(),
            }
        return {
            "mode": "embedded" if self.plan.embedded else "real",
            "registry": str(self.plan.registry_path),
            "supervisor_pid": os.getpid(),
            "regions": regions,
        }


def format_summary(description: dict[str, Any]) -> str:
    lines = []
    mode = description["mode"]
    if mode == "embedded":
        lines += [
            "Running on EMBEDDED defaults (PostgreSQL or Redis binaries not found).",
            "Simulated: SQLite per region, no read replicas (reads use the primary), caches and rate",
            "limits per process, Celery tasks run inside the web process right after commit (replication",
            "to peers still happens, from there), and periodic tasks (replication sweep, peer health",
            "polls) run in a small loop process (manage.py run_periodic) instead of Celery beat.",
            "",
        ]
    for code, region in description["regions"].items():
        admin = region.get("admin", {})
        lines += [
            f"{code} ({region['zone']})",
            f"  base URL   {region['base_url']}",
            f"  admin      {region['admin_url']}",
            f"             user {admin.get('email', '?')}  password {admin.get('password', '?')}",
            f"  env file   {region['env_file']}",
        ]
    first = next(iter(description["regions"].values()))
    codes = list(description["regions"])
    other = description["regions"][codes[-1]]
    admin = first.get("admin", {})
    jar = Path(first["env_file"]).with_name("admin-cookies.txt")
    login = json.dumps(
        {"email": admin.get("email", "<admin>"), "password": admin.get("password", "<password>")}
    )
    csrf = f"$(awk '$6 == \"csrftoken-{codes[0]}\" {{print $7}}' {jar})"
    token = first.get("demo", {}).get("api_token", "<token>")
    org = (first.get("demo", {}).get("organizations") or ["<org>"])[0]
    lines += [
        "",
        "Try:",
        f"  curl -s -X POST {first['base_url']}/api/v1/signup -H 'Content-Type: application/json' \\",
        '       -d \'{"email": "ada@example.com", "password": "correct-horse-battery", "zone": "EU"}\'',
        f"  curl -si {other['base_url']}/api/v1/orgs/{org} -H 'Authorization: Bearer {token}'",
        "       # the wrong region: 307 to the organization's home region",
        "       # an audit of the region, as its admin (session login, then the operator API):",
        f"  curl -s -c {jar} -X POST {first['base_url']}/api/v1/auth/login \\",
        f"       -H 'Content-Type: application/json' -d '{login}'",
        f'  curl -s -b {jar} -X POST {first["base_url"]}/internal/audit/runs -H "X-CSRFToken: {csrf}" \\',
        "       -H 'Content-Type: application/json' -d '{}'   # signed report; .report.summary",
        "",
        "Stop with Ctrl-C (make run) or `make stop` (make start).",
    ]
    return "\n".join(lines)


def read_description(root: Path) -> dict[str, Any] | None:
    path = root / "stack.json"
    return json.loads(path.read_text()) if path.exists() else None


def all_pids(description: dict[str, Any]) -> Iterable[int]:
    for region in description.get("regions", {}).values():
        yield from region.get("pids", {}).values()
