"""Ops end to end in Debian's Chromium (Playwright, headless; never downloads a browser): a staff member logs
into the admin, opens the dashboard (the charts render with data), fixes and reprocesses a DLQ row, then
creates a partner key (its secret shown once) and revokes it. Screenshots go to var/artifacts/."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from equity_connect.db import service_context
from leads.models import Lead
from pipeline.models import PipelineDLQ
from security.models import PartnerKey
from tests.browser.support import ARTIFACTS, admin_log_in
from tests.factories import (
    LeadFactory,
    PartnerFactory,
    PipelineDLQFactory,
    PipelineEventFactory,
    StaffUserFactory,
    UploadFactory,
)

BROKEN_ROW = {
    "first_name": "Grace",
    "last_name": "Hopper",
    "email": "grace@example.org",
    "phone": "",
    "property_address": "",
    "property_city": "San Diego",
    "property_state": "CA",
    "property_zip": "92101",
}


def _dataset():
    staff = StaffUserFactory(email="ops@equityconnect.example")
    upload = UploadFactory(
        status="done",
        rows_total=40,
        leads_created=30,
        leads_merged=6,
        duplicates_in_file=3,
        rows_rejected=1,
        source="propstream-batch",
    )
    UploadFactory(status="done", rows_total=12, leads_created=12)
    leads = LeadFactory.create_batch(6, email_verified=True, campaign_status="active")
    LeadFactory.create_batch(3, campaign_status="queued", phone_verified=True)
    LeadFactory(campaign_status="replied", email_verified=True)
    for lead in leads:
        PipelineEventFactory(event_type="campaign_added", lead_id=lead.pk, broker_id=lead.assigned_broker_id)
    PipelineEventFactory(event_type="email_replied", lead_id=leads[0].pk, broker_id=leads[0].assigned_broker_id)
    item = PipelineDLQFactory(
        upload=upload,
        line_number=17,
        payload=dict(BROKEN_ROW),
        reason="no dedupe key: the row has no MAK, no APN and no address",
    )
    PipelineDLQFactory(upload=None, source="webhook", reason="unknown lead for reply_received")
    partner = PartnerFactory(name="PropStream Exports")
    return staff, item, partner


@pytest.mark.django_db(transaction=True)
def test_ops_dashboard_dlq_reprocess_and_partner_keys(live_server, browser):
    staff, item, partner = _dataset()

    context, page, errors = admin_log_in(browser, live_server, staff, width=1366, height=950)
    page.screenshot(path=str(ARTIFACTS / "ops-admin-index.png"), full_page=True)

    # The dashboard: its charts are SVG drawn on the server, each bar with its number.
    page.click("#ops-dashboard-link >> text=Pipeline dashboard")
    page.wait_for_url("**/admin/dashboard/")
    for chart in (
        "chart-daily-uploads",
        "chart-daily-leads",
        "chart-funnel",
        "chart-campaign-status",
        "chart-verification",
    ):
        drawn = page.evaluate(
            """(id) => {
                const svg = document.getElementById(id);
                const box = svg.getBoundingClientRect();
                const bars = [...svg.querySelectorAll('.ec-bar')]
                    .filter((bar) => bar.getBBox().width * bar.getBBox().height > 0);
                return {bars: bars.length, values: svg.querySelectorAll('.ec-bar-value').length, width: box.width};
            }""",
            chart,
        )
        assert drawn["bars"] > 0 and drawn["values"] >= drawn["bars"] and drawn["width"] > 100, (chart, drawn)
    assert page.inner_text("#card-dlq-depth .ec-value").strip() == "2"
    page.screenshot(path=str(ARTIFACTS / "ops-dashboard.png"), full_page=True)

    # DLQ triage: open the row, fix the address and phone in its form, save and reprocess.
    page.goto(f"{live_server.url}/admin/pipeline/pipelinedlq/")
    page.click(f"#result_list a[href*='/pipelinedlq/{item.pk}/change/'] >> nth=0")
    page.wait_for_selector("#dlq-row-form")
    assert "Grace" in page.inner_text("#dlq-raw")
    page.fill("tr.field-property_address input", "1906 Compiler Court")
    page.fill("tr.field-phone input", "619-555-0177")
    page.screenshot(path=str(ARTIFACTS / "ops-dlq-edit.png"), full_page=True)
    page.click("#reprocess-button")
    page.wait_for_selector("ul.messagelist li")
    message = page.inner_text("ul.messagelist")
    page.screenshot(path=str(ARTIFACTS / "ops-dlq-reprocessed.png"), full_page=True)
    assert "reprocessed (lead" in message, message
    with service_context():
        item = PipelineDLQ.objects.get(pk=item.pk)
        assert item.status == "resolved" and item.resolved_by_id == staff.pk
        assert Lead.objects.get(pk=item.lead_id).property_address

    # Partner keys: create one (the secret is shown once), then revoke it.
    page.goto(f"{live_server.url}/admin/security/partnerkey/add/")
    page.select_option("select[name=partner]", str(partner.pk))
    page.fill("input[name=label]", "browser test key")
    page.click("input[name=_save]")
    page.wait_for_selector("#new-secrets")
    created = page.inner_text("#content-main")
    assert "shown only now" in created, created
    with service_context():
        key = PartnerKey.objects.get(partner=partner, label="browser test key")
    assert key.status == "active" and key.key_id in created
    page.screenshot(path=str(ARTIFACTS / "ops-partner-key-created.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/security/partnerkey/")
    page.check(f"input[name=_selected_action][value='{key.pk}']")
    page.select_option("select[name=action]", "revoke_keys")
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist li")
    assert "Revoked 1 key" in page.inner_text("ul.messagelist")
    page.screenshot(path=str(ARTIFACTS / "ops-partner-key-revoked.png"), full_page=True)
    with service_context():
        key.refresh_from_db()
    assert key.status == "revoked" and key.revoked_at is not None
    assert key.revoked_at <= timezone.now() + dt.timedelta(seconds=5)

    assert errors == [], errors
    context.close()
