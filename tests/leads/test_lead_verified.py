"""`lead_verified` is recorded wherever a lead becomes verified: the ingest (tests/pipeline), the seed's step 5.2
(tests/leads/test_backfill_commands.py), a staff change in the admin and a possible-duplicate merge (here)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from pipeline.duplicates.services import possible_duplicate_merge
from tests.factories import LeadFactory, PossibleDuplicateFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


def verified_events(lead) -> list[dict]:
    with service_context():
        return list(
            PipelineEvent.objects.filter(event_type="lead_verified", lead_id=lead.pk)
            .order_by("id")
            .values_list("event_data", flat=True)
        )


def admin_post(client, lead, **flags):
    data = {"campaign_status": "new", "melissa_payload": "{}", "lead_score": "10", "call_attempt_count": "0"}
    data.update({"email": lead.email, "phone": lead.phone, "mak": lead.mak})
    data.update({flag: "on" for flag, on in flags.items() if on})
    response = client.post(reverse("admin:leads_lead_change", args=[lead.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]


def test_a_staff_change_that_verifies_a_contact_records_it_once(client):
    staff = StaffUserFactory()
    client.force_login(staff)
    lead = LeadFactory(email="v@example.com", phone="+15185550100", mak="LV-1", email_verified=False)
    admin_post(client, lead, email_verified=True)
    assert verified_events(lead) == [{"channels": ["email"], "by": staff.get_username(), "via": "admin"}]
    admin_post(client, lead, email_verified=True, phone_verified=True)  # e-mail already verified: phone only
    assert [event["channels"] for event in verified_events(lead)] == [["email"], ["phone"]]
    admin_post(client, lead)  # un-verifying records nothing
    assert len(verified_events(lead)) == 2


def test_a_merge_that_brings_a_verified_email_records_it():
    survivor = LeadFactory(email=None, mak="LV-S", email_verified=False)
    other = LeadFactory(email="m@example.com", mak="LV-O", email_verified=True)
    pair = PossibleDuplicateFactory(lead_a=survivor, lead_b=other, reason="test")
    with service_context():
        possible_duplicate_merge(pair=pair, survivor_id=survivor.pk)
    assert [event["channels"] for event in verified_events(survivor)] == [["email"]]
    assert verified_events(survivor)[0]["via"] == "possible_duplicate_merge"
