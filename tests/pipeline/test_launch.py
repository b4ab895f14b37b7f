"""The launch-day view (pipeline/monitoring/launch.py): the last 24 hours and the weeks against the first."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from pipeline.monitoring.launch import first_24_hours, weekly_trends
from tests.factories import AlertFactory, PipelineDLQFactory, PipelineEventFactory, UploadFactory, backdate_events

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.UTC)  # a Tuesday


def _event(event_type: str, at: dt.datetime, **fields) -> None:
    event = PipelineEventFactory(event_type=event_type, **fields)
    with service_context():
        backdate_events(PipelineEvent.objects.filter(pk=event.pk), at)


def _upload(at: dt.datetime, **fields):
    upload = UploadFactory(**fields)
    with service_context():
        type(upload).objects.filter(pk=upload.pk).update(created_at=at)


def test_the_first_24_hours():
    recent, old = NOW - dt.timedelta(hours=2), NOW - dt.timedelta(hours=30)
    _upload(recent, status="done", rows_total=1000, rows_rejected=50, leads_created=700, leads_merged=100)
    _upload(recent, status="failed", rows_total=0)
    _upload(old, status="done", rows_total=9999, rows_rejected=9999)  # yesterday's: not counted
    for _ in range(3):
        _event("upload_received", recent)
    _event("upload_rejected", recent)
    for _ in range(4):
        _event("campaign_added", recent)
    _event("campaign_added", old)
    _event("mv_refreshed", NOW - dt.timedelta(hours=12, minutes=30))
    _event("feeder_run", NOW - dt.timedelta(hours=12), event_data={"fed": 4})
    _event("job_run", recent, status="failure")
    PipelineDLQFactory.create_batch(2, upload=None)
    AlertFactory(rule="dlq_depth", severity="critical")
    with service_context():
        day = first_24_hours(now=NOW)
    assert (day["requests"], day["requests_refused"], day["refused_rate"]) == (4, 1, 0.25)
    assert (day["rows_in"], day["rows_rejected"], day["rejected_rate"]) == (1000, 50, 0.05)
    assert (day["uploads"], day["uploads_failed"], day["leads"], day["fed"]) == (2, 1, 800, 4)
    assert (day["jobs_failed"], day["dlq_depth"], day["alerts_firing"], day["alerts_critical"]) == (1, 2, 1, 1)
    assert day["mv_refreshed_at"] == NOW - dt.timedelta(hours=12, minutes=30)
    assert (day["feeder_ran_at"], day["feeder_fed"]) == (NOW - dt.timedelta(hours=12), 4)


def test_each_week_against_the_first():
    week = dt.timedelta(weeks=1)
    first = NOW - 12 * week  # the first lead fed twelve weeks ago
    for weeks_ago, fed, replied, duration in ((12, 10, 1, 400), (1, 20, 4, 800), (0, 10, 3, 200)):
        at = NOW - weeks_ago * week
        for _ in range(fed):
            _event("campaign_added", at)
        for _ in range(replied):
            _event("email_replied", at)
        _event("dedupe_success", at, duration_ms=duration)
    with service_context():
        rows = weekly_trends(now=NOW)
    assert len(rows) == 8  # the first week, then the seven latest
    assert rows[0]["week"] == (first.date() - dt.timedelta(days=first.weekday()))
    assert (rows[0]["reply_rate"], rows[0]["processing_ms"], rows[0]["reply_vs_first"]) == (0.1, 400, 1.0)
    assert (rows[-2]["reply_rate"], rows[-2]["reply_vs_first"], rows[-2]["processing_vs_first"]) == (0.2, 2.0, 2.0)
    assert (rows[-1]["reply_rate"], rows[-1]["processing_ms"], rows[-1]["processing_vs_first"]) == (0.3, 200, 0.5)
    assert rows[1]["fed"] == 0 and rows[1]["reply_rate"] is None  # a quiet week: no rate, a gap in the line


def test_no_weeks_before_anything_happened():
    with service_context():
        assert weekly_trends(now=timezone.now()) == []
