"""How the router decides where a read goes (the README's "How it decides" in code).

``route_read`` runs for every read the ORM makes. It reuses the unit's last
decision while nothing that decision depends on changed (the decision epoch
and the unit's fields, see ``RoutingState`` and ``DecisionEpoch``); otherwise
``_decide`` runs, whose common paths cost a few attribute lookups and no I/O:

1. no replicas configured (the embedded SQLite mode) -> ``default``;
2. ``primary()`` pin, the unit already wrote, a model that reads from the
   primary only, or the primary connection is inside an atomic block -> ``default``;
3. a forged token, or the per-user token store not answering -> ``default`` (degraded);
4. no usable replica (all down or lagging past the limits) -> ``default`` (degraded);
5. no causal floor -> the unit's replica (chosen round robin among the usable
   ones on the unit's first read, then kept, so reads within a unit are monotonic);
6. a causal floor -> a usable replica whose known replay LSN reaches it; if
   none does, one query of the most advanced replica's replay LSN (cached
   process-wide for ``ROUTING_REPLAY_LSN_CACHE_SECONDS``, at most once per
   unit); still behind -> ``default``.

"Degraded" reads are capped by ``regions.routing.limiter``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.signals import setting_changed
from django.db import DatabaseError, connections
from django.dispatch import receiver

from regions.metrics import DB_FALLBACK, labels
from regions.routing import tokens
from regions.routing.counters import count_route, count_token
from regions.routing.health import registry
from regions.routing.limiter import admit_degraded
from regions.routing.lsn import CURRENT_PRIMARY_LSN_SQL, LSN_MAX, REPLAY_LSN_SQL
from regions.routing.probe import ensure_probing
from regions.routing.state import RoutingState, _pinned, _state, current_state, epoch, pinned_depth

logger = logging.getLogger(__name__)

_current = _state.get
"""The unit's state or ``None``: ``_state.get`` bound once (``route_read`` runs for every ORM read)."""

PRIMARY = "default"


class _Config:
    """The settings and objects every decision needs, read once (rebuilt when they change)."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.replicas: tuple[str, ...] = tuple(settings.DATABASE_REPLICAS)


_generation = 0
_config: _Config | None = None


def _conf() -> _Config:
    global _config
    config = _config
    if config is None:
        config = _config = _Config(_generation)
    return config


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    global _config, _generation
    if setting in {"REGION", "DATABASES", "DATABASE_REPLICAS"}:
        _generation += 1  # also invalidates units' cached primary connection
        _config = None
        epoch.bump()


@receiver(user_logged_in)
@receiver(user_logged_out)
def _user_changed(**kwargs: Any) -> None:
    # The unit's user changed: the next read merges the new user's per-user token.
    state = _current()
    if state is not None:
        state.forget_decision()


class _ThreadConnection(threading.local):
    generation = -1
    conn: Any = None
    tracks_atomic = False
    """The connection reports its atomic blocks to the decision epoch (``regions.routing.backend``)."""


_thread_primary = _ThreadConnection()


def _refresh_thread_primary() -> None:
    """Cache this thread's primary connection wrapper (``connections["default"]``).

    The lookup (asgiref's ``Local``) costs more than the rest of a decision.
    The ORM runs in sync threads, where Django's connections are plain
    thread-locals, so a thread-local cache finds the same wrapper; it is
    dropped when the database settings change.
    """
    from regions.routing.backend.base import DatabaseWrapper

    cached = _thread_primary
    cached.conn = connections[PRIMARY]
    cached.tracks_atomic = isinstance(cached.conn, DatabaseWrapper)
    cached.generation = _generation


_replica_models: set[type[Any]] = set()
"""Model classes that may be read from a replica (no ``routing_primary_only`` declaration)."""


def _record(state: RoutingState, alias: str, key: str) -> str:
    """Note the decision in the unit's tally (the route counter gets it when the unit ends)."""
    state.last_alias = alias
    reasons = state.reasons
    reasons[key] = reasons.get(key, 0) + 1
    if state.kind == "ambient":  # no end to wait for
        count_route(key)
    return alias


def _remember(state: RoutingState, alias: str, key: str, seen: int, *, replica: bool) -> str:
    """``_record`` the decision, and cache it for the unit's next reads when that is safe.

    ``seen`` is the decision epoch read before the decision was made: a change
    meanwhile leaves a cache that is already stale. Not cached: the ambient
    state (its decisions are counted one by one), a state with a ``primary()``
    pin open in any context (the pin decides per context), a request whose user is not
    known yet (the first read after authentication merges the user's token),
    and any decision when this thread's primary connection does not report
    its atomic blocks; replica decisions also not while any primary connection
    is inside an atomic block (see ``DecisionEpoch``).
    """
    _record(state, alias, key)
    if (
        state.kind != "ambient"
        and not state.pins
        and (state.user_id is None or state.user_checked is not None)
        and _thread_primary.tracks_atomic
        and not (replica and epoch.atomic)
    ):
        state.remember(alias, key, seen)
    return alias


def _primary(state: RoutingState, reason: str, *, degraded: str | None = None) -> str:
    if degraded is not None:
        admit_degraded(state, alias=degraded)
    return _record(state, PRIMARY, f"primary:{reason}")


def route_read(model: type[Any] | None, **hints: Any) -> str:
    """The alias for a read of ``model`` by the current unit of work.

    Called for every ORM read. The unit's cached decision answers when nothing
    it depends on changed (the decision epoch, the unit's fields; opening a
    ``primary()`` pin drops it) and the model is one that may be read from a
    replica; otherwise ``_decide`` decides, in the order of the module docstring.
    """
    state = _current()
    if state is not None and state.fast_epoch == epoch.value and model in _replica_models:
        state.fast_hits += 1
        return state.fast_alias
    return _decide(state, model)


def _decide(state: RoutingState | None, model: type[Any] | None) -> str:
    if not (_config or _conf()).replicas:
        return PRIMARY
    if state is None:
        state = current_state()
    seen = epoch.value
    cached = _thread_primary
    if cached.generation != _generation:
        _refresh_thread_primary()
    if _pinned.get():
        return _record(state, PRIMARY, "primary:pinned")
    primary_only = False
    if model is not None and model not in _replica_models:
        primary_only = bool(getattr(model, "routing_primary_only", False))  # a class-level declaration
        if not primary_only:
            _replica_models.add(model)
    if state.wrote:
        return _remember(state, PRIMARY, "primary:wrote", seen, replica=False)
    if primary_only:
        return _record(state, PRIMARY, "primary:model")
    if cached.conn.in_atomic_block:
        return _remember(state, PRIMARY, "primary:atomic", seen, replica=False)
    if state.forced_reason is None and state.user_id is not None:
        _merge_user_floor(state)
    # The unit's replica, already checked against its floor and still usable: the common case.
    sticky = state.replica
    if sticky is not None and state.forced_reason is None and sticky in registry.usable:
        floor = state.floor_lsn
        if state.replica_floor >= floor:
            key = "replica:caught_up" if floor else "replica:healthy"
            return _remember(state, sticky, key, seen, replica=True)
    return _choose_replica(state)


def route_write() -> str:
    # Not a sign of a write by itself (Django also asks when it builds unsaved
    # instances): the statements are watched instead, see regions.routing.writes.
    return PRIMARY


def _choose_replica(state: RoutingState) -> str:
    if not registry.probed:
        ensure_probing()
    if state.forced_reason is not None:
        return _primary(state, state.forced_reason, degraded="replicas")
    usable = registry.usable
    if not usable:
        return _primary(state, registry.unusable_reason or "replicas_down", degraded="replicas")
    floor = state.floor_lsn
    sticky = state.replica
    if not floor:
        # Round robin over the usable replicas (a random one if they changed meanwhile).
        choice = registry.next_usable() or random.choice(usable)  # noqa: S311 - load spreading
        state.replica, state.replica_floor = choice, 0
        return _record(state, choice, "replica:healthy")
    ready = [alias for alias in usable if registry.replay_lsn(alias) >= floor]
    if not ready and not state.token_checked:
        state.token_checked = True
        best = max(usable, key=registry.replay_lsn)
        if fresh_replay_lsn(best) >= floor:
            ready = [best]
    if not ready:
        if state.causal_outcome != "ahead":
            state.causal_outcome = "ahead"
            count_token("ahead")
        return _primary(state, "token_ahead")
    choice = sticky if sticky in ready else random.choice(ready)  # noqa: S311 - load spreading
    state.replica, state.replica_floor = choice, floor
    if state.causal_outcome != "caught_up":
        state.causal_outcome = "caught_up"
        count_token("caught_up")
    return _record(state, choice, "replica:caught_up")


def _merge_user_floor(state: RoutingState) -> None:
    """Fold the authenticated user's per-user token (other devices' writes) into the floor, once."""
    assert state.user_id is not None  # noqa: S101 - checked by the caller
    user_id = state.user_id()
    if user_id is None or user_id == state.user_checked:
        return
    state.user_checked = user_id
    try:
        lsn = tokens.user_lsn_get(user_id)
    except tokens.TokenStoreUnavailable:
        count_token("store_unavailable")
        state.forced_reason = "token_store_unavailable"
        return
    if lsn:
        count_token("user")
        state.raise_floor(lsn)


def user_floor_prefetched(user_id: str, raw: bytes | str | None) -> None:
    """The user's per-user token, read by another Redis round trip of the request (the rate limiter).

    Folds it into the request's floor as ``_merge_user_floor`` would on the
    first read after authentication, which then finds the user checked and
    makes no round trip of its own. Outside a request unit it does nothing.
    """
    state = _current()
    if state is None or state.kind != "request" or state.forced_reason is not None:
        return
    if state.user_checked == user_id or not (_config or _conf()).replicas:
        return
    state.user_checked = user_id
    lsn = tokens.parse_user_lsn(raw)
    if lsn:
        count_token("user")
        state.raise_floor(lsn)


def fresh_replay_lsn(alias: str) -> int:
    """``alias``'s replay LSN, read now unless a read in the last few milliseconds is cached."""
    max_age = float(settings.ROUTING_REPLAY_LSN_CACHE_SECONDS)
    if time.monotonic() - registry.lsn_checked_at(alias) < max_age:
        return registry.replay_lsn(alias)
    from regions.routing.backend.base import connection_failed, failover_disabled

    conn = connections[alias]
    try:
        with failover_disabled(), conn.cursor() as cursor:
            cursor.execute(REPLAY_LSN_SQL)
            row = cursor.fetchone()
    except DatabaseError as exc:
        if connection_failed(conn, exc):
            registry.mark_down(alias, f"token check: {type(exc).__name__}")
        return 0
    lsn = int(row[0]) if row and row[0] is not None else 0
    registry.note_replay_lsn(alias, lsn)
    return lsn


def failover_target(*, failed: str, tried: set[str], detail: str) -> str:
    """After ``failed`` broke or refused a read: mark it down and pick where to retry."""
    registry.mark_down(failed, detail)
    state = current_state()
    if state.forced_reason is None and not pinned_depth():
        floor = state.floor_lsn
        candidates = [
            alias
            for alias in registry.usable
            if alias not in tried and alias != failed and registry.replay_lsn(alias) >= floor
        ]
        if candidates:
            choice = random.choice(candidates)  # noqa: S311
            state.replica, state.replica_floor = choice, floor
            state.last_alias = choice
            labels(DB_FALLBACK, alias=failed, outcome="replica").inc()
            return choice
    admit_degraded(state, alias=failed)
    labels(DB_FALLBACK, alias=failed, outcome="primary").inc()
    state.replica = None
    state.last_alias = PRIMARY
    return PRIMARY


def inherit_causal_floor(fresh: RoutingState, outer: RoutingState | None) -> None:
    """A unit opened inside another context starts at least where that context is.

    Server threads have no outer state, so this does nothing there; it matters
    when a request is handled in-process by code that wrote first (Django's
    test client called by a test, an in-process sub-request).
    """
    if outer is None or outer is fresh:
        return
    fresh.raise_floor(max(outer.floor_lsn, capture_commit_lsn(outer) or 0))


def capture_commit_lsn(state: RoutingState) -> int | None:
    """After the unit's writes: the primary's WAL insert LSN, the max over every capture.

    One query, only when the unit wrote since the last capture. If it fails,
    the token carries ``LSN_MAX``: reads go to the primary until it expires.
    """
    if not state.wrote or not settings.DATABASE_REPLICAS:
        return None
    if state.captured_seq == state.write_seq:
        return state.commit_lsn
    try:
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute(CURRENT_PRIMARY_LSN_SQL)
            row = cursor.fetchone()
        lsn = int(row[0])
    except Exception:
        logger.warning("could not read the primary's WAL position; pinning the client to the primary")
        lsn = LSN_MAX
    state.commit_lsn = max(state.commit_lsn, lsn)
    state.captured_seq = state.write_seq
    return state.commit_lsn
