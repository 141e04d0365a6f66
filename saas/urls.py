"""Root URLconf."""

from django.contrib import admin
from django.urls import include, path

from regions import views as region_views

urlpatterns = [
    path("health/live", region_views.live, name="health-live"),
    path("admin/", admin.site.urls),
    path("internal/", include("residency.urls")),
]

handler400 = "regions.problems.handler400"
handler403 = "regions.problems.handler403"
handler404 = "regions.problems.handler404"
handler500 = "regions.problems.handler500"
