"""Signed uploads, mounted at `api/v1/uploads` (no trailing slash: `/api/v1/uploads` itself is the POST
endpoint, so APPEND_SLASH never redirects a POST). The status route starts with "/", which `path()`
would flag (urls.W002), hence the regular expressions."""

from django.urls import path, re_path

from . import views

UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

urlpatterns = [
    path("", views.uploads, name="api-uploads"),
    re_path(r"^(?:/)$", views.uploads),
    re_path(
        rf"^(?:/)(?P<upload_id>{UUID})/?$",
        views.upload_status,
        name="api-upload-status",
    ),
    re_path(rf"^(?:/)(?P<upload_id>{UUID})/rejections$", views.upload_rejections, name="api-upload-rejections"),
]
