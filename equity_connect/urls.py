"""URLs (DESIGN §13 — a contract). Each area's patterns live in its own module."""

from django.contrib import admin
from django.urls import include, path

from leads import urls_portal
from pipeline.views.portal_dashboard import dashboard as portal_dashboard

# The portal's namespace: the broker dashboard (pipeline's shared figures) plus the lead screens (leads).
portal_patterns = [path("", portal_dashboard, name="dashboard"), *urls_portal.urlpatterns]

urlpatterns = [
    path("accounts/", include("leads.urls_accounts")),
    path("portal/", include((portal_patterns, urls_portal.app_name))),
    path("", include("leads.urls_consent")),  # /consent?token=…
    path("api/v1/uploads", include("pipeline.urls_uploads")),  # /api/v1/uploads and /api/v1/uploads/<id>
    path("api/v1/webhooks/", include("pipeline.urls_webhooks")),  # /api/v1/webhooks/instantly
    path("", include("pipeline.urls_ops")),  # /healthz, /metrics, /admin/dashboard/ (before the admin)
    path("admin/", admin.site.urls),
]
