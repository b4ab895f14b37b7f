"""The launch-day view in Debian's Chromium: the dashboard's first screen (1400 x 950) answers the first-24-hours
checks and shows the weekly trends against the first week; its links land on the lists behind the numbers.
Screenshot: var/artifacts/ops-launch-day.png."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from tests.browser.support import ARTIFACTS, admin_log_in, result_rows
from tests.factories import (
    AlertFactory,
    PipelineDLQFactory,
    PipelineEventFactory,
    StaffUserFactory,
    UploadFactory,
    backdate_events,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _event(event_type: str, at: dt.datetime, **fields) -> None:
    event = PipelineEventFactory(event_type=event_type, **fields)
    with service_context():
        backdate_events(PipelineEvent.objects.filter(pk=event.pk), at)


def test_the_first_screen_answers_the_launch_day_checks(live_server, browser, running_system):
    now = timezone.now()
    staff = StaffUserFactory(email="launch@equityconnect.example")
    UploadFactory(status="done", rows_total=1200, rows_rejected=12, leads_created=900, leads_merged=100)
    UploadFactory(status="failed", rows_total=0)
    for _ in range(3):
        PipelineDLQFactory(upload=None)
    AlertFactory(rule="dlq_depth", severity="critical")
    # running_system: the view was refreshed and the day fed (250) just now.
    for weeks_ago, fed, replied in ((3, 100, 2), (2, 100, 4), (1, 100, 5), (0, 50, 3)):
        at = now - dt.timedelta(weeks=weeks_ago)
        for _ in range(fed):
            _event("campaign_added", at)
        for _ in range(replied):
            _event("email_replied", at)
        _event("dedupe_success", at, duration_ms=1000 + 100 * weeks_ago)

    context, page, errors = admin_log_in(browser, live_server, staff)
    page.goto(f"{live_server.url}/admin/dashboard/")
    page.screenshot(path=str(ARTIFACTS / "ops-launch-day.png"))
    box = page.locator("#launch-24h").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 950  # all of it on the first screen, no scrolling
    assert "1,200 rows in → 1,000 leads (created or merged) → 50 fed" in page.inner_text("#launch-flow")
    errors_row = page.inner_text("#launch-errors")
    assert "rows rejected 1.0% (12 of 1,200)" in errors_row and "uploads failed 1 of 2" in errors_row
    assert "3 open" in page.inner_text("#launch-dlq")
    assert "ago" in page.inner_text("#launch-mv") and "250 fed" in page.inner_text("#launch-feeder")
    assert "1 (1 critical)" in page.inner_text("#launch-alerts")
    # The trends: one point per week, the first week's value as the dashed baseline, the figures in words.
    assert page.locator("#chart-launch-reply circle").count() == 4
    assert page.locator("#chart-launch-reply .ec-baseline").count() == 1
    assert "The dashed line is the first week's value, 2.0%." in page.text_content("#chart-launch-reply desc")
    # Its numbers are links to the lists behind them.
    page.click("#launch-dlq a")
    page.wait_for_url("**/admin/pipeline/pipelinedlq/**")
    assert result_rows(page) == 3
    page.goto(f"{live_server.url}/admin/dashboard/")
    page.click("#launch-errors a")
    page.wait_for_url("**/admin/pipeline/upload/?status__exact=failed")
    assert result_rows(page) == 1
    assert errors == [], errors
    context.close()
