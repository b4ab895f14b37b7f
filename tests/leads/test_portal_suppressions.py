"""The portal shows why a lead is never contacted, per channel (detail and list), and a broker's do-not-contact
puts the lead's contact on the suppression list, binding another broker's lead with the same phone."""

from __future__ import annotations

import pytest
from django.urls import reverse

from equity_connect.db import service_context
from leads.models import Lead
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_the_detail_and_the_list_say_why_per_channel(client_for, broker_a, broker_b):
    mine = LeadFactory(assigned_broker=broker_a, phone="+15185550142", email="ruth@example.net")
    theirs = LeadFactory(assigned_broker=broker_b, phone="+15185550142", email="other@example.net")
    client = client_for(broker_a)
    response = client.post(reverse("portal:lead_do_not_contact", kwargs={"lead_id": mine.pk}),
                           {"reason": "asked us to stop"})  # fmt: skip
    assert response.status_code in (200, 302)
    with service_context():
        assert Lead.objects.get(pk=theirs.pk).suppressed_channels == {
            key: ["customer_request"] for key in ("email", "phone", "sms")
        }
    detail = client.get(reverse("portal:lead_detail", kwargs={"lead_id": mine.pk})).content.decode()
    assert 'data-testid="suppressed-channels"' in detail and "customer_request" in detail
    assert '<span class="badge">phone</span> customer_request' in detail
    listing = client.get(reverse("portal:lead_list")).content.decode()
    assert "no email" in listing and "suppressed: customer_request" in listing
