"""`/consent?token=…`: the public consent page."""

from django.urls import path

from .views import consent

urlpatterns = [
    path("consent", consent.consent_page, name="consent"),
]
