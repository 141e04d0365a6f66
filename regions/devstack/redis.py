"""A Redis server per region for the tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import redis

from regions.devstack.processes import ManagedProcess, wait_until


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server was not found. Install it with `apt-get install redis-server`.")
    return found


@dataclass
class RedisServer:
    name: str
    port: int
    work_dir: Path
    persist: bool = False
    """Keep data across restarts (the dev stack's broker); tests use a throwaway server."""
    process: ManagedProcess = field(init=False)

    def __post_init__(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            name=self.name,
            argv=[
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                *(
                    ["--appendonly", "yes", "--appendfsync", "everysec"]
                    if self.persist
                    else ["--save", "", "--appendonly", "no"]
                ),
                "--dir",
                str(self.work_dir),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            log_path=self.work_dir / "redis.log",
        )

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=2)

    def start(self) -> None:
        self.process.start()

    def wait_ready(self, timeout: float = 10) -> None:
        wait_until(lambda: bool(self.client().ping()), timeout=timeout, what=f"{self.name} to answer PING")

    def stop(self) -> None:
        self.process.stop()

    def restart(self) -> None:
        self.start()
        self.wait_ready()
