"""The ops dashboard and alerts in Debian's Chromium: each card leads to the admin list filtered to exactly what it
counted; an alert is acknowledged (who, when, note) from its page, and however often the rules are evaluated from
the admin the incident is notified once (a real webhook receiver records every call). Screenshots go to
var/artifacts/."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from equity_connect.db import service_context
from pipeline.models import Alert
from pipeline.monitoring.alerts import alerts_evaluate
from tests.browser.support import ARTIFACTS, admin_log_in, result_rows
from tests.factories import (
    LeadFactory,
    PipelineDLQFactory,
    PipelineEventFactory,
    StaffUserFactory,
    UploadFactory,
)
from tests.fakes.receiver import WebhookReceiver

pytestmark = pytest.mark.django_db(transaction=True)


def test_dashboard_cards_land_on_the_filtered_list_behind_their_number(live_server, browser, running_system):
    staff = StaffUserFactory(email="ops-dashboard@equityconnect.example")
    UploadFactory.create_batch(3, status="done", rows_total=40, leads_created=30)
    old = UploadFactory(status="done", rows_total=5)  # outside the range: not counted, not listed
    with service_context():
        type(old).objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=40))
    LeadFactory.create_batch(5, email_verified=True)
    LeadFactory.create_batch(2, email_verified=False)
    for _ in range(4):
        PipelineDLQFactory(upload=None)
    PipelineDLQFactory(upload=None, status="resolved")
    for lead in LeadFactory.create_batch(2):
        PipelineEventFactory(event_type="campaign_added", lead_id=lead.pk, broker_id=lead.assigned_broker_id)

    context, page, errors = admin_log_in(browser, live_server, staff)
    page.goto(f"{live_server.url}/admin/dashboard/?days=30")
    page.screenshot(path=str(ARTIFACTS / "ops-dashboard-svg.png"), full_page=True)
    expected = {
        "card-uploads": ("/admin/pipeline/upload/", 3),
        "card-new-leads": ("/admin/leads/lead/", 9),
        "card-email-verification": ("/admin/leads/lead/", 5),
        "card-dlq-depth": ("/admin/pipeline/pipelinedlq/", 4),
        "card-fed": ("/admin/equity_connect/pipelineevent/", 2),
    }
    for card_id, (path, count) in expected.items():
        page.goto(f"{live_server.url}/admin/dashboard/?days=30")
        shown = page.inner_text(f"#{card_id} .ec-value").strip()
        page.click(f"#{card_id}")
        page.wait_for_url(f"**{path}?*")
        assert result_rows(page) == count, (card_id, page.url)
        if card_id not in ("card-email-verification",):
            assert shown == str(count), (card_id, shown)
        page.screenshot(path=str(ARTIFACTS / f"ops-dashboard-{card_id}.png"), full_page=True)

    # The date range: a range without uploads shows none, and so does the list its card leads to.
    page.goto(f"{live_server.url}/admin/dashboard/")
    page.fill("#range-from", "2026-01-05")
    page.fill("#range-to", "2026-01-09")
    page.click("#range-form input[type=submit]")
    page.wait_for_url("**from=2026-01-05*")
    assert page.inner_text("#card-uploads .ec-value").strip() == "0"
    page.click("#card-uploads")
    page.wait_for_url("**/admin/pipeline/upload/?*")
    assert result_rows(page) == 0
    assert errors == [], errors
    context.close()


def test_acknowledge_an_alert_and_one_notification_per_incident(live_server, browser, running_system, settings):
    staff = StaffUserFactory(email="oncall@equityconnect.example")
    settings.ALERT_DLQ_DEPTH = 3
    settings.ALERT_EMAILS = []
    with WebhookReceiver() as receiver:
        settings.ALERT_WEBHOOK_URL = receiver.url + "/hooks/alerts"
        for _ in range(5):
            PipelineDLQFactory(upload=None)
        assert alerts_evaluate()["fired"] == ["dlq_depth"]
        with service_context():
            alert = Alert.objects.get(rule="dlq_depth")

        context, page, errors = admin_log_in(browser, live_server, staff)
        page.goto(f"{live_server.url}/admin/dashboard/")
        page.click("#alerts a:has-text('dlq_depth')")
        page.wait_for_url(f"**/admin/pipeline/alert/{alert.pk}/change/")
        page.fill("#id_ack_note", "draining the DLQ, bad batch from one partner")
        page.click("#alert-acknowledge-button")
        page.wait_for_selector("ul.messagelist li")
        assert "acknowledged" in page.inner_text("ul.messagelist")
        shown = page.inner_text("#alert-acknowledged")
        assert "oncall@equityconnect.example" in shown and "draining the DLQ" in shown
        page.screenshot(path=str(ARTIFACTS / "ops-alert-acknowledged.png"), full_page=True)
        with service_context():
            alert.refresh_from_db()
        assert alert.acknowledged_by_id == staff.pk and alert.acknowledge_note.startswith("draining")

        # "Evaluate alert rules now", three times, while it still holds: no second notification.
        for _ in range(3):
            page.goto(f"{live_server.url}/admin/pipeline/alert/")
            page.click("button:has-text('Evaluate alert rules now')")
            page.wait_for_selector("ul.messagelist li")
            assert "firing ['dlq_depth']" in page.inner_text("ul.messagelist")
        receiver.wait_answered()
        assert [request["body"]["change"] for request in receiver.requests] == ["fired"]

        # The dashboard shows who acknowledged it.
        page.goto(f"{live_server.url}/admin/dashboard/")
        assert "oncall@equityconnect.example" in page.inner_text("#alerts")
        assert errors == [], errors
        context.close()
