"""The lead list in Chromium: status chips, a column header that sorts (and sorts back), the filter panel folded
into a bar on a phone with no sideways scroll, and previous/next on the lead page walking the same view."""

from __future__ import annotations

import pytest

from leads.models import CampaignStatus
from tests.browser.support import ARTIFACTS
from tests.browser.test_timeline_browser import login
from tests.factories import BrokerFactory, LeadFactory


@pytest.mark.django_db(transaction=True)
def test_sort_chips_phone_bar_and_previous_next(live_server, browser):
    broker = BrokerFactory(name="Dana Whitfield", email="dana@brokers.example")
    for name, score in (("BAKER", 50), ("ADAMS", 90), ("CLARK", 10)):
        LeadFactory(assigned_broker=broker, last_name=name, first_name="PAT", lead_score=score)
    LeadFactory(assigned_broker=broker, last_name="Queued", campaign_status=CampaignStatus.QUEUED)
    LeadFactory(last_name="Stranger")  # another broker's

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    login(page, live_server, broker)
    page.goto(f"{live_server.url}/portal/leads/")
    page.check("input[name=status][value=new]")
    page.wait_for_url("**status=new**")
    names = page.locator("table.leads tbody a.lead-link").all_inner_texts()
    assert sorted(names) == ["Pat Adams", "Pat Baker", "Pat Clark"]  # title case: stored ALL CAPS
    page.click("th a.sort[data-column=name]")
    page.wait_for_url("**sort=name**")
    assert page.locator("table.leads tbody a.lead-link").all_inner_texts() == ["Pat Adams", "Pat Baker", "Pat Clark"]
    assert page.get_attribute("th:has(a[data-column=name])", "aria-sort") == "ascending"
    page.click("th a.sort[data-column=name]")
    page.wait_for_url("**sort=name_desc**")
    assert page.locator("table.leads tbody a.lead-link").all_inner_texts() == ["Pat Clark", "Pat Baker", "Pat Adams"]
    assert "of 3 leads" in page.inner_text("#result-summary")
    page.screenshot(path=str(ARTIFACTS / "portal-list-sorted.png"), full_page=True)

    # The lead page walks the same view: Clark, Baker, Adams, then no next.
    page.click("text=Pat Clark")
    seen = [page.inner_text("h1")]
    while page.locator("#next-lead").count():
        page.click("#next-lead")
        page.wait_for_load_state()
        seen.append(page.inner_text("h1"))
    assert [title.split(" ")[1] for title in seen] == ["Clark", "Baker", "Adams"]
    page.click("#previous-lead")
    page.wait_for_load_state()
    assert "Baker" in page.inner_text("h1")
    page.click("#back-to-list")
    page.wait_for_url("**sort=name_desc**")

    # A phone: the filter panel is a bar until tapped, and nothing scrolls sideways.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    small = phone.new_page()
    login(small, live_server, broker)
    small.goto(f"{live_server.url}/portal/leads/")
    assert small.evaluate("document.getElementById('filter-panel').open") is False
    assert not small.is_visible("input[name=q]")
    assert small.is_visible("table.leads tbody tr")  # the leads are on the first screen
    assert small.evaluate("document.documentElement.scrollWidth") <= 390
    small.click("#filter-panel summary")
    assert small.is_visible("input[name=q]")
    assert small.evaluate("document.documentElement.scrollWidth") <= 390
    small.screenshot(path=str(ARTIFACTS / "portal-list-phone-filters.png"), full_page=True)
    assert errors == []
    phone.close()
    context.close()
