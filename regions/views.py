"""HTTP endpoints owned by the regions package."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from regions.errors import PermissionDenied
from regions.observability.exposition import access_allowed, exposition
from regions.problems import app_error_response


@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Checks no dependency."""
    return JsonResponse({"status": "ok", "region": settings.REGION})


class MetricsForbidden(PermissionDenied):
    code = "metrics_forbidden"
    title = "Metrics are internal"


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition, for scrapers inside ``METRICS_ALLOWED_NETWORKS`` holding ``METRICS_TOKEN``."""
    if not access_allowed(
        remote_addr=str(request.META.get("REMOTE_ADDR", "")),
        authorization=request.headers.get("Authorization"),
    ):
        return app_error_response(MetricsForbidden("Scrape from an allowed network with the metrics token."))
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
