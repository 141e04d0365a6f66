"""PostgreSQL clusters: a primary and streaming replicas per region, for the dev stack and the tests."""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from regions.devstack.processes import (
    ManagedProcess,
    child_pids,
    chown_for_service,
    free_port,
    pid_alive,
    run,
    service_user,
    wait_until,
)

DATABASE = "saas"
"""The application database inside every cluster."""

_CANDIDATE_BIN_DIRS = (
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
)


def pg_bin_dir() -> Path:
    """Where initdb, pg_basebackup and postgres live (``PG_BIN`` overrides)."""
    configured = os.environ.get("PG_BIN")
    candidates = [configured] if configured else [*_CANDIDATE_BIN_DIRS]
    on_path = shutil.which("initdb")
    if on_path and not configured:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, postgres, pg_basebackup) were not found. "
        "Install them with `apt-get install postgresql` (Debian) or set PG_BIN to their directory."
    )


# Replication on everywhere. Port, socket directory and listen address are
# given on the command line at every start (see Cluster), so they never pile up
# in the file.
_SERVER_CONF = """
wal_level = replica
max_wal_senders = 10
wal_keep_size = '256MB'
hot_standby = on
hot_standby_feedback = on
max_connections = 200
shared_buffers = '32MB'
log_min_messages = warning
log_min_error_statement = panic
# An error's DETAIL quotes key values (a duplicate email, say): keep them out of
# the server log, as production's parameter group must (PII guard, tests/harness/pii_guard.py).
log_error_verbosity = terse
{durability}
"""

# Test clusters are disposable: no fsync, and no autovacuum (vacuum truncation
# takes an AccessExclusiveLock that a paused standby would hold forever).
_DISPOSABLE = """
fsync = off
synchronous_commit = off
full_page_writes = off
autovacuum = off
"""

# Dev stack clusters keep their data across runs and crashes of the machine.
_DURABLE = """
fsync = on
synchronous_commit = off
"""


@dataclass
class Cluster:
    """One PostgreSQL server (primary or replica) on a loopback port."""

    name: str
    data_dir: Path
    port: int
    socket_dir: Path
    log_path: Path
    primary: Cluster | None = None
    process: ManagedProcess = field(init=False)

    def __post_init__(self) -> None:
        self.process = ManagedProcess(
            name=self.name,
            argv=[
                str(pg_bin_dir() / "postgres"),
                "-D",
                str(self.data_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"port={self.port}",
                "-c",
                f"unix_socket_directories={self.socket_dir}",
            ],
            log_path=self.log_path,
            as_service_user=True,
        )

    @property
    def is_replica(self) -> bool:
        return self.primary is not None

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def dsn(self, dbname: str = DATABASE) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def write_conf(self, *, durable: bool = False) -> None:
        conf = _SERVER_CONF.format(durability=_DURABLE if durable else _DISPOSABLE)
        with (self.data_dir / "postgresql.conf").open("a") as handle:
            handle.write(conf)

    def start(self) -> None:
        self.process.start()

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            if not self.process.running():
                raise RuntimeError(f"{self.name} exited:\n{self.process.tail()}")
            with psycopg.connect(self.dsn("postgres"), connect_timeout=1, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return True

        try:
            wait_until(ready, timeout=timeout, what=f"{self.name} to accept connections")
        except TimeoutError:
            raise TimeoutError(f"{self.name} did not start:\n{self.process.tail()}") from None

    def stop(self, *, fast: bool = True) -> None:
        """Stop by PID: SIGINT is a fast shutdown, SIGQUIT an immediate one."""
        self.process.stop(sig=signal.SIGINT if fast else signal.SIGQUIT, timeout=15)

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would, and wait for its backends to go."""
        children = child_pids(self.pid) if self.pid else []
        self.process.kill()
        wait_until(
            lambda: not any(pid_alive(pid) for pid in children),
            timeout=15,
            interval=0.05,
            what=f"backends of {self.name} to exit",
        )

    def restart(self, timeout: float = 30) -> None:
        """Start again after a stop or kill, retrying while the old shared memory drains."""
        deadline = time.monotonic() + timeout
        while True:
            self.start()
            try:
                self.wait_ready(timeout=max(1.0, deadline - time.monotonic()))
                return
            except (RuntimeError, TimeoutError):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    # --- queries used by tests ---------------------------------------------

    def execute(
        self, sql: str, params: tuple[object, ...] = (), *, dbname: str = DATABASE
    ) -> list[tuple[object, ...]]:
        with psycopg.connect(self.dsn(dbname), connect_timeout=3, autocommit=True) as conn:
            cursor = conn.execute(sql.encode(), params)
            return list(cursor.fetchall()) if cursor.description else []

    def current_lsn(self) -> str:
        return str(self.execute("SELECT pg_current_wal_insert_lsn()::text")[0][0])

    def replay_lsn(self) -> str | None:
        value = self.execute("SELECT pg_last_wal_replay_lsn()::text")[0][0]
        return str(value) if value is not None else None

    def has_replayed(self, lsn: str) -> bool:
        return bool(self.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0])

    def wait_for_replay(self, lsn: str, timeout: float = 30) -> None:
        """Block until this replica has replayed the primary's WAL up to ``lsn``."""
        wait_until(
            lambda: self.has_replayed(lsn),
            timeout=timeout,
            interval=0.01,
            what=f"{self.name} to replay {lsn}",
        )

    def pause_replay(self) -> None:
        """Pause WAL replay, after catching up with the primary.

        Catching up first means no half-replayed transaction (say, a TRUNCATE
        from the previous test's flush) holds a lock on the standby while replay
        stands still, which would block every read of that table.
        """
        if self.primary is not None:
            self.wait_for_replay(self.primary.current_lsn())
        self.execute("SELECT pg_wal_replay_pause()")
        wait_until(
            lambda: self.execute("SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused",
            timeout=10,
            what=f"{self.name} replay to pause",
        )

    def resume_replay(self) -> None:
        self.execute("SELECT pg_wal_replay_resume()")


def _make_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    chown_for_service(path)
    return path


def initdb(data_dir: Path) -> None:
    """Create an empty cluster owned by the service user."""
    _make_dir(data_dir)
    run(
        [
            str(pg_bin_dir() / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
            "--locale=C",
        ],
        as_service_user=True,
    )


def init_template(root: Path) -> Path:
    """Run initdb once and create the application database; test clusters copy this directory."""
    template = root / "template"
    initdb(template)
    socket_dir = _make_dir(root / "sockets")
    cluster = Cluster("template", template, free_port(), socket_dir, root / "template.log")
    cluster.write_conf()
    cluster.start()
    try:
        cluster.wait_ready()
        cluster.execute(f"CREATE DATABASE {DATABASE}", dbname="postgres")
    finally:
        cluster.stop()
    return template


def new_primary(root: Path, name: str, template: Path) -> Cluster:
    """A disposable primary for the tests: a copy of the template on a free port."""
    data_dir = root / name
    user = service_user()
    shutil.copytree(template, data_dir, symlinks=True)
    if user is not None:
        for path in [data_dir, *data_dir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
    (data_dir / "postmaster.pid").unlink(missing_ok=True)
    return Cluster(name, data_dir, free_port(), _make_dir(root / "sockets"), root / f"{name}.log")


def basebackup(*, data_dir: Path, name: str, primary: Cluster, durable: bool = False) -> None:
    """``pg_basebackup -R`` from a running primary into ``data_dir``."""
    _make_dir(data_dir)
    run(
        [
            str(pg_bin_dir() / "pg_basebackup"),
            # application_name goes into primary_conninfo (-R), so the primary's
            # pg_stat_replication names each standby.
            "-d",
            f"host=127.0.0.1 port={primary.port} user=postgres application_name={name}",
            "-D",
            str(data_dir),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            *([] if durable else ["--no-sync"]),
        ],
        as_service_user=True,
    )


def new_replica(root: Path, name: str, primary: Cluster) -> Cluster:
    """A disposable streaming replica of ``primary`` on a free port."""
    data_dir = root / name
    basebackup(data_dir=data_dir, name=name, primary=primary)
    return Cluster(
        name, data_dir, free_port(), _make_dir(root / "sockets"), root / f"{name}.log", primary=primary
    )
