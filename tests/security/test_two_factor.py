"""Two-factor login for staff (security/two_factor.py, security/views.py), as production has it: over HTTPS with
secure cookies and CSRF checks, through the real login form and the whole middleware stack (test client).
Superusers must enrol and then give a code after every password; a code works once; wrong codes lock the device."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from tests.factories import BrokerFactory, RoleUserFactory, StaffUserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery"
HOST = "https://testserver"
VERIFY, ENROL = "/accounts/2fa/", "/accounts/2fa/enrol/"


@pytest.fixture(autouse=True)
def production_like(settings):
    """What settings/production.py sets that matters here: HTTPS only, secure cookies, superusers need 2FA."""
    settings.STAFF_2FA_REQUIRED = "superusers"
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.DEBUG = False


class Browser:
    """A browser over HTTPS that sends the CSRF token and Referer of the page a form is on, as a real one does."""

    def __init__(self):
        self.client = Client(enforce_csrf_checks=True)

    def get(self, path, **extra):
        return self.client.get(path, secure=True, **extra)

    def post(self, path, data=None):
        """Submit a form of `path` (the CSRF cookie's token, read from the page the first time)."""
        if "csrftoken" not in self.client.cookies:
            self.get(path)
        data = {**(data or {}), "csrfmiddlewaretoken": self.client.cookies["csrftoken"].value}
        return self.client.post(path, data, secure=True, HTTP_REFERER=f"{HOST}{path}")

    def login(self, user):
        response = self.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
        assert response.status_code == 302, response.content.decode()[:500]
        return response

    def logout(self):
        return self.post("/accounts/logout/")

    def admin_status(self, path="/admin/") -> tuple[int, str]:
        response = self.get(path)
        return response.status_code, response.get("Location", "")


def code(device: TOTPDevice, *, steps_ago: int = 0) -> str:
    device.refresh_from_db()
    return f"{totp(device.bin_key, device.step, device.t0 + steps_ago * device.step, device.digits, device.drift):06d}"


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def events(event_type: str) -> list[PipelineEvent]:
    with service_context():
        return list(PipelineEvent.objects.filter(event_type=event_type))


# --- enrolment -------------------------------------------------------------------------------------------------


def test_a_superuser_without_a_device_is_sent_to_enrolment_and_reaches_nothing_else():
    superuser = StaffUserFactory()
    browser = Browser()
    browser.login(superuser)
    for path in ("/admin/", "/admin/leads/lead/", "/admin/security/partnerkey/", "/admin/dashboard/", "/portal/"):
        status, location = browser.admin_status(path)
        assert status == 302 and location.startswith(f"{ENROL}?next="), (path, status, location)
    assert browser.client.post("/admin/leads/lead/", secure=True).status_code in (302, 403)
    first = browser.get(f"{ENROL}?next=/admin/leads/lead/").content.decode()
    assert 'src="data:image/svg+xml' in first and 'id="two-factor-secret"' in first
    second = browser.get(ENROL).content.decode()  # a new key each time: the first is never shown again
    secret = re.search(r'id="two-factor-secret">([A-Z2-7 ]+)<', second).group(1)
    assert secret != re.search(r'id="two-factor-secret">([A-Z2-7 ]+)<', first).group(1)
    device = TOTPDevice.objects.get(user=superuser)  # only the latest unconfirmed key remains
    assert device.confirmed is False
    wrong = browser.post(ENROL, {"token": "000000" if code(device) != "000000" else "111111"})
    assert wrong.status_code == 400 and secret not in wrong.content.decode()  # not shown again
    assert browser.admin_status()[0] == 302
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=timezone.now() - timedelta(seconds=5))
    done = browser.post(ENROL, {"token": code(device), "next": "/admin/leads/lead/"})
    assert done.status_code == 302 and done["Location"] == "/admin/leads/lead/"
    assert browser.admin_status() == (200, "")
    device.refresh_from_db()
    assert device.confirmed is True
    [event] = events("staff_2fa_enrolled")
    assert event.event_data["user_id"] == superuser.pk
    page = browser.get(ENROL).content.decode()
    assert 'id="two-factor-enrolled"' in page and secret not in page


def test_the_enrolment_page_is_for_staff_only():
    broker = BrokerFactory()
    browser = Browser()
    browser.login(broker.user)
    assert browser.get(ENROL)["Location"] == "/portal/"
    assert not TOTPDevice.objects.filter(user=broker.user).exists()


# --- every login asks for the code --------------------------------------------------------------------------


def test_every_login_asks_for_the_code_and_only_the_right_one_opens_the_admin():
    superuser = StaffUserFactory()
    device = enrolled(superuser)
    browser = Browser()
    browser.login(superuser)
    status, location = browser.admin_status()
    assert status == 302 and location == f"{VERIFY}?next=%2Fadmin%2F"
    missing = browser.post(VERIFY, {"token": ""})
    assert missing.status_code == 400 and browser.admin_status()[0] == 302
    wrong = browser.post(VERIFY, {"token": "000000" if code(device) != "000000" else "111111"})
    assert wrong.status_code == 400 and browser.admin_status()[0] == 302
    # past django-otp's wait of 1 s after a wrong code
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=timezone.now() - timedelta(seconds=5))
    right = browser.post(VERIFY, {"token": code(device), "next": "/admin/"})
    assert right.status_code == 302 and right["Location"] == "/admin/"
    assert browser.admin_status() == (200, "")
    browser.logout()
    browser.login(superuser)  # a new login: the code again
    assert browser.admin_status()[1].startswith(VERIFY)


def test_the_admins_own_login_page_asks_for_the_code_too():
    superuser = StaffUserFactory()
    enrolled(superuser)
    browser = Browser()
    response = browser.post(
        "/admin/login/?next=/admin/", {"username": superuser.email, "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302
    assert browser.admin_status()[1].startswith(VERIFY)


def test_a_code_works_once():
    superuser = StaffUserFactory()
    device = enrolled(superuser)
    browser = Browser()
    browser.login(superuser)
    used = code(device)
    assert browser.post(VERIFY, {"token": used})["Location"] == "/admin/"
    browser.logout()
    browser.login(superuser)
    replay = browser.post(VERIFY, {"token": used})
    assert replay.status_code == 400 and browser.admin_status()[0] == 302
    earlier = browser.post(VERIFY, {"token": code(device, steps_ago=-1)})  # nor an older one from its window
    assert earlier.status_code in (400, 429) and browser.admin_status()[0] == 302


def test_a_wrong_code_makes_the_next_try_wait():
    superuser = StaffUserFactory()
    device = enrolled(superuser)
    browser = Browser()
    browser.login(superuser)
    browser.post(VERIFY, {"token": "000000" if code(device) != "000000" else "111111"})
    too_soon = browser.post(VERIFY, {"token": code(device)})
    assert too_soon.status_code == 429 and "wait a few seconds" in too_soon.content.decode()
    assert browser.admin_status()[0] == 302


def test_n_wrong_codes_lock_the_device_even_against_the_right_code(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # without django-otp's waits in between, to count quickly
    settings.STAFF_2FA_FAILURE_LIMIT = 3
    superuser = StaffUserFactory()
    device = enrolled(superuser)
    browser = Browser()
    browser.login(superuser)
    wrong = "000000" if code(device) != "000000" else "111111"
    statuses = [browser.post(VERIFY, {"token": wrong}).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    locked = browser.post(VERIFY, {"token": code(device)})
    assert locked.status_code == 429 and "locked" in locked.content.decode()
    assert browser.admin_status()[0] == 302
    [event] = events("staff_2fa_locked_out")
    assert event.event_data["user_id"] == superuser.pk and event.event_data["failures"] == 3
    device.refresh_from_db()
    device.throttling_failure_timestamp = timezone.now() - timedelta(minutes=settings.STAFF_2FA_LOCKOUT_MINUTES + 1)
    device.save()
    assert browser.post(VERIFY, {"token": code(device)})["Location"] == "/admin/"
    device.refresh_from_db()
    assert device.throttling_failure_count == 0


# --- who is asked -------------------------------------------------------------------------------------------


def test_ops_without_a_device_are_not_asked_unless_every_staff_user_must(settings):
    ops = RoleUserFactory(role="ops")
    browser = Browser()
    browser.login(ops)
    assert browser.admin_status() == (200, "")
    settings.STAFF_2FA_REQUIRED = "staff"
    assert browser.admin_status()[1].startswith(ENROL)


def test_brokers_are_never_asked(settings):
    settings.STAFF_2FA_REQUIRED = "staff"
    broker = BrokerFactory()
    browser = Browser()
    browser.login(broker.user)
    assert browser.get("/portal/leads/").status_code == 200


def test_without_the_setting_a_superuser_without_a_device_goes_on(settings):
    settings.STAFF_2FA_REQUIRED = "none"
    browser = Browser()
    browser.login(StaffUserFactory())
    assert browser.admin_status() == (200, "")


def test_the_admin_never_shows_a_devices_key():
    superuser = StaffUserFactory()
    device = enrolled(superuser)
    browser = Browser()
    browser.login(superuser)
    browser.post(VERIFY, {"token": code(device)})
    page = browser.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert page.status_code == 200 and device.key not in page.content.decode()


# --- the settings per environment ---------------------------------------------------------------------------

PRODUCTION = {
    "SECRET_KEY": "x" * 60,
    "ENCRYPTION_KEY": "Tl5k1xM2Pn9fQx3Jx0m0F6QWvLkq1b2Yt8eU0wq3h1E=",
    "PII_ENCRYPTION_KEYS": "k1:3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "BLIND_INDEX_KEY": "1:YmxpbmQtaW5kZXgtdGVzdC1rZXktMDEyMzQ1Njc4OWE=",
    "FORM_LINK_SECRET": "y" * 64,
}


def setting(module: str, env: dict) -> subprocess.CompletedProcess:
    code_ = "import django; django.setup(); from django.conf import settings; print(settings.STAFF_2FA_REQUIRED)"
    environment = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "STAFF_2FA_REQUIRED")}
    return subprocess.run(
        [sys.executable, "-c", code_],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment, "DJANGO_SETTINGS_MODULE": f"equity_connect.settings.{module}", **env},
    )


@pytest.mark.parametrize(
    ("module", "env", "expected"),
    [
        ("production", PRODUCTION, "superusers"),
        ("production", {**PRODUCTION, "STAFF_2FA_REQUIRED": "staff"}, "staff"),
        ("local", {}, "none"),
        ("test", {}, "none"),
    ],
)
def test_superusers_need_two_factor_login_in_production_only_by_default(module, env, expected):
    result = setting(module, env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == expected


def test_an_unknown_policy_refuses_to_start():
    result = setting("production", {**PRODUCTION, "STAFF_2FA_REQUIRED": "sometimes"})
    assert result.returncode != 0 and "STAFF_2FA_REQUIRED" in result.stderr


FULL_WIDTH_DIGITS = "".join(chr(0xFF11 + i) for i in range(6))


@pytest.mark.parametrize(
    "token", ["", "abcdef", "12 34 56", FULL_WIDTH_DIGITS, "9" * 10, "9" * 500, "-12345", "\x00" * 6]
)
def test_no_code_a_person_can_type_breaks_the_page(token):
    superuser = StaffUserFactory()
    enrolled(superuser)
    browser = Browser()
    browser.login(superuser)
    response = browser.post(VERIFY, {"token": token, "next": "https://evil.example/"})
    assert response.status_code in (400, 429)
    assert browser.admin_status()[0] == 302
    assert browser.get(f"{VERIFY}?next=//evil.example/").status_code == 200
