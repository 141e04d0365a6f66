"""Operator-only API for the residency audit (``/internal/audit/...``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from residency.audit.base import all_checks
from residency.audit.render import FORMATS, render
from residency.audit.services import audit_run
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
