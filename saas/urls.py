"""Root URLconf."""

from django.contrib import admin
from django.urls import include, path

from regions import views as region_views
from regions.health import views as health_views
from saas import admin as saas_admin

urlpatterns = [
    path("health/live", region_views.live, name="health-live"),
    path("health/ready", health_views.ready, name="health-ready"),
    path("health/startup", health_views.startup, name="health-startup"),
    path("internal/metrics", region_views.metrics, name="internal-metrics"),
    path("admin/login/", saas_admin.throttled_login, name="admin-login-throttled"),
    path("admin/", admin.site.urls),
    path("internal/", include("residency.urls")),
    path("api/", include(("saas.api.urls", "api"), namespace="api")),
    path("internal/replication/", include("regions.replication.urls")),
]

handler400 = "regions.problems.handler400"
handler403 = "regions.problems.handler403"
handler404 = "regions.problems.handler404"
handler500 = "regions.problems.handler500"
