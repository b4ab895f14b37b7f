"""Login, logout, password change and reset (Django's own views), the landing redirect and the site's root.

They touch only Django's auth and session tables, which the database roles of the request context have
no rights on, so each is marked `without_db_context`.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect

from equity_connect.auth import password_reset_allowed
from security.client_ip import client_ip
from security.middleware import without_db_context

from ..forms import EmailAuthenticationForm


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    """Django's reset form, at most PASSWORD_RESET_PER_EMAIL_LIMIT mails per address and PASSWORD_RESET_PER_IP_LIMIT
    per client address an hour. Over a limit no mail goes out and the answer is the same "check your email"."""

    def form_valid(self, form):
        if password_reset_allowed(email=form.cleaned_data["email"], ip_address=client_ip(self.request)):
            return super().form_valid(form)
        return HttpResponseRedirect(self.get_success_url())


def _exempt(view_class, **initkwargs):
    return without_db_context(view_class.as_view(**initkwargs))


login = _exempt(auth_views.LoginView, authentication_form=EmailAuthenticationForm, redirect_authenticated_user=True)
logout = _exempt(auth_views.LogoutView)
password_change = _exempt(auth_views.PasswordChangeView, success_url="/accounts/password_change/done/")
password_change_done = _exempt(auth_views.PasswordChangeDoneView)
password_reset = _exempt(ThrottledPasswordResetView, success_url="/accounts/password_reset/done/")
password_reset_done = _exempt(auth_views.PasswordResetDoneView)
password_reset_confirm = _exempt(auth_views.PasswordResetConfirmView, success_url="/accounts/reset/done/")
password_reset_complete = _exempt(auth_views.PasswordResetCompleteView)


@without_db_context
@login_required
def landing(request):
    """After login: staff to the admin, everyone else to the portal (which turns away non-brokers)."""
    return redirect("/admin/" if request.user.is_staff else "/portal/")


@without_db_context
def root(request):
    """`/` (also the admin's "View site"): staff to the admin, a logged-in user to the portal (which turns away
    anyone without an active broker, with a page that says so), anyone else to the login page."""
    if not request.user.is_authenticated:
        return redirect(settings.LOGIN_URL)
    return landing(request)
