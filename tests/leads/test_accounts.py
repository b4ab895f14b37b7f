"""Login with email + password, landing, logout, password change/reset, and the django-axes lockout."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]
PASSWORD = "correct-horse-battery"


def _login(client, email, password=PASSWORD, **extra):
    return client.post("/accounts/login/", {"username": email, "password": password}, **extra)


@pytest.mark.parametrize(("who", "landing"), [("broker", "/portal/"), ("staff", "/admin/"), ("nobroker", "/portal/")])
def test_login_with_email_lands_by_role(client, broker_a, staff_user, plain_user, who, landing):
    user = {"broker": broker_a.user, "staff": staff_user, "nobroker": plain_user}[who]
    response = _login(client, user.email.upper())  # the email is matched case-insensitively
    assert response.status_code == 302 and response["Location"] == "/accounts/landing/"
    response = client.get("/accounts/landing/")
    assert response["Location"] == landing


def test_broker_logs_in_and_sees_the_portal_then_logs_out(client, broker_a, lead_a):
    assert client.get("/accounts/login/").status_code == 200
    response = _login(client, broker_a.user.email)
    response = client.get("/portal/leads/")
    assert response.status_code == 200 and str(lead_a.pk) in response.content.decode()
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/portal/leads/").status_code == 302


def test_wrong_password_is_refused(client, broker_a):
    response = _login(client, broker_a.user.email, "wrong-password-123")
    assert response.status_code == 200 and "didn't match" in response.content.decode()


def test_password_change_for_a_broker(client, broker_a):
    client.force_login(broker_a.user)
    assert client.get("/accounts/password_change/").status_code == 200
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-brand-new-passphrase-42",
            "new_password2": "a-brand-new-passphrase-42",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/password_change/done/"
    broker_a.user.refresh_from_db()
    assert broker_a.user.check_password("a-brand-new-passphrase-42")


def test_password_reset_by_email(client, broker_a):
    response = client.post("/accounts/password_reset/", {"email": broker_a.user.email})
    assert response.status_code == 302 and len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    response = client.get(link, follow=True)
    assert response.status_code == 200 and "Choose a new password" in response.content.decode()
    response = client.post(
        response.redirect_chain[-1][0],
        {
            "new_password1": "reset-passphrase-9876",
            "new_password2": "reset-passphrase-9876",
        },
    )
    assert response.status_code == 302
    broker_a.user.refresh_from_db()
    assert broker_a.user.check_password("reset-passphrase-9876")


def test_ten_failures_lock_the_account_until_the_cool_off_ends(client, broker_a, staff_user):
    email = broker_a.user.email
    for _ in range(9):
        assert _login(client, email, "wrong-password-123").status_code == 200
    locked = _login(client, email, "wrong-password-123")
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
    # the correct password now fails too, from any address
    response = _login(client, email, REMOTE_ADDR="198.51.100.9")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # staff see it: axes' attempts in the admin and a login_locked_out event
    with service_context():
        event = PipelineEvent.objects.filter(event_type="login_locked_out").first()
    assert event is not None and event.event_data["username"] == email and event.broker_id == broker_a.pk
    staff = client.__class__()
    staff.force_login(staff_user)
    assert email in staff.get("/admin/axes/accessattempt/").content.decode()
    events_page = staff.get("/admin/equity_connect/pipelineevent/", {"event_type": "login_locked_out"})
    assert events_page.status_code == 200 and "login_locked_out" in events_page.content.decode()
    # the cool-off passes
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(hours=1))
    response = _login(client, email)
    assert response.status_code == 302 and client.session.get("_auth_user_id") == str(broker_a.user.pk)


def test_a_lockout_is_per_account(client, broker_a, broker_b):
    for _ in range(10):
        _login(client, broker_a.user.email, "wrong-password-123")
    assert _login(client, broker_b.user.email).status_code == 302
