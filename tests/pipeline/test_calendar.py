"""The feeder's holiday calendar (pipeline/campaigns/calendar.py, `business_holidays`): US federal holidays on the
weekday they are observed, edited in the admin, and honoured by the feeder and the feeder-missed switch."""

from __future__ import annotations

import datetime as dt

import pytest

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from pipeline.campaigns.calendar import is_business_day, us_federal_holidays
from pipeline.campaigns.feeder import campaign_feeder_run
from pipeline.models import BusinessHoliday, FeederRun
from pipeline.monitoring.deadman import check_feeder_missed
from tests.factories import StaffUserFactory
from tests.pipeline import jobs_support
from tests.pipeline.jobs_support import mv_refresh, queued_leads

fake_instantly = jobs_support.fake_instantly

THANKSGIVING = dt.date(2026, 11, 26)  # a Thursday
FRIDAY_AFTER = dt.date(2026, 11, 27)


def test_us_federal_holidays_are_on_their_observed_weekday():
    assert us_federal_holidays(2026) == [
        (dt.date(2026, 1, 1), "New Year's Day"),
        (dt.date(2026, 1, 19), "Birthday of Martin Luther King, Jr."),
        (dt.date(2026, 2, 16), "Washington's Birthday"),
        (dt.date(2026, 5, 25), "Memorial Day"),
        (dt.date(2026, 6, 19), "Juneteenth National Independence Day"),
        (dt.date(2026, 7, 3), "Independence Day (observed)"),  # 4 July 2026 is a Saturday
        (dt.date(2026, 9, 7), "Labor Day"),
        (dt.date(2026, 10, 12), "Columbus Day"),
        (dt.date(2026, 11, 11), "Veterans Day"),
        (dt.date(2026, 11, 26), "Thanksgiving Day"),
        (dt.date(2026, 12, 25), "Christmas Day"),
    ]
    days_2027 = dict(us_federal_holidays(2027))
    assert days_2027[dt.date(2027, 12, 31)] == "New Year's Day (observed)"  # 1 January 2028 is a Saturday
    assert days_2027[dt.date(2027, 7, 5)] == "Independence Day (observed)"  # a Sunday's holiday on the Monday
    assert dt.date(2022, 1, 1) not in dict(us_federal_holidays(2022))  # observed on 31 December 2021
    assert dict(us_federal_holidays(2021))[dt.date(2021, 12, 31)] == "New Year's Day (observed)"
    assert all(day.weekday() < 5 for year in range(2020, 2041) for day, _ in us_federal_holidays(year))


def _seeded(day: dt.date, name: str) -> BusinessHoliday:
    """A row pipeline 0019 seeds; transactional tests empty the tables, so it is put back when missing."""
    with service_context():
        return BusinessHoliday.objects.get_or_create(day=day, defaults={"name": name})[0]


@pytest.mark.django_db
def test_the_feeder_does_not_feed_on_a_holiday_and_feeds_the_next_business_day(fake_instantly):
    _seeded(THANKSGIVING, "Thanksgiving Day")
    queued_leads(3)
    mv_refresh()

    skipped = campaign_feeder_run(business_date=THANKSGIVING)

    assert skipped.status == "skipped" and skipped.data["fed"] == 0
    assert skipped.data["holiday"] == "Thanksgiving Day"
    assert "Thu 2026-11-26 is a holiday (Thanksgiving Day): nothing fed" in skipped.message
    assert fake_instantly.requests == []
    with service_context():
        assert not FeederRun.objects.exists()  # the day is not marked fed: removing the holiday lets it run
        [skip] = PipelineEvent.objects.filter(event_type="job_skipped")
        assert skip.event_data["holiday"] == "Thanksgiving Day"
        assert not is_business_day(THANKSGIVING) and is_business_day(FRIDAY_AFTER)

    fed = campaign_feeder_run(business_date=FRIDAY_AFTER)
    assert fed.status == "success" and fed.data["fed"] == 3


@pytest.mark.django_db
def test_a_holiday_added_in_the_admin_stops_the_feed_and_removing_it_lets_it_run(client, fake_instantly):
    company_day = dt.date(2026, 12, 24)  # a Thursday, not a federal holiday
    client.force_login(StaffUserFactory(email="ops@example.com"))
    added = client.post("/admin/pipeline/businessholiday/add/", {"day": "2026-12-24", "name": "Company day"})
    assert added.status_code == 302, added.content.decode()[:2000]
    with service_context():
        holiday = BusinessHoliday.objects.get(day=company_day)
        [event] = PipelineEvent.objects.filter(event_type="holiday_changed")
    assert event.event_data["action"] == "added" and event.event_data["by"] == "ops@example.com"
    assert event.event_data["after"] == {"day": "2026-12-24", "name": "Company day"}
    listing = client.get("/admin/pipeline/businessholiday/?day__year=2026")
    assert listing.status_code == 200 and "Company day" in listing.content.decode()
    assert "delete_selected" not in listing.content.decode()  # deletions go through the service (recorded)

    queued_leads(2)
    mv_refresh()
    assert campaign_feeder_run(business_date=company_day).data.get("holiday") == "Company day"

    removed = client.post(f"/admin/pipeline/businessholiday/{holiday.pk}/delete/", {"post": "yes"})
    assert removed.status_code == 302
    with service_context():
        assert not BusinessHoliday.objects.filter(day=company_day).exists()
        assert PipelineEvent.objects.filter(event_type="holiday_changed", event_data__action="removed").count() == 1
    assert campaign_feeder_run(business_date=company_day).data["fed"] == 2


@pytest.mark.django_db
def test_no_feeder_missed_alert_on_a_holiday(settings):
    _seeded(dt.date(2030, 11, 28), "Thanksgiving Day")  # a Thursday after the test database was made
    settings.ALERT_FEEDER_DEADLINE = "06:30"
    after_deadline = dt.datetime(2030, 11, 28, 16, 0, tzinfo=dt.UTC)  # 08:00 Los Angeles
    with service_context():
        on_holiday = check_feeder_missed(after_deadline)
        on_friday = check_feeder_missed(after_deadline + dt.timedelta(days=1))
    assert on_holiday.breached is False and "not due" in on_holiday.message
    assert on_friday.breached is True
