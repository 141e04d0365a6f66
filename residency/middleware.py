"""The residency middleware: send every request to its subject's home region.

Slot 5 of the middleware order (docs/decisions/0003). The decision runs in
``process_view``, once the URL is resolved (the subject may be a URL kwarg) and
before CSRF and authentication check anything, so a wrong-region request is
answered before it touches this region's data. See ``residency/README.md`` for
the decision table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.encoding import escape_uri_path, iri_to_uri

from regions.errors import HomeRegionUnavailable, WrongRegion
from regions.metrics import RESIDENCY_DECISION, labels
from regions.problems import app_error_response
from regions.registry import Region
from residency.policy import Decision, Outcome, decide
from residency.services import ViolationRecord, safe_method, violation_event_record
from residency.subjects import Subject, find_subject, login_paths

logger = logging.getLogger(__name__)

DEFAULT_EXEMPT_PREFIXES = ("/health/", "/internal/", "/admin/", "/static/")


def redirect_location(request: HttpRequest, target: Region) -> str:
    """The same path and query on the target region's public origin (from the registry only)."""
    path = "/" + escape_uri_path(request.path).lstrip("/")
    query = iri_to_uri(request.META.get("QUERY_STRING", ""))
    return target.public_link(path, query)


def _path_template(request: HttpRequest) -> str:
    match = request.resolver_match
    return (match.route if match is not None else "")[:200]


def _respond(request: HttpRequest, subject: Subject, decision: Decision, home_region: str) -> HttpResponse:
    if decision.outcome is Outcome.REDIRECTED and decision.target is not None:
        response = app_error_response(
            WrongRegion(region=decision.target.code, location=redirect_location(request, decision.target))
        )
    else:
        retry_after = int(getattr(settings, "RESIDENCY_RETRY_AFTER_SECONDS", 30))
        response = app_error_response(
            HomeRegionUnavailable(
                f"The home region of this resource ({home_region}) is unavailable; "
                "retry later. It is never served from another zone.",
                extra={"region": home_region},
                headers={"Retry-After": str(retry_after)},
            )
        )
    # The answer depends on the directory and on peer health: never cache it.
    response["Cache-Control"] = "no-store"
    record = ViolationRecord(
        region=settings.REGION,
        home_region=home_region,
        target_region=decision.target.code if decision.target is not None else "",
        subject_kind=subject.kind,
        subject_hash=subject.hashed(),
        method=safe_method(request.method),
        path_template=_path_template(request),
        decision=decision.outcome.value,
        status=response.status_code,
    )
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "residency: wrong-region request %s (%s -> %s)",
            record.decision,
            record.region,
            record.home_region,
            extra={"residency": record.log_fields()},
        )
    # Stored once the response has been handed to the server, off the client's latency.
    cast(Any, response)._resource_closers.append(lambda: violation_event_record(record=record))
    return response


class ResidencyMiddleware:
    """Serve at the home region; 307 to it from elsewhere; 503 when it is down."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.exempt = tuple(getattr(settings, "RESIDENCY_EXEMPT_PATH_PREFIXES", DEFAULT_EXEMPT_PREFIXES))
        self.logins = login_paths()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: Mapping[str, Any],
    ) -> HttpResponse | None:
        if request.path_info.startswith(self.exempt):
            return None
        subject = find_subject(request, view_kwargs, logins=self.logins)
        if subject is None:
            return None
        home_region = subject.home_region()
        decision = decide(home_region=home_region)
        outcome = decision.outcome.value if home_region is not None else "unknown_subject"
        labels(RESIDENCY_DECISION, decision=outcome, subject_kind=subject.kind).inc()
        if decision.outcome is Outcome.SERVED or home_region is None:
            return None
        return _respond(request, subject, decision, home_region)
