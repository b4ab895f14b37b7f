"""axe-core on every portal page (the dashboard, the lead list, a lead's page, notifications, settings) and on the
login and consent pages, at desktop width and at 390 px: zero violations, no rule disabled but those listed with a
reason in tests/browser/axe.py. The keyboard's way in is checked too: the first Tab reaches the skip link, which
moves to the main landmark."""

from __future__ import annotations

import pytest

from equity_connect.db import service_context
from equity_connect.events import record_event
from leads.consent.services import consent_link_create
from leads.models import CampaignStatus
from tests.browser.axe import axe_violations
from tests.browser.test_timeline_browser import login
from tests.factories import BrokerFactory, LeadFactory, PipelineEventFactory  # noqa: F401


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1280, 390])
def test_axe_finds_no_violation_on_any_portal_page(live_server, browser, settings, width):
    settings.CONSENT_FORM_URL = live_server.url
    broker = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example")
    lead = LeadFactory(
        assigned_broker=broker, first_name="MARTHA", last_name="KELLER", contactable=True, phone="+14155550142"
    )
    LeadFactory(assigned_broker=broker, campaign_status=CampaignStatus.DO_NOT_CONTACT, do_not_contact_reason="asked")
    with service_context():
        record_event("email_replied", lead_id=lead.pk, broker_id=broker.pk, data={"reply_snippet": "call me"})
        consent_url = consent_link_create(lead=lead)

    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/accounts/login/")
    found = {"login": axe_violations(page, live_server)}
    login(page, live_server, broker)
    for name, path in (
        ("dashboard", "/portal/"),
        ("list", "/portal/leads/"),
        ("detail", f"/portal/leads/{lead.pk}/"),
        ("notifications", "/portal/notifications/"),
        ("settings", "/portal/settings/"),
    ):
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        found[name] = axe_violations(page, live_server)
    # The list with its panels open (the column chooser, the keyboard help) and the detail with its contact form.
    page.goto(f"{live_server.url}/portal/leads/")
    page.click("#column-chooser summary")
    page.click("#keyboard-help-button")
    found["list, opened"] = axe_violations(page, live_server)
    page.goto(f"{live_server.url}/portal/leads/{lead.pk}/")
    page.click("#contact-edit summary")
    found["detail, contact form"] = axe_violations(page, live_server)

    # The consent page, as the lead opens it (no session).
    lead_page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    lead_page.goto(consent_url)
    assert lead_page.locator("form button").count() >= 1  # the consent form itself, not an error page
    found["consent"] = axe_violations(lead_page, live_server)
    assert {name: issues for name, issues in found.items() if issues} == {}

    # axe really runs: an image without a text alternative, added to the page, is one violation.
    lead_page.evaluate("document.body.appendChild(document.createElement('img')).src = '/x.png'")
    assert [issue for issue in axe_violations(lead_page, live_server) if issue.startswith("image-alt")]


@pytest.mark.django_db(transaction=True)
def test_skip_link_landmarks_and_visible_focus(live_server, browser):
    broker = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example")
    LeadFactory(assigned_broker=broker)
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    login(page, live_server, broker)
    page.goto(f"{live_server.url}/portal/leads/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.evaluate("getComputedStyle(document.activeElement).top") != "-48px"  # visible when focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.locator("header").count() == 1 and page.locator("main").count() == 1
    assert page.locator("nav[aria-label=Main]").count() == 1
    page.keyboard.press("Tab")  # the first control inside main shows a focus ring
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), outline
