"""Routing state of the current unit of work (a request, a Celery task), in contextvars.

A *unit of work* starts with a fresh ``RoutingState``: nothing written, no
causal floor, no replica chosen. The middleware opens one per request and the
Celery signal handlers one per task, through ``unit_of_work()``, which resets
the contextvars with their tokens on exit. Contextvars (not thread locals)
keep concurrent requests apart under gunicorn threads, where each thread has
its own context, and under ASGI, where every request (and every
``sync_to_async`` call it makes) runs in a copy of its own context even when
they share one thread.

Code outside any unit (a management command, a shell) gets an *ambient*
state, created lazily per thread or task: it never resets, so a script that
wrote keeps reading from the primary.

``primary()`` pins reads to the primary. Its depth lives in its own
contextvar, set and reset with tokens, so nesting unwinds exactly and a pin
never leaks into a concurrent asyncio task.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import operator
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from regions.routing.counters import count_routes

UnitKind = Literal["request", "task", "ambient"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


if TYPE_CHECKING:

    class _Decides(Generic[T]):
        """Typing only: a field of ``RoutingState`` that the cached read decision depends on."""

        def __get__(self, obj: object, owner: type | None = None) -> T: ...

        def __set__(self, obj: object, value: T) -> None: ...


def _decides(name: str, doc: str) -> Any:
    """A field the read decision depends on: setting it drops the unit's cached decision.

    A property over a private slot, read through ``operator.attrgetter`` (C,
    no Python frame); only its setter runs Python code, and fields are set
    far less often than reads are decided.
    """
    slot = f"_{name}"

    def set_value(state: RoutingState, value: Any) -> None:
        setattr(state, slot, value)
        state.fast_epoch = -1

    return property(operator.attrgetter(slot), set_value, doc=doc)


class RoutingState:
    """What the router knows about the current unit of work. Mutated only by ``regions.routing``.

    The router caches its last decision in the ``fast_*`` fields (see
    ``regions.routing.decisions``); every field that decision depends on drops
    the cache when it is set, so code (and tests) can set them directly.
    """

    __slots__ = (
        "_floor_lsn",
        "_forced_reason",
        "_kind",
        "_reasons",
        "_replica",
        "_replica_floor",
        "_user_checked",
        "_user_id",
        "_wrote",
        "captured_seq",
        "causal_outcome",
        "commit_lsn",
        "counted",
        "degraded_slot",
        "fast_alias",
        "fast_epoch",
        "fast_hits",
        "fast_key",
        "last_alias",
        "pins",
        "token_checked",
        "write_seq",
    )

    kind: _Decides[UnitKind] = _decides("kind", "A request, a task, or the ambient state of a script.")
    wrote: _Decides[bool] = _decides(
        "wrote", "The unit sent a data-changing statement to the primary (``regions.routing.writes``)."
    )
    floor_lsn: _Decides[int] = _decides(
        "floor_lsn", "Causal floor: a replica must have replayed this far to serve the unit (from tokens)."
    )
    forced_reason: _Decides[str | None] = _decides(
        "forced_reason",
        "Set when every read must go to the primary for the rest of the unit (e.g. a forged token).",
    )
    user_id: _Decides[Callable[[], str | None] | None] = _decides(
        "user_id", "Finds the authenticated user's id without a database read (requests only)."
    )
    user_checked: _Decides[str | None] = _decides(
        "user_checked", "The user id whose per-user token has been merged into ``floor_lsn``."
    )
    replica: _Decides[str | None] = _decides(
        "replica", "The replica this unit reads from (sticky, for monotonic reads within the unit)."
    )
    replica_floor: _Decides[int] = _decides("replica_floor", "The floor already verified for ``replica``.")

    def __init__(
        self,
        *,
        kind: UnitKind = "ambient",
        floor_lsn: int = 0,
        user_id: Callable[[], str | None] | None = None,
    ) -> None:
        self._kind = kind
        self._wrote = False
        self.write_seq = 0
        """Bumped by every write; lets a captured commit LSN be reused until the next write."""
        self.captured_seq = -1
        """``write_seq`` at the last capture of ``commit_lsn``."""
        self.commit_lsn = 0
        """The primary's WAL insert LSN captured after this unit's writes (the max over captures)."""
        self._floor_lsn = floor_lsn
        self._forced_reason: str | None = None
        self._user_id = user_id
        self._user_checked: str | None = None
        self._replica: str | None = None
        self._replica_floor = 0
        self.token_checked = False
        """The unit spent its one replay-LSN query; a floor still ahead goes to the primary."""
        self.degraded_slot: threading.BoundedSemaphore | None = None
        """The degraded-read limiter whose slot the unit holds (released at the end of the unit)."""
        self.last_alias: str | None = None
        """Alias of the last read decision or failover (diagnostics and tests)."""
        self.causal_outcome: str | None = None
        """How the incoming causal token was judged (fresh, expired, invalid, ...)."""
        self._reasons: dict[str, int] = {}
        self.counted = False
        """``reasons`` were added to the route counter (the unit ended)."""
        self.fast_alias = ""
        """The cached decision: where reads go while ``fast_epoch`` is the current decision epoch."""
        self.fast_key = ""
        """The reason of the cached decision (its reads are tallied under it)."""
        self.fast_epoch = -1
        """The decision epoch the cache was made in; -1: nothing cached."""
        self.fast_hits = 0
        """Reads answered from the cache and not yet added to ``reasons``."""
        self.pins = 0
        """``primary()`` blocks open on this state, in any context (no decision is cached meanwhile)."""

    @property
    def reasons(self) -> dict[str, int]:
        """Read decisions of this unit by ``target:reason`` (diagnostics, tests, and the route counter,
        which gets them when the unit ends: ``regions.routing.counters``)."""
        if self.fast_hits:
            self._reasons[self.fast_key] = self._reasons.get(self.fast_key, 0) + self.fast_hits
            self.fast_hits = 0
        return self._reasons

    def remember(self, alias: str, key: str, epoch: int) -> None:
        """Cache a decision made in decision epoch ``epoch`` (``regions.routing.decisions``)."""
        if self.fast_hits:
            self.reasons  # noqa: B018 - folds the previous decision's cached reads into the tally
        self.fast_alias, self.fast_key, self.fast_epoch = alias, key, epoch

    def forget_decision(self) -> None:
        """Drop the cached decision (the user changed: ``regions.routing.decisions``)."""
        self.fast_epoch = -1

    def raise_floor(self, lsn: int) -> None:
        if lsn > self._floor_lsn:
            self.floor_lsn = lsn

    def __repr__(self) -> str:
        return (
            f"RoutingState(kind={self._kind!r}, wrote={self._wrote}, floor_lsn={self._floor_lsn}, "
            f"replica={self._replica!r}, forced_reason={self._forced_reason!r})"
        )


class DecisionEpoch:
    """What every cached read decision of the process depends on, as one number.

    ``value`` changes (under ``lock``) when the replicas' health changes, the
    database settings change, or a primary connection enters or leaves an
    atomic block. ``atomic`` holds the primary connections (of any thread)
    inside an atomic block: while there is one, replica decisions are not
    cached, because a unit's state may be shared by threads (``sync_to_async``
    with ``thread_sensitive=False``) and only the thread deciding checks its
    own connection.
    """

    __slots__ = ("__weakref__", "atomic", "lock", "value")

    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()
        self.atomic: weakref.WeakSet[Any] = weakref.WeakSet()

    def bump(self) -> None:
        with self.lock:
            self.value += 1

    def atomic_changed(self, connection: Any, *, inside: bool) -> None:
        """A primary connection entered (``inside``) or left an atomic block."""
        with self.lock:
            if inside:
                self.atomic.add(connection)
            else:
                self.atomic.discard(connection)
            self.value += 1


epoch = DecisionEpoch()
"""The process's decision epoch (``regions.routing.decisions``)."""


_state: contextvars.ContextVar[RoutingState | None] = contextvars.ContextVar("routing_state", default=None)
_pinned: contextvars.ContextVar[int] = contextvars.ContextVar("routing_pinned", default=0)


def current_state() -> RoutingState:
    """The state of the current unit of work, or this context's ambient state."""
    state = _state.get()
    if state is None:
        state = RoutingState()
        _state.set(state)
    return state


def outer_state() -> RoutingState | None:
    """The state already open in this context, if any (without creating an ambient one)."""
    return _state.get()


def forget_ambient_state() -> None:
    """Start this context over: no writes, no floor (scripts that begin a new phase; tests)."""
    _state.set(None)


def pinned_depth() -> int:
    return _pinned.get()


def _count(state: RoutingState) -> None:
    if not state.counted and state.reasons:
        state.counted = True
        count_routes(state.reasons)


class unit_of_work:
    """Run the body as one unit of work with a fresh routing state (and no ``primary()`` pin).

    A class rather than ``@contextmanager``: it opens every request, and a
    generator-based context manager costs several times more.
    """

    __slots__ = ("_pin_token", "_state_token", "state")

    def __init__(self, kind: UnitKind, state: RoutingState | None = None) -> None:
        if state is None:
            state = RoutingState(kind=kind)
        elif state.kind != kind:
            state.kind = kind
        self.state = state

    def __enter__(self) -> RoutingState:
        self._state_token = _state.set(self.state)
        self._pin_token = _pinned.set(0)
        return self.state

    def __exit__(self, *exc: object) -> None:
        _pinned.reset(self._pin_token)
        _state.reset(self._state_token)
        _count(self.state)


def enter_unit(state: RoutingState) -> tuple[contextvars.Token[RoutingState | None], contextvars.Token[int]]:
    """Open a unit where ``with`` cannot span it (Celery prerun/postrun); close with ``exit_unit``."""
    return _state.set(state), _pinned.set(0)


def exit_unit(tokens: tuple[contextvars.Token[RoutingState | None], contextvars.Token[int]]) -> None:
    state_token, pin_token = tokens
    state = _state.get()
    _pinned.reset(pin_token)
    _state.reset(state_token)
    if state is not None:
        _count(state)


def note_write() -> None:
    """Record a write that bypassed the router (raw SQL on ``default``): later reads use the primary."""
    state = current_state()
    state.wrote = True
    state.write_seq += 1


_Pin = tuple[contextvars.Token[int], RoutingState | None]


def _pin() -> _Pin:
    """Open a ``primary()`` pin in this context, and count it on the unit's state.

    The depth in the contextvar decides (per context); the count on the state
    keeps the router from caching a replica decision while a pin is open,
    since a unit's state may be shared by contexts (``regions.routing.decisions``).
    """
    state = _state.get()
    if state is not None:
        state.pins += 1
        state.forget_decision()
    return _pinned.set(_pinned.get() + 1), state


def _unpin(pin: _Pin) -> None:
    token, state = pin
    _pinned.reset(token)
    if state is not None:
        state.pins -= 1


class primary(contextlib.ContextDecorator):
    """Send every read in the body to the primary. Nests; works as a decorator, also on ``async def``.

    >>> with primary():
    ...     Document.objects.get(pk=...)  # read from the region primary
    """

    def __init__(self) -> None:
        self._pins: list[_Pin] = []

    def __enter__(self) -> primary:
        self._pins.append(_pin())
        return self

    def __exit__(self, *exc: object) -> None:
        _unpin(self._pins.pop())

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_inner(*args: Any, **kwargs: Any) -> Any:
                pin = _pin()
                try:
                    return await func(*args, **kwargs)
                finally:
                    _unpin(pin)

            return async_inner  # type: ignore[return-value]

        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            pin = _pin()
            try:
                return func(*args, **kwargs)
            finally:
                _unpin(pin)

        return inner  # type: ignore[return-value]
