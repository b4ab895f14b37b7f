"""/healthz, /metrics and /admin/dashboard/, included at the root before the admin (equity_connect/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/dashboard/", views.dashboard, name="ops-dashboard"),
    path("admin/dashboard/export/<slug:table>.csv", views.dashboard_export, name="ops-dashboard-export"),
]
