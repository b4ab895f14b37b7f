"""The portal's tools in Chromium: keyboard navigation of the list (j/k, Enter, x, ?), the column chooser kept per
broker on the server, the contact edit with its history on the timeline (and no consent link to a typed address),
the notification e-mail after a lead consents on the real page (badge, list, e-mail content), and the 390 px
layout: cards instead of a table, no sideways scroll, every action on screen."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from equity_connect.db import service_context
from leads.consent.services import consent_link_create
from leads.models import BrokerPortalSettings, CampaignStatus, Lead
from leads.notifications import notifications_mail
from tests.browser.support import ARTIFACTS
from tests.browser.test_timeline_browser import login
from tests.factories import BrokerFactory, LeadFactory


def _page(browser, width=1280, height=900):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def _current_name(page) -> str:
    return page.inner_text("table.leads tbody tr.kbd-current a.lead-link")


@pytest.mark.django_db(transaction=True)
def test_keyboard_moves_opens_selects_and_shows_help(live_server, browser):
    broker = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example")
    for name in ("Adams", "Baker", "Clark"):
        LeadFactory(assigned_broker=broker, first_name="Pat", last_name=name)
    page, errors = _page(browser)
    login(page, live_server, broker)
    page.goto(f"{live_server.url}/portal/leads/?sort=name")

    page.keyboard.press("?")
    assert page.is_visible("#keyboard-help") and "select or unselect" in page.inner_text("#keyboard-help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#keyboard-help")

    page.locator("body").click(position={"x": 5, "y": 5})  # nothing focused: the keys go to the list
    page.keyboard.press("j")
    assert _current_name(page) == "Pat Adams"
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("j")  # stops at the last row
    assert _current_name(page) == "Pat Clark"
    page.keyboard.press("k")
    assert _current_name(page) == "Pat Baker"
    assert page.evaluate("document.activeElement.textContent") == "Pat Baker"  # focus follows

    page.keyboard.press("x")
    assert page.get_attribute("tr.kbd-current", "aria-selected") == "true"
    page.keyboard.press("x")
    assert page.get_attribute("tr.kbd-current", "aria-selected") == "false"

    page.fill("input[name=q]", "jk")  # typing in a field is typing, not navigation
    assert _current_name(page) == "Pat Baker"

    page.locator("tr.kbd-current a.lead-link").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/portal/leads/*/?**")
    assert "Pat Baker" in page.inner_text("h1")
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_column_chooser_is_remembered_per_broker(live_server, browser):
    dana = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example")
    eli = BrokerFactory(name="Eli Moss", email="eli@brokers.example")
    LeadFactory(assigned_broker=dana, lead_score=77)
    LeadFactory(assigned_broker=eli)
    page, errors = _page(browser)
    login(page, live_server, dana)
    page.goto(f"{live_server.url}/portal/leads/?sort=score")
    assert page.locator("th[data-col]").count() == 6
    page.click("#column-chooser summary")
    for column in ("property", "contact", "consent", "created"):
        page.uncheck(f"#columns-form input[value={column}]")
    page.click("#save-columns")
    page.wait_for_url("**/portal/leads/?sort=score")  # back to the same view
    headers = page.locator("table.leads thead th:not(.select)").all_inner_texts()  # the selection box aside
    assert [header.split(" ")[0].strip("↕▲▼ ") for header in headers] == ["Name", "Score", "Status"]
    assert page.locator("table.leads tbody td[data-col=score]").inner_text() == "77"

    # Kept on the server: a new browser (a new session) shows the same columns; the other broker keeps theirs.
    page2, _ = _page(browser)
    login(page2, live_server, dana)
    page2.goto(f"{live_server.url}/portal/leads/")
    assert page2.locator("th[data-col]").count() == 2
    with service_context():
        assert BrokerPortalSettings.objects.get(broker_id=dana.pk).list_columns == ["score", "status"]
        assert not BrokerPortalSettings.objects.filter(broker_id=eli.pk).exists()
    page3, _ = _page(browser)
    login(page3, live_server, eli)
    page3.goto(f"{live_server.url}/portal/leads/")
    assert page3.locator("th[data-col]").count() == 6
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_contact_edit_keeps_the_old_values_on_the_timeline(live_server, browser):
    broker = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example")
    lead = LeadFactory(
        assigned_broker=broker,
        first_name="Martha",
        last_name="Keller",
        email="martha@partner.example",
        phone="+14155550142",
        contactable=True,
    )
    page, errors = _page(browser)
    login(page, live_server, broker)
    page.goto(f"{live_server.url}/portal/leads/{lead.pk}/")
    page.click("#contact-edit summary")
    page.fill("#id_email", "martha.new@broker.example")
    page.fill("#id_phone", "(415) 555-0199")
    page.fill("#id_mailing_address", "9 ELM ST")
    page.fill("#id_mailing_state", "or")
    page.click("#save-contact")
    page.wait_for_selector("text=Contact details saved")
    assert "martha.new@broker.example" in page.inner_text("#mailto-lead")
    assert page.inner_text("#tel-lead") == "(415) 555-0199"
    timeline = page.inner_text("#timeline")
    assert "Contact details changed" in timeline
    assert "E-mail: martha@partner.example → martha.new@broker.example" in timeline
    assert "Phone: +14155550142 → +14155550199" in timeline
    assert "Mailing state: (none) → OR" in timeline
    assert page.is_visible("#unconfirmed-contact")

    # No consent link to the typed address.
    page.click("#send-consent-link")
    page.wait_for_selector(".message.error")
    assert "not confirmed yet" in page.inner_text(".message.error")

    # A bad value: the form says so, and nothing changes.
    page.click("#contact-edit summary")
    page.fill("#id_phone", "12")
    page.click("#save-contact")
    assert "Enter a valid phone number" in page.inner_text("#contact-edit")
    with service_context():
        fresh = Lead.objects.get(pk=lead.pk)
    assert fresh.email == "martha.new@broker.example" and fresh.email_unconfirmed
    page.screenshot(path=str(ARTIFACTS / "portal-contact-edit.png"), full_page=True)
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_a_consent_on_the_real_page_notifies_the_broker_by_badge_and_one_email(live_server, browser, settings):
    settings.CONSENT_FORM_URL = live_server.url
    settings.PORTAL_BASE_URL = live_server.url
    broker = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example")
    lead = LeadFactory(assigned_broker=broker, first_name="MARTHA", last_name="KELLER", email_verified=True)
    other = LeadFactory(assigned_broker=broker, first_name="Oscar", last_name="Reyes", email_verified=True)
    with service_context():
        links = [consent_link_create(lead=lead), consent_link_create(lead=other)]

    for link in links:  # two leads consent within minutes of each other
        lead_page, _ = _page(browser, 390, 844)
        lead_page.goto(link)
        lead_page.check("#channel-email")
        lead_page.click("#give-consent")
        lead_page.wait_for_selector("#consent-result")

    page, errors = _page(browser)
    login(page, live_server, broker)
    assert re.sub(r"\s+", " ", page.inner_text("#notification-badge")).strip() == "( 2 new)"

    with service_context():
        assert notifications_mail()["mails"] == 1
    (message,) = mail.outbox
    assert message.to == ["dana@brokers.example"]
    assert message.subject == "2 updates on your leads — Equity Connect"
    assert "Martha Keller gave consent to be contacted" in message.body
    assert "Oscar Reyes gave consent to be contacted" in message.body
    lead_url = re.search(rf"{re.escape(live_server.url)}/portal/leads/{lead.pk}/", message.body).group(0)

    page.click("#notifications-link")
    assert "Martha Keller gave consent to be contacted" in page.inner_text("#notification-list")
    assert page.locator("#notification-badge").count() == 0  # seen
    page.goto(lead_url)  # the e-mail's link opens the lead
    assert "Martha Keller" in page.inner_text("h1")
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_at_390_px_the_list_is_cards_and_every_action_is_reachable(live_server, browser):
    broker = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example")
    lead = LeadFactory(
        assigned_broker=broker,
        first_name="Bartholomew-Alexander",
        last_name="Konstantinopoulos-Wetherington",
        email="bartholomew.alexander.konstantinopoulos@a-very-long-domain-name.example",
        property_address="12345 NORTH SOMEWHERE EXTRAORDINARILY LONG BOULEVARD",
        contactable=True,
        campaign_status=CampaignStatus.NEW,
    )
    LeadFactory.create_batch(3, assigned_broker=broker)
    page, errors = _page(browser, 390, 844)
    login(page, live_server, broker)

    def fits():
        return page.evaluate("document.documentElement.scrollWidth") <= 390

    def reachable(selector):
        box = page.locator(selector).first.bounding_box()
        return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["width"] > 0

    assert fits()  # the dashboard
    page.goto(f"{live_server.url}/portal/leads/")
    assert fits()
    assert page.evaluate("getComputedStyle(document.querySelector('table.leads thead')).display") == "none"
    assert page.evaluate("getComputedStyle(document.querySelector('table.leads tbody tr')).display") == "block"
    assert page.locator("table.leads tbody tr").count() == 4
    for selector in (".filter-bar", "#column-chooser summary", "#keyboard-help-button", "a.lead-link"):
        assert reachable(selector), selector
    for selector in ("#notifications-link", "nav[aria-label=Main] >> text=Settings", "nav >> text=Log out"):
        page.locator(selector).first.scroll_into_view_if_needed()
        assert reachable(selector), selector
    page.click(".filter-bar")
    assert fits() and reachable("#apply-filters") and reachable("#export-csv")
    page.screenshot(path=str(ARTIFACTS / "portal-list-390.png"), full_page=True)

    page.goto(f"{live_server.url}/portal/leads/{lead.pk}/")
    wide = page.evaluate(
        "[document.documentElement.scrollWidth, ...[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > 390 || e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)"
        " + '/' + e.scrollWidth + '/' + e.clientWidth).slice(0, 12)]"
    )
    assert fits(), wide
    page.click("#contact-edit summary")
    assert fits()
    for selector in (
        "#back-to-list",
        "#save-contact",
        "#send-consent-link",
        "#queue-lead",
        "#record-outcome",
        "#mark-do-not-contact",
        "#mailto-lead",
        "#tel-lead",
    ):
        page.locator(selector).scroll_into_view_if_needed()
        assert reachable(selector), selector
    page.screenshot(path=str(ARTIFACTS / "portal-detail-390.png"), full_page=True)
    for path in ("/portal/notifications/", "/portal/settings/"):
        page.goto(live_server.url + path)
        assert fits(), path
    assert errors == []
