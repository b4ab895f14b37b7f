"""Included at `api/v1/webhooks/` (equity_connect/urls.py)."""

from django.urls import path

from pipeline.sms.views import twilio_webhook

from .views import instantly_webhook

urlpatterns = [
    path("instantly", instantly_webhook, name="instantly-webhook"),
    path("twilio", twilio_webhook, name="twilio-webhook"),
]
