"""Login, logout, password change and reset (Django's own views), and the landing redirect.

They touch only Django's auth and session tables, which the database roles of the request context have
no rights on, so each is marked `without_db_context`.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect

from security.middleware import without_db_context

from ..forms import EmailAuthenticationForm


def _exempt(view_class, **initkwargs):
    return without_db_context(view_class.as_view(**initkwargs))


login = _exempt(auth_views.LoginView, authentication_form=EmailAuthenticationForm, redirect_authenticated_user=True)
logout = _exempt(auth_views.LogoutView)
password_change = _exempt(auth_views.PasswordChangeView, success_url="/accounts/password_change/done/")
password_change_done = _exempt(auth_views.PasswordChangeDoneView)
password_reset = _exempt(auth_views.PasswordResetView, success_url="/accounts/password_reset/done/")
password_reset_done = _exempt(auth_views.PasswordResetDoneView)
password_reset_confirm = _exempt(auth_views.PasswordResetConfirmView, success_url="/accounts/reset/done/")
password_reset_complete = _exempt(auth_views.PasswordResetCompleteView)


@without_db_context
@login_required
def landing(request):
    """After login: staff to the admin, everyone else to the portal (which turns away non-brokers)."""
    return redirect("/admin/" if request.user.is_staff else "/portal/")
