"""Ops see leads' personal data masked in the admin (lists, change pages, exports) and reveal it against a reason,
which becomes an access record; admins and superusers see everything. Through the real middleware (test client)."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from equity_connect.db import service_context
from leads.masking import mask_email, mask_phone, mask_text
from leads.models import Lead, LeadAccessRecord
from tests.factories import (
    LeadConsentAuditFactory,
    LeadFactory,
    RoleUserFactory,
    StaffUserFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]

EMAIL, PHONE = "jane.doe@example.net", "+14155550123"
SECRETS = ("jane.doe@example.net", "4155550123", "jane.doe")


@pytest.fixture
def lead(db):
    return LeadFactory(first_name="Jane", last_name="Doe", email=EMAIL, phone=PHONE)


@pytest.fixture
def ops(client):
    user = RoleUserFactory(role="ops")
    client.force_login(user)
    return user


def records(**filters) -> list[LeadAccessRecord]:
    with service_context():
        return list(LeadAccessRecord.objects.filter(**filters).order_by("id"))


def leaked(body: str) -> list[str]:
    return [secret for secret in SECRETS if secret in body]


def test_the_masks():
    assert mask_email(EMAIL) == "j•••@e•••.net"
    assert mask_phone(PHONE) == "•••23"
    assert mask_text("Instantly sent 'reply' for jane.doe@example.net (+1 415 555 0123)") == (
        "Instantly sent 'reply' for j•••@e•••.net (•••23)"
    )


def _export(client) -> list[dict]:
    url = reverse("admin:leads_lead_export")
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["form"]
    csv_choice = next(value for value, label in form.fields["format"].choices if str(label).lower() == "csv")
    data = {"format": csv_choice, "resource": "0"}
    data.update({name: "on" for name, field in form.fields.items() if field.initial is True})
    response = client.post(f"{url}?campaign_status__exact=new", data)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_ops_see_a_leads_email_and_phone_masked_on_its_page_and_in_the_export(client, ops, lead):
    page = client.get(reverse("admin:leads_lead_change", args=[lead.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and leaked(body) == []
    assert "j•••@e•••.net" in body and "•••23" in body
    assert reverse("admin:leads_lead_reveal", args=[lead.pk]) in body
    [row] = [row for row in _export(client) if row["id"] == str(lead.pk)]
    assert (row["email"], row["phone"]) == ("j•••@e•••.net", "•••23")
    assert row["first_name"] == "Jane"  # names are not masked
    export = records(action="export")[-1]
    assert export.via == "admin.lead_export" and export.row_count >= 1 and export.lead_id is None
    assert export.filters == {"campaign_status__exact": "new"} and export.detail == {"masked": ["email", "phone"]}


@pytest.mark.parametrize("who", ["admin role", "superuser"])
def test_admins_and_superusers_see_everything(client, lead, who):
    client.force_login(RoleUserFactory(role="admin") if who == "admin role" else StaffUserFactory())
    body = client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()
    assert EMAIL in body and PHONE in body
    [row] = [row for row in _export(client) if row["id"] == str(lead.pk)]
    assert (row["email"], row["phone"]) == (EMAIL, PHONE)


def test_an_ops_change_never_touches_the_masked_fields(client, ops, lead):
    url = reverse("admin:leads_lead_change", args=[lead.pk])
    data = {"campaign_status": "paused", "call_attempt_count": "2", "email": "attacker@evil.example", "phone": "1"}
    data.update({"melissa_payload": "{}", "lead_score": "50"})
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    with service_context():
        saved = Lead.objects.get(pk=lead.pk)
    assert (saved.campaign_status, saved.call_attempt_count, saved.email, saved.phone) == ("paused", 2, EMAIL, PHONE)
    change = records(action="change")[-1]
    assert change.lead_id == lead.pk and change.user_id == ops.pk
    assert "email" not in change.detail["fields"] and "campaign_status" in change.detail["fields"]


def test_reveal_asks_for_a_reason_records_it_and_shows_the_values_once(client, ops, lead):
    url = reverse("admin:leads_lead_reveal", args=[lead.pk])
    assert leaked(client.get(url).content.decode()) == []
    refused = client.post(url, {"reason": "short"})
    assert refused.status_code == 200 and leaked(refused.content.decode()) == [] and records(action="reveal") == []
    shown = client.post(url, {"reason": "The lead called: confirming the address they gave"}, HTTP_USER_AGENT="ua/1")
    body = shown.content.decode()
    assert shown.status_code == 200 and EMAIL in body and PHONE in body
    [reveal] = records(action="reveal")
    assert (reveal.lead_id, reveal.user_id, reveal.via) == (lead.pk, ops.pk, "admin.lead")
    assert reveal.reason == "The lead called: confirming the address they gave" and reveal.user_agent == "ua/1"
    # Nothing is kept: the lead's page is masked again.
    assert leaked(client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()) == []


def test_the_lead_page_links_its_access_history_and_each_record_links_its_users(client, ops, lead):
    page = client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()
    history = f"{reverse('admin:leads_leadaccessrecord_changelist')}?lead_id={lead.pk}"
    assert history in page
    listing = client.get(history)
    assert listing.status_code == 200
    [view] = records(lead_id=lead.pk)  # opening the lead's page was itself a view
    assert (view.action, view.user_id) == ("view", ops.pk)
    assert f"?user_id={ops.pk}" in listing.content.decode()
    assert client.get(f"{reverse('admin:leads_leadaccessrecord_changelist')}?user_id={ops.pk}").status_code == 200
    change = reverse("admin:leads_leadaccessrecord_change", args=[view.pk])
    assert client.post(change, {"reason": "x"}).status_code == 403
    assert client.get(reverse("admin:leads_leadaccessrecord_delete", args=[view.pk])).status_code == 403


def test_ops_see_a_consent_records_address_and_browser_masked(client, ops):
    audit = LeadConsentAuditFactory(ip_address="198.51.100.23", user_agent="Firefox/123 (the lead's)")
    body = client.get(reverse("admin:leads_leadconsentaudit_change", args=[audit.pk])).content.decode()
    assert "198.51.100.23" not in body and "Firefox/123" not in body
    listing = client.get(reverse("admin:leads_leadconsentaudit_changelist")).content.decode()
    assert "198.51.100.23" not in listing
    shown = client.post(
        reverse("admin:leads_leadconsentaudit_reveal", args=[audit.pk]), {"reason": "A dispute about this consent"}
    )
    assert "198.51.100.23" in shown.content.decode()
    assert [record.lead_id for record in records(action="reveal")] == [audit.lead_id]


def test_each_masked_field_shows_once_on_the_page(client, ops, lead):
    body = client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()
    assert body.count("j•••@e•••.net") == 1 and body.count('id="pii-reveal"') == 1
