"""Admin for residency data: the directory and violation events (read-only), the audit history."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from regions.admin_base import ReadOnlyAdmin
from residency.audit.render import FORMATS
from residency.audit.services import audit_run
from residency.audit.views import rendered
from residency.models import AuditRun, DirectoryEntry, ViolationEvent


@admin.register(DirectoryEntry)
class DirectoryEntryAdmin(ReadOnlyAdmin):
    """The local copy of the global directory. Written only by residency.services (and replication)."""

    list_display = ("kind", "key", "home_region", "version", "origin_region", "updated_at")
    list_filter = ("kind", "home_region", "origin_region")
    search_fields = ("key",)
    date_hierarchy = "updated_at"


@admin.register(ViolationEvent)
class ViolationEventAdmin(ReadOnlyAdmin):
    """Requests that reached the wrong region: what was decided (no personal data is stored)."""

    list_display = (
        "occurred_at",
        "region",
        "home_region",
        "target_region",
        "subject_kind",
        "decision",
        "status",
        "path_template",
    )
    list_filter = ("decision", "subject_kind", "home_region", "target_region", "status")
    search_fields = ("subject_hash", "path_template")
    date_hierarchy = "occurred_at"


@admin.register(AuditRun)
class AuditRunAdmin(ReadOnlyAdmin):
    """Audit history: kept, never edited or deleted from the admin."""

    change_list_template = "admin/residency/auditrun/change_list.html"
    list_display = ("started_at", "region", "kind", "verdict", "findings", "trigger", "downloads")
    list_filter = ("verdict", "kind", "trigger", "region")
    search_fields = ("id", "region")
    date_hierarchy = "started_at"
    readonly_fields = (
        "id",
        "region",
        "kind",
        "trigger",
        "started_at",
        "verdict",
        "findings",
        "checks",
        "downloads",
        "document",
    )
    fields = readonly_fields

    @admin.display(description="Download")
    def downloads(self, obj: AuditRun) -> str:
        return format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:residency_auditrun_download", args=[obj.pk, fmt]), fmt.upper())
                for fmt in FORMATS
            ),
        ) or format_html("")

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("run/", self.admin_site.admin_view(self.run_view), name="residency_auditrun_run"),
            path(
                "<uuid:run_id>/download/<str:fmt>/",
                self.admin_site.admin_view(self.download_view),
                name="residency_auditrun_download",
            ),
        ]
        return own + super().get_urls()

    def run_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        _document, run = audit_run(trigger=AuditRun.Trigger.ADMIN)
        if run is None:  # pragma: no cover - audit_run stores by default
            return HttpResponse(status=500)
        level = (
            messages.SUCCESS
            if run.findings == 0 and run.verdict in {"pass", "incomplete"}
            else messages.ERROR
        )
        self.message_user(request, f"Audit finished: {run.verdict}, {run.findings} finding(s).", level)
        return HttpResponseRedirect(reverse("admin:residency_auditrun_change", args=[run.pk]))

    def download_view(self, request: HttpRequest, run_id: Any, fmt: str) -> HttpResponse:
        if fmt not in FORMATS or not self.has_view_permission(request):
            return HttpResponse(status=404)
        return rendered(get_object_or_404(AuditRun, pk=run_id), fmt)
