"""`/consent?token=…` and `/unsubscribe?token=…`: the public pages a lead reaches from the consent e-mail."""

from django.urls import path

from .views import consent

urlpatterns = [
    path("consent", consent.consent_page, name="consent"),
    path("unsubscribe", consent.unsubscribe_page, name="unsubscribe"),
]
