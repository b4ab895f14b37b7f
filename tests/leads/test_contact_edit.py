"""A broker edits a lead's contact details (leads/contact_edit.py): stored encrypted with fresh blind indexes, the
old value kept (sealed) on the timeline, and a typed e-mail or phone unconfirmed: no consent link, not fed, until
a partner file with the same value confirms it."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.urls import reverse

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.consent.services import consent_link_send
from leads.contact_edit import lead_contact_confirm, lead_contact_update
from leads.contact_indexes import contact_indexes, indexes_of
from leads.models import Lead
from leads.services import LeadError
from security.fields import open_notes
from security.pii import EMAIL, NOTES, codec
from tests.factories import LeadFactory, StaffUserFactory
from tests.pipeline.ingest_helpers import csv_of, ingest
from tests.pipeline.jobs_support import mv_refresh

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _row(lead_id) -> dict:
    """The lead's stored columns, straight from SQL."""
    with service_context(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT email, email_bidx, email_domain_bidx, phone, phone_bidx, phone_last4_bidx, email_verified,"
            " email_unconfirmed, phone_unconfirmed, mailing_state FROM leads WHERE id = %s",
            [lead_id],
        )
        names = [column.name for column in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def _in_view(lead_id) -> bool:
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM mv_contactable_leads WHERE id = %s)", [lead_id])
        return cursor.fetchone()[0]


def _partner_row(lead: Lead, email: str, verified: str = "true") -> dict:
    return {
        "Address": lead.property_address,
        "City": lead.property_city,
        "State": lead.property_state,
        "Zip": lead.property_zip,
        "MAK": lead.mak,
        "First Name": lead.first_name,
        "Last Name": lead.last_name,
        "Email": email,
        "Email Verified": verified,
    }


def test_a_typed_email_is_encrypted_indexed_kept_on_the_timeline_and_unconfirmed(client_for, broker_a):
    lead = LeadFactory(assigned_broker=broker_a, contactable=True, email="partner@example.com", phone="+14155550100")
    client = client_for(broker_a)
    response = client.post(
        reverse("portal:lead_contact_edit", kwargs={"lead_id": lead.pk}),
        {"email": " Typed@Example.COM ", "phone": "(415) 555-0199", "mailing_state": "ny", "mailing_zip": "12207"},
    )
    assert response.status_code == 302

    row = _row(lead.pk)
    assert "typed@example.com" not in row["email"] and codec().decrypt(row["email"], EMAIL) == "typed@example.com"
    expected = contact_indexes("typed@example.com", "+14155550199")
    assert {name: row[name] for name in expected} == expected
    assert row["email_unconfirmed"] and row["phone_unconfirmed"] and not row["email_verified"]
    assert row["mailing_state"] == "NY"
    with service_context():
        # The search by the new address finds the lead; by the old one it does not.
        assert Lead.objects.filter(email_bidx__in=indexes_of("typed@example.com", EMAIL)).get().pk == lead.pk
        assert not Lead.objects.filter(email_bidx__in=indexes_of("partner@example.com", EMAIL)).exists()
        event = PipelineEvent.objects.get(lead_id=lead.pk, event_type="lead_contact_changed")
    assert "partner@example.com" not in json.dumps(event.event_data)  # sealed, like every note
    opened = open_notes(event.event_data)
    assert "E-mail: partner@example.com → typed@example.com" in opened["note"]
    assert json.loads(codec().decrypt(event.event_data["old"], NOTES))["email"] == "partner@example.com"
    assert event.event_data["fields"] == ["email", "phone", "mailing_state", "mailing_zip"]

    page = client.get(reverse("portal:lead_detail", kwargs={"lead_id": lead.pk})).content.decode()
    assert "Contact details changed" in page and "partner@example.com → typed@example.com" in page
    assert 'id="unconfirmed-contact"' in page
    assert "typed in the portal and is not confirmed yet" in page  # the contactability card says why


def test_a_broker_typed_email_gets_no_consent_link_and_is_not_fed_until_a_partner_file_confirms_it(
    client_for, broker_a
):
    lead = LeadFactory(assigned_broker=broker_a, contactable=True, email="partner@example.com")
    mv_refresh()
    assert _in_view(lead.pk)
    client = client_for(broker_a)
    client.post(reverse("portal:lead_contact_edit", kwargs={"lead_id": lead.pk}), {"email": "mine@broker.example"})

    # No consent link: not through the portal, not through the service.
    response = client.post(reverse("portal:lead_consent_link", kwargs={"lead_id": lead.pk}), follow=True)
    assert "not confirmed yet" in response.content.decode()
    with pytest.raises(LeadError, match="not confirmed"), service_context():
        consent_link_send(lead=lead, broker=None)
    with service_context():
        assert not PipelineEvent.objects.filter(lead_id=lead.pk, event_type="consent_link_requested").exists()
        assert not Lead.objects.feedable().filter(pk=lead.pk).exists()  # the feeder's live check
    mv_refresh()
    assert not _in_view(lead.pk)  # and the view it starts from

    # A partner file with another (verified) address neither confirms nor verifies the typed one.
    ingest(csv_of([_partner_row(lead, "someone.else@example.com")]))
    row = _row(lead.pk)
    assert row["email_unconfirmed"] and not row["email_verified"]
    assert codec().decrypt(row["email"], EMAIL) == "mine@broker.example"

    # A partner file with the same address confirms it.
    ingest(csv_of([_partner_row(lead, "Mine@Broker.example")]))
    row = _row(lead.pk)
    assert not row["email_unconfirmed"] and row["email_verified"]
    with service_context():
        assert Lead.objects.feedable().filter(pk=lead.pk).exists()
    mv_refresh()
    assert _in_view(lead.pk)


def test_invalid_values_are_refused_with_a_message_and_change_nothing(client_for, broker_a):
    lead = LeadFactory(assigned_broker=broker_a, email="partner@example.com")
    before = _row(lead.pk)
    url = reverse("portal:lead_contact_edit", kwargs={"lead_id": lead.pk})
    for data, message in (
        ({"email": "not an address"}, "Enter a valid e-mail address."),
        ({"phone": "12"}, "Enter a valid phone number"),
        ({"mailing_state": "ZZ"}, "two-letter code"),
        ({"mailing_zip": "1234x"}, "5 digits or ZIP+4"),
    ):
        response = client_for(broker_a).post(url, {"email": "partner@example.com", **data})
        assert response.status_code == 400 and message in response.content.decode()
    assert _row(lead.pk) == before
    with service_context():
        assert not PipelineEvent.objects.filter(lead_id=lead.pk, event_type="lead_contact_changed").exists()


def test_saving_the_same_values_changes_nothing(broker_a):
    lead = LeadFactory(assigned_broker=broker_a, email="same@example.com", phone="+14155550123")
    with service_context():
        change = lead_contact_update(
            lead=lead, broker=broker_a, values={"email": "SAME@example.com", "phone": "415-555-0123"}
        )
        assert change.fields == ()
        assert not PipelineEvent.objects.filter(lead_id=lead.pk, event_type="lead_contact_changed").exists()
    assert not _row(lead.pk)["email_unconfirmed"]


def test_staff_can_confirm_a_typed_contact_point(broker_a):
    lead = LeadFactory(assigned_broker=broker_a, contactable=True)
    with service_context():
        lead_contact_update(lead=lead, broker=broker_a, values={"phone": "(415) 555-0111"})
        assert _row(lead.pk)["phone_unconfirmed"]
        lead_contact_confirm(lead=lead, channel="phone", by="staff")
    row = _row(lead.pk)
    assert not row["phone_unconfirmed"]
    with pytest.raises(LeadError), service_context():
        lead_contact_confirm(lead=lead, channel="fax", by="staff")


def test_a_typed_phone_alone_keeps_the_lead_out_of_the_feed(broker_a):
    """The feed sends the phone to Instantly too: a lead whose partner e-mail is verified but whose phone a broker
    typed is not fed (the live rule and the view) until the phone is confirmed."""
    lead = LeadFactory(assigned_broker=broker_a, contactable=True, email="partner@example.com")
    with service_context():
        lead_contact_update(lead=lead, broker=broker_a, values={"phone": "(415) 555-0177"})
        assert Lead.objects.filter(pk=lead.pk, email_verified=True, consent_email=True).exists()
        assert not Lead.objects.feedable().filter(pk=lead.pk).exists()
    mv_refresh()
    assert not _in_view(lead.pk)
    with service_context():
        lead_contact_confirm(lead=lead, channel="phone", by="staff")
        assert Lead.objects.feedable().filter(pk=lead.pk).exists()
    mv_refresh()
    assert _in_view(lead.pk)


def test_staff_confirm_typed_contacts_from_the_admin(client, broker_a):
    lead = LeadFactory(assigned_broker=broker_a, contactable=True)
    untouched = LeadFactory(assigned_broker=broker_a, contactable=True)
    with service_context():
        lead_contact_update(lead=lead, broker=broker_a, values={"email": "typed@broker.example"})
    client.force_login(StaffUserFactory())
    response = client.post(
        reverse("admin:leads_lead_changelist"),
        {"action": "confirm_typed_contacts", "_selected_action": [lead.pk, untouched.pk]},
    )
    assert response.status_code == 302
    assert not _row(lead.pk)["email_unconfirmed"] and _row(lead.pk)["email_verified"]
    with service_context():
        verified = PipelineEvent.objects.filter(event_type="lead_verified", lead_id__in=[lead.pk, untouched.pk])
        assert [event.lead_id for event in verified] == [lead.pk]


def test_a_typed_address_on_the_suppression_list_marks_the_lead_at_once(client_for, broker_a):
    from leads.suppressions.rules import SuppressionKind, SuppressionReason
    from leads.suppressions.services import suppression_add

    lead = LeadFactory(assigned_broker=broker_a, email="partner@example.com")
    with service_context():
        suppression_add(
            kind=SuppressionKind.EMAIL, value="gone@example.com", reason=SuppressionReason.UNSUBSCRIBE, source="test"
        )
    client_for(broker_a).post(
        reverse("portal:lead_contact_edit", kwargs={"lead_id": lead.pk}), {"email": "gone@example.com"}
    )
    with service_context():
        assert Lead.objects.get(pk=lead.pk).suppressed_channels == {"email": ["unsubscribe"]}
