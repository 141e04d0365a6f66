"""Root URLconf."""

from django.contrib import admin
from django.urls import include, path

from regions import views as region_views
from saas import admin as saas_admin

urlpatterns = [
    path("health/live", region_views.live, name="health-live"),
    path("admin/login/", saas_admin.throttled_login, name="admin-login-throttled"),
    path("admin/", admin.site.urls),
    path("internal/", include("residency.urls")),
    path("api/", include(("saas.api.urls", "api"), namespace="api")),
]

handler400 = "regions.problems.handler400"
handler403 = "regions.problems.handler403"
handler404 = "regions.problems.handler404"
handler500 = "regions.problems.handler500"
