"""/admin/privacy/, included at the root before the admin (equity_connect/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [path("admin/privacy/", views.privacy_request, name="privacy-request")]
