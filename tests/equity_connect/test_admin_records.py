"""Admin hygiene: a record that is an audit trail or a log (events, uploads, webhook deliveries, consent audit, access
records, the feeder's ledger, replay guards, DNC imports, heartbeats, alerts) is view-only in the admin, even for an
admin: no add, no change (no Save on its page, a POST is refused), no delete, no "Delete selected". Keys and alerts
offer no "Delete selected" either; the lists named in the ops console have a date hierarchy."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from equity_connect.models import PipelineEvent
from leads.models import LeadAccessRecord, LeadConsentAudit
from pipeline.models import Alert, FeederRun, IngestReplayGuard, JobHeartbeat, PipelineDLQ, Upload, WebhookDelivery
from security.models import PartnerKey
from tests.factories import (
    AlertFactory,
    FeederRunFactory,
    IngestReplayGuardFactory,
    JobHeartbeatFactory,
    LeadAccessRecordFactory,
    LeadConsentAuditFactory,
    PartnerKeyFactory,
    PipelineEventFactory,
    RoleUserFactory,
    UploadFactory,
    WebhookDeliveryFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]

RECORDS = [
    (PipelineEvent, PipelineEventFactory),
    (Upload, UploadFactory),
    (WebhookDelivery, WebhookDeliveryFactory),
    (LeadConsentAudit, LeadConsentAuditFactory),
    (LeadAccessRecord, LeadAccessRecordFactory),
    (FeederRun, FeederRunFactory),
    (IngestReplayGuard, IngestReplayGuardFactory),
    (JobHeartbeat, JobHeartbeatFactory),
    (Alert, AlertFactory),
]


def urls(model, pk=None) -> dict[str, str]:
    info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    found = {"changelist": reverse(f"{info}_changelist"), "add": reverse(f"{info}_add")}
    if pk is not None:
        found["change"] = reverse(f"{info}_change", args=[pk])
        found["delete"] = reverse(f"{info}_delete", args=[pk])
    return found


@pytest.mark.parametrize(("model", "factory"), RECORDS, ids=[model.__name__ for model, _ in RECORDS])
def test_an_audit_record_is_view_only_even_for_an_admin(client, model, factory):
    client.force_login(RoleUserFactory(role="admin"))
    record = factory()
    model_admin = admin.site._registry[model]
    page = urls(model, record.pk)

    listing = client.get(page["changelist"])
    assert listing.status_code == 200
    body = listing.content.decode()
    assert 'value="delete_selected"' not in body and page["add"] not in body
    assert client.get(page["add"]).status_code == 403
    change = client.get(page["change"])
    assert change.status_code == 200
    body = change.content.decode()
    assert 'name="_save"' not in body and 'name="_continue"' not in body and page["delete"] not in body
    assert client.post(page["change"], {}).status_code == 403
    assert client.get(page["delete"]).status_code == 403
    assert client.post(page["delete"], {"post": "yes"}).status_code == 403
    request = change.wsgi_request
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, record)
    assert not model_admin.has_delete_permission(request, record)


def test_keys_and_the_dlq_offer_no_delete_selected(client):
    client.force_login(RoleUserFactory(role="admin"))
    key = PartnerKeyFactory()
    body = client.get(reverse("admin:security_partnerkey_changelist")).content.decode()
    assert 'value="delete_selected"' not in body and 'value="revoke_keys"' in body
    assert client.get(reverse("admin:security_partnerkey_delete", args=[key.pk])).status_code == 403
    assert PartnerKey in admin.site._registry
    body = client.get(reverse("admin:pipeline_pipelinedlq_changelist")).content.decode()
    assert 'value="delete_selected"' not in body


@pytest.mark.parametrize("model", [Upload, PipelineDLQ, Alert, PipelineEvent], ids=lambda model: model.__name__)
def test_the_ops_lists_have_a_date_hierarchy(client, model):
    assert admin.site._registry[model].date_hierarchy
    client.force_login(RoleUserFactory(role="admin"))
    assert client.get(urls(model)["changelist"]).status_code == 200
