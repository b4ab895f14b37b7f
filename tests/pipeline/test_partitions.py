"""`pipeline_events` partitioned by month (pipeline migration 0018): the daily job creates the months ahead, the
DEFAULT partition takes whatever no month covers, a partition read directly shows nothing, and a broker still
sees only their own events through the parent."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.utils import timezone

from equity_connect.db import broker_context, service_context
from equity_connect.events import record_event
from equity_connect.models import PipelineEvent
from pipeline.schedules import SCHEDULES
from pipeline.tasks import event_partitions_task
from tests.factories import BrokerFactory, PipelineEventFactory, backdate_events

pytestmark = pytest.mark.django_db


def month_start(months_from_now: int) -> dt.date:
    today = timezone.now().astimezone(dt.UTC).date()
    year, month = divmod(today.year * 12 + today.month - 1 + months_from_now, 12)
    return dt.date(year, month + 1, 1)


def partition_name(months_from_now: int) -> str:
    return f"pipeline_events_{month_start(months_from_now):%Y_%m}"


def partitions() -> dict[str, bool]:
    """Each partition of pipeline_events and whether row-level security is on for it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'pipeline_events'::regclass"
        )
        return dict(cursor.fetchall())


def stored_in(event_id: int) -> str:
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM pipeline_events WHERE id = %s", [event_id])
        return cursor.fetchone()[0]


def event_at(when: dt.datetime, **fields) -> PipelineEvent:
    """An event created at `when` (the model stamps the insert time; an UPDATE moves the row to its month)."""
    event = PipelineEventFactory(**fields)
    with service_context():
        backdate_events(PipelineEvent.objects.filter(pk=event.pk), when)
    return event


def test_the_table_is_partitioned_by_month_with_a_default_partition_and_the_months_ahead():
    names = partitions()
    assert "pipeline_events_default" in names
    assert {partition_name(offset) for offset in range(4)} <= set(names)
    assert all(names.values()), "every partition has row-level security on (and no policy)"
    with connection.cursor() as cursor:
        cursor.execute("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'pipeline_events'::regclass")
        assert cursor.fetchone() == ("r",)
        cursor.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'pipeline_events'::regclass ORDER BY 1"
        )
        assert [row[0] for row in cursor.fetchall()] == [
            "pipeline_events_broker_idx",
            "pipeline_events_created_idx",
            "pipeline_events_lead_idx",
            "pipeline_events_outcome_idx",
            "pipeline_events_pkey",
            "pipeline_events_type_idx",
            "pipeline_events_upload_idx",
        ]


def test_the_daily_job_creates_the_months_ahead_once(settings):
    settings.EVENT_PARTITION_MONTHS_AHEAD = 6
    assert partition_name(6) not in partitions()

    assert event_partitions_task() == "event partitions: 3 created"

    names = partitions()
    assert {partition_name(offset) for offset in range(7)} <= set(names)
    assert names[partition_name(6)] is True  # RLS on the new partition too
    assert event_partitions_task() == "event partitions: 0 created"
    with service_context():
        runs = PipelineEvent.objects.filter(event_type="job_run", event_data__job="event_partitions")
        assert sorted(run.event_data["partitions_created"] for run in runs) == [0, 3]


def test_the_job_is_scheduled_daily():
    (spec,) = [spec for spec in SCHEDULES if spec.name == "event_partitions"]
    assert (spec.func, spec.cron) == ("pipeline.tasks.event_partitions_task", "5 4 * * *")


def test_an_event_no_month_covers_lands_in_the_default_partition():
    now = timezone.now()
    future = event_at(now + dt.timedelta(days=3650))
    past = event_at(now - dt.timedelta(days=3650))
    with service_context():
        record_event("job_run", data={"job": "x"})
        recent = PipelineEvent.objects.filter(event_type="job_run").get()

    assert stored_in(future.pk) == stored_in(past.pk) == "pipeline_events_default"
    assert stored_in(recent.pk) == partition_name(0)


def test_a_month_created_later_takes_its_rows_from_the_default_partition(settings):
    when = timezone.make_aware(dt.datetime.combine(month_start(8), dt.time(12)), dt.UTC)
    early = event_at(when, event_type="lead_created")
    assert stored_in(early.pk) == "pipeline_events_default"
    settings.EVENT_PARTITION_MONTHS_AHEAD = 9

    event_partitions_task()

    assert stored_in(early.pk) == partition_name(8)
    with service_context():
        assert PipelineEvent.objects.get(pk=early.pk).created_at == when


def test_a_partition_read_directly_shows_no_row():
    broker = BrokerFactory()
    event_at(timezone.now(), broker_id=broker.pk)
    event_at(timezone.now() + dt.timedelta(days=3650), broker_id=broker.pk)
    for table in (partition_name(0), "pipeline_events_default"):
        with connection.cursor() as cursor:  # the login role with no context: plain privileges, no policy
            cursor.execute(f"SELECT count(*) FROM {table}")
            assert cursor.fetchone() == (0,)
        with (
            broker_context(broker.pk),
            pytest.raises(ProgrammingError, match="permission denied"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")
    with broker_context(broker.pk):
        assert PipelineEvent.objects.count() == 2


def test_a_broker_sees_only_their_own_events_in_every_month():
    mine, theirs = BrokerFactory(), BrokerFactory()
    now = timezone.now()
    for when in (now, now + dt.timedelta(days=40), now + dt.timedelta(days=3650)):
        event_at(when, broker_id=mine.pk)
        event_at(when, broker_id=theirs.pk)

    with broker_context(mine.pk):
        assert set(PipelineEvent.objects.values_list("broker_id", flat=True)) == {mine.pk}
        assert PipelineEvent.objects.count() == 3
    with service_context():
        assert PipelineEvent.objects.count() == 6
