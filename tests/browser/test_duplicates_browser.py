"""Possible duplicates end to end in Debian's Chromium (Playwright, headless): a staff member opens the list
(two leads side by side, no sideways scrolling at 1,400 px), opens a pair, merges it into the left lead, sees
the message and follows the tombstone's "merged into" link to the survivor; then keeps another pair apart.
Screenshots go to var/artifacts/."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from equity_connect.db import service_context
from leads.models import Lead
from pipeline.models import PossibleDuplicate
from tests.browser.support import ARTIFACTS, admin_log_in
from tests.factories import (
    BrokerFactory,
    LeadFactory,
    PartnerFactory,
    PossibleDuplicateFactory,
    StaffUserFactory,
    UploadFactory,
)


def _pair(broker, upload, *, street: str, older: tuple[str, str], newer: tuple[str, str]):
    now = timezone.now()
    left = LeadFactory(
        assigned_broker=broker,
        created_at=now - dt.timedelta(days=3),
        first_name=older[0],
        last_name=older[1],
        property_address=street,
        property_city="Fresno",
        email=f"{older[0].lower()}.{older[1].lower()}-with-a-rather-long-mailbox-name@example-county-mail.org",
    )
    right = LeadFactory(
        assigned_broker=broker,
        created_at=now - dt.timedelta(days=1),
        first_name=newer[0],
        last_name=newer[1],
        property_address=street,
        property_city="Fresno",
    )
    pair = PossibleDuplicateFactory(
        lead_a=left,
        lead_b=right,
        upload=upload,
        reason=f"same address as lead {right.pk}, APN {left.apn} ≠ {right.apn}",
    )
    return pair, left, right


@pytest.mark.django_db(transaction=True)
def test_staff_merge_a_pair_and_keep_another_apart(live_server, browser):
    staff = StaffUserFactory(email="ops@equityconnect.example")
    broker = BrokerFactory(name="Alice Broker")
    upload = UploadFactory(partner=PartnerFactory(name="PropStream Exports"), status="done")
    first, ann, bo = _pair(broker, upload, street="12 Oak St", older=("Ann", "Lee"), newer=("Bo", "Kim"))
    second, cy, di = _pair(broker, upload, street="40 Birch Ave", older=("Cy", "Moe"), newer=("Di", "Ng"))

    context, page, errors = admin_log_in(browser, live_server, staff, width=1400, height=900)

    # The list: the open pairs, both leads side by side, readable without scrolling sideways.
    page.goto(f"{live_server.url}/admin/pipeline/possibleduplicate/")
    page.wait_for_selector("#result_list")
    table = page.inner_text("#result_list")
    for text in ("Ann Lee", "Bo Kim", "Cy Moe", "Di Ng", "12 Oak St", "PropStream Exports", "same address"):
        assert text in table, text
    for box in ("document.documentElement", "document.querySelector('#changelist-form .results')"):
        widths = page.evaluate(f"() => [{box}.scrollWidth, {box}.clientWidth]")
        assert widths[0] <= widths[1], (box, widths)  # nothing scrolls sideways
    page.screenshot(path=str(ARTIFACTS / "duplicates-list.png"), full_page=True)

    # Open the first pair and merge it into the left (older) lead.
    page.click(f"#result_list a[href$='/possibleduplicate/{first.pk}/change/']")
    page.wait_for_selector("#pd-compare")
    name_row = page.locator("#pd-compare tbody tr", has=page.locator("th", has_text="name")).first
    assert name_row.locator("td.pd-left").inner_text() == "Ann Lee"  # the older lead on the left
    assert name_row.locator("td.pd-right").inner_text() == "Bo Kim"
    assert page.locator("#pd-compare tr.pd-differs").count() >= 3
    page.fill("textarea[name=note]", "same house, two files")
    page.screenshot(path=str(ARTIFACTS / "duplicates-pair.png"), full_page=True)
    page.click("#merge-left")
    page.wait_for_selector("ul.messagelist li")
    message = page.inner_text("ul.messagelist")
    assert f"lead {bo.pk} was merged into lead {ann.pk}" in message, message
    assert "Decided: merged" in page.inner_text("#pd-decision")
    assert page.locator("#merge-left").count() == 0
    page.screenshot(path=str(ARTIFACTS / "duplicates-merged.png"), full_page=True)

    # The tombstone's page in the lead admin says where it went, and the link leads there.
    page.click(f"#pd-compare a[href$='/leads/lead/{bo.pk}/change/']")
    page.wait_for_selector("#merged-into-link")
    assert page.inner_text("#merged-into-link") == str(ann.pk)
    page.screenshot(path=str(ARTIFACTS / "duplicates-tombstone.png"), full_page=True)
    page.click("#merged-into-link")
    page.wait_for_url(f"**/admin/leads/lead/{ann.pk}/change/")
    with service_context():
        assert Lead.objects.get(pk=bo.pk).merged_into_id == ann.pk
        assert PossibleDuplicate.objects.get(pk=first.pk).status == "merged"

    # Keep the second pair apart (the list still offers it: it is open).
    page.goto(f"{live_server.url}/admin/pipeline/possibleduplicate/")
    assert page.locator(f"#result_list a[href$='/possibleduplicate/{first.pk}/change/']").count() == 0
    page.click(f"#result_list a[href$='/possibleduplicate/{second.pk}/change/']")
    page.wait_for_selector("#keep-apart")
    page.fill("textarea[name=note]", "two parcels on one lot")
    page.click("#keep-apart")
    page.wait_for_selector("ul.messagelist li")
    message = page.inner_text("ul.messagelist")
    assert "kept apart; this pair will not be proposed again" in message, message
    assert "Decided: kept apart" in page.inner_text("#pd-decision")
    page.screenshot(path=str(ARTIFACTS / "duplicates-kept-apart.png"), full_page=True)
    with service_context():
        decided = PossibleDuplicate.objects.get(pk=second.pk)
        assert (decided.status, decided.decided_by_id, decided.note) == (
            "kept_apart",
            staff.pk,
            "two parcels on one lot",
        )
        assert Lead.objects.filter(pk__in=[cy.pk, di.pk], merged_into__isnull=True).count() == 2

    assert errors == [], errors
    context.close()
