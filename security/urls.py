"""`/accounts/2fa/…`: the second step of a staff login (mounted by leads/urls_accounts.py beside the login)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.two_factor_verify, name="two_factor_verify"),
    path("enrol/", views.two_factor_enrol, name="two_factor_enrol"),
]
