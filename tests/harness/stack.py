"""Region stacks for the tests, and acting as a region inside the test process."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from regions.devstack.postgres import Cluster, init_template, new_primary, new_replica
from regions.devstack.processes import chown_for_service, free_port
from regions.devstack.redis import RedisServer
from regions.registry import DEFAULT_REGISTRY_PATH, load_registry

REPO_ROOT = Path(__file__).resolve().parents[2]

HARNESS_REGIONS = ("eu-west-1", "us-east-1")
"""The regions the harness runs. ``eu-west-1`` is the test process's default."""
REPLICAS_PER_REGION = 2

# Test-only secrets. Every region of the harness shares them, as a fleet does.
TEST_SECRETS = {
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789abcdefghijklmnopqrstuvwxyz",
    "DIRECTORY_SECRET": "test-directory-secret",
    "AUDIT_SIGNING_KEYS": "test-k1:test-audit-signing-secret",
    # Two keys, as during a rotation: the first signs, both verify.
    "REPLICATION_SIGNING_KEYS": "test-replication-key-current,test-replication-key-previous",
}


@dataclass
class RegionStack:
    """The services of one region: a primary, its streaming replicas and a Redis."""

    code: str
    primary: Cluster
    replicas: list[Cluster]
    redis: RedisServer
    web_port: int
    """Loopback port of this region's web origin in the harness registry."""
    registry_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        """The environment a process of this region runs with."""
        return {
            "DJANGO_SETTINGS_MODULE": "settings.base",
            "REGION": self.code,
            "REGION_REGISTRY": str(self.registry_path),
            "DATABASE_URL": self.primary.dsn(),
            "REPLICA_DATABASE_URLS": ",".join(r.dsn() for r in self.replicas),
            "REDIS_URL": self.redis.url(0),
            "CELERY_BROKER_URL": self.redis.url(1),
            **TEST_SECRETS,
            **self.extra_env,
        }

    def process_env(self) -> dict[str, str]:
        """``env()`` on top of this process's PATH and friends, for child processes."""
        keep = {
            k: v
            for k, v in os.environ.items()
            if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH"}
        }
        return {**keep, "PYTHONDONTWRITEBYTECODE": "1", **self.env()}

    def pids(self) -> list[int]:
        return [pid for pid in (self.primary.pid, *(r.pid for r in self.replicas), self.redis.pid) if pid]


@dataclass
class Harness:
    root: Path
    regions: dict[str, RegionStack]
    registry_path: Path
    web_ports: dict[str, int]
    """Every registry region's loopback port (regions outside the harness get one too)."""
    started_in: float

    def region(self, code: str) -> RegionStack:
        return self.regions[code]

    def stop(self) -> None:
        """Stop every process by PID: replicas first, then primaries, then Redis."""
        for stack in self.regions.values():
            for replica in stack.replicas:
                replica.stop(fast=False)
        for stack in self.regions.values():
            stack.primary.stop(fast=False)
            stack.redis.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def write_registry(root: Path) -> tuple[Path, dict[str, int]]:
    """The shipped registry with every region's URLs moved to a free loopback port.

    Every process of the harness (the test process acting as any region, web
    servers, workers) reads this one file, as a fleet reads one registry.
    """
    shipped = load_registry(DEFAULT_REGISTRY_PATH)
    raw = yaml.safe_load(DEFAULT_REGISTRY_PATH.read_text())
    ports = {code: free_port() for code in shipped.codes}
    for entry in raw["regions"]:
        origin = f"http://127.0.0.1:{ports[entry['code']]}"
        entry["public_url"] = origin
        entry["internal_url"] = origin
    path = root / "registry.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    load_registry(path)  # fail early if the rewrite broke it
    return path, ports


def start_harness(codes: tuple[str, ...] = HARNESS_REGIONS, replicas: int = REPLICAS_PER_REGION) -> Harness:
    """Start every region's services on free loopback ports and wait until they are ready.

    Processes are started from the calling (main) thread so that they die with
    it; readiness is awaited afterwards. On any failure everything started so
    far is stopped before the error propagates.
    """
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="saas-harness-"))
    chown_for_service(root)
    stacks: dict[str, RegionStack] = {}
    started: list[Any] = []
    try:
        registry_path, web_ports = write_registry(root)
        template = init_template(root)
        for code in codes:
            primary = new_primary(root, f"{code}-primary", template)
            primary.start()
            started.append(primary)
            redis = RedisServer(f"{code}-redis", free_port(), root / f"{code}-redis")
            redis.start()
            started.append(redis)
            stacks[code] = RegionStack(
                code=code,
                primary=primary,
                replicas=[],
                redis=redis,
                web_port=web_ports[code],
                registry_path=registry_path,
            )
        for stack in stacks.values():
            stack.primary.wait_ready()
            stack.redis.wait_ready()
        for stack in stacks.values():
            for index in range(1, replicas + 1):
                replica = new_replica(root, f"{stack.code}-replica{index}", stack.primary)
                replica.start()
                started.append(replica)
                stack.replicas.append(replica)
        for stack in stacks.values():
            for replica in stack.replicas:
                replica.wait_ready()
        return Harness(
            root=root,
            regions=stacks,
            registry_path=registry_path,
            web_ports=web_ports,
            started_in=time.monotonic() - began,
        )
    except BaseException:
        for item in reversed(started):
            with contextlib.suppress(Exception):
                item.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise


@contextlib.contextmanager
def harness_session(
    codes: tuple[str, ...] = HARNESS_REGIONS, replicas: int = REPLICAS_PER_REGION
) -> Iterator[Harness]:
    harness = start_harness(codes, replicas)
    try:
        yield harness
    finally:
        harness.stop()
