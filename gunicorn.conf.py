"""gunicorn settings read by every ``gunicorn saas.wsgi:application`` started from the repository root.

Command-line flags override these. Metrics run in prometheus_client's
multiprocess mode (see ``regions/observability/multiprocess.py``): the master
prepares the directory before forking workers and retires exited workers'
live gauges; gunicorn's own log lines are JSON like the application's, and its
access log (which names client IPs) is off. The control socket is off.
"""

from __future__ import annotations

import os
from typing import Any

from regions.observability import multiprocess
from regions.observability.logs import logging_config

multiprocess.prepare(prefix="gunicorn")

# gunicorn 27's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl):
# several servers on one machine (every region of the dev stack, the tests) would fight over it.
control_socket_disable = True

_log = logging_config(level=os.environ.get("LOG_LEVEL", "INFO"), fmt=os.environ.get("LOG_FORMAT", "json"))
logconfig_dict = {
    **_log,
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
        # gunicorn's access line names the client IP: the request context
        # middleware writes the access line instead (route, status, duration, user id).
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
}


def child_exit(server: Any, worker: Any) -> None:
    multiprocess.process_dead(worker.pid)


def on_exit(server: Any) -> None:
    multiprocess.cleanup()
