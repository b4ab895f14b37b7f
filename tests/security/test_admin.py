"""The partner-key admin: whether a key may sign v1 is shown in the list and on its page, and its allowed
brokers (whom its uploads may name in X-Broker-Id) and v1 flag are edited there, recorded, and obeyed by
the upload API at once."""

from __future__ import annotations

import pytest

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from security.models import PartnerKey
from tests.factories import BrokerFactory, PartnerFactory, PartnerKeyFactory, StaffUserFactory
from tests.security.signing_helpers import post_upload

pytestmark = pytest.mark.django_db
BODY = b"mak,first_name\nA1,Ann\n"


@pytest.fixture
def staff_client(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.HMAC_SECRET_KEY = ""
    client.force_login(StaffUserFactory())
    return client


def test_the_list_and_the_page_show_the_v1_flag_and_the_allowed_brokers(staff_client):
    broker = BrokerFactory(name="Routable Rita")
    key = PartnerKeyFactory(allow_v1=True)
    with service_context():
        key.allowed_brokers.add(broker)
    listing = staff_client.get("/admin/security/partnerkey/").content.decode()
    assert "Allow v1 signatures" in listing and 'class="field-allow_v1"' in listing
    page = staff_client.get(f"/admin/security/partnerkey/{key.pk}/change/").content.decode()
    assert 'name="allow_v1"' in page and "checked" in page.split('name="allow_v1"')[1].split(">")[0]
    assert 'name="allowed_brokers"' in page and "Routable Rita" in page
    add = staff_client.get("/admin/security/partnerkey/add/").content.decode()
    assert 'name="allow_v1"' in add and 'name="allowed_brokers"' in add


def test_editing_a_key_sets_its_brokers_and_v1_flag_and_records_it(staff_client, client):
    default, extra = BrokerFactory(), BrokerFactory()
    key = PartnerKeyFactory(default_broker=default)
    refused = post_upload(client, key.plain_secret, BODY, key_id=key.key_id, x_broker_id=str(extra.pk))
    assert refused.status_code == 403

    response = staff_client.post(
        f"/admin/security/partnerkey/{key.pk}/change/",
        {"default_broker": default.pk, "allowed_brokers": [extra.pk], "allow_v1": "on", "label": "edited"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    with service_context():
        key.refresh_from_db()
        assert key.allow_v1 is True and list(key.allowed_brokers.all()) == [extra] and key.label == "edited"
        [event] = PipelineEvent.objects.filter(event_type="partner_key_changed")
    assert event.event_data["key_id"] == key.key_id
    assert event.event_data["changes"]["allow_v1"] == {"from": False, "to": True}
    assert event.event_data["changes"]["allowed_brokers"] == {"added": [str(extra.pk)], "removed": []}

    accepted = post_upload(client, key.plain_secret, BODY, key_id=key.key_id, x_broker_id=str(extra.pk))
    assert accepted.status_code == 202
    v1 = post_upload(client, key.plain_secret, BODY + b"A2,Bob\n", key_id=key.key_id, forms=("v1",))
    assert v1.status_code == 202

    staff_client.post(
        f"/admin/security/partnerkey/{key.pk}/change/", {"default_broker": default.pk, "label": "edited"}
    )
    with service_context():
        key.refresh_from_db()
        assert key.allow_v1 is False and not key.allowed_brokers.exists()
    refused_again = post_upload(client, key.plain_secret, BODY + b"A3,Cy\n", key_id=key.key_id, forms=("v1",))
    assert refused_again.status_code == 401


def test_create_and_rotate_keep_the_policies(staff_client):
    partner, broker = PartnerFactory(), BrokerFactory()
    staff_client.post(
        "/admin/security/partnerkey/add/",
        {"partner": partner.pk, "allowed_brokers": [broker.pk], "allow_v1": "on", "label": "old client"},
    )
    with service_context():
        key = PartnerKey.objects.get(partner=partner)
        assert key.allow_v1 is True and list(key.allowed_brokers.all()) == [broker]
    staff_client.post("/admin/security/partnerkey/", {"action": "rotate_keys", "_selected_action": [key.pk]})
    with service_context():
        rotated = PartnerKey.objects.exclude(pk=key.pk).get(partner=partner)
        assert rotated.allow_v1 is True and list(rotated.allowed_brokers.all()) == [broker]
