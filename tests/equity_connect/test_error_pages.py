"""Errors a user can cause are never a 500, and a server error never shows a secret: a broker (or any non-staff
login) in the admin gets its login page, and with DEBUG on (a local checkout) the technical page is for staff only,
with every secret hidden."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from tests.factories import BrokerFactory, StaffUserFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]

ADMIN_URLS = ["/admin/", "/admin/login/", "/admin/leads/lead/", "/admin/dashboard/", "/admin/security/partnerkey/"]


@pytest.mark.parametrize("who", ["broker", "nobroker"])
@pytest.mark.parametrize("url", ADMIN_URLS)
def test_a_non_staff_login_in_the_admin_gets_its_login_page(client, who, url):
    user = BrokerFactory().user if who == "broker" else UserFactory()
    client.force_login(user)
    client.raise_request_exception = False
    response = client.get(url, follow=True)
    assert response.status_code in (200, 403), response.content[:300]
    assert response.redirect_chain == [] or response.redirect_chain[-1][0].startswith("/admin/login/")
    if response.status_code == 200:
        assert "not authorized to access this page" in response.content.decode()


def test_a_broker_may_log_in_as_staff_from_the_admin_login(client):
    broker, staff = BrokerFactory(), StaffUserFactory()
    client.force_login(broker.user)
    response = client.post("/admin/login/", {"username": staff.email, "password": "correct-horse-battery"})
    assert response.status_code == 302 and client.get("/admin/").status_code == 200


# --- DEBUG pages ---------------------------------------------------------------------------------------------

SECRETS = ("DATABASE_ADMIN_URL", "DATABASE_URL", "SECRET_KEY", "FORM_LINK_SECRET", "INSTANTLY_WEBHOOK_SECRET")


def _secret_values() -> list[str]:
    values = [getattr(django_settings, name) for name in SECRETS]
    values += [django_settings.DATABASE_ADMIN["PASSWORD"], *django_settings.ENCRYPTION_KEYS]
    return [value for value in values if value]


def _boom(client):
    client.raise_request_exception = False
    # runserver copies the process environment, where .env's secrets are, into every request
    environment = {name: str(getattr(django_settings, name)) for name in SECRETS}
    return client.get("/boom/", HTTP_ACCEPT="text/html", **environment)


@pytest.mark.urls("tests.equity_connect.urls_error_probe")
@pytest.mark.parametrize("who", ["anonymous", "broker", "nobroker"])
def test_with_debug_on_only_staff_see_the_technical_page(client, settings, who):
    settings.DEBUG = True
    user = {"anonymous": None, "broker": lambda: BrokerFactory().user, "nobroker": UserFactory}[who]
    if user is not None:
        client.force_login(user())
    response = _boom(client)
    body = response.content.decode()
    assert response.status_code == 500
    assert "Traceback" not in body and "something broke" not in body and "DATABASE" not in body
    assert not [value for value in _secret_values() if value in body]


@pytest.mark.urls("tests.equity_connect.urls_error_probe")
def test_with_debug_on_staff_see_the_technical_page_without_secrets(client, settings):
    settings.DEBUG = True
    client.force_login(StaffUserFactory())
    response = _boom(client)
    body = response.content.decode()
    assert response.status_code == 500 and "something broke" in body and "DATABASE_ADMIN_URL" in body
    assert [value for value in _secret_values() if value in body] == []
