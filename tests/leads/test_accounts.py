"""Login with email + password, landing, logout, password change/reset, and the django-axes lockout."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent, Throttle
from tests.factories import UserFactory

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


@pytest.mark.parametrize(
    ("who", "root"),
    [
        ("anonymous", "/accounts/login/"),
        ("broker", "/portal/"),
        ("staff", "/admin/"),
        ("nobroker", "/portal/"),  # the portal's page says they have no broker
        ("inactive broker", "/portal/"),
    ],
)
def test_the_root_sends_each_visitor_where_they_belong(client, broker_a, staff_user, plain_user, who, root):
    if who == "inactive broker":
        with service_context():
            type(broker_a).objects.filter(pk=broker_a.pk).update(active=False)
    user = {"broker": broker_a.user, "staff": staff_user, "nobroker": plain_user, "inactive broker": broker_a.user}
    if who in user:
        client.force_login(user[who])
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == root
    if who in ("nobroker", "inactive broker"):
        assert client.get(root).status_code == 403  # "no active broker", not a loop back to the login


def test_the_admins_view_site_link_leads_to_the_admin(client, staff_user):
    client.force_login(staff_user)
    index = client.get("/admin/").content.decode()
    assert '<a href="/">View site</a>' in index
    assert client.get("/", follow=True).redirect_chain == [("/admin/", 302)]


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
    # the cool-off passes (and the address's own window: these ten failures came from one address)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(hours=1))
    Throttle.objects.update(window_started_at=timezone.now() - timedelta(hours=1))
    response = _login(client, email)
    assert response.status_code == 302 and client.session.get("_auth_user_id") == str(broker_a.user.pk)


def test_a_lockout_is_per_account(client, broker_a, broker_b):
    for number in range(10):
        _login(client, broker_a.user.email, "wrong-password-123", REMOTE_ADDR=f"203.0.113.{number}")
    assert _login(client, broker_a.user.email, REMOTE_ADDR="198.51.100.9").status_code == 429
    assert _login(client, broker_b.user.email, REMOTE_ADDR="198.51.100.9").status_code == 302


# --- The lockout holds for every spelling of the address; a limit per client address -------------------


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("form", ["upper", "spaces", "mixed", "fullwidth"])
def test_the_lockout_holds_for_every_spelling_of_the_email(client, broker_a, form):
    email = broker_a.user.email  # alice@brokers.example
    # failures under several spellings count for one account (each from its own address: only the account's count)
    spellings = [email, email.upper(), f"  {email} ", email.title()]
    for number in range(10):
        response = _login(client, spellings[number % 4], "wrong-password-123", REMOTE_ADDR=f"203.0.113.{number}")
    assert response.status_code == 429
    variant = {
        "upper": email.upper(),
        "spaces": f" {email} ",
        "mixed": "Alice@Brokers.Example",
        "fullwidth": email.replace("alice", "\uff41\uff4c\uff49\uff43\uff45"),  # NFKC: the same letters
    }[form]
    response = _login(client, variant, REMOTE_ADDR="198.51.100.20")
    assert response.status_code == 429 and not _logged_in(client)
    assert _login(client, email, REMOTE_ADDR="198.51.100.21").status_code == 429
    # the admin's own login form is held the same way
    response = client.post("/admin/login/", {"username": variant, "password": PASSWORD}, REMOTE_ADDR="198.51.100.22")
    assert response.status_code == 429 and not _logged_in(client)
    # django-axes keeps one name for the account
    assert set(AccessAttempt.objects.values_list("username", flat=True)) == {email}


def test_a_client_address_is_limited_across_accounts(client, broker_a, broker_b, settings):
    attacker = "203.0.113.66"
    for number in range(9):
        response = _login(client, f"someone{number}@example.com", "wrong-password-123", REMOTE_ADDR=attacker)
        assert response.status_code == 200
    tenth = _login(client, broker_a.user.email, "wrong-password-123", REMOTE_ADDR=attacker)
    assert tenth.status_code == 429 and "from your network" in tenth.content.decode()
    # the address is refused even with the right password, and that refusal counts against no account
    for _ in range(15):
        assert _login(client, broker_b.user.email, REMOTE_ADDR=attacker).status_code == 429
    assert not _logged_in(client)
    assert not AccessAttempt.objects.filter(username=broker_b.user.email).exists()
    # everyone else logs in as usual, broker_a included (one failure on that account)
    assert _login(client, broker_b.user.email, REMOTE_ADDR="198.51.100.7").status_code == 302
    client.logout()
    assert _login(client, broker_a.user.email, REMOTE_ADDR="198.51.100.8").status_code == 302
    client.logout()
    # the counter is in PostgreSQL (shared by every web process), under a digest of the address
    rows = list(Throttle.objects.filter(scope="login-ip").values_list("key_digest", "hits"))
    assert rows == [(hashlib.sha256(attacker.encode()).hexdigest(), 10)]
    # a successful login from the address does not clear it; its window ending does
    Throttle.objects.update(window_started_at=timezone.now() - timedelta(minutes=settings.LOGIN_IP_WINDOW_MINUTES))
    assert _login(client, broker_b.user.email, REMOTE_ADDR=attacker).status_code == 302


def test_the_address_limit_uses_the_trusted_proxy_rule(client, broker_a, settings):
    settings.TRUSTED_PROXY_COUNT = 1  # one proxy of ours appends the client's address
    proxy = "10.0.0.2"
    for _ in range(10):
        _login(client, "nobody@example.com", "wrong-password-123", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="1.2.3.4")
    blocked = _login(client, broker_a.user.email, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert blocked.status_code == 429
    # another client behind the same proxy is not that client
    assert _login(client, broker_a.user.email, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="5.6.7.8").status_code == 302
    client.logout()
    # a client cannot escape by writing its own X-Forwarded-For in front of the proxy's
    spoofed = _login(client, broker_a.user.email, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="9.9.9.9, 1.2.3.4")
    assert spoofed.status_code == 429


def _reset(client, email, **extra):
    response = client.post("/accounts/password_reset/", {"email": email}, **extra)
    return response.status_code, response["Location"], client.get(response["Location"]).content


def test_password_reset_mails_are_limited_per_email_address(client, broker_a):
    answers = [_reset(client, f" {broker_a.user.email.upper()}", REMOTE_ADDR=f"203.0.113.{n}") for n in range(5)]
    assert len(mail.outbox) == 3
    assert len(set(answers)) == 1  # the same answer whether a mail went out or not
    assert answers[0][:2] == (302, "/accounts/password_reset/done/")


def test_password_reset_mails_are_limited_per_client_address(client, settings):
    users = [UserFactory(email=f"reset{n}@example.com") for n in range(12)]
    answers = [_reset(client, user.email, REMOTE_ADDR="203.0.113.77") for user in users]
    assert len(mail.outbox) == settings.PASSWORD_RESET_PER_IP_LIMIT == 10
    assert len(set(answers)) == 1
    # another address still gets its mail; the window ending lets the first one in again
    _reset(client, users[11].email, REMOTE_ADDR="198.51.100.3")
    assert len(mail.outbox) == 11
    Throttle.objects.update(window_started_at=timezone.now() - timedelta(hours=2))
    _reset(client, users[10].email, REMOTE_ADDR="203.0.113.77")
    assert len(mail.outbox) == 12
