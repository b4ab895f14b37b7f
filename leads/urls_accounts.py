"""`/accounts/…`: login, logout, password change and reset, the post-login landing, and the second step of a staff
login (`/accounts/2fa/`, security/urls.py)."""

from django.urls import include, path

from .views import accounts

urlpatterns = [
    path("login/", accounts.login, name="login"),
    path("logout/", accounts.logout, name="logout"),
    path("landing/", accounts.landing, name="landing"),
    path("2fa/", include("security.urls")),
    path("password_change/", accounts.password_change, name="password_change"),
    path("password_change/done/", accounts.password_change_done, name="password_change_done"),
    path("password_reset/", accounts.password_reset, name="password_reset"),
    path("password_reset/done/", accounts.password_reset_done, name="password_reset_done"),
    path("reset/<uidb64>/<token>/", accounts.password_reset_confirm, name="password_reset_confirm"),
    path("reset/done/", accounts.password_reset_complete, name="password_reset_complete"),
]
