"""/healthz, /metrics and /admin/dashboard/ (DESIGN §13), included at the root before the admin."""

from django.urls import path

from pipeline.views import ops

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", ops.metrics, name="metrics"),
    path("admin/dashboard/", ops.dashboard, name="ops-dashboard"),
]
