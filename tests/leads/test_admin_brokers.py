"""The brokers' admin: *Offboard* asks for the broker who takes the leads and the reason on a confirmation page,
then calls the offboarding service; ops (who may only view brokers) are not offered it."""

from __future__ import annotations

import pytest

from equity_connect.db import service_context
from leads.models import Lead
from security.models import Broker
from tests.factories import BrokerFactory, LeadFactory, PartnerKeyFactory, RoleUserFactory, StaffUserFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/security/broker/"


@pytest.fixture
def admin_client(client):
    client.force_login(StaffUserFactory())
    return client


def test_offboard_shows_a_confirmation_page_then_moves_the_leads(admin_client):
    leaving, taking = BrokerFactory(name="Leaving Lou"), BrokerFactory(name="Taking Tia")
    BrokerFactory(name="Gone Gail", active=False)
    leads = LeadFactory.create_batch(2, assigned_broker=leaving)
    key = PartnerKeyFactory(default_broker=leaving)

    page = admin_client.post(CHANGELIST, {"action": "offboard_broker", "_selected_action": [leaving.pk]})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Offboard Leaving Lou" in text and "<strong>2</strong> lead(s)" in text and key.key_id in text
    choices = text.split('name="to_broker"')[1].split("</select>")[0]
    assert "Taking Tia" in choices and "Gone Gail" not in choices and "Leaving Lou" not in choices
    with service_context():  # nothing happened yet
        assert Broker.objects.get(pk=leaving.pk).active is True

    missing = admin_client.post(
        CHANGELIST, {"action": "offboard_broker", "_selected_action": [leaving.pk], "confirm": "1", "reason": ""}
    )
    assert missing.status_code == 200 and "This field is required" in missing.content.decode()

    done = admin_client.post(
        CHANGELIST,
        {
            "action": "offboard_broker",
            "_selected_action": [leaving.pk],
            "confirm": "1",
            "to_broker": taking.pk,
            "reason": "Left the company",
        },
        follow=True,
    )
    assert done.status_code == 200
    assert "Leaving Lou is inactive; 2 lead(s) reassigned to Taking Tia." in done.content.decode()
    with service_context():
        assert Broker.objects.get(pk=leaving.pk).active is False
        assert set(Lead.objects.filter(assigned_broker=taking).values_list("pk", flat=True)) == {x.pk for x in leads}


def test_offboard_takes_one_broker_at_a_time(admin_client):
    first, second = BrokerFactory(), BrokerFactory()
    response = admin_client.post(
        CHANGELIST, {"action": "offboard_broker", "_selected_action": [first.pk, second.pk]}, follow=True
    )
    assert "Select exactly one broker to offboard." in response.content.decode()
    with service_context():
        assert Broker.objects.filter(active=True, pk__in=[first.pk, second.pk]).count() == 2


def test_ops_are_not_offered_offboarding(client):
    BrokerFactory()
    client.force_login(RoleUserFactory(role="ops"))
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200 and "offboard_broker" not in listing.content.decode()
