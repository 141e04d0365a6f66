"""HTTP endpoints owned by the regions package."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Checks no dependency."""
    return JsonResponse({"status": "ok", "region": settings.REGION})
