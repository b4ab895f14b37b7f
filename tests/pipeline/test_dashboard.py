"""Every dashboard figure on a crafted dataset equals the value worked out by hand (in the comments)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from equity_connect.db import broker_context, service_context
from equity_connect.models import PipelineEvent
from pipeline.models import Upload
from pipeline.monitoring.dashboard import dashboard_figures
from tests.factories import BrokerFactory, LeadFactory, PipelineDLQFactory, PipelineEventFactory, UploadFactory

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
        PipelineEvent.objects.filter(pk=event.pk).update(created_at=now - dt.timedelta(days=days_ago, hours=1))


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
    for chart in ("chart-daily-uploads", "chart-funnel", "chart-campaign-status", "chart-verification"):
        assert f'id="{chart}"' in body
    assert "vendor/chart.umd.min.js" in body
    assert 'id="ec-dashboard-data"' in body


def test_dashboard_is_staff_only(db, client):
    from tests.factories import BrokerFactory

    assert client.get("/admin/dashboard/").status_code == 302  # to the admin login
    broker = BrokerFactory()
    client.force_login(broker.user)
    response = client.get("/admin/dashboard/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_lead_fed_and_replying_twice_counts_once(db, now):
    lead = LeadFactory(assigned_broker=BrokerFactory())
    for days_ago in (1, 3):
        _event(now, "campaign_added", lead=lead, days_ago=days_ago)
        _event(now, "email_replied", lead=lead, days_ago=days_ago)

    with service_context():
        funnel = {stage["stage"]: stage["count"] for stage in dashboard_figures(days=DAYS, now=now)["funnel"]}

    assert (funnel["fed"], funnel["replied"], funnel["booked"]) == (1, 1, 0)
