"""Logging in with an e-mail address, and the limits around it.

- `login_name`: the one form of a login name. The login form, `EmailBackend` and django-axes (its
  AXES_USERNAME_CALLABLE) all use it, so `BROKER2@EXAMPLE.COM`, ` broker2@example.com ` and `broker2@example.com`
  are one account to the lockout as they are to the password check.
- `LoginAttemptHandler`: django-axes' database handler (the per-account lockout) plus a limit per client address
  (LOGIN_IP_FAILURE_LIMIT failures per LOGIN_IP_WINDOW_MINUTES), counted in PostgreSQL (equity_connect/throttle.py).
  The client address is django-axes' `axes_ip_address`, which AXES_CLIENT_IP_CALLABLE takes from
  security/client_ip.py (the trusted-proxy rule).
- `password_reset_allowed`: PASSWORD_RESET_PER_EMAIL_LIMIT mails per e-mail address and PASSWORD_RESET_PER_IP_LIMIT
  per client address in PASSWORD_RESET_WINDOW_MINUTES.
"""

from __future__ import annotations

import logging
import unicodedata
from datetime import timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.shortcuts import render

from .throttle import Limit, throttle_hit, throttle_reached

logger = logging.getLogger(__name__)
UNKNOWN_ADDRESS = "unknown"  # requests without a usable client address share one counter (fail closed)


def login_name(value) -> str:
    """A login name as every part of the login compares it: Unicode NFKC, no surrounding spaces, lower case."""
    return unicodedata.normalize("NFKC", str(value or "")).strip().lower()


def axes_username(request, credentials=None) -> str | None:
    """AXES_USERNAME_CALLABLE: the name django-axes counts failures and lockouts under."""
    if credentials is not None:
        value = credentials.get(settings.AXES_USERNAME_FORM_FIELD)
    else:
        value = getattr(request, "POST", {}).get(settings.AXES_USERNAME_FORM_FIELD)
    return login_name(value) if value is not None else None


class EmailBackend(ModelBackend):
    """The password check: the username field of the login forms holds the e-mail address."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        email = login_name(username)
        user_model = get_user_model()
        user = user_model._default_manager.filter(email__iexact=email).order_by("id").first() if email else None
        if user is None:
            user_model().set_password(password)  # same work as a real check: no timing oracle for unknown emails
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


def login_ip_limit() -> Limit:
    return Limit("login-ip", settings.LOGIN_IP_FAILURE_LIMIT, timedelta(minutes=settings.LOGIN_IP_WINDOW_MINUTES))


def _address(request) -> str:
    return getattr(request, "axes_ip_address", None) or UNKNOWN_ADDRESS


class LoginAttemptHandler(AxesDatabaseHandler):
    """AXES_HANDLER: the per-account lockout of django-axes, and a limit of failed logins per client address.

    An address over its limit is refused before any password is checked, and that refusal is not counted
    against the account it named: otherwise one address could still lock every account it likes. A successful
    login does not clear the address's count (django-axes' reset on success clears only the account's)."""

    def is_locked(self, request, credentials=None) -> bool:
        if throttle_reached(login_ip_limit(), _address(request)):
            request.login_ip_blocked = True
            return True
        return super().is_locked(request, credentials)

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is not None and getattr(request, "login_ip_blocked", False):
            request.axes_locked_out = True  # the lockout page, without counting an account's failure
            request.axes_credentials = credentials
            return
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None:
            return
        limit = login_ip_limit()
        if throttle_hit(limit, _address(request)) >= limit.limit:
            logger.warning("login failures from one client address reached its limit", extra={"limit": limit.limit})
            request.login_ip_blocked = True
            request.axes_locked_out = True
            request.axes_credentials = credentials


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the lockout page (HTTP 429), for a locked account or a client address over its limit."""
    by_address = getattr(request, "login_ip_blocked", False)
    context = {
        "by_address": by_address,
        "failure_limit": settings.LOGIN_IP_FAILURE_LIMIT if by_address else settings.AXES_FAILURE_LIMIT,
        "cooloff_timedelta": (
            timedelta(minutes=settings.LOGIN_IP_WINDOW_MINUTES) if by_address else get_cool_off(request)
        ),
    }
    return render(request, "registration/locked_out.html", context, status=429)


def password_reset_allowed(*, email: str, ip_address: str | None) -> bool:
    """Count a password-reset request; False when its client address or its e-mail address is over the limit
    (then no mail goes out, and the page says the same as when one does)."""
    window = timedelta(minutes=settings.PASSWORD_RESET_WINDOW_MINUTES)
    per_ip = Limit("reset-ip", settings.PASSWORD_RESET_PER_IP_LIMIT, window)
    if throttle_hit(per_ip, ip_address or UNKNOWN_ADDRESS) > per_ip.limit:
        logger.warning("password-reset requests from one client address over its limit")
        return False
    per_email = Limit("reset-email", settings.PASSWORD_RESET_PER_EMAIL_LIMIT, window)
    if throttle_hit(per_email, login_name(email)) > per_email.limit:
        logger.warning("password-reset requests for one e-mail address over its limit")
        return False
    return True
