"""RFC 9457 problem details: the one way every error leaves the application.

``problem_response`` renders a problem; ``api_exception_handler`` is DRF's
exception handler; ``handler_*`` are Django's error views, so unknown routes,
CSRF failures and crashes also answer ``application/problem+json``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from regions.errors import AppError, PrimaryUnavailable
from regions.routing.failures import database_unreachable

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_type(code: str) -> str:
    """The ``type`` URI of a problem code (documented at that address)."""
    base: str = getattr(settings, "PROBLEM_TYPE_BASE", "https://saas.example.com/problems/")
    return f"{base}{code}"


def problem_body(
    *,
    status: int,
    code: str,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return body


def problem_response(
    *,
    status: int,
    code: str,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """A plain Django response carrying a problem (for middleware and error views)."""
    body = problem_body(status=status, code=code, title=title, detail=detail, instance=instance, extra=extra)
    response = HttpResponse(
        json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers
    )
    return response


def app_error_response(error: AppError, *, instance: str | None = None) -> HttpResponse:
    return problem_response(
        status=error.status,
        code=error.code,
        title=error.title,
        detail=error.detail,
        instance=instance,
        extra=error.extra,
        headers=error.headers,
    )


def _field_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Flatten DRF's nested validation errors into ``[{field, message, code}]``."""
    out: list[dict[str, str]] = []
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            name = str(key) if key != "non_field_errors" else ""
            out += _field_errors(value, f"{prefix}.{name}" if prefix and name else (name or prefix))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (Mapping, list)):
                out += _field_errors(value, f"{prefix}[{index}]" if prefix else f"[{index}]")
            else:
                out += _field_errors(value, prefix)
    else:
        code = getattr(detail, "code", "invalid") or "invalid"
        out.append({"field": prefix or "__all__", "message": str(detail), "code": str(code)})
    return out


_DRF_CODES: dict[type[drf.APIException], str] = {
    drf.ParseError: "malformed_request",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.NotAcceptable: "not_acceptable",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAuthenticated: "not_authenticated",
    drf.AuthenticationFailed: "authentication_failed",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.Throttled: "rate_limited",
}


def _drf_response(status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    response = Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)
    return response


def primary_unavailable(exc: BaseException) -> PrimaryUnavailable:
    """The 503 for a database that cannot be reached (``regions.routing.failures``), logged once."""
    logger.warning("primary database unreachable: answering 503 (%s)", type(exc).__name__)
    return PrimaryUnavailable(
        "The region's primary database cannot be reached right now; retry shortly.",
        headers={"Retry-After": str(settings.PRIMARY_UNAVAILABLE_RETRY_AFTER)},
    )


def api_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """DRF ``EXCEPTION_HANDLER``: every error becomes problem+json with a stable code."""
    request = context.get("request")
    instance = request.path if request is not None else None
    if database_unreachable(exc):
        exc = primary_unavailable(exc)
    if isinstance(exc, AppError):
        body = problem_body(
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            instance=instance,
            extra=exc.extra,
        )
        return _drf_response(exc.status, body, exc.headers)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        body = problem_body(
            status=413,
            code="payload_too_large",
            detail=f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
            instance=instance,
        )
        return _drf_response(413, body)
    if isinstance(exc, drf.ValidationError):
        body = problem_body(
            status=400,
            code="validation_error",
            title="Invalid input",
            detail="One or more fields are invalid.",
            instance=instance,
            extra={"errors": _field_errors(exc.detail)},
        )
        return _drf_response(400, body)
    if isinstance(exc, drf.APIException):
        code = next((c for t, c in _DRF_CODES.items() if isinstance(exc, t)), None)
        code = code or str(exc.default_code)
        headers: dict[str, str] = {}
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf.Throttled) and wait is not None:
            headers["Retry-After"] = str(int(wait) + 1)
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        body = problem_body(status=exc.status_code, code=code, detail=str(detail), instance=instance)
        return _drf_response(exc.status_code, body, headers)
    return None  # unexpected: DRF re-raises, Django's handler500 answers


# --- Django error views (settings: handler400/403/404/500 in saas.urls) ---------


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        return problem_response(
            status=413,
            code="payload_too_large",
            detail=f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
        )
    if isinstance(exception, SuspiciousOperation):
        # The message may echo attacker-controlled input (a forged Host): keep it out.
        return problem_response(status=400, code="bad_request", detail="The request was refused.")
    return problem_response(status=400, code="bad_request")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(status=403, code="permission_denied", instance=request.path)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(
        status=404, code="not_found", detail="No resource at this address.", instance=request.path
    )


def handler500(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception: an AppError raised outside
    # a DRF view (in middleware, say) keeps its own status and code.
    error = sys.exc_info()[1]
    if error is not None and database_unreachable(error):
        error = primary_unavailable(error)
    if isinstance(error, AppError):
        return app_error_response(error, instance=request.path)
    return problem_response(status=500, code="internal_error", detail="An unexpected error occurred.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return problem_response(
        status=403,
        code="csrf_failed",
        title="CSRF verification failed",
        detail=reason or "CSRF verification failed.",
        instance=request.path,
    )
