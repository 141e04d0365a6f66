"""Residency's internal endpoints (mounted under /internal/ by saas.urls)."""

from django.urls import path

from residency.audit import views

urlpatterns = [
    path("audit/runs", views.AuditRunListView.as_view(), name="audit-runs"),
    path("audit/runs/<uuid:run_id>", views.AuditRunDetailView.as_view(), name="audit-run"),
    path("audit/fleet", views.FleetAuditView.as_view(), name="audit-fleet"),
    path("audit/peer-report", views.peer_report, name="audit-peer-report"),
]
