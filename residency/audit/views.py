"""Operator-only API for the residency audit (``/internal/audit/...``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from regions.errors import BadRequest
from regions.jsonbody import json_loads
from regions.problems import app_error_response
from regions.selectors import get_registry
from regions.signing import verify_peer_request
from residency.audit.base import all_checks
from residency.audit.fleet import SIGNATURE_NAMESPACE, fleet_collect, fleet_merge
from residency.audit.render import FORMATS, render
from residency.audit.report import sign
from residency.audit.services import audit_run, audit_store
from residency.models import AuditRun

CONTENT_TYPES = {
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}


class RunRequest(serializers.Serializer[dict[str, Any]]):
    checks = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(all_checks())), required=False, allow_empty=False
    )


class AuditRunSummary(serializers.ModelSerializer[AuditRun]):
    class Meta:
        model = AuditRun
        fields = ("id", "region", "kind", "trigger", "started_at", "verdict", "findings", "checks")


def rendered(run: AuditRun, fmt: str) -> HttpResponse:
    response = HttpResponse(render(run.document, fmt), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="residency-audit-{run.region}-{run.id}.{fmt}"'
    return response


class AuditRunListView(APIView):
    """List past audits of this region, or run one now."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses=AuditRunSummary(many=True), tags=["operators"])
    def get(self, request: Request) -> Response:
        runs = AuditRun.objects.all()[:100]
        return Response(AuditRunSummary(runs, many=True).data)

    @extend_schema(request=RunRequest, responses={201: dict}, tags=["operators"])
    def post(self, request: Request) -> Response:
        body = RunRequest(data=request.data)
        body.is_valid(raise_exception=True)
        document, run = audit_run(trigger=AuditRun.Trigger.API, check_ids=body.validated_data.get("checks"))
        location = f"/internal/audit/runs/{run.id}" if run is not None else ""
        return Response(document, status=201, headers={"Location": location})


class AuditRunDetailView(APIView):
    """One audit's signed report, as JSON, HTML or CSV (``?fmt=json|html|csv``)."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        parameters=[OpenApiParameter("fmt", str, enum=list(FORMATS), required=False)],
        responses={200: dict},
        tags=["operators"],
    )
    def get(self, request: Request, run_id: str) -> HttpResponse:
        run = get_object_or_404(AuditRun, pk=run_id)
        fmt = request.query_params.get("fmt", "json")
        if fmt not in FORMATS:
            raise serializers.ValidationError({"fmt": [f"Use one of {', '.join(FORMATS)}."]})
        return rendered(run, fmt)


class FleetRunRequest(RunRequest):
    regions = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_empty=False,
        help_text="Regions the fleet report must cover (default: every region of the registry).",
    )

    def validate_regions(self, value: list[str]) -> list[str]:
        unknown = [code for code in value if code not in get_registry().regions]
        if unknown:
            raise serializers.ValidationError(f"Unknown region(s): {', '.join(unknown)}.")
        return value


class FleetAuditView(APIView):
    """Audit every region: collect each region's signed report over the signed internal API, merge them."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(request=FleetRunRequest, responses={201: dict}, tags=["operators"])
    def post(self, request: Request) -> Response:
        body = FleetRunRequest(data=request.data)
        body.is_valid(raise_exception=True)
        regions = body.validated_data.get("regions") or list(get_registry().codes)
        checks = body.validated_data.get("checks")
        document = sign(
            fleet_merge(documents=fleet_collect(regions=regions, check_ids=checks), expected_regions=regions)
        )
        run = audit_store(document=document, trigger=AuditRun.Trigger.FLEET)
        return Response(document, status=201, headers={"Location": f"/internal/audit/runs/{run.id}"})


@csrf_exempt  # authenticated by the peer's HMAC signature, not by a session
@require_POST
def peer_report(request: HttpRequest) -> HttpResponse:
    """A peer region asks for this region's signed report (fleet audit)."""
    refused = verify_peer_request(request, namespace=SIGNATURE_NAMESPACE)
    if refused is not None:
        return refused
    try:
        payload = json_loads(request.body or b"{}")
        checks = payload.get("checks") if isinstance(payload, dict) else None
        if checks is not None and (
            not isinstance(checks, list) or not all(isinstance(c, str) for c in checks)
        ):
            raise ValueError
        document, _run = audit_run(trigger=AuditRun.Trigger.FLEET, check_ids=checks)
    except (ValueError, KeyError):
        return app_error_response(BadRequest('Expected {"checks": [ids] | null}.'), instance=request.path)
    return JsonResponse(document)
