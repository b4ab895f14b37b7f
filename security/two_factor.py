"""Two-factor login for staff: a TOTP code (django-otp's `TOTPDevice`, an authenticator app) after the password.

- Who must: `STAFF_2FA_REQUIRED` — "superusers" (production's default), "staff" (everyone with admin access) or
  "none". A staff user who must and has no device is sent to enrolment and reaches nothing else; a staff user
  with a device is asked for its code after every login, whatever the setting. Brokers are never asked.
- Replay: a code is accepted once (django-otp keeps the time step of the last accepted code).
- Wrong codes: django-otp waits longer after each (1, 2, 4 … seconds, `OTP_TOTP_THROTTLE_FACTOR`); after
  `STAFF_2FA_FAILURE_LIMIT` wrong codes in a row the device accepts none, right ones included, for
  `STAFF_2FA_LOCKOUT_MINUTES` after the last (a `staff_2fa_locked_out` event). A right code clears the count.
- Verified is a property of the session (django-otp's middleware reads it); logging out ends it.

`StaffTwoFactorMiddleware` (after django-otp's `OTPMiddleware`) sends an unverified staff session to the code
page, or to enrolment, before any other view runs. The pages are security/views.py.
"""

from __future__ import annotations

import enum
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django_otp.plugins.otp_totp.models import TOTPDevice

from equity_connect.db import service_context
from equity_connect.events import record_event

POLICIES = ("none", "superusers", "staff")


class Verification(enum.Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    WAIT = "wait"  # django-otp's backoff between wrong codes
    LOCKED = "locked"
    NO_DEVICE = "no_device"


def two_factor_required(user) -> bool:
    """Whether this user may not work without a second factor (the setting), brokers never."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    policy = settings.STAFF_2FA_REQUIRED
    return policy == "staff" or (policy == "superusers" and user.is_superuser)


def staff_device(user, *, confirmed: bool = True) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=confirmed).order_by("id").first()


def two_factor_step(user) -> str | None:
    """What a logged-in user must do before anything else: "verify" (a code), "enrol" (a device) or nothing."""
    if not (user.is_authenticated and user.is_active and user.is_staff) or user.is_verified():
        return None
    if staff_device(user) is not None:
        return "verify"
    return "enrol" if two_factor_required(user) else None


def device_locked(device: TOTPDevice) -> bool:
    if device.throttling_failure_count < settings.STAFF_2FA_FAILURE_LIMIT or not device.throttling_failure_timestamp:
        return False
    return timezone.now() - device.throttling_failure_timestamp < timedelta(minutes=settings.STAFF_2FA_LOCKOUT_MINUTES)


def totp_enrolment_start(*, user) -> TOTPDevice | None:
    """A new unconfirmed device for `user`, replacing an earlier unconfirmed one. Its secret is shown once, on
    the page that called this. None when the user already has a confirmed device (reset: an admin deletes it)."""
    with transaction.atomic():
        if staff_device(user) is not None:
            return None
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)


def totp_enrolment_confirm(*, user, token: str, ip_address: str | None) -> Verification:
    """Confirm the unconfirmed device with a code from the app that scanned it."""
    return _verify(user=user, token=token, confirmed=False, ip_address=ip_address)


def totp_verify(*, user, token: str, ip_address: str | None) -> tuple[Verification, TOTPDevice | None]:
    """Check a login's code against the user's device."""
    result = _verify(user=user, token=token, confirmed=True, ip_address=ip_address)
    return result, staff_device(user) if result is Verification.ACCEPTED else None


def _verify(*, user, token: str, confirmed: bool, ip_address: str | None) -> Verification:
    # The device row is locked for the check, so two requests cannot both spend one code. A wrong code's count
    # is saved by django-otp inside this transaction, so the outcome is returned, never raised (which would
    # roll the count back).
    with service_context():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=confirmed).order_by("id").first()
        if device is None:
            return Verification.NO_DEVICE
        if device_locked(device):
            return Verification.LOCKED
        if not device.verify_is_allowed()[0]:
            return Verification.WAIT
        if device.verify_token(token.strip().replace(" ", "")):
            if not confirmed:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                record_event("staff_2fa_enrolled", data={"user_id": user.pk, "ip_address": ip_address})
            return Verification.ACCEPTED
        if device_locked(device):
            record_event(
                "staff_2fa_locked_out",
                status="failure",
                data={"user_id": user.pk, "failures": device.throttling_failure_count, "ip_address": ip_address},
            )
            return Verification.LOCKED
        return Verification.WRONG


class StaffTwoFactorMiddleware:
    """An unverified staff session reaches only the code and enrolment pages, logout and static files."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        step = two_factor_step(user) if user is not None else None
        if step is None or self._open(request.path_info):
            return self.get_response(request)
        target = reverse("two_factor_verify" if step == "verify" else "two_factor_enrol")
        return redirect(f"{target}?{urlencode({'next': request.get_full_path()})}")

    @staticmethod
    def _open(path: str) -> bool:
        if settings.STATIC_URL and path.startswith(settings.STATIC_URL):
            return True
        names = ("two_factor_verify", "two_factor_enrol", "logout", "admin:logout")
        return path in {reverse(name) for name in names}
