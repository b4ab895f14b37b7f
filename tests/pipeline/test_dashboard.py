"""Every dashboard figure on a crafted dataset equals the value worked out by hand (in the comments)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from equity_connect.db import broker_context, service_context
from equity_connect.models import PipelineEvent
from pipeline.models import Upload
from pipeline.monitoring.dashboard import dashboard_figures
from tests.factories import (
    BrokerFactory,
    LeadFactory,
    PipelineDLQFactory,
    PipelineEventFactory,
    UploadFactory,
    backdate_events,
)

pytestmark = pytest.mark.django_db

DAYS = 14


@pytest.fixture
def now():
    # Local noon today: "today" items an hour before it stay on today's local date whatever the clock says.
    return timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time(12, 0)))


def _upload(now, *, days_ago: int, **counts) -> Upload:
    upload = UploadFactory(**counts)
    with service_context():
        Upload.objects.filter(pk=upload.pk).update(created_at=now - dt.timedelta(days=days_ago, hours=1))
    return upload


def _event(now, event_type: str, *, lead, days_ago: int = 0, broker=None) -> None:
    event = PipelineEventFactory(event_type=event_type, lead_id=lead.pk, broker_id=(broker or lead.assigned_broker).pk)
    with service_context():
        backdate_events(PipelineEvent.objects.filter(pk=event.pk), now - dt.timedelta(days=days_ago, hours=1))


@pytest.fixture
def dataset(now):
    a, b = BrokerFactory(), BrokerFactory()
    u1 = _upload(
        now, days_ago=0, rows_total=10, leads_created=6, leads_merged=2, duplicates_in_file=1, rows_rejected=1
    )
    _upload(now, days_ago=0, rows_total=5, leads_created=5)
    u3 = _upload(now, days_ago=3, rows_total=4, leads_created=3, leads_merged=1)
    _upload(now, days_ago=20, rows_total=100, leads_created=100)  # outside the window

    today = now - dt.timedelta(hours=1)
    leads = {
        # broker A
        "l1": LeadFactory(
            assigned_broker=a,
            created_at=today,
            email_verified=True,
            phone_verified=False,
            campaign_status="active",
            source_upload_id=u1.pk,
        ),
        "l2": LeadFactory(
            assigned_broker=a,
            created_at=today,
            email_verified=False,
            phone_verified=True,
            campaign_status="replied",
            source_upload_id=u1.pk,
        ),
        "l3": LeadFactory(
            assigned_broker=a, created_at=now - dt.timedelta(days=2), campaign_status="queued", source_upload_id=u3.pk
        ),
        "l4": LeadFactory(assigned_broker=a, created_at=today, email=None, phone_verified=True, campaign_status="new"),
        # broker B
        "l5": LeadFactory(
            assigned_broker=b, created_at=now - dt.timedelta(days=30), email_verified=True, campaign_status="bounced"
        ),
        "l6": LeadFactory(
            assigned_broker=b, created_at=today, email_verified=True, phone="", campaign_status="active"
        ),
    }
    _event(now, "campaign_added", lead=leads["l1"])
    _event(now, "campaign_added", lead=leads["l1"], days_ago=1)  # fed twice: still one lead
    _event(now, "campaign_added", lead=leads["l2"], days_ago=2)
    _event(now, "campaign_added", lead=leads["l6"])
    _event(now, "campaign_added", lead=leads["l5"], days_ago=20)  # fed before the window
    _event(now, "email_replied", lead=leads["l2"])
    _event(now, "email_replied", lead=leads["l5"])  # replied, but not fed in the window
    _event(now, "appointment_booked", lead=leads["l2"])

    for status in ("open", "open", "retrying", "resolved", "discarded"):
        PipelineDLQFactory(status=status, upload=None)
    PipelineDLQFactory(status="open", broker=a, upload=None)
    return {"a": a, "b": b, **leads}


def _series(figures, key):
    return {point["date"]: point["count"] for point in figures[key] if point["count"]}


def _funnel(figures):
    return {stage["stage"]: stage["count"] for stage in figures["funnel"]}


def test_staff_figures(dataset, now):
    with service_context():
        figures = dashboard_figures(days=DAYS, now=now)
    today = timezone.localdate(now)
    assert figures["since"] == timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=13), dt.time.min))
    assert len(figures["daily_uploads"]) == DAYS and figures["daily_uploads"][-1]["date"] == today.isoformat()
    # u1 + u2 today, u3 three days ago; u4 is 20 days old.
    assert _series(figures, "daily_uploads") == {
        today.isoformat(): 2,
        (today - dt.timedelta(days=3)).isoformat(): 1,
    }
    assert figures["uploads_total"] == 3
    # l1, l2, l4, l6 today; l3 two days ago; l5 is 30 days old.
    assert _series(figures, "daily_leads") == {today.isoformat(): 4, (today - dt.timedelta(days=2)).isoformat(): 1}
    verification = figures["verification"]
    # In the window: l1..l4, l6 (5). With an email: l1, l2, l3, l6 (l4 has none) -> verified l1, l6 = 2/4.
    # With a phone: l1..l4 (l6's is empty) -> verified l2, l4 = 2/4. Either channel: l1, l2, l4, l6 = 4/5.
    assert verification["total"] == 5
    assert (verification["with_email"], verification["email_verified"], verification["email_rate"]) == (4, 2, 0.5)
    assert (verification["with_phone"], verification["phone_verified"], verification["phone_rate"]) == (4, 2, 0.5)
    assert (verification["verified"], verification["rate"]) == (4, 0.8)
    assert figures["campaign_status"] == {
        "new": 1,
        "queued": 1,
        "active": 2,
        "replied": 1,
        "paused": 0,
        "unsubscribed": 0,
        "bounced": 1,
        "do_not_contact": 0,
        "converted": 0,
    }
    assert figures["leads_total"] == 6
    # Fed in the window: l1, l2, l6 (3). Of those, replied: l2; booked: l2.
    assert figures["reply_rate"] == pytest.approx(1 / 3)
    assert figures["booking_rate"] == pytest.approx(1 / 3)
    # open, open, retrying + broker A's open one.
    assert figures["dlq_depth"] == 4
    # Rows: 10 + 5 + 4 = 19; deduped into leads: (6+2) + 5 + (3+1) = 17.
    assert _funnel(figures) == {"uploaded": 19, "deduped": 17, "verified": 4, "fed": 3, "replied": 1, "booked": 1}
    assert [stage["stage"] for stage in figures["funnel"]] == [
        "uploaded",
        "deduped",
        "verified",
        "fed",
        "replied",
        "booked",
    ]


def _broker_a_expected(figures, now):
    today = timezone.localdate(now)
    # Broker A's leads in the window: l1, l2 (today, from u1), l3 (two days ago, from u3), l4 (today).
    assert _series(figures, "daily_uploads") == {today.isoformat(): 1, (today - dt.timedelta(days=2)).isoformat(): 1}
    assert figures["uploads_total"] == 2
    assert _series(figures, "daily_leads") == {today.isoformat(): 3, (today - dt.timedelta(days=2)).isoformat(): 1}
    verification = figures["verification"]
    # Email: l1, l2, l3 -> l1 verified (1/3). Phone: l1..l4 -> l2, l4 (2/4). Either: l1, l2, l4 (3/4).
    assert verification["email_rate"] == pytest.approx(1 / 3)
    assert verification["phone_rate"] == 0.5
    assert verification["rate"] == 0.75
    assert figures["campaign_status"]["active"] == 1 and figures["campaign_status"]["bounced"] == 0
    assert sum(figures["campaign_status"].values()) == 4 == figures["leads_total"]
    # Fed: l1, l2; replied and booked: l2.
    assert figures["reply_rate"] == 0.5 and figures["booking_rate"] == 0.5
    assert figures["dlq_depth"] == 1
    assert _funnel(figures) == {"uploaded": 4, "deduped": 4, "verified": 3, "fed": 2, "replied": 1, "booked": 1}


def test_broker_figures_scoped_by_queryset(dataset, now):
    with service_context():
        figures = dashboard_figures(broker=dataset["a"], days=DAYS, now=now)
    _broker_a_expected(figures, now)


def test_broker_figures_under_row_level_security(dataset, now):
    """The broker portal calls it in the broker's own context: RLS agrees with the scoped querysets."""
    with broker_context(dataset["a"].pk):
        figures = dashboard_figures(broker=dataset["a"], days=DAYS, now=now)
    _broker_a_expected(figures, now)


def test_empty_dataset_has_no_rates(db, now):
    with service_context():
        figures = dashboard_figures(days=7, now=now)
    assert figures["reply_rate"] is None and figures["booking_rate"] is None
    assert figures["verification"]["rate"] is None
    assert figures["dlq_depth"] == 0 and len(figures["daily_uploads"]) == 7


def test_staff_dashboard_page_renders_the_figures(dataset, now, client):
    from tests.factories import StaffUserFactory

    client.force_login(StaffUserFactory())
    response = client.get("/admin/dashboard/")
    assert response.status_code == 200
    body = response.content.decode()
    charts = (
        "chart-daily-uploads",
        "chart-daily-leads",
        "chart-funnel",
        "chart-campaign-status",
        "chart-verification",
    )
    for chart in (*charts, "chart-feeder", "chart-contactable"):
        svg = _svg(body, chart)
        # Every bar carries its number, and the chart says in words what it shows (its text alternative).
        assert svg.count('class="ec-bar"') == svg.count('class="ec-bar-value"') > 0, chart
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in svg and "<desc" in svg
    # Uploads and new leads are two charts, each on its own axis: today's 2 uploads are as tall as today's 4 leads.
    uploads, leads = _svg(body, "chart-daily-uploads"), _svg(body, "chart-daily-leads")
    assert _tallest(uploads) == _tallest(leads) > 100
    assert '">2</text>' in uploads and '">4</text>' in leads
    assert "<script" not in body.split('id="content-main"', 1)[1]  # drawn on the server; no library, no CDN
    assert "chart.umd" not in body and "cdn" not in body.lower()


def _svg(body: str, chart_id: str) -> str:
    return "<svg" + body.split(f'<svg id="{chart_id}"', 1)[1].split("</svg>", 1)[0]


def _tallest(svg: str) -> float:
    import re

    return max(float(height) for height in re.findall(r'class="ec-bar"[^>]* height="([0-9.]+)"', svg))


def test_dashboard_is_staff_only(db, client):
    from tests.factories import BrokerFactory

    assert client.get("/admin/dashboard/").status_code == 302  # to the admin login
    broker = BrokerFactory()
    client.force_login(broker.user)
    response = client.get("/admin/dashboard/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- the date range, the cards' links, partner quality, the feeder's days, CSV -----------------------------------


@pytest.fixture
def staff_client(client):
    from tests.factories import RoleUserFactory

    client.force_login(RoleUserFactory(role="ops"))
    return client


def test_the_date_range_picker(dataset, now, staff_client):
    today = timezone.localdate(now)
    three_days_ago = (today - dt.timedelta(days=3)).isoformat()
    response = staff_client.get(f"/admin/dashboard/?from={three_days_ago}&to={three_days_ago}")
    assert response.status_code == 200
    figures = response.context["figures"]
    assert figures["uploads_total"] == 1 and figures["days"] == 1  # u3 only
    assert _funnel(figures)["uploaded"] == 4
    assert f'value="{three_days_ago}"' in response.content.decode()

    for query, message in (
        ("from=yesterday", "YYYY-MM-DD"),
        (f"from={today}&to={today - dt.timedelta(days=1)}", "start date is after the end date"),
        ("from=2020-01-01&to=2026-01-01", "at most 366 days"),
        ("days=abc", "whole number"),
        ("days=0", "between 1 and 366"),
    ):
        bad = staff_client.get(f"/admin/dashboard/?{query}")
        assert bad.status_code == 400 and message in bad.content.decode(), query
        assert bad.context["days"] == 14  # falls back to the last 14 days, with the error shown


def _result_count(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.context["cl"].result_count


def test_every_card_links_to_the_filtered_admin_list_behind_its_number(dataset, staff_client):
    from pipeline.models import PossibleDuplicate

    response = staff_client.get("/admin/dashboard/")
    cards = {card["id"]: card for card in response.context["cards"]}
    for card in cards.values():
        assert f'id="{card["id"]}" href="{card["url"].replace("&", "&amp;")}"' in response.content.decode()
        assert staff_client.get(card["url"]).status_code == 200, card
    # Cards that count rows: the list behind them has exactly that many.
    for card_id in ("card-uploads", "card-new-leads", "card-dlq-depth", "card-open-alerts", "card-leads"):
        card = cards[card_id]
        assert _result_count(staff_client, card["url"]) == int(card["value"].replace(",", "")), card
    # Fed: 3 leads, by 4 `campaign_added` events in the range (l1 was fed twice); the list shows each feed.
    assert cards["card-fed"]["value"] == "3" and _result_count(staff_client, cards["card-fed"]["url"]) == 4
    # Rates: their list is the numerator ("2 of 4" e-mails verified).
    assert cards["card-email-verification"]["sub"] == "2 of 4"
    assert _result_count(staff_client, cards["card-email-verification"]["url"]) == 2
    assert cards["card-possible-duplicates"]["value"] == "0"
    with service_context():
        assert PossibleDuplicate.objects.count() == 0


def test_partner_quality_on_a_crafted_dataset(db, now):
    from pipeline.monitoring.dashboard import partner_quality, window_start

    good = _upload(
        now,
        days_ago=0,
        rows_total=100,
        leads_created=80,
        leads_merged=10,
        duplicates_in_file=5,
        rows_rejected=5,
        possible_duplicates=2,
    )
    poor = _upload(now, days_ago=1, rows_total=50, leads_created=20, rows_rejected=30, possible_duplicates=0)
    created = now - dt.timedelta(hours=1)
    LeadFactory.create_batch(3, source_upload_id=good.pk, created_at=created, email_verified=True)
    LeadFactory(source_upload_id=good.pk, created_at=created, added_to_campaign_at=now, last_reply_at=now)
    LeadFactory(source_upload_id=poor.pk, created_at=created - dt.timedelta(days=1), added_to_campaign_at=now)
    LeadFactory(source_upload_id=poor.pk, created_at=created - dt.timedelta(days=1), phone_verified=True)
    since = window_start(days=7, now=now)
    with service_context():
        rows = partner_quality(since=since, until=since + dt.timedelta(days=7), days=7)
    by_partner = {row["partner_id"]: row for row in rows}
    g, p = by_partner[good.partner_id], by_partner[poor.partner_id]
    # good: 100 rows, 5 rejected, 5 + 10 duplicates, 2 pairs; 4 leads, 3 verified; 1 fed, 1 replied.
    assert (g["rows"], g["rejected_rate"], g["duplicate_rate"], g["possible_duplicate_rate"]) == (
        100,
        0.05,
        0.15,
        0.02,
    )
    assert (g["leads"], g["verified_rate"], g["fed"], g["reply_rate"]) == (4, 0.75, 1, 1.0)
    # poor: 50 rows, 30 rejected; 2 leads, 1 verified; 1 fed, none replied.
    assert (p["rejected_rate"], p["verified_rate"], p["reply_rate"]) == (0.6, 0.5, 0.0)
    assert g["daily_verified"][-1] == 0.75 and g["daily_verified"][:-1] == [None] * 6
    assert p["daily_verified"][-2] == 0.5
    assert [row["partner_id"] for row in rows] == [good.partner_id, poor.partner_id]  # most rows first


def test_the_feeder_s_last_ten_business_days(db):
    from equity_connect.events import record_event
    from pipeline.models import BusinessHoliday
    from pipeline.monitoring.dashboard import feeder_days
    from tests.factories import FeederRunFactory

    friday = dt.date(2026, 11, 27)
    FeederRunFactory(business_date=friday, leads_pushed=240)
    with service_context():
        # Seeded by pipeline 0019; a transactional test's flush may have emptied the table, so put it back.
        BusinessHoliday.objects.get_or_create(day=dt.date(2026, 11, 26), defaults={"name": "Thanksgiving Day"})
        record_event("feeder_run", data={"business_date": friday.isoformat(), "limit": 250, "fed": 240, "ready": 900})
        days = feeder_days(today=dt.date(2026, 11, 30))  # a Monday
    assert len(days) == 10 and days[0]["date"] == dt.date(2026, 11, 30)
    assert all(day["date"].weekday() < 5 for day in days)
    assert dt.date(2026, 11, 26) not in [day["date"] for day in days]  # Thanksgiving: the holiday calendar
    assert days[-1]["date"] == dt.date(2026, 11, 16)
    fri = days[1]
    assert (fri["date"], fri["fed"], fri["limit"], fri["contactable"], fri["status"]) == (
        friday,
        240,
        250,
        900,
        "done",
    )
    assert (days[2]["fed"], days[2]["contactable"], days[2]["status"]) == (0, None, "no run")


def test_any_table_exports_as_csv(dataset, now, staff_client):
    import csv
    import io

    from security.models import Partner

    with service_context():
        Partner.objects.filter(pk=Upload.objects.order_by("created_at").last().partner_id).update(name="=HYPERLINK(1)")
    names = ("daily", "funnel", "campaign_status", "verification", "partners", "feeder", "alerts")
    page = staff_client.get("/admin/dashboard/?days=14").content.decode()
    for name in names:
        assert f"/admin/dashboard/export/{name}.csv?from=" in page, name
        response = staff_client.get(f"/admin/dashboard/export/{name}.csv?days=14")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv"), name
        assert "attachment" in response["Content-Disposition"]
    rows = list(
        csv.reader(io.StringIO(staff_client.get("/admin/dashboard/export/funnel.csv?days=14").content.decode()))
    )
    assert rows[0] == ["stage", "count", "share of the step before"]
    assert rows[1] == ["Uploaded rows", "19", ""] and rows[2][:2] == ["Deduped into leads", "17"]
    partners = staff_client.get("/admin/dashboard/export/partners.csv?days=14").content.decode()
    assert "'=HYPERLINK(1)" in partners  # a formula is quoted for spreadsheets
    assert staff_client.get("/admin/dashboard/export/nothing.csv").status_code == 404
    assert staff_client.get("/admin/dashboard/export/daily.csv?from=bad").status_code == 400


def test_a_lead_fed_and_replying_twice_counts_once(db, now):
    lead = LeadFactory(assigned_broker=BrokerFactory())
    for days_ago in (1, 3):
        _event(now, "campaign_added", lead=lead, days_ago=days_ago)
        _event(now, "email_replied", lead=lead, days_ago=days_ago)

    with service_context():
        funnel = {stage["stage"]: stage["count"] for stage in dashboard_figures(days=DAYS, now=now)["funnel"]}

    assert (funnel["fed"], funnel["replied"], funnel["booked"]) == (1, 1, 0)
