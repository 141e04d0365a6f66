"""Time the request context middleware adds to a request (request id, histogram, JSON access line).

Two handlers are built from the same trivial view: one with
``RequestContextMiddleware`` (slot 1 of the middleware order), one without any
middleware. The access line goes through the project's real JSON formatter to
``/dev/null``, so formatting is paid as in production. Rounds alternate
between the two handlers; each figure is the median over rounds of the
per-round median. No service is needed (embedded settings, no database).

Figures (per request): a request with a client ``X-Request-ID``, one without
(a UUID is generated), and the JSON formatting of one access line alone.

    .venv/bin/python -m bench.request_context            # 20 rounds x 2000 requests
    .venv/bin/python -m bench.request_context --quick    # 5 rounds x 500 requests
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.common import Row, cli

NAME = "request_context"
TARGET_US = 100.0

urlpatterns: list[Any] = []  # filled in by _routes() once Django is set up


def _routes() -> None:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return HttpResponse(b"ok")

    urlpatterns[:] = [path("api/v1/orgs/<slug:org_slug>/projects", view)]


def _handler(middleware: list[str]) -> Any:
    from django.core.handlers.base import BaseHandler
    from django.test.utils import override_settings

    handler = BaseHandler()
    with override_settings(MIDDLEWARE=middleware, ROOT_URLCONF=__name__):
        handler.load_middleware()
    return handler


def _median_us(handler: Any, make: Callable[[], Any], n: int) -> float:
    requests = [make() for _ in range(n)]
    samples = []
    for request in requests:
        started = time.perf_counter_ns()
        handler.get_response(request)
        samples.append(time.perf_counter_ns() - started)
    return statistics.median(samples) / 1000


def run(quick: bool) -> list[Row]:
    import django
    from django.test import RequestFactory
    from django.test.utils import override_settings

    rounds, n = (5, 500) if quick else (20, 2000)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")
    django.setup()
    _routes()
    devnull = open(os.devnull, "w")  # closed at the end of run()
    from regions.observability.logs import JsonFormatter

    handler = logging.StreamHandler(devnull)
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)

    factory = RequestFactory()
    path = "/api/v1/orgs/acme/projects"
    cases: dict[str, Callable[[], Any]] = {
        "client X-Request-ID": lambda: factory.get(path, HTTP_X_REQUEST_ID="lb-0123456789abcdef"),
        "generated id": lambda: factory.get(path),
    }
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"]):
        with_mw = _handler(["regions.observability.middleware.RequestContextMiddleware"])
        without = _handler([])
        results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in cases}
        for _ in range(rounds):
            for name, make in cases.items():
                results[name][0].append(_median_us(with_mw, make, n))
                results[name][1].append(_median_us(without, make, n))

    record = logging.LogRecord("regions.access", logging.INFO, __file__, 1, "GET %s 200", ("r",), None)
    record.__dict__.update(method="GET", status=200, duration_ms=1.2, user_id=None)
    fmt_samples = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        for _ in range(n):
            handler.format(record)
        fmt_samples.append((time.perf_counter_ns() - started) / n / 1000)

    rows = []
    for name, (with_times, without_times) in results.items():
        value, baseline = statistics.median(with_times), statistics.median(without_times)
        rows.append(
            Row(
                benchmark=NAME,
                figure=f"request with the middleware, {name} (added {value - baseline:+.1f} µs)",
                value=round(value, 2),
                unit="µs",
                baseline=round(baseline, 2),
                baseline_label="no middleware",
                target=f"added < {TARGET_US:g} µs",
                passed=(value - baseline) < TARGET_US,
                notes=f"added {value - baseline:.1f} µs",
            )
        )
    rows.append(
        Row(
            benchmark=NAME,
            figure="JSON access line formatting alone",
            value=round(statistics.median(fmt_samples), 2),
            unit="µs",
            baseline=None,
            baseline_label="—",
            target="",
            passed=None,
        )
    )
    devnull.close()
    return rows


def main() -> None:
    cli(NAME, __doc__, run)


if __name__ == "__main__":
    main()
