from django.urls import path

from regions.replication import views

urlpatterns = [
    path("apply", views.apply_batch, name="replication-apply"),
]
