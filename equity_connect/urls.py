"""The root URLconf: each app's URL modules, mounted at their paths (by module path: the only place where
this bottom layer names the apps above it). The paths are the product's contract (docs/api.md, README)."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

# The portal's namespace: the broker's dashboard (pipeline/monitoring) and the lead screens (leads).
portal = (
    [path("", include("pipeline.monitoring.urls_portal")), path("", include("leads.urls_portal"))],
    "portal",
)

# Two models moved app (the event trail down to equity_connect, brokers to security): old admin links still work.
MOVED_ADMIN_PATHS = {"leads/broker/": "security/broker/", "pipeline/pipelineevent/": "equity_connect/pipelineevent/"}

urlpatterns = [
    *(
        re_path(
            rf"^admin/{old}(?P<rest>.*)$",
            RedirectView.as_view(url=f"/admin/{new}%(rest)s", query_string=True, permanent=True),
        )
        for old, new in MOVED_ADMIN_PATHS.items()
    ),
    path("", include("leads.urls_root")),  # / : staff to /admin/, brokers to /portal/, anyone else to the login
    path("accounts/", include("leads.urls_accounts")),
    path("portal/", include(portal)),
    path("", include("leads.urls_consent")),  # /consent?token=…
    path("api/v1/uploads", include("pipeline.intake.urls")),  # /api/v1/uploads and /api/v1/uploads/<id>
    path("api/v1/webhooks/", include("pipeline.campaigns.urls")),  # /api/v1/webhooks/instantly
    path("", include("pipeline.monitoring.urls")),  # /healthz, /metrics, /admin/dashboard/ (before the admin)
    path("", include("pipeline.privacy.urls")),  # /admin/privacy/ (before the admin)
    path("admin/", admin.site.urls),
]
