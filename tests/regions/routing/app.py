"""Test-only views and tasks that report where their reads were served.

The API's document endpoints belong to another package; these small views
exercise the router through the real middleware stack (``ROOT_URLCONF`` is
overridden to this module in the tests that use them).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import psycopg
from asgiref.sync import sync_to_async
from celery import shared_task
from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from regions.routing.probe import connect_kwargs
from regions.routing.state import current_state
from saas.models import User


def _report(**extra: Any) -> dict[str, Any]:
    state = current_state()
    return {"alias": state.last_alias, "reasons": dict(state.reasons), **extra}


@require_POST
def rename_me(request: HttpRequest) -> JsonResponse:
    """The logged-in user renames themself (a write)."""
    user: Any = request.user
    User.objects.filter(pk=user.pk).update(name=request.POST["name"])
    return JsonResponse(_report())


def terminate_primary_session() -> None:
    """The server ends this thread's primary session, as a primary that is stopping does.

    The next statement on it fails with an "unreachable" error (admin shutdown),
    not a statement error.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg.connect(autocommit=True, **connect_kwargs("default", timeout=5)) as admin:
        row = admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()
    assert row is not None and row[0]


@require_POST
def rename_me_cut_off(request: HttpRequest) -> JsonResponse:
    """``rename_me``, with the primary going away just before the write (which then fails)."""
    assert request.user.is_authenticated  # the session is read now
    terminate_primary_session()
    return rename_me(request)


@require_POST
def rename_me_then_cut_off(request: HttpRequest) -> JsonResponse:
    """``rename_me``, with the primary going away after the write (its commit LSN cannot be read)."""
    response = rename_me(request)
    terminate_primary_session()
    return response


@require_GET
def user_name(request: HttpRequest, pk: uuid.UUID) -> JsonResponse:
    """Anyone reads a user's name (a read)."""
    name = User.objects.filter(pk=pk).values_list("name", flat=True).first()
    return JsonResponse(_report(name=name))


@require_POST
def signup_and_enqueue(request: HttpRequest) -> JsonResponse:
    """Create a user, then enqueue a task (on commit) that reads it back."""
    email, key = request.POST["email"], request.POST["key"]
    with transaction.atomic():
        User.objects.create(email=email, home_region="eu-west-1")
        transaction.on_commit(lambda: read_user_task.delay(email, key))
    return JsonResponse(_report())


@require_POST
def enqueue_only(request: HttpRequest) -> JsonResponse:
    """Enqueue the same task without writing anything."""
    read_user_task.delay(request.POST["email"], request.POST["key"])
    return JsonResponse(_report())


@shared_task(name="tests.routing.read_user")
def read_user_task(email: str, key: str) -> None:
    exists = User.objects.filter(email=email).exists()
    state = current_state()
    cache.set(key, {"exists": exists, "alias": state.last_alias, "kind": state.kind}, 120)


# --- Concurrency: two requests interleaved, one writes, one only reads -------------

BARRIERS: dict[str, threading.Barrier] = {}
EVENTS: dict[str, asyncio.Event] = {}


def _write(user_id: uuid.UUID, name: str) -> None:
    User.objects.filter(pk=user_id).update(name=name)


def _read(user_id: uuid.UUID) -> tuple[str | None, str | None]:
    name = User.objects.filter(pk=user_id).values_list("name", flat=True).first()
    return name, current_state().last_alias


@require_GET
def threaded(request: HttpRequest, pk: uuid.UUID) -> JsonResponse:
    """``?role=writer`` writes, lets the reader read, then reads; the reader only reads."""
    if request.GET["role"] == "writer":
        _write(pk, request.GET["name"])
        BARRIERS["written"].wait(timeout=30)
        BARRIERS["read"].wait(timeout=30)
    else:
        BARRIERS["written"].wait(timeout=30)
        name, alias = _read(pk)
        BARRIERS["read"].wait(timeout=30)
        return JsonResponse(_report(name=name, read_alias=alias))
    name, alias = _read(pk)
    return JsonResponse(_report(name=name, read_alias=alias))


async def interleaved(request: HttpRequest, pk: uuid.UUID) -> JsonResponse:
    """The ASGI twin of ``threaded``: both requests' sync code shares one thread."""
    if request.GET["role"] == "writer":
        await sync_to_async(_write)(pk, request.GET["name"])
        EVENTS["written"].set()
        await asyncio.wait_for(EVENTS["read"].wait(), 30)
        name, alias = await sync_to_async(_read)(pk)
    else:
        await asyncio.wait_for(EVENTS["written"].wait(), 30)
        name, alias = await sync_to_async(_read)(pk)
        EVENTS["read"].set()
    report = await sync_to_async(_report)(name=name, read_alias=alias)
    return JsonResponse(report)


# URLs use ``pk``, not ``user_id``: the residency middleware would resolve a
# ``user_id`` subject through the directory, adding reads these tests do not count.
handler404 = "regions.problems.handler404"
handler500 = "regions.problems.handler500"

urlpatterns = [
    path("t/me/name", rename_me),
    path("t/me/name/cut-off", rename_me_cut_off),
    path("t/me/name/then-cut-off", rename_me_then_cut_off),
    path("t/users/<uuid:pk>/name", user_name),
    path("t/signup", signup_and_enqueue),
    path("t/enqueue", enqueue_only),
    path("t/threaded/<uuid:pk>", threaded),
    path("t/interleaved/<uuid:pk>", interleaved),
]
