"""Routes shaped like the API's (docs/decisions/0003) with views that echo the request.

Residency tests use them to see exactly what reached the serving region:
method, path, query and body. The real API views are tested by the saas tests.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from saas.urls import urlpatterns as project_urlpatterns


@csrf_exempt
def echo(request: HttpRequest, **kwargs: object) -> JsonResponse:
    return JsonResponse(
        {
            "region": settings.REGION,
            "method": request.method,
            "path": request.path,
            "query": request.META.get("QUERY_STRING", ""),
            "body": request.body.decode(),
            "kwargs": {k: str(v) for k, v in kwargs.items()},
        }
    )


def session_echo(request: HttpRequest) -> JsonResponse:
    """A browser page that sets the CSRF cookie and uses the session."""
    from django.middleware.csrf import get_token

    request.session["seen"] = True
    return JsonResponse({"region": settings.REGION, "csrf": get_token(request)})


def form_post(request: HttpRequest) -> JsonResponse:
    """A CSRF-protected browser form target."""
    return JsonResponse({"region": settings.REGION, "method": request.method})


urlpatterns = [
    path("api/v1/orgs/<slug:org_slug>/projects", echo),
    path("api/v1/users/<uuid:user_id>", echo),
    path("api/v1/auth/login", echo),
    path("api/v1/auth/token", echo),
    path("api/v1/me", echo),
    path("internal/ping/<slug:org_slug>", echo),
    path("browser/session", session_echo),
    path("browser/form", form_post),
    *project_urlpatterns,
]
