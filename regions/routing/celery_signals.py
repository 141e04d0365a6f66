"""Causal tokens across Celery: a task reads what the unit that enqueued it wrote.

- ``before_task_publish`` (in the publishing process): if the unit wrote,
  capture the primary's WAL position now (tasks are enqueued on commit, so
  the write is committed) and send it as the ``causal_token`` header, signed
  like a client token. A task published while the unit is still inside a
  transaction after writing gets ``causal_primary`` instead: its data is not
  committed yet, so no LSN can describe it. A unit that only carries a token
  forwards it.
- ``task_prerun`` / ``task_postrun`` (in the worker): each task runs as its
  own unit of work, starting from the token in its headers; forged or
  garbled headers send the task's reads to the primary. Eager tasks
  (``CELERY_TASK_ALWAYS_EAGER``) run inside the caller's unit instead.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

from celery import signals
from django.conf import settings
from django.db import connections

from regions.routing import tokens
from regions.routing.counters import count_token
from regions.routing.decisions import PRIMARY, capture_commit_lsn
from regions.routing.state import RoutingState, current_state, enter_unit, exit_unit

_Tokens = tuple[contextvars.Token[RoutingState | None], contextvars.Token[int]]
_open_units: dict[tuple[str, int], _Tokens] = {}


@signals.before_task_publish.connect(weak=False, dispatch_uid="regions.routing.attach_causal_token")
def attach_causal_token(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is None or not settings.DATABASE_REPLICAS:
        return
    state = current_state()
    if state.wrote and connections[PRIMARY].in_atomic_block:
        headers[tokens.TASK_PRIMARY_HEADER] = "1"
        return
    lsn = max(capture_commit_lsn(state) or 0, state.floor_lsn)
    if lsn:
        headers[tokens.TASK_HEADER] = tokens.issue(lsn)


def task_state(request: Any) -> RoutingState:
    """A fresh unit state for a task, from its message headers."""
    state = RoutingState(kind="task")
    if not settings.DATABASE_REPLICAS:
        return state
    if request.get(tokens.TASK_PRIMARY_HEADER):
        state.forced_reason = "task_primary"
    verdict = tokens.verify(request.get(tokens.TASK_HEADER))
    if verdict is not None:
        count_token(f"task_{verdict.outcome}")
        if verdict.outcome == "valid":
            state.raise_floor(verdict.lsn)
        elif verdict.outcome == "invalid":
            state.forced_reason = "token_invalid"
    return state


@signals.task_prerun.connect(weak=False, dispatch_uid="regions.routing.task_unit_enter")
def task_unit_enter(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id is None or task is None or task.request.is_eager:
        return
    _open_units[(task_id, threading.get_ident())] = enter_unit(task_state(task.request))


@signals.task_postrun.connect(weak=False, dispatch_uid="regions.routing.task_unit_exit")
def task_unit_exit(task_id: str | None = None, **kwargs: Any) -> None:
    if task_id is None:
        return
    opened = _open_units.pop((task_id, threading.get_ident()), None)
    if opened is not None:
        exit_unit(opened)
