"""What the replication chaos scenarios (peer outage, killed worker, clock skew) look at and pull on.

- :class:`ApplyLog`: a trigger on the peer's directory table that records
  every row the peer actually wrote (insert or update), so "applied twice" is
  measured on the effect, not on the inbox that is supposed to prevent it.
- :func:`replication_settled` / :func:`replication_report`: the origin's
  outbox backlog and dead letters for the peer, the peer's inbox, and every
  directory entry of the origin compared with the peer's (kind, key, home,
  version).
- :class:`BreakerWatch`: samples the origin's circuit breaker for the peer
  (its Redis hash) and keeps the sequence of states it went through.
- :func:`restarted`: a region's worker or beat restarted with other settings
  or another command line for the length of a block, then as it was.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import yaml

from regions.devstack.processes import ManagedProcess, wait_until
from tests.chaos.figures import Figures, report
from tests.chaos.stack import HOME, PEER, ChaosStack
from tests.chaos.workload import Verdict, Workload, figures_of

FAST_REPLICATION_ENV = {
    "REPLICATION_BACKOFF_BASE": "0.1",
    "REPLICATION_BACKOFF_CAP": "0.5",
    "REPLICATION_BREAKER_THRESHOLD": "2",
    "REPLICATION_BREAKER_OPEN_BASE": "0.3",
    "REPLICATION_BREAKER_OPEN_CAP": "1",
    "REPLICATION_HTTP_TIMEOUT": "2",
}
"""Failure handling scaled down for ``make test``: the same states in seconds instead of minutes."""

BREAKER_KEY = "replication:breaker:{peer}"
"""Where ``regions.replication.breaker`` keeps a peer's breaker in the region's Redis."""


# --- The peer's effects --------------------------------------------------------------------------


@dataclass
class ApplyLog:
    """Every write to the peer's ``residency_directoryentry``, recorded by a trigger while installed."""

    chaos: ChaosStack
    region: str = PEER

    _STATEMENTS = (
        "CREATE TABLE IF NOT EXISTS chaos_directory_writes "
        "(kind text, key text, version integer, origin_region text, "
        "at timestamptz DEFAULT clock_timestamp())",
        "TRUNCATE chaos_directory_writes",
        "CREATE OR REPLACE FUNCTION chaos_directory_written() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN INSERT INTO chaos_directory_writes (kind, key, version, origin_region) "
        "VALUES (NEW.kind, NEW.key, NEW.version, NEW.origin_region); RETURN NEW; END $$",
        "DROP TRIGGER IF EXISTS chaos_directory_written ON residency_directoryentry",
        "CREATE TRIGGER chaos_directory_written AFTER INSERT OR UPDATE ON residency_directoryentry "
        "FOR EACH ROW EXECUTE FUNCTION chaos_directory_written()",
    )

    def install(self) -> None:
        for statement in self._STATEMENTS:
            self.chaos.query(self.region, statement)

    def remove(self) -> None:
        self.chaos.query(
            self.region, "DROP TRIGGER IF EXISTS chaos_directory_written ON residency_directoryentry"
        )
        self.chaos.query(self.region, "DROP FUNCTION IF EXISTS chaos_directory_written()")
        self.chaos.query(self.region, "DROP TABLE IF EXISTS chaos_directory_writes")

    def writes(self, *, origin: str = HOME) -> dict[tuple[str, str, int], int]:
        """How many times each (kind, key, version) of ``origin`` was written."""
        rows = self.chaos.query(
            self.region,
            "SELECT kind, key, version, count(*) FROM chaos_directory_writes "
            "WHERE origin_region = %s GROUP BY kind, key, version",
            (origin,),
        )
        return {(str(kind), str(key), int(version)): int(count) for kind, key, version, count in rows}


def duplicate_writes(writes: dict[tuple[str, str, int], int]) -> int:
    """Writes beyond the first of one version (``ApplyLog.writes``): an event applied twice."""
    return sum(count - 1 for count in writes.values())


@contextlib.contextmanager
def apply_log(chaos: ChaosStack, region: str = PEER) -> Iterator[ApplyLog]:
    log = ApplyLog(chaos, region)
    log.install()
    try:
        yield log
    finally:
        log.remove()


# --- Where replication stands ----------------------------------------------------------------------


def directory(
    chaos: ChaosStack, region: str, *, origin: str = HOME
) -> dict[tuple[str, str], tuple[str, int]]:
    rows = chaos.query(
        region,
        "SELECT kind, key, home_region, version FROM residency_directoryentry WHERE origin_region = %s",
        (origin,),
    )
    return {(str(kind), str(key)): (str(home), int(version)) for kind, key, home, version in rows}


@dataclass(frozen=True)
class ReplicationReport:
    backlog: int
    """Outbox rows of the origin still waiting for the peer."""
    dead_letters: int
    missing: list[tuple[str, str]]
    """Entries of the origin the peer lacks, or holds at another home or version."""
    inbox: int
    """Events of the origin the peer has recorded."""
    redelivered: int
    """Of those, events the peer received more than once (and applied once)."""
    inbox_outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def settled(self) -> bool:
        return self.backlog == 0 and not self.missing


def replication_report(chaos: ChaosStack, *, origin: str = HOME, peer: str = PEER) -> ReplicationReport:
    backlog = chaos.query(
        origin, "SELECT count(*) FROM regions_outboxevent WHERE target_region = %s", (peer,)
    )
    dead = chaos.query(origin, "SELECT count(*) FROM regions_deadletter WHERE target_region = %s", (peer,))
    there = directory(chaos, peer, origin=origin)
    missing = sorted(
        key for key, value in directory(chaos, origin, origin=origin).items() if there.get(key) != value
    )
    inbox = chaos.query(
        peer,
        "SELECT outcome, count(*), count(*) FILTER (WHERE deliveries > 1) FROM regions_inboxevent "
        "WHERE origin_region = %s GROUP BY outcome",
        (origin,),
    )
    return ReplicationReport(
        backlog=int(backlog[0][0]),
        dead_letters=int(dead[0][0]),
        missing=missing,
        inbox=sum(int(count) for _outcome, count, _again in inbox),
        redelivered=sum(int(again) for _outcome, _count, again in inbox),
        inbox_outcomes={str(outcome): int(count) for outcome, count, _again in inbox},
    )


def replication_settled(
    chaos: ChaosStack, *, timeout: float, origin: str = HOME, peer: str = PEER
) -> tuple[ReplicationReport, float]:
    """Wait until the peer holds every entry of the origin and the backlog is empty; the seconds it took."""
    began = time.monotonic()
    with contextlib.suppress(TimeoutError):
        wait_until(
            lambda: replication_report(chaos, origin=origin, peer=peer).settled,
            timeout=timeout,
            interval=0.2,
            what=f"{peer} to catch up with {origin}",
        )
    return replication_report(chaos, origin=origin, peer=peer), time.monotonic() - began


# --- The breaker, as the origin's processes see it -------------------------------------------------


@dataclass
class BreakerWatch:
    """Samples ``origin``'s breaker for ``peer`` every ``interval`` seconds while running."""

    chaos: ChaosStack
    origin: str = HOME
    peer: str = PEER
    interval: float = 0.05
    states: list[tuple[float, str]] = field(default_factory=list)
    """(monotonic time, state) at each change, starting with the first sample."""
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(str(self.chaos.description["regions"][self.origin]["redis_url"]))

    def reset(self) -> None:
        """Forget the breaker's state (a scenario starts from a closed breaker)."""
        self.client().delete(BREAKER_KEY.format(peer=self.peer))

    def state(self, client: redis.Redis | None = None) -> str:
        raw = (client or self.client()).hget(BREAKER_KEY.format(peer=self.peer), "state")
        return raw.decode() if isinstance(raw, bytes) else "closed"

    def _run(self) -> None:
        client = self.client()
        while not self._stop.is_set():
            with contextlib.suppress(redis.RedisError):
                state = self.state(client)
                if not self.states or self.states[-1][1] != state:
                    self.states.append((time.monotonic(), state))
            self._stop.wait(self.interval)

    @contextlib.contextmanager
    def watching(self) -> Iterator[BreakerWatch]:
        thread = threading.Thread(target=self._run, name="breaker-watch", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(5)

    def seen(self, state: str, *, between: tuple[float, float] = (0.0, float("inf"))) -> bool:
        """Whether the breaker was in ``state`` at some moment of ``between`` (monotonic times)."""
        start, end = between
        for index, (at, value) in enumerate(self.states):
            until = self.states[index + 1][0] if index + 1 < len(self.states) else float("inf")
            if value == state and at <= end and until >= start:
                return True
        return False

    def path(self) -> str:
        """The states in the order first reached, then the last one, and how often it opened.

        E.g. ``closed>open>half_open>closed (opened 17x)``: each opening is one
        failed probe (or the first run of failures).
        """
        values = [value for _at, value in self.states]
        order = list(dict.fromkeys(values))
        if values and values[-1] != order[-1]:
            order.append(values[-1])
        return f"{'>'.join(order)} (opened {values.count('open')}x)"


# --- Restarting a region's processes with other settings -------------------------------------------


def _wait_log(process: ManagedProcess, marker: str, offset: int, timeout: float) -> None:
    def seen() -> bool:
        if not process.running():
            raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        with process.log_path.open("rb") as handle:
            handle.seek(offset)
            return marker.encode() in handle.read()

    wait_until(seen, timeout=timeout, interval=0.1, what=f"{process.name} to log {marker!r}")


def start_and_wait(process: ManagedProcess, *, timeout: float = 90.0) -> None:
    """Start ``process`` (again); for a Celery worker, return once it is consuming."""
    offset = process.log_path.stat().st_size if process.log_path.exists() else 0
    process.start()
    if "worker" in process.argv:
        _wait_log(process, " ready.", offset, timeout)


@contextlib.contextmanager
def restarted(
    process: ManagedProcess,
    *,
    env: dict[str, str] | None = None,
    argv: list[str] | None = None,
) -> Iterator[ManagedProcess]:
    """Run ``process`` with ``env`` added (and ``argv`` instead) during the block, then restore it."""
    original_env, original_argv = process.env, process.argv
    process.stop(timeout=15)
    process.env = {**(original_env or {}), **(env or {})}
    process.argv = argv or original_argv
    try:
        start_and_wait(process)
        yield process
    finally:
        process.stop(timeout=15)
        process.env, process.argv = original_env, original_argv
        start_and_wait(process)


def registry_with_internal_url(chaos: ChaosStack, *, region: str, url: str) -> Path:
    """A copy of the stack's registry in which ``region`` is reached at ``url`` by its peers."""
    source = Path(chaos.stack.plan.registry_path)
    raw = yaml.safe_load(source.read_text())
    for entry in raw["regions"]:
        if entry["code"] == region:
            entry["internal_url"] = url
    path = source.with_name(f"{source.stem}-{region}-via-{url.rsplit(':', 1)[1]}.yaml")
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# --- The verdict every replication scenario shares -------------------------------------------------


def report_replication(
    load: Workload,
    verdict: Verdict,
    *,
    after: ReplicationReport,
    writes: dict[tuple[str, str, int], int],
    **figures: Any,
) -> Figures:
    """The scenario's line: the workload's figures, plus the peer's missing entries and double writes."""
    line = figures_of(load, verdict, **figures)
    line.lost_writes += len(after.missing)
    line.duplicates += duplicate_writes(writes)
    return report(line)


def assert_replicated_once(
    load: Workload, verdict: Verdict, *, after: ReplicationReport, writes: dict[tuple[str, str, int], int]
) -> None:
    """eu-west-1 served every request; every acknowledged write is there once, and in the peer once."""
    assert load.failures() == [], load.statuses()
    assert not verdict.lost and not verdict.unreplicated, verdict
    assert verdict.duplicates == 0, verdict
    assert after.settled, f"{PEER} did not catch up: {after}"
    assert after.dead_letters == 0, "a link failure must never dead-letter an event"
    assert duplicate_writes(writes) == 0, f"directory versions written twice in {PEER}: {writes}"
    assert after.inbox_outcomes.keys() <= {"applied", "stale"}, after.inbox_outcomes
