"""Act as another region inside the test process.

``acting_as(stack)`` gives the test process the settings and connections that
the region's own processes would have: it builds them with the same
``settings.region.region_settings`` function, from the region's environment.

The current thread's database connections are set aside (not closed), so an
outer test transaction survives; new connections to the region's servers are
opened on demand and closed on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from django.db import connections
from django.test.utils import override_settings
from kombu import pools as kombu_pools

from settings.env import Env
from settings.region import region_settings
from tests.harness.stack import RegionStack


def _configure_celery(values: Mapping[str, Any]) -> None:
    from saas.celery import app as celery_app

    app: Any = celery_app  # private attributes below are not in the stubs
    app.conf.update(
        broker_url=values["CELERY_BROKER_URL"],
        task_always_eager=values["CELERY_TASK_ALWAYS_EAGER"],
        task_eager_propagates=values["CELERY_TASK_EAGER_PROPAGATES"],
        broker_transport_options=values["CELERY_BROKER_TRANSPORT_OPTIONS"],
    )
    # Drop pooled broker connections to the previous region's broker, including
    # kombu's process-wide producer pools, which would keep handing out producers
    # bound to the closed connection pool ("Acquire on closed pool").
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    kombu_pools.reset()


_CELERY_SETTINGS = (
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "CELERY_TASK_EAGER_PROPAGATES",
    "CELERY_BROKER_TRANSPORT_OPTIONS",
)


@contextlib.contextmanager
def swapped_databases(databases: Mapping[str, dict[str, Any]]) -> Iterator[None]:
    """Point the aliases in ``databases`` at new servers for the current thread."""
    handler: Any = connections  # ConnectionHandler._connections is private
    normalized = handler.configure_settings({alias: dict(cfg) for alias, cfg in databases.items()})
    saved_settings: dict[str, dict[str, Any] | None] = {}
    saved_wrappers: dict[str, Any] = {}
    for alias in databases:
        saved_settings[alias] = handler.settings.get(alias)
        saved_wrappers[alias] = getattr(handler._connections, alias, None)
        if saved_wrappers[alias] is not None:
            delattr(handler._connections, alias)
        handler.settings[alias] = normalized[alias]
    try:
        yield
    finally:
        for alias in databases:
            wrapper = getattr(handler._connections, alias, None)
            if wrapper is not None:
                wrapper.close()
                delattr(handler._connections, alias)
            previous = saved_settings[alias]
            if previous is None:
                handler.settings.pop(alias, None)
            else:
                handler.settings[alias] = previous
            if saved_wrappers[alias] is not None:
                setattr(handler._connections, alias, saved_wrappers[alias])


@contextlib.contextmanager
def acting_as(stack: RegionStack) -> Iterator[RegionStack]:
    """Run the body as a process of ``stack``'s region would run."""
    from django.conf import settings

    values: dict[str, Any] = dict(region_settings(Env(stack.env()), default_region=None))
    databases = values.pop("DATABASES")
    # As django.test.utils.setup_test_environment does for the test client.
    values["ALLOWED_HOSTS"] = [*values["ALLOWED_HOSTS"], "testserver"]
    try:
        with swapped_databases(databases), override_settings(**values):
            _configure_celery(values)
            yield stack
    finally:
        # override_settings has restored the outer values by now.
        _configure_celery({name: getattr(settings, name) for name in _CELERY_SETTINGS})
