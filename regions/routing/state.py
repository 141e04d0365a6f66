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
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from regions.routing.counters import count_routes

UnitKind = Literal["request", "task", "ambient"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(slots=True, eq=False)
class RoutingState:
    """What the router knows about the current unit of work. Mutated only by ``regions.routing``."""

    kind: UnitKind = "ambient"
    wrote: bool = False
    """The unit sent a data-changing statement to the primary (``regions.routing.writes``)."""
    write_seq: int = 0
    """Bumped by every write; lets a captured commit LSN be reused until the next write."""
    captured_seq: int = -1
    """``write_seq`` at the last capture of ``commit_lsn``."""
    commit_lsn: int = 0
    """The primary's WAL insert LSN captured after this unit's writes (the max over captures)."""
    floor_lsn: int = 0
    """Causal floor: a replica must have replayed this far to serve the unit (from tokens)."""
    forced_reason: str | None = None
    """Set when every read must go to the primary for the rest of the unit (e.g. a forged token)."""
    user_id: Callable[[], str | None] | None = None
    """Finds the authenticated user's id without a database read (requests only)."""
    user_checked: str | None = None
    """The user id whose per-user token has been merged into ``floor_lsn``."""
    replica: str | None = None
    """The replica this unit reads from (sticky, for monotonic reads within the unit)."""
    replica_floor: int = 0
    """The floor already verified for ``replica``."""
    token_checked: bool = False
    """The unit spent its one replay-LSN query; a floor still ahead goes to the primary."""
    degraded_slot: threading.BoundedSemaphore | None = None
    """The degraded-read limiter whose slot the unit holds (released at the end of the unit)."""
    last_alias: str | None = None
    """Alias of the last read decision or failover (diagnostics and tests)."""
    causal_outcome: str | None = None
    """How the incoming causal token was judged (fresh, expired, invalid, ...)."""
    reasons: dict[str, int] = field(default_factory=dict)
    """Read decisions of this unit by ``target:reason`` (diagnostics, tests, and the route counter,
    which gets them when the unit ends: ``regions.routing.counters``)."""
    counted: bool = False
    """``reasons`` were added to the route counter (the unit ended)."""

    def raise_floor(self, lsn: int) -> None:
        if lsn > self.floor_lsn:
            self.floor_lsn = lsn


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
        fresh = state or RoutingState(kind=kind)
        fresh.kind = kind
        self.state = fresh

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


class primary(contextlib.ContextDecorator):
    """Send every read in the body to the primary. Nests; works as a decorator, also on ``async def``.

    >>> with primary():
    ...     Document.objects.get(pk=...)  # read from the region primary
    """

    def __init__(self) -> None:
        self._tokens: list[contextvars.Token[int]] = []

    def __enter__(self) -> primary:
        self._tokens.append(_pinned.set(_pinned.get() + 1))
        return self

    def __exit__(self, *exc: object) -> None:
        _pinned.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_inner(*args: Any, **kwargs: Any) -> Any:
                token = _pinned.set(_pinned.get() + 1)
                try:
                    return await func(*args, **kwargs)
                finally:
                    _pinned.reset(token)

            return async_inner  # type: ignore[return-value]

        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            token = _pinned.set(_pinned.get() + 1)
            try:
                return func(*args, **kwargs)
            finally:
                _pinned.reset(token)

        return inner  # type: ignore[return-value]
