"""The upload page follows a real 200,000-row upload by itself: a worker process ingests it (staging commits every
10,000 rows) while Chromium sits on the page; the progress bar moves through at least three increasing values to
100% with no page reload, and the counts end with thousands separators. Screenshots go to var/artifacts/."""

from __future__ import annotations

import time

import pytest

from equity_connect.db import service_context
from pipeline.models import Upload
from tests.browser.support import ARTIFACTS
from tests.factories import PartnerFactory, StaffUserFactory
from tests.pipeline.ingest_helpers import accept, csv_of, worker_process

ROWS = 200_000


def _file() -> bytes:
    return csv_of(
        [
            {
                "mak": f"P{i}",
                "first_name": f"Owner{i}",
                "property_address": f"{i} Progress Way",
                "property_city": "Fresno",
                "property_state": "CA",
                "property_zip": "93701",
            }
            for i in range(ROWS)
        ]
    )


@pytest.mark.django_db(transaction=True)
def test_the_progress_bar_moves_during_a_200k_row_upload(live_server, browser, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    staff = StaffUserFactory(email="ops-eve@equityconnect.example")
    upload = accept(_file(), partner=PartnerFactory(name="PropStream Exports"), filename="big-march.csv")

    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/admin/login/?next=/admin/pipeline/upload/{upload.id}/change/")
    page.fill("input[name=username]", staff.email)
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("input[type=submit]")
    page.wait_for_selector("#upload-progress[data-running='1']")
    assert "PropStream Exports · big-march.csv" in page.inner_text("#content")
    page.evaluate("window.__samePage = 'yes'")  # gone if the page reloads

    worker = worker_process(upload.id, tmp_path, INGEST_STAGE_BATCH_ROWS="10000")
    seen: list[float] = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if worker.poll() == 0:  # finished: the page has a few polls to catch up, no more
                deadline = min(deadline, time.monotonic() + 10)
            value = float(page.get_attribute("#upload-progress-bar", "aria-valuenow"))
            if not seen or value != seen[-1]:
                seen.append(value)
                if len(seen) == 3:
                    page.screenshot(path=str(ARTIFACTS / "upload-progress-running.png"), full_page=True)
            if page.get_attribute("#upload-progress", "data-running") == "0":
                break
            if worker.poll() not in (None, 0):
                raise AssertionError(worker.stderr.read().decode())
            time.sleep(0.1)
        assert worker.wait(timeout=120) == 0, worker.stderr.read().decode()
    finally:
        if worker.poll() is None:
            worker.kill()

    assert page.evaluate("window.__samePage") == "yes"  # no full-page reload
    assert seen == sorted(seen) and seen[-1] == 100.0, seen
    moving = [value for value in seen if 0 < value < 100]
    assert len(set(seen)) >= 3 and moving, seen
    assert page.inner_text("#upload-progress-label").startswith("done · 100%")
    assert page.inner_text("[data-count='rows_total']") == "200,000"
    assert page.inner_text("[data-count='leads_created']") == "200,000"
    page.screenshot(path=str(ARTIFACTS / "upload-progress-done.png"), full_page=True)
    with service_context():
        done = Upload.objects.get(pk=upload.id)
    assert (done.status, done.rows_total, done.leads_created) == ("done", ROWS, ROWS)
    # The uploads list fits 1,400 px: no sideways scrolling.
    page.goto(f"{live_server.url}/admin/pipeline/upload/")
    assert "PropStream Exports · big-march.csv" in page.inner_text("#result_list")
    assert "200,000" in page.inner_text("#result_list")
    width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1] <= 1400, width
    page.screenshot(path=str(ARTIFACTS / "upload-list-1400.png"), full_page=True)
    print(f"progress values seen: {seen}")  # the report quotes them
    assert errors == [], errors
    context.close()
