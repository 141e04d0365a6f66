"""Time the residency middleware adds to a request, with a warm directory cache.

Starts a PostgreSQL primary and a Redis for eu-west-1 on loopback (the
harness, no replicas), writes directory entries, warms the cache, then sends
the same requests through two handlers built from the project's middleware
chain: one with ``ResidencyMiddleware``, one without. Rounds alternate between
the two so drift hits both alike; each figure is the median over rounds of the
per-round median.

Figures (per request):

- served: ``GET /api/v1/orgs/<eu org>/projects`` at its home region;
- redirected: the same for a us-east-1 organization (307 + problem body);
- redirected login: ``POST /api/v1/auth/login`` with a us-east-1 email (JSON
  body parsed, login key HMAC, directory lookup);
- the decision alone (``process_view``), and the violation event insert that
  runs after the response is handed to the server (off the client's path).

The view is trivial, so the difference is the middleware's own cost. The rate
limit middleware (Redis round trips) is left out of both chains: it is the
same for both and only adds noise.

    .venv/bin/python -m bench.residency_decision            # 20 rounds x 400 requests
    .venv/bin/python -m bench.residency_decision --quick    # 5 rounds x 200 requests
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import Row, cli

NAME = "residency_decision"
TARGET_US = 100.0
US_EMAIL = "bench.user@us-customer.test"

urlpatterns: list[Any] = []  # filled in by _routes() once Django is set up


def _routes() -> None:
    from django.http import HttpRequest, JsonResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    @csrf_exempt
    def view(request: HttpRequest, **kwargs: Any) -> JsonResponse:
        return JsonResponse({"ok": True})

    urlpatterns[:] = [
        path("api/v1/orgs/<slug:org_slug>/projects", view),
        path("api/v1/auth/login", view),
    ]


def _handler(middleware: list[str]) -> Any:
    from django.core.handlers.base import BaseHandler
    from django.test.utils import override_settings

    handler = BaseHandler()
    with override_settings(MIDDLEWARE=middleware):
        handler.load_middleware()
    return handler


def _time_requests(handler: Any, make: Callable[[], Any], n: int, *, close: bool) -> float:
    """Median microseconds of ``handler.get_response`` over ``n`` prebuilt requests."""
    requests = [make() for _ in range(n)]
    samples = []
    closers = []
    for request in requests:
        started = time.perf_counter_ns()
        response = handler.get_response(request)
        samples.append(time.perf_counter_ns() - started)
        closers.append(response)
    if close:
        for response in closers:
            response.close()
    return statistics.median(samples) / 1000


def run(quick: bool) -> list[Row]:
    from tests.harness.stack import harness_session

    rounds, per_round = (5, 200) if quick else (20, 400)
    with harness_session(codes=("eu-west-1",), replicas=0) as harness:
        os.environ.update(harness.region("eu-west-1").env())
        os.environ["LOG_LEVEL"] = "WARNING"  # the redirect log line is not what we time
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connections
        from django.test import RequestFactory
        from django.test.utils import override_settings

        from residency.cache import directory_cache
        from residency.login_keys import login_key
        from residency.middleware import ResidencyMiddleware
        from residency.models import DirectoryEntry, ViolationEvent
        from residency.selectors import directory_lookup
        from residency.services import directory_entry_apply_remote

        call_command("migrate", interactive=False, verbosity=0)
        _routes()
        for kind, key, home in [
            ("org", "bench-eu", "eu-west-1"),
            ("org", "bench-us", "us-east-1"),
            ("login", login_key(US_EMAIL), "us-east-1"),
        ]:
            directory_entry_apply_remote(
                kind=DirectoryEntry.Kind(kind), key=key, home_region=home, version=1, origin_region=home
            )
        cache = directory_cache()
        deadline = time.monotonic() + 15
        while not cache.local_enabled() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cache.local_enabled(), "the directory invalidation subscription did not start"

        chain = [m for m in settings.MIDDLEWARE if m != "saas.ratelimit.RateLimitMiddleware"]
        without = [m for m in chain if m != "residency.middleware.ResidencyMiddleware"]
        factory = RequestFactory()
        login_body = json.dumps({"email": US_EMAIL, "password": "x"})
        cases: dict[str, Callable[[], Any]] = {
            "served": lambda: factory.get("/api/v1/orgs/bench-eu/projects?limit=5"),
            "redirected": lambda: factory.get("/api/v1/orgs/bench-us/projects?limit=5"),
            "redirected login": lambda: factory.post(
                "/api/v1/auth/login", data=login_body, content_type="application/json"
            ),
        }
        results: dict[str, dict[str, list[float]]] = {c: {"on": [], "off": []} for c in cases}
        decision: list[float] = []
        event_insert: list[float] = []
        with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"], DEBUG=False):
            on, off = _handler(chain), _handler(without)
            for key, home in [("bench-eu", "eu-west-1"), ("bench-us", "us-east-1")]:
                assert directory_lookup(kind="org", key=key) == home  # warm
            checks = {c: on.get_response(make()).status_code for c, make in cases.items()}
            assert checks == {"served": 200, "redirected": 307, "redirected login": 307}, checks
            middleware = ResidencyMiddleware(lambda request: None)  # type: ignore[arg-type,return-value]
            for index in range(rounds):
                order = [("on", on), ("off", off)] if index % 2 == 0 else [("off", off), ("on", on)]
                for case, make in cases.items():
                    for label, handler in order:
                        results[case][label].append(_time_requests(handler, make, per_round, close=False))
                # The decision alone, for the served case (no response built).
                requests = [cases["served"]() for _ in range(per_round)]
                samples = []
                for request in requests:
                    request.resolver_match = None
                    started = time.perf_counter_ns()
                    middleware.process_view(request, lambda r: None, (), {"org_slug": "bench-eu"})
                    samples.append(time.perf_counter_ns() - started)
                decision.append(statistics.median(samples) / 1000)
                # The deferred event insert, run by response.close() after the response left.
                responses = [on.get_response(cases["redirected"]()) for _ in range(50)]
                started = time.perf_counter_ns()
                for response in responses:
                    response.close()
                event_insert.append((time.perf_counter_ns() - started) / 1000 / len(responses))
            stored = ViolationEvent.objects.count()
        connections.close_all()
        cache.stop()

    rows: list[Row] = []
    side_by_side = []
    for case, timings in results.items():
        with_mw, without_mw = statistics.median(timings["on"]), statistics.median(timings["off"])
        added = with_mw - without_mw
        side_by_side.append((case, with_mw, without_mw, added))
        rows.append(
            Row(
                benchmark=NAME,
                figure=f"{case}: request with the residency middleware, warm cache (added {added:+.1f} µs)",
                value=with_mw,
                unit="µs",
                baseline=without_mw,
                baseline_label="same request, residency middleware off",
                target=f"< {TARGET_US:.0f} µs added",
                passed=added < TARGET_US,
                notes=f"with {with_mw:.1f} µs vs without {without_mw:.1f} µs; {rounds} rounds x {per_round}",
            )
        )
    rows.append(
        Row(
            benchmark=NAME,
            figure="decision alone (process_view, served, warm cache)",
            value=statistics.median(decision),
            unit="µs",
            baseline=None,
            baseline_label="—",
            target=f"< {TARGET_US:.0f} µs",
            passed=statistics.median(decision) < TARGET_US,
        )
    )
    rows.append(
        Row(
            benchmark=NAME,
            figure="violation event insert, after the response (off the client's path)",
            value=statistics.median(event_insert),
            unit="µs",
            baseline=None,
            baseline_label="—",
            target="informational",
            passed=None,
            notes=f"{stored} events stored",
        )
    )
    print("\ncase | with residency | without | added", file=sys.stderr)
    for case, with_mw, without_mw, added in side_by_side:
        print(f"{case} | {with_mw:.1f} µs | {without_mw:.1f} µs | {added:+.1f} µs", file=sys.stderr)
    return rows


def main() -> None:
    cli(NAME, __doc__, run)


if __name__ == "__main__":
    main()
