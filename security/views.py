"""The second step of a staff login (`/accounts/2fa/…`): enrolling an authenticator app, and the code after every
password. Thin views over security/two_factor.py; they touch Django's own tables (sessions, devices), so they run
without the request's database context, and the services open a service context to record events."""

from __future__ import annotations

from base64 import b32encode

import segno
from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from .client_ip import client_ip
from .middleware import without_db_context
from .two_factor import (
    Verification,
    staff_device,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_verify,
    two_factor_required,
)

MESSAGES = {
    Verification.WRONG: "That code is not right. Enter the 6 digits your app shows now.",
    Verification.WAIT: "Too many wrong codes in a row: wait a few seconds, then try again.",
    Verification.LOCKED: "Too many wrong codes: two-factor login is locked for this account for a while.",
    Verification.NO_DEVICE: "Start the set-up again.",
}


class CodeForm(forms.Form):
    token = forms.CharField(
        label="Code from your authenticator app",
        min_length=6,
        max_length=10,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return "/admin/"


def _verified(request, device):
    otp_login(request, device)
    request.session.cycle_key()  # a new session id for the now fully authenticated session
    return redirect(_next(request))


@without_db_context
@login_required
@require_http_methods(["GET", "POST"])
def two_factor_verify(request):
    """The code after the password, for staff with a device."""
    if not request.user.is_staff or request.user.is_verified() or staff_device(request.user) is None:
        return redirect(_next(request) if request.user.is_staff else "/portal/")
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        result, device = totp_verify(
            user=request.user, token=form.cleaned_data["token"], ip_address=client_ip(request)
        )
        if result is Verification.ACCEPTED:
            return _verified(request, device)
        form.add_error("token", MESSAGES[result])
        status = 429 if result in (Verification.LOCKED, Verification.WAIT) else 400
    elif request.method == "POST":
        status = 400
    context = {"form": form, "next": _next(request)}
    return render(request, "registration/two_factor_verify.html", context, status=status)


@without_db_context
@login_required
@require_http_methods(["GET", "POST"])
def two_factor_enrol(request):
    """Add an authenticator app: a new secret, shown once (QR code and text), confirmed by a first code."""
    user = request.user
    if not user.is_staff:
        return redirect("/portal/")
    if staff_device(user) is not None:
        return render(request, "registration/two_factor_enrolled.html", {"next": _next(request)})
    context = {"next": _next(request), "required": two_factor_required(user)}
    if request.method == "POST":
        form = CodeForm(request.POST)
        if form.is_valid():
            result = totp_enrolment_confirm(user=user, token=form.cleaned_data["token"], ip_address=client_ip(request))
            if result is Verification.ACCEPTED:
                return _verified(request, staff_device(user))
            form.add_error("token", MESSAGES[result])
        # The secret is not shown again: a wrong code is typed again, or the set-up starts over.
        return render(request, "registration/two_factor_enrol.html", {**context, "form": form}, status=400)
    device = totp_enrolment_start(user=user)
    qr = segno.make(device.config_url, error="m")
    secret = b32encode(device.bin_key).decode()
    context.update(
        form=CodeForm(),
        qr=qr.svg_data_uri(scale=5, border=2),
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
    )
    return render(request, "registration/two_factor_enrol.html", context)
