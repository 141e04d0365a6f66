"""Routes of ``/api/``: v1 endpoints, the schema and docs, and a problem for anything else."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from regions.problems import problem_response
from saas.api import schema as _schema  # noqa: F401 - registers the bearer auth extension
from saas.api import views

v1 = [
    path("signup", views.SignupView.as_view(), name="signup"),
    path("auth/login", views.LoginView.as_view(), name="auth-login"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/token", views.TokenCreateView.as_view(), name="auth-token"),
    path("me", views.MeView.as_view(), name="me"),
    path("users/<uuid:user_id>", views.UserDetailView.as_view(), name="user-detail"),
    path("orgs", views.OrganizationListView.as_view(), name="org-list"),
    path("orgs/<slug:org_slug>", views.OrganizationDetailView.as_view(), name="org-detail"),
    path("orgs/<slug:org_slug>/members", views.MemberListView.as_view(), name="member-list"),
    path(
        "orgs/<slug:org_slug>/members/<uuid:member_id>",
        views.MemberDetailView.as_view(),
        name="member-detail",
    ),
    path("orgs/<slug:org_slug>/projects", views.ProjectListView.as_view(), name="project-list"),
    path(
        "orgs/<slug:org_slug>/projects/<uuid:project_id>",
        views.ProjectDetailView.as_view(),
        name="project-detail",
    ),
    path("orgs/<slug:org_slug>/documents", views.DocumentListView.as_view(), name="document-list"),
    path(
        "orgs/<slug:org_slug>/documents/<uuid:document_id>",
        views.DocumentDetailView.as_view(),
        name="document-detail",
    ),
    path("orgs/<slug:org_slug>/tokens", views.TokenListView.as_view(), name="token-list"),
    path("orgs/<slug:org_slug>/tokens/<uuid:token_id>", views.TokenDetailView.as_view(), name="token-detail"),
]


@csrf_exempt
def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under /api/: a problem, also with DEBUG on (no HTML technical 404)."""
    return problem_response(
        status=404, code="not_found", detail="No API endpoint at this address.", instance=request.path
    )


urlpatterns = [
    *(path(f"v1/{p.pattern}", p.callback, name=p.name) for p in v1),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    # [\s\S], not ".": a path with an encoded newline (%0A) is still ours, not Django's HTML 404 page.
    re_path(r"^(?P<rest>[\s\S]*)$", api_not_found),
]
