"""``Host`` validation that answers a problem, in production and with ``DEBUG`` alike.

Django raises ``DisallowedHost`` from the first ``request.get_host()`` a
middleware or view makes, and answers it with the ``handler400`` view only
when ``DEBUG`` is off (with it on, an HTML page naming the forged host). This
middleware asks first, right after the request context, so a forged ``Host``
is always ``400 bad_request`` as ``application/problem+json`` and reaches no
session, residency, rate limit or view. Probes and metrics answer any ``Host``
(kubelets and load balancers send an IP), as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from regions.problems import problem_response

logger = logging.getLogger("django.security.DisallowedHost")

ANY_HOST_PREFIXES = ("/health/", "/internal/metrics")


class AllowedHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(ANY_HOST_PREFIXES):
            try:
                request.get_host()
            except DisallowedHost:
                # Not the value: it is attacker-controlled (log injection, PII).
                logger.warning("Request refused: Host not in ALLOWED_HOSTS")
                return problem_response(
                    status=400, code="bad_request", detail="The request was refused.", instance=request.path
                )
        return self.get_response(request)
