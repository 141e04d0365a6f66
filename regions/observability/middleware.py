"""First middleware: request id, log context, latency metric, access log line; probes.

Slot 1 of the middleware order (docs/decisions/0003). For every request it

1. takes the request id from a well-formed ``X-Request-ID`` or generates one,
   sets ``regions.request_context.request_id_var`` (read by the log formatter,
   the Celery publish hook and the inter-region client) and returns it in the
   response's ``X-Request-ID``;
2. records the latency in ``saas_http_request_duration_seconds`` by route
   template and status;
3. writes one access log line (method, route, status, duration, user id).

Probes and the metrics endpoint (``/health/*``, ``/internal/metrics``) are
answered here, without the rest of the stack (docs/decisions/0006): load
balancers and the kubelet send the node's or pod's IP as ``Host``, which
``ALLOWED_HOSTS`` rightly refuses, and a probe must never be redirected by
residency, rate limited or touch a session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, cast

from asgiref.sync import async_to_sync, iscoroutinefunction
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, resolve
from django.utils.functional import SimpleLazyObject, empty

from regions.metrics import HTTP_REQUEST_DURATION, labels
from regions.observability.context import REQUEST_ID_HEADER, request_id_new, request_id_valid, route_var
from regions.request_context import request_id_var

logger = logging.getLogger("regions.access")

UNMATCHED_ROUTE = "<unmatched>"
"""The route label of a request that matched no URL pattern (bounded cardinality)."""
PROBE_URL_NAMES = frozenset({"health-live", "health-ready", "health-startup", "internal-metrics"})
_PROBE_PREFIXES = ("/health/", "/internal/metrics")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return str(match.route) if match is not None and match.route else UNMATCHED_ROUTE


def user_id_of(request: HttpRequest) -> str | None:
    """The authenticated user's id, only if authentication already ran (never forces a lookup)."""
    user: Any = request.__dict__.get("user")
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None
    return str(user.pk) if getattr(user, "is_authenticated", False) else None


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.serve_probe = cast(
            Callable[[HttpRequest], HttpResponseBase], convert_exception_to_response(self._serve_probe)
        )

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        incoming = request.headers.get(REQUEST_ID_HEADER)
        request_id = incoming if incoming is not None and request_id_valid(incoming) else request_id_new()
        request.request_id = request_id  # type: ignore[attr-defined]
        id_token = request_id_var.set(request_id)
        route_token = route_var.set(None)
        started = time.perf_counter()
        try:
            probe = self._probe_match(request)
            if probe is not None:
                request.resolver_match = probe
                route_var.set(route_of(request))
                response = self.serve_probe(request)
            else:
                response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            self._record(request, response, time.perf_counter() - started, probe=probe is not None)
            return response
        finally:
            route_var.reset(route_token)
            request_id_var.reset(id_token)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> None:
        """URL resolution is done: from here on, log lines carry the route template."""
        route_var.set(route_of(request))

    @staticmethod
    def _probe_match(request: HttpRequest) -> Any:
        if not request.path_info.startswith(_PROBE_PREFIXES):
            return None
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
        return match if match.url_name in PROBE_URL_NAMES else None

    @staticmethod
    def _serve_probe(request: HttpRequest) -> HttpResponseBase:
        match: Any = request.resolver_match  # set by __call__
        view = match.func
        if iscoroutinefunction(view):
            view = async_to_sync(view)
        response: Any = view(request, *match.args, **match.kwargs)
        if callable(getattr(response, "render", None)):
            response = response.render()
        # A failing probe is reported by its checks' log lines and metrics, not
        # by one django.request ERROR line per poll.
        response._has_been_logged = True
        return response  # type: ignore[no-any-return]

    @staticmethod
    def _record(request: HttpRequest, response: HttpResponseBase, elapsed: float, *, probe: bool) -> None:
        route = route_of(request)
        route_var.set(route)
        method = request.method if request.method in _METHODS else "OTHER"
        status = str(response.status_code)
        labels(HTTP_REQUEST_DURATION, route=route, method=method or "OTHER", status=status).observe(elapsed)
        logger.log(
            logging.DEBUG if probe else logging.INFO,
            "%s %s %s",
            method,
            route,
            status,
            extra={
                "method": method,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
                "user_id": user_id_of(request),
            },
        )
