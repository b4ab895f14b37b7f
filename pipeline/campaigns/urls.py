"""Included at `api/v1/webhooks/` (equity_connect/urls.py)."""

from django.urls import path

from .views import instantly_webhook

urlpatterns = [
    path("instantly", instantly_webhook, name="instantly-webhook"),
]
