"""A broker's working day in Chromium: bulk selection across pages (one row, a Shift range, the whole page, every
lead matching the filter) and each bulk action; saved views and the default; follow-ups on My day; booking an
appointment shows the lead as "Appointment booked" in the list and on My day."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import CampaignStatus, FollowUp, Lead, LeadAccessRecord, SavedView
from tests.browser.support import ARTIFACTS
from tests.browser.test_timeline_browser import login
from tests.factories import BrokerFactory, LeadFactory


def _page(browser, live_server, broker, width=1280):
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    login(page, live_server, broker)
    return context, page, errors


def _messages(page) -> str:
    return " | ".join(page.locator("ul.messages li").all_inner_texts())


@pytest.mark.django_db(transaction=True)
def test_bulk_select_across_pages_and_every_action(live_server, browser):
    broker = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example")
    leads = [
        LeadFactory(assigned_broker=broker, last_name=f"Lead{n:02d}", first_name="Pat", lead_score=n)
        for n in range(30)
    ]
    LeadFactory(last_name="Stranger")  # another broker's
    context, page, errors = _page(browser, live_server, broker)
    base = f"{live_server.url}/portal/leads/?sort=score_low&per_page=25"
    page.goto(base)
    boxes = page.locator("input.select-lead")
    assert boxes.count() == 25
    boxes.nth(0).click()  # one row
    boxes.nth(2).click()
    boxes.nth(5).click(modifiers=["Shift"])  # a range: rows 3 to 6
    assert page.inner_text("#bulk-count") == "5 selected"
    page.click("a[rel=next]")
    page.wait_for_url("**page=2**")
    page.locator("input.select-lead").nth(0).click()  # the 26th lead
    assert page.inner_text("#bulk-count") == "6 selected"
    page.click("a[rel=prev]")  # back: the selection is still there
    page.wait_for_load_state()
    assert page.locator("input.select-lead:checked").count() == 5
    page.click("#bulk-queue")  # none of them has consent to e-mail: all skipped, with the reason
    page.wait_for_load_state()
    assert "Queued 0 of 6 selected leads" in _messages(page) and "Skipped 6: no consent to e-mail" in _messages(page)
    assert page.inner_text("#bulk-count") == "0 selected"

    # Follow-up on the chosen rows.
    page.goto(base)
    page.locator("input.select-lead").nth(0).click()
    page.locator("input.select-lead").nth(1).click()
    page.fill("#bulk-due", "2030-03-04")
    page.fill("#bulk-note", "call about the appraisal")
    page.click("#bulk-follow-up")
    page.wait_for_load_state()
    assert "Added a follow-up to 2 of 2 selected leads." in _messages(page)

    # Do-not-contact with a reason (without one: refused, nothing changed).
    page.locator("input.select-lead").nth(2).click()
    page.click("#bulk-dnc")
    page.wait_for_load_state()
    assert "Say why these leads must not be contacted." in _messages(page)
    page.locator("input.select-lead").nth(2).click()
    page.fill("#bulk-reason", "asked by phone")
    page.click("#bulk-dnc")
    page.wait_for_load_state()
    assert "Marked 1 of 1 selected leads do-not-contact." in _messages(page)

    # Consent links for the whole page: queued as a task; the unverified addresses get none.
    page.check("#select-page")
    assert page.inner_text("#bulk-count") == "25 selected"
    page.click("#bulk-consent")
    page.wait_for_load_state()
    assert "Consent links will be e-mailed to 0 of 25" in _messages(page) and "e-mail not verified" in _messages(page)

    # Every lead matching the filter (both pages), exported through the export path with its access record.
    page.check("#select-page")
    page.click("#bulk-select-matching")
    assert page.inner_text("#bulk-count") == "All 30 matching leads selected"
    with page.expect_download() as download:
        page.click("#bulk-export")
    with open(download.value.path(), encoding="utf-8") as exported:
        rows = list(csv.DictReader(io.StringIO(exported.read())))
    assert {row["id"] for row in rows} == {str(lead.pk) for lead in leads}
    assert page.inner_text("#bulk-count") == "All 30 matching leads selected"  # an export keeps the selection
    page.screenshot(path=str(ARTIFACTS / "portal-bulk.png"), full_page=True)
    with service_context():
        assert FollowUp.objects.count() == 2
        assert Lead.objects.filter(campaign_status=CampaignStatus.DO_NOT_CONTACT).count() == 1
        assert PipelineEvent.objects.filter(event_type="lead_do_not_contact").count() == 1
        assert LeadAccessRecord.objects.get(via="portal.bulk").row_count == 30
    assert errors == []
    context.close()


@pytest.mark.django_db(transaction=True)
def test_saved_views_and_the_default(live_server, browser):
    broker = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example")
    LeadFactory(assigned_broker=broker, last_name="Queued", campaign_status=CampaignStatus.QUEUED)
    LeadFactory(assigned_broker=broker, last_name="Fresh")
    context, page, errors = _page(browser, live_server, broker)
    page.goto(f"{live_server.url}/portal/leads/")
    page.check("input[name=status][value=queued]")
    page.wait_for_url("**status=queued**")
    page.click("#save-view summary")
    page.fill("#save-view input[name=name]", "Ready to go")
    page.check("#save-view input[name=make_default]")
    page.click("#save-view-button")
    page.wait_for_load_state()
    assert "saved as your default" in _messages(page)
    assert page.locator("table.leads tbody tr").count() == 1
    # Landing on My leads without parameters opens the default view.
    page.goto(f"{live_server.url}/portal/leads/")
    page.wait_for_url("**view=**")
    assert page.locator("table.leads tbody tr").count() == 1
    assert page.get_attribute("a.saved-view[data-view='Ready to go']", "aria-current") == "page"
    # One click to switch.
    page.click("#view-all")
    page.wait_for_url("**view=all**")
    assert page.locator("table.leads tbody tr").count() == 2
    page.click("a.saved-view[data-view='Ready to go']")
    page.wait_for_load_state()
    assert page.locator("table.leads tbody tr").count() == 1
    page.click("#toggle-default-view")  # no longer the default
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/portal/leads/")
    assert "view=" not in page.url and page.locator("table.leads tbody tr").count() == 2
    with service_context():
        (view,) = SavedView.objects.all()
    assert (view.name, view.is_default) == ("Ready to go", False)
    assert view.query.startswith("status=queued&sort=newest")  # the filters, search and sort as they were
    assert errors == []
    context.close()


@pytest.mark.django_db(transaction=True)
def test_follow_ups_and_appointments_on_my_day(live_server, browser):
    broker = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example", time_zone="America/New_York")
    lead = LeadFactory(assigned_broker=broker, first_name="MARTHA", last_name="KELLER", campaign_status="active")
    other = LeadFactory(assigned_broker=broker, first_name="Otto", last_name="Later")
    zone = ZoneInfo("America/New_York")
    today = timezone.now().astimezone(zone).date()
    context, page, errors = _page(browser, live_server, broker)

    # A follow-up due today, one next year: My day lists the first only.
    page.goto(f"{live_server.url}/portal/leads/{lead.pk}/")
    page.fill("#follow-up-form input[name=due_date]", today.isoformat())
    page.fill("#follow-up-form textarea[name=note]", "send the appraisal")
    page.click("#add-follow-up")
    page.wait_for_load_state()
    assert "send the appraisal" in page.inner_text("#follow-ups")
    page.goto(f"{live_server.url}/portal/leads/{other.pk}/")
    page.fill("#follow-up-form input[name=due_date]", today.replace(year=today.year + 1).isoformat())
    page.click("#add-follow-up")
    page.wait_for_load_state()

    # The appointment: booked for late today, the broker's time.
    page.goto(f"{live_server.url}/portal/leads/{lead.pk}/")
    page.select_option("select[name=outcome]", "appointment")
    at = datetime.combine(today, time(23, 30))
    page.fill("input[name=appointment_at]", at.strftime("%Y-%m-%dT%H:%M"))
    page.click("#record-outcome")
    page.wait_for_load_state()
    assert "Appointment booked" in page.inner_text("#lead-status")
    assert "Follow-up added" in page.inner_text("#timeline")
    page.goto(f"{live_server.url}/portal/leads/?view=all")
    row = page.locator("table.leads tbody tr", has_text="Martha Keller")
    assert "Appointment booked" in row.inner_text()

    page.click("nav.nav a:has-text('My day')")
    page.wait_for_url("**/portal/my-day/")
    assert "Martha Keller" in page.inner_text("#my-day-follow-ups")
    assert "send the appraisal" in page.inner_text("#my-day-follow-ups")
    assert "Otto Later" not in page.inner_text("#my-day-follow-ups")
    assert "11:30 PM" in page.inner_text("#my-day-appointments")
    assert "Martha Keller" in page.inner_text("#my-day-appointments")
    page.screenshot(path=str(ARTIFACTS / "portal-my-day.png"), full_page=True)
    page.click("#my-day-follow-ups button.follow-up-done")
    page.wait_for_url("**/portal/my-day/")
    assert "No follow-ups due." in page.inner_text("#my-day-follow-ups")
    assert errors == []
    context.close()
