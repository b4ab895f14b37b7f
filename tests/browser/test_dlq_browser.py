"""DLQ triage in Debian's Chromium as an ops user: the list opens on the open items with a one-line preview of each
row (masked until the reason is given), the partner and the reasons with counts; one row fixed in its form (the
problem shown next to the field, the partner's header beside it) with "Save and next open item"; then the state set
on 40 rows at once and reprocessed. Screenshots go to var/artifacts/."""

from __future__ import annotations

import pytest

from equity_connect.db import service_context
from leads.models import Lead
from pipeline.models import PipelineDLQ, Upload
from tests.browser.support import ARTIFACTS
from tests.factories import PartnerFactory, PipelineDLQFactory, RoleUserFactory, UploadFactory

NO_ADDRESS = "no dedupe key: the row has no MAK, no APN and no usable address"
NO_STATE = "no dedupe key: the address has no ZIP code and no state"
BULK = 40


def _dataset():
    ops = RoleUserFactory(role="ops", email="ops-dana@equityconnect.example")
    partner = PartnerFactory(name="PropStream Exports")
    upload = UploadFactory(
        partner=partner, filename="march.csv", status="done", rows_total=100, leads_created=59, rows_rejected=BULK + 1
    )
    first = PipelineDLQFactory(
        upload=upload,
        line_number=7,
        reason=NO_ADDRESS,
        payload={
            "Owner 1 First Name": "Grace",
            "Owner 1 Last Name": "Hopper",
            "Address": "",
            "City": "San Diego",
            "State": "CA",
            "Zip": "92101",
            "Email 1": "grace@example.org",
        },
    )
    bulk = [
        PipelineDLQFactory(
            upload=upload,
            line_number=10 + n,
            reason=NO_STATE,
            payload={
                "Owner 1 First Name": f"Pat{n}",
                "Address": f"{n} Capitol Mall",
                "City": "Sacramento",
                "State": "",
            },
        )
        for n in range(1, BULK + 1)
    ]
    return ops, first, bulk


def _messages(page) -> str:
    page.wait_for_selector("ul.messagelist li")
    return page.inner_text("ul.messagelist")


@pytest.mark.django_db(transaction=True)
def test_dlq_form_fix_one_field_save_and_next_then_bulk_edit_and_reprocess(live_server, browser):
    ops, first, bulk = _dataset()
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{live_server.url}/admin/login/?next=/admin/pipeline/pipelinedlq/")
    page.fill("input[name=username]", ops.email)
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/pipeline/pipelinedlq/")

    # The list: open items, a masked preview, the partner, reasons grouped with counts.
    listing = page.inner_text("#changelist")
    assert "G••• H••• · San Diego CA 92101 · no MAK/APN" in listing, listing
    assert "Grace" not in listing and "PropStream Exports" in listing
    assert f"{BULK} · {NO_STATE}" in page.inner_text("#changelist-filter")
    assert "Open (to do)" in page.inner_text("#changelist-filter .selected")
    page.screenshot(path=str(ARTIFACTS / "dlq-list-masked.png"), full_page=True)

    # One row: reveal (a reason, once per session), fix the one field marked, "Save and next open item".
    page.click(f"#result_list a[href*='/pipelinedlq/{first.pk}/change/']")
    page.click("#pii-reveal")
    page.fill("textarea[name=reason]", "Fixing the March rejected rows")
    page.click("input[type=submit]")
    page.wait_for_selector("#dlq-row-form")
    marked = page.locator("tr.has-problem")
    assert marked.count() == 1 and "property_address" in marked.inner_text() and "Address" in marked.inner_text()
    assert "street address" in marked.locator(".problem").inner_text()
    assert '"Owner 1 First Name": "Grace"' in page.inner_text("#dlq-raw")
    marked.locator("input").fill("1906 Compiler Court")
    page.screenshot(path=str(ARTIFACTS / "dlq-form-fixed.png"), full_page=True)
    page.click("#save-next-button")
    page.wait_for_url(f"**/pipelinedlq/{bulk[0].pk}/change/")
    assert f"DLQ item #{first.pk}: reprocessed (lead" in _messages(page)
    assert "property_state" in page.locator("tr.has-problem").inner_text()  # the next row says what it lacks
    with service_context():
        fixed = PipelineDLQ.objects.get(pk=first.pk)
        assert fixed.status == "resolved" and fixed.resolved_by_id == ops.pk
        assert Lead.objects.get(pk=fixed.lead_id).property_address == "1906 Compiler Court"

    # Forty rows without a state: filter by their reason, select all, set the state, reprocess.
    page.goto(f"{live_server.url}/admin/pipeline/pipelinedlq/")
    page.click(f"#changelist-filter a:has-text('{BULK} · ')")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == BULK
    page.check("#action-toggle")
    page.select_option("select[name=action]", "set_field_selected")
    page.click("button[name=index]")
    page.wait_for_selector("#set-field-form")
    page.select_option("select[name=field]", "property_state")
    page.fill("input[name=value]", "CA")
    page.screenshot(path=str(ARTIFACTS / "dlq-bulk-set-field.png"), full_page=True)
    page.click("#set-field-reprocess-button")
    shown = _messages(page)
    assert f"Set property_state on {BULK} row(s)." in shown and f"Reprocessed {BULK} item(s); 0 failed" in shown, shown
    page.screenshot(path=str(ARTIFACTS / "dlq-bulk-reprocessed.png"), full_page=True)
    with service_context():
        assert PipelineDLQ.objects.filter(pk__in=[item.pk for item in bulk], status="resolved").count() == BULK
        upload = Upload.objects.get(pk=first.upload_id)
        assert (upload.rows_rejected, upload.rows_recovered, upload.leads_created) == (0, BULK + 1, 100)
        assert PipelineDLQ.objects.get(pk=bulk[0].pk).payload["State"] == "CA"

    assert errors == [], errors
    context.close()
