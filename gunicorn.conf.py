"""gunicorn settings read by every ``gunicorn saas.wsgi:application`` started from the repository root.

Command-line flags override these. Metrics run in prometheus_client's
multiprocess mode (see ``regions/observability/multiprocess.py``): the master
prepares the directory before forking workers and retires exited workers'
live gauges; gunicorn's own log lines are JSON like the application's, its
access log (which names client IPs) is off, and the requests it refuses itself
get problem+json answers and log lines without the client's IP
(``regions/gunicorn_errors.py``). The control socket is off.
"""

from __future__ import annotations

import os
from typing import Any

from regions import gunicorn_errors
from regions.observability import multiprocess
from regions.observability.logs import logging_config

multiprocess.prepare(prefix="gunicorn")
# Requests gunicorn refuses itself (not valid HTTP/1.1) get a problem+json answer too.
gunicorn_errors.install()

# gunicorn 27's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl):
# several servers on one machine (every region of the dev stack, the tests) would fight over it.
control_socket_disable = True

_log = logging_config(level=os.environ.get("LOG_LEVEL", "INFO"), fmt=os.environ.get("LOG_FORMAT", "json"))
logconfig_dict = {
    **_log,
    "filters": {**_log.get("filters", {}), "no_client_address": {"()": gunicorn_errors.ClientAddressFilter}},
    "loggers": {
        # "Invalid request from ip=...": the reason stays, the client's IP goes.
        "gunicorn.error": {
            "level": "INFO",
            "handlers": ["console"],
            "propagate": False,
            "filters": ["no_client_address"],
        },
        # gunicorn's access line names the client IP: the request context
        # middleware writes the access line instead (route, status, duration, user id).
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
}


def child_exit(server: Any, worker: Any) -> None:
    multiprocess.process_dead(worker.pid)


def on_exit(server: Any) -> None:
    multiprocess.cleanup()
