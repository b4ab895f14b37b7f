"""`/portal/` itself: the broker's dashboard, in the portal's namespace (equity_connect/urls.py mounts it
beside leads/urls_portal.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.portal_dashboard, name="dashboard"),
]
