"""The replica probe: each process checks its replicas in the background.

Every ``ROUTING_PROBE_INTERVAL_SECONDS`` (randomized by ±50 % so processes do
not probe in lockstep) a daemon thread asks

- the primary for ``pg_current_wal_insert_lsn()`` (a sample for the lag estimate),
- each replica for ``pg_is_in_recovery()``, ``pg_last_wal_replay_lsn()`` and the
  age of ``pg_last_xact_replay_timestamp()``,

on its own connections with a short ``statement_timeout`` and connect timeout
(``ROUTING_PROBE_TIMEOUT_SECONDS``), and records the result in the registry.
A replica that does not answer, or is not a standby, is marked down; one that
answers is marked up again.

The thread starts on the first routing decision of a process (after a fork,
in the child: gunicorn and Celery prefork workers fork after import) and that
first decision waits up to ``ROUTING_PROBE_FIRST_WAIT_SECONDS`` for the first
cycle, so a fresh process does not send its first reads blind. With an
interval of 0 there is no thread: the first decision probes once, in line,
and the caller runs ``probe_once()`` when it wants fresher data.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import threading
import time
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections

from regions.routing.health import ProbeResult, registry
from regions.routing.lsn import CURRENT_PRIMARY_LSN_SQL

logger = logging.getLogger(__name__)

_REPLICA_SQL = (
    "SELECT pg_is_in_recovery(),"
    " (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint,"
    " EXTRACT(EPOCH FROM (clock_timestamp() - pg_last_xact_replay_timestamp()))::float8"
)
# Django-only keys of DATABASES[...]["OPTIONS"] that libpq does not know.
_DJANGO_OPTIONS = {"pool", "isolation_level", "assume_role", "server_side_binding"}


def connect_kwargs(alias: str, *, timeout: float | None = None) -> dict[str, Any]:
    """libpq parameters for ``alias`` with short timeouts (the probe's, unless ``timeout`` is given)."""
    config = connections.settings[alias]
    timeout = float(settings.ROUTING_PROBE_TIMEOUT_SECONDS) if timeout is None else timeout
    options = {k: v for k, v in (config.get("OPTIONS") or {}).items() if k not in _DJANGO_OPTIONS}
    statement_timeout = f"-c statement_timeout={max(1, int(timeout * 1000))}"
    options["options"] = f"{options.get('options', '')} {statement_timeout}".strip()
    options["connect_timeout"] = max(2, math.ceil(timeout))  # libpq's minimum is 2 s
    # A server that vanishes mid-query (no RST) must not hang the probe thread.
    options.setdefault("tcp_user_timeout", max(1000, int(timeout * 4000)))
    kwargs = {
        "dbname": config.get("NAME"),
        "user": config.get("USER"),
        "password": config.get("PASSWORD"),
        "host": config.get("HOST"),
        "port": config.get("PORT"),
        "application_name": "saas-routing-probe",
        **options,
    }
    return {key: value for key, value in kwargs.items() if value not in (None, "")}


class _Connections:
    """The probe's own connections, one per target, reopened after any error."""

    def __init__(self) -> None:
        self._open: dict[str, psycopg.Connection[Any]] = {}

    def query(self, alias: str, sql: str) -> tuple[Any, ...]:
        kwargs = connect_kwargs(alias)
        key = repr(sorted(kwargs.items()))
        conn = self._open.get(key)
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(autocommit=True, **kwargs)
                self._open[key] = conn
            row = conn.execute(sql).fetchone()
        except Exception:
            self._drop(key)
            raise
        if row is None:
            raise RuntimeError("no row")
        return tuple(row)

    def _drop(self, key: str) -> None:
        conn = self._open.pop(key, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def close_all(self) -> None:
        for key in list(self._open):
            self._drop(key)


_probe_lock = threading.Lock()
_conns = _Connections()


def _error_text(exc: BaseException) -> str:
    # psycopg messages name host and port, never credentials or data.
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def probe_once() -> None:
    """Probe the primary and every replica now, and record the results."""
    replicas = list(settings.DATABASE_REPLICAS)
    with _probe_lock:
        generation = registry.generation
        started = time.monotonic()
        primary_lsn: int | None = None
        results: list[ProbeResult] = []
        if replicas:
            try:
                primary_lsn = int(_conns.query("default", CURRENT_PRIMARY_LSN_SQL)[0])
            except Exception as exc:
                logger.warning("routing probe: primary did not answer (%s)", _error_text(exc))
            for alias in replicas:
                try:
                    in_recovery, replay_lsn, age = _conns.query(alias, _REPLICA_SQL)
                except Exception as exc:
                    results.append(ProbeResult(alias=alias, error=_error_text(exc)))
                    continue
                results.append(
                    ProbeResult(
                        alias=alias,
                        in_recovery=bool(in_recovery),
                        replay_lsn=None if replay_lsn is None else int(replay_lsn),
                        replay_timestamp_age=None if age is None else float(age),
                    )
                )
        registry.apply_probe(
            generation=generation,
            started_at=started,
            primary_lsn=primary_lsn,
            results=results,
            now=time.time(),
        )


# --- The background thread ------------------------------------------------------


class _Prober:
    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self) -> None:
        with self.lock:
            if self.running():
                return
            self.stop = threading.Event()
            self.thread = threading.Thread(target=_loop, args=(self.stop,), name="routing-probe", daemon=True)
            self.thread.start()

    def halt(self, timeout: float = 5.0) -> None:
        with self.lock:
            thread, self.thread = self.thread, None
            self.stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


_prober = _Prober()


def _loop(stop: threading.Event) -> None:
    while not stop.is_set():
        interval = float(settings.ROUTING_PROBE_INTERVAL_SECONDS)
        if interval <= 0:
            return
        try:
            probe_once()
        except Exception:
            logger.exception("routing probe cycle failed")
        stop.wait(interval * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not security


def _after_fork_in_child() -> None:
    # Threads do not survive fork(): the child starts its own probe on first use.
    global _prober, _probe_lock, _conns
    _prober = _Prober()
    _probe_lock = threading.Lock()
    _conns = _Connections()
    registry.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def ensure_probing() -> None:
    """Make sure this process has replica data (called by the router when it has none)."""
    interval = float(settings.ROUTING_PROBE_INTERVAL_SECONDS)
    if interval <= 0:
        if not registry.probed:
            probe_once()
        return
    if not _prober.running():
        _prober.start()
    if not registry.probed:
        registry.first_probe.wait(float(settings.ROUTING_PROBE_FIRST_WAIT_SECONDS))


def stop_probing() -> None:
    """Stop the background probe and close its connections (tests, shutdown)."""
    _prober.halt()
    with _probe_lock:
        _conns.close_all()
