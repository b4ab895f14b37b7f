"""Two-factor login in Debian's Chromium (Playwright, headless): a superuser logs in, is sent to enrolment, scans
(reads) the key shown once, confirms with the app's code and lands in the admin; the next login asks for the code.
An ops member then opens a lead with its e-mail masked and reveals it against a reason. No CSP violation on the
way (the QR code is an image, no script). Screenshots go to var/artifacts/."""

from __future__ import annotations

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.browser.support import ARTIFACTS
from tests.factories import LeadFactory, RoleUserFactory, StaffUserFactory

PASSWORD = "correct-horse-battery"


def _code(user) -> str:
    device = TOTPDevice.objects.get(user=user)
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def _login(page, url, user):
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")


@pytest.mark.django_db(transaction=True)
def test_a_superuser_enrols_then_logs_in_with_a_code_and_ops_reveal_a_masked_email(live_server, browser, settings):
    settings.STAFF_2FA_REQUIRED = "superusers"
    superuser = StaffUserFactory(email="root@equityconnect.example")
    lead = LeadFactory(email="masked.owner@example.net")
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []  # script errors and Content-Security-Policy violations
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console", lambda message: problems.append(message.text) if "Content Security Policy" in message.text else None
    )

    _login(page, live_server.url, superuser)
    page.wait_for_selector("#two-factor-qr")
    assert "/accounts/2fa/enrol/" in page.url
    assert page.evaluate("document.querySelector('#two-factor-qr').naturalWidth") > 0  # the QR code rendered
    assert len(page.inner_text("#two-factor-secret").replace(" ", "")) == 32
    page.screenshot(path=str(ARTIFACTS / "two-factor-enrol.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/leads/lead/")  # nothing else until enrolled
    assert "/accounts/2fa/enrol/" in page.url
    page.wait_for_selector("#two-factor-qr")
    page.fill("input[name=token]", _code(superuser))
    page.click("#two-factor-submit")
    page.wait_for_selector("#site-name")
    assert page.url.endswith("/admin/leads/lead/")

    page.click("#logout-form button")
    _login(page, live_server.url, superuser)
    page.wait_for_selector("#two-factor-form")
    assert "/accounts/2fa/" in page.url
    page.screenshot(path=str(ARTIFACTS / "two-factor-verify.png"), full_page=True)

    ops_page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    ops_page.on(
        "console", lambda message: problems.append(message.text) if "Content Security Policy" in message.text else None
    )
    ops = RoleUserFactory(role="ops", email="ops@equityconnect.example")
    _login(ops_page, live_server.url, ops)
    ops_page.goto(f"{live_server.url}/admin/leads/lead/{lead.pk}/change/")
    assert "masked.owner@example.net" not in ops_page.content()
    ops_page.screenshot(path=str(ARTIFACTS / "pii-masked.png"), full_page=True)
    ops_page.click("#pii-reveal")
    ops_page.fill("textarea[name=reason]", "The owner called about their e-mail address")
    ops_page.click("#pii-reveal-submit")
    ops_page.wait_for_selector("#pii-values")
    assert "masked.owner@example.net" in ops_page.inner_text("#pii-values")
    assert problems == []
