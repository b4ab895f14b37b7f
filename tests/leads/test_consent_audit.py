"""Consent records are evidence: nobody but the table's owner changes or deletes them (a trigger), the admin
only shows them, and they outlive their lead (no cascade, no foreign key), keeping the lead's id."""

from __future__ import annotations

import urllib.parse

import psycopg
import pytest
from django.test import Client
from django.urls import reverse

from equity_connect.db import service_context
from leads.consent.services import consent_link_create
from leads.consent.texts import CURRENT_VERSION
from leads.models import Lead, LeadConsentAudit
from tests.factories import LeadConsentAuditFactory, LeadFactory, StaffUserFactory
from tests.pg import connect

YES = {"choice": "consent", "channels": ["email"], "text_version": CURRENT_VERSION}


def _consent_through_the_page(lead) -> LeadConsentAudit:
    with service_context():
        url = consent_link_create(lead=lead, broker=lead.assigned_broker_id)
    parts = urllib.parse.urlsplit(url)
    assert Client().post(f"{parts.path}?{parts.query}", YES).status_code == 200
    with service_context():
        return LeadConsentAudit.objects.get(lead_id=lead.pk)


@pytest.mark.django_db(transaction=True)
def test_only_the_table_owner_may_change_or_delete_a_consent_record():
    audit = LeadConsentAuditFactory(user_agent="as recorded")
    for statement in (
        "UPDATE lead_consent_audit SET user_agent = 'rewritten' WHERE id = %s",
        "UPDATE lead_consent_audit SET lead_id = gen_random_uuid() WHERE id = %s",
        "DELETE FROM lead_consent_audit WHERE id = %s",
    ):
        with connect() as app:
            app.execute("SET ROLE service_role")  # staff and jobs: the role that may write every table
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                app.execute(statement, [audit.pk])
    with connect() as app:
        app.execute("SET ROLE service_role")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("TRUNCATE lead_consent_audit")
    with service_context():
        assert LeadConsentAudit.objects.get(pk=audit.pk).user_agent == "as recorded"
    with connect(admin=True) as owner:  # the owner may (a data-protection erase, say)
        owner.execute("UPDATE lead_consent_audit SET user_agent = 'redacted' WHERE id = %s", [audit.pk])
        owner.execute("DELETE FROM lead_consent_audit WHERE id = %s", [audit.pk])
    with service_context():
        assert not LeadConsentAudit.objects.filter(pk=audit.pk).exists()


@pytest.mark.django_db
def test_consent_records_survive_the_deletion_of_their_lead(client):
    lead = LeadFactory()
    audit = _consent_through_the_page(lead)
    client.force_login(StaffUserFactory())
    response = client.post(reverse("admin:leads_lead_delete", args=[lead.pk]), {"post": "yes"})
    assert response.status_code == 302
    with service_context():
        assert not Lead.objects.filter(pk=lead.pk).exists()
        kept = LeadConsentAudit.objects.get(pk=audit.pk)
    assert kept.lead_id == lead.pk and kept.consent and kept.channels == ["email"]
    page = client.get(reverse("admin:leads_leadconsentaudit_changelist")).content.decode()
    assert f"{lead.pk} (deleted)" in page
    assert client.get(reverse("admin:leads_leadconsentaudit_change", args=[audit.pk])).status_code == 200


@pytest.mark.django_db
def test_the_admin_shows_consent_records_and_changes_none(client):
    audit = _consent_through_the_page(LeadFactory())
    client.force_login(StaffUserFactory())
    change = reverse("admin:leads_leadconsentaudit_change", args=[audit.pk])
    page = client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert audit.consent_text in page.content.decode().replace("&#x27;", "'")
    assert client.post(change, {"user_agent": "rewritten", "consent": "on"}).status_code == 403
    delete = reverse("admin:leads_leadconsentaudit_delete", args=[audit.pk])
    assert client.get(delete).status_code == 403 and client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:leads_leadconsentaudit_add")).status_code == 403
    changelist = reverse("admin:leads_leadconsentaudit_changelist")
    assert "delete_selected" not in client.get(changelist).content.decode()
    bulk = client.post(changelist, {"action": "delete_selected", "_selected_action": [audit.pk], "post": "yes"})
    assert bulk.status_code in (200, 302)
    with service_context():
        assert LeadConsentAudit.objects.get(pk=audit.pk).user_agent == audit.user_agent
