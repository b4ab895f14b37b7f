"""A new partner key's secret is shown on the page its POST renders, and travels in no cookie: not in the
messages cookie (messages live in the session), not anywhere else."""

from __future__ import annotations

import pytest
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import RequestFactory

from equity_connect.db import service_context
from security.models import PartnerKey
from security.services import partner_key_secret
from tests.factories import PartnerFactory, PartnerKeyFactory, StaffUserFactory

pytestmark = pytest.mark.django_db
SECRET = "a-partner-secret-of-at-least-32-characters-0123456789"


@pytest.fixture
def staff_client(client):
    client.force_login(StaffUserFactory())
    return client


def _cookie_texts(response) -> list[str]:
    """Every cookie the response sets, as sent and (the messages cookie) decoded."""
    texts = []
    for name, morsel in response.cookies.items():
        texts.append(morsel.value)
        if name == "messages" and morsel.value:
            decoded = CookieStorage(RequestFactory().get("/"))._decode(morsel.value)
            texts.append(repr([str(message) for message in decoded or []]))
    return texts


def test_a_new_secret_is_on_the_page_and_in_no_cookie(staff_client):
    partner = PartnerFactory()
    response = staff_client.post(
        "/admin/security/partnerkey/add/", {"partner": partner.pk, "label": "x", "secret": SECRET}
    )
    assert response.status_code == 200 and SECRET in response.content.decode()
    assert "no-store" in response.headers["Cache-Control"]
    assert not [text for text in _cookie_texts(response) if SECRET in text]
    later = staff_client.get("/admin/security/partnerkey/")
    assert SECRET not in later.content.decode() and not [text for text in _cookie_texts(later) if SECRET in text]
    with service_context():
        assert partner_key_secret(key=PartnerKey.objects.get(partner=partner)) == SECRET


def test_rotated_secrets_are_on_the_page_and_in_no_cookie(staff_client):
    old = PartnerKeyFactory()
    response = staff_client.post(
        "/admin/security/partnerkey/", {"action": "rotate_keys", "_selected_action": [old.pk]}
    )
    with service_context():
        new = PartnerKey.objects.exclude(pk=old.pk).get(partner=old.partner)
        secret = partner_key_secret(key=new)
    body = response.content.decode()
    assert response.status_code == 200 and secret in body and new.key_id in body
    assert not [text for text in _cookie_texts(response) if secret in text]


def test_no_message_is_ever_stored_in_a_cookie(staff_client):
    other = PartnerKeyFactory()
    response = staff_client.post(
        "/admin/security/partnerkey/", {"action": "revoke_keys", "_selected_action": [other.pk]}
    )
    assert response.status_code == 302 and "messages" not in response.cookies
    assert "Revoked 1 key" in staff_client.get(response["Location"]).content.decode()
