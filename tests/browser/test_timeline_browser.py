"""The lead's timeline shows every detail that was saved, written through the real screens and the webhook, read
back in Chromium: an outcome's note, an appointment's time, a do-not-contact reason, a reply's snippet."""

from __future__ import annotations

import json

import pytest
import requests

from leads.models import CampaignStatus
from tests.browser.support import ARTIFACTS
from tests.factories import BrokerFactory, LeadFactory

SECRET = "test-webhook-secret-0123456789abcdef"  # settings/test.py


def login(page, live_server, broker):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", broker.user.email)
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("#login-submit")
    page.wait_for_url("**/portal/")


@pytest.mark.django_db(transaction=True)
def test_every_saved_detail_is_on_the_timeline(live_server, browser):
    broker = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example", time_zone="America/New_York")
    lead = LeadFactory(
        assigned_broker=broker,
        first_name="Martha",
        last_name="Keller",
        email="martha.keller@example.net",
        campaign_status=CampaignStatus.ACTIVE,
    )
    # The lead replies through Instantly (the webhook, over HTTP).
    answer = requests.post(
        f"{live_server.url}/api/v1/webhooks/instantly",
        data=json.dumps(
            {
                "timestamp": "2026-01-06T17:04:05Z",
                "event_type": "reply_received",
                "lead_email": "martha.keller@example.net",
                "ec_lead_id": str(lead.pk),
                "campaign_id": "c-1",
                "step": 2,
                "reply_subject": "Re: your home",
                "reply_text_snippet": "Yes, please call me after lunch",
            }
        ),
        headers={"Content-Type": "application/json", "X-Webhook-Secret": SECRET},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    login(page, live_server, broker)
    page.goto(f"{live_server.url}/portal/leads/{lead.pk}/")

    page.select_option("select[name=outcome]", "callback")
    page.fill("textarea[name=note]", "Wants a call back on Tuesday")
    page.click("#record-outcome")
    page.wait_for_selector("text=Outcome recorded.")

    page.select_option("select[name=outcome]", "appointment")
    page.fill("input[name=appointment_at]", "2026-03-10T14:30")
    page.fill("textarea[name=note]", "Bring the deed")
    page.click("#record-outcome")
    page.wait_for_selector("text=Outcome recorded.")

    page.fill("textarea[name=reason]", "Asked by the daughter, who holds power of attorney")
    page.click("#mark-do-not-contact")
    page.wait_for_selector("text=Marked do-not-contact.")

    timeline = page.inner_text("#timeline")
    page.screenshot(path=str(ARTIFACTS / "portal-timeline.png"), full_page=True)
    assert "Yes, please call me after lunch" in timeline
    assert "Re: your home" in timeline
    assert "Asked for a call back" in timeline and "Wants a call back on Tuesday" in timeline
    # The appointment as the broker typed it, in their own time zone (America/New_York), not ISO in UTC.
    assert "Mar 10, 2026, 2:30 PM" in timeline and "Bring the deed" in timeline
    assert "Asked by the daughter, who holds power of attorney" in timeline
    assert "T14:30" not in timeline and "+00:00" not in timeline
    assert errors == []
    context.close()
