"""End to end in Debian's Chromium (Playwright, headless; never downloads a browser): a broker logs in,
filters leads, opens one, has a consent link e-mailed to the lead (never shown to the broker); the link from
the e-mail, opened in a fresh browser context, records consent for the channels the lead ticks; the broker's
lead page then shows it. Screenshots go to var/artifacts/."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from equity_connect.db import service_context
from leads.models import CampaignStatus, Lead
from tests.browser.support import ARTIFACTS, wait_in_page
from tests.factories import BrokerFactory, LeadFactory


@pytest.mark.django_db(transaction=True)
def test_broker_creates_a_consent_link_and_the_lead_consents(live_server, settings, browser):
    settings.CONSENT_FORM_URL = live_server.url
    broker = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example")
    lead = LeadFactory(
        assigned_broker=broker,
        first_name="Martha",
        last_name="Keller",
        lead_score=82,
        email_verified=True,
        phone_verified=True,
        campaign_status=CampaignStatus.NEW,
        score_breakdown={"property": 32, "demographics": 25, "enrichment": 18, "behavioral": 7},
    )
    LeadFactory.create_batch(4, assigned_broker=broker)
    LeadFactory(assigned_broker=broker, last_name="Kellerman", campaign_status=CampaignStatus.QUEUED)
    LeadFactory(last_name="Keller")  # another broker's Keller: never shown

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", broker.user.email)
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("#login-submit")
    page.wait_for_url("**/portal/")
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    wait_in_page(page, "window.Chart && Chart.getChart(document.getElementById('chart-funnel'))")
    page.screenshot(path=str(ARTIFACTS / "portal-dashboard.png"), full_page=True)

    page.goto(f"{live_server.url}/portal/leads/")
    page.fill("input[name=q]", "keller")
    page.check("input[name=status][value=new]")  # a status chip applies the filters at once
    page.wait_for_url("**q=keller**")
    rows = page.locator("table.leads tbody tr")
    assert rows.count() == 1 and "Martha Keller" in rows.first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "portal-lead-list.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: one card per lead, no sideways scroll
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "portal-lead-list-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.click("a.lead-link")
    page.wait_for_url(f"**/portal/leads/{lead.pk}/?**")  # with the list view it came from
    assert "Not given" in page.inner_text("#consent-state")
    page.click("#send-consent-link")
    page.wait_for_selector("text=A consent link was e-mailed to the lead")
    assert "/consent?token=" not in page.content()
    page.screenshot(path=str(ARTIFACTS / "portal-lead-detail.png"), full_page=True)
    # The cluster's part: the task queued on commit makes the link and mails it to the lead.
    (task,) = [q.task for q in OrmQ.objects.all() if q.task["func"] == "leads.tasks.consent_link_deliver_task"]
    assert import_string(task["func"])(*task["args"]) == "sent"
    (message,) = mail.outbox
    assert message.to == [lead.email]
    link = re.search(r"http://\S+/consent\?token=\S+", message.body).group(0)
    assert link.startswith(f"{live_server.url}/consent?token=")
    assert "Martha" not in link and "Keller" not in link and "@" not in link

    # The lead opens the link on a phone, in a browser that has never seen the portal.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    consent_page = phone.new_page()
    consent_page.goto(link)
    assert "Martha Keller" in consent_page.inner_text("#lead-details")
    smallest_text_px = consent_page.evaluate(
        "Math.min(...[...document.querySelectorAll('body *')].filter(e => e.childElementCount === 0"
        " && e.textContent.trim()).map(e => parseFloat(getComputedStyle(e).fontSize)))"
    )
    assert smallest_text_px >= 18  # senior-friendly: every piece of text is 18px or more
    button_px = consent_page.evaluate("document.querySelector('#give-consent').getBoundingClientRect().height")
    assert button_px >= 48
    consent_page.check("#channel-email")
    consent_page.check("#channel-phone")
    consent_page.screenshot(path=str(ARTIFACTS / "consent-page.png"), full_page=True)
    consent_page.click("#give-consent")
    consent_page.wait_for_selector("#consent-result")
    assert "Thank you" in consent_page.inner_text("#consent-result")
    consent_page.goto(link)  # the link works once
    assert "already been used" in consent_page.inner_text("#problem")
    phone.close()

    page.reload()
    assert "Given" in page.inner_text("#consent-state")
    assert "Consent given" in page.inner_text("#timeline")
    assert "Consent" in page.inner_text("#consent table")  # the audit history
    page.screenshot(path=str(ARTIFACTS / "portal-lead-detail-after-consent.png"), full_page=True)
    with service_context():
        fresh = Lead.objects.get(pk=lead.pk)
    assert fresh.consent and fresh.consent_method == "form"
    assert (fresh.consent_email, fresh.consent_sms, fresh.consent_phone) == (True, False, True)
    assert errors == []
    context.close()
