"""The schedules: declared once by name, upserted, and timed in Los Angeles as django-q2 times them."""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ, Schedule
from django_q.scheduler import scheduler

from pipeline.schedules import SCHEDULES, next_run_after, next_runs_after, schedules_sync
from tests.pg import blocked_by
from tests.pg import connect as second_connection
from tests.waiting import wait_for

LA = zoneinfo.ZoneInfo("America/Los_Angeles")
CRON = {spec.name: spec.cron for spec in SCHEDULES}


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 1, 14, 0, 0), utc(2026, 1, 14, 13, 30)),  # January: PST, 05:30 = 13:30 UTC
        (utc(2026, 1, 14, 13, 31), utc(2026, 1, 15, 13, 30)),  # just after: tomorrow's
        (utc(2026, 7, 15, 0, 0), utc(2026, 7, 15, 12, 30)),  # July: PDT, 05:30 = 12:30 UTC
        (utc(2026, 3, 8, 12, 0), utc(2026, 3, 8, 12, 30)),  # the day clocks go forward: already PDT
        (utc(2026, 11, 1, 12, 0), utc(2026, 11, 1, 13, 30)),  # the day clocks go back: PST again
    ],
)
def test_the_mv_refresh_runs_at_0530_los_angeles_time(instant, expected):
    assert next_run_after(CRON["refresh_contactable_leads"], instant) == expected


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 1, 16, 15, 0), utc(2026, 1, 19, 14, 0)),  # Friday 07:00 PST -> Monday 06:00 PST
        (utc(2026, 1, 17, 12, 0), utc(2026, 1, 19, 14, 0)),  # Saturday -> Monday
        (utc(2026, 1, 14, 13, 0), utc(2026, 1, 14, 14, 0)),  # Wednesday 05:00 -> the same day 06:00
        (utc(2026, 7, 17, 14, 0), utc(2026, 7, 20, 13, 0)),  # Friday 07:00 PDT -> Monday 06:00 PDT
        (utc(2026, 7, 18, 20, 0), utc(2026, 7, 20, 13, 0)),  # Saturday -> Monday
    ],
)
def test_the_feeder_runs_at_0600_on_weekdays_and_skips_the_weekend(instant, expected):
    assert next_run_after(CRON["campaign_feeder"], instant) == expected


@pytest.mark.parametrize("start", [utc(2026, 1, 1), utc(2026, 7, 1)])
def test_a_month_of_feeder_runs_has_no_saturday_or_sunday(start):
    runs = [run.astimezone(LA) for run in next_runs_after(CRON["campaign_feeder"], start, 22)]

    assert all(run.weekday() < 5 for run in runs)
    assert {(run.hour, run.minute) for run in runs} == {(6, 0)}
    assert len({run.date() for run in runs}) == 22


def test_the_other_jobs_are_declared():
    assert CRON["dlq_retry"] == "*/15 * * * *"
    assert CRON["alerts_evaluate"] == "*/5 * * * *"
    assert next_run_after(CRON["cleanup"], utc(2026, 1, 14)).astimezone(LA).time() == dt.time(3, 15)


@pytest.mark.django_db
def test_sync_creates_each_schedule_once_and_never_duplicates():
    Schedule.objects.filter(name__in=CRON).delete()  # in case a post_migrate sync already made them

    first = schedules_sync()
    second = schedules_sync()

    assert sorted(first.created) == sorted(CRON)
    assert second.created == [] and second.updated == [] and sorted(second.unchanged) == sorted(CRON)
    assert Schedule.objects.filter(name__in=CRON).count() == len(CRON)
    feeder = Schedule.objects.get(name="campaign_feeder")
    assert feeder.func == "pipeline.tasks.campaign_feeder_task" and feeder.schedule_type == Schedule.CRON
    assert feeder.intended_date_kwarg == "intended_date"
    assert feeder.next_run.astimezone(LA).time() == dt.time(6, 0) and feeder.next_run.astimezone(LA).weekday() < 5


@pytest.mark.django_db
def test_sync_repairs_changes_removes_copies_keeps_a_pause_and_leaves_other_schedules_alone():
    schedules_sync()
    Schedule.objects.filter(name="refresh_contactable_leads").update(cron="0 9 * * *", func="somewhere.else")
    Schedule.objects.create(
        name="dlq_retry", func="pipeline.tasks.dlq_retry_task", schedule_type=Schedule.CRON, cron="*/15 * * * *"
    )
    Schedule.objects.filter(name="cleanup").update(repeats=0)  # paused by an operator
    Schedule.objects.create(name="someone_elses_job", func="x.y", schedule_type=Schedule.MINUTES, minutes=5)

    result = schedules_sync()

    assert result.updated == ["refresh_contactable_leads"] and result.duplicates_removed == 1
    refresh = Schedule.objects.get(name="refresh_contactable_leads")
    assert (refresh.cron, refresh.func) == ("30 5 * * *", "pipeline.tasks.refresh_contactable_leads_task")
    assert refresh.next_run.astimezone(LA).time() == dt.time(5, 30)
    assert Schedule.objects.filter(name="dlq_retry").count() == 1
    assert Schedule.objects.get(name="cleanup").repeats == 0
    assert Schedule.objects.filter(name="someone_elses_job").exists()


@pytest.mark.django_db
def test_next_run_after_agrees_with_django_q2s_own_calculation():
    schedules_sync()
    for name in ("refresh_contactable_leads", "campaign_feeder", "cleanup"):
        schedule = Schedule.objects.get(name=name)
        before = next_run_after(schedule.cron, timezone.now())
        theirs = schedule.calculate_next_run()
        after = next_run_after(schedule.cron, timezone.now())
        assert theirs in (before, after)


@pytest.mark.django_db
def test_the_command_syncs_and_prints_the_next_runs(capsys):
    Schedule.objects.filter(name__in=CRON).delete()
    call_command("sync_schedules")
    call_command("sync_schedules")

    out = capsys.readouterr().out
    assert "created campaign_feeder" in out and "unchanged campaign_feeder" in out
    assert "refresh_contactable_leads" in out and "next " in out
    assert Schedule.objects.filter(name__in=CRON).count() == len(CRON)


@pytest.mark.django_db(transaction=True)
def test_django_q2s_scheduler_enqueues_the_feeder_with_its_intended_date_and_moves_next_run():
    schedules_sync()
    due = utc(2026, 1, 5, 14, 0)  # a Monday's 06:00 slot, long past
    Schedule.objects.filter(name="campaign_feeder").update(next_run=due)

    scheduler(broker=get_broker())

    queued = [q.task for q in OrmQ.objects.all()]
    feeder_tasks = [task for task in queued if task["func"] == "pipeline.tasks.campaign_feeder_task"]
    assert len(feeder_tasks) == 1
    assert dt.datetime.fromisoformat(feeder_tasks[0]["kwargs"]["intended_date"]) == due
    feeder = Schedule.objects.get(name="campaign_feeder")
    assert feeder.next_run > timezone.now()  # no catch-up of missed slots
    assert feeder.next_run.astimezone(LA).time() == dt.time(6, 0)
    assert feeder.next_run.astimezone(LA).weekday() < 5


def feeder_tasks() -> list[dict]:
    return [q.task for q in OrmQ.objects.all() if q.task["func"] == "pipeline.tasks.campaign_feeder_task"]


@pytest.mark.django_db(transaction=True)
def test_two_clusters_scheduling_at_the_same_moment_enqueue_the_feeder_once():
    # Two clusters' schedulers find Monday's 06:00 slot due at once. A lock on the schedule's row holds both
    # at their read, so that both then run side by side on two connections.
    schedules_sync()
    due = utc(2026, 1, 5, 14, 0)
    Schedule.objects.filter(name="campaign_feeder").update(next_run=due)
    feeder = Schedule.objects.get(name="campaign_feeder")

    def cluster():
        try:
            scheduler(broker=get_broker())
        finally:
            connection.close()

    with second_connection(autocommit=False) as holder:
        holder.execute("SELECT id FROM django_q_schedule WHERE id = %s FOR UPDATE", [feeder.pk])
        threads = [threading.Thread(target=cluster) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(blocked_by(holder.info.backend_pid)) == 2, message="both schedulers waiting on the row")
        holder.rollback()
    for thread in threads:
        thread.join(timeout=30)

    tasks = feeder_tasks()
    assert len(tasks) == 1  # one task for the slot; the feeder's ledger guards the day beyond that
    assert dt.datetime.fromisoformat(tasks[0]["kwargs"]["intended_date"]) == due
    assert Schedule.objects.get(name="campaign_feeder").next_run > timezone.now()


@pytest.mark.django_db
def test_the_schedules_and_the_feeder_ledger_are_visible_in_the_admin(client):
    from tests.factories import FeederRunFactory, StaffUserFactory, WebhookDeliveryFactory

    schedules_sync()
    FeederRunFactory()
    WebhookDeliveryFactory()
    client.force_login(StaffUserFactory())

    schedules = client.get("/admin/django_q/schedule/")
    runs = client.get("/admin/pipeline/feederrun/")
    deliveries = client.get("/admin/pipeline/webhookdelivery/")

    assert schedules.status_code == runs.status_code == deliveries.status_code == 200
    assert all(name.encode() in schedules.content for name in CRON)
    assert client.get("/admin/pipeline/feederrun/add/").status_code == 403  # the ledger is the jobs' to write
