"""The scheduled jobs, declared here by stable name and upserted into django-q2's `Schedule`.

`schedules_sync()` creates what is missing and updates what changed, by name; it never deletes a schedule
of another name and never creates a second one of the same name (extra copies of one of our names are
removed). `manage.py sync_schedules` runs it (and `make run` runs that before starting the cluster).

Cron is evaluated by django-q2 in `Q_CLUSTER['time_zone']` (America/Los_Angeles), so 05:30 stays 05:30
local time across daylight-saving changes; `next_run` is stored in UTC. `next_run_after()` computes the
next slot exactly as django-q2's `Schedule.calculate_next_run` does (croniter over the local time), but
from any given instant.

A schedule paused in the admin (repeats = 0) stays paused: sync keeps an operator's pause.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from croniter import croniter
from django.db import connection, transaction
from django_q.conf import Conf
from django_q.models import Schedule

from pipeline import jobs


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    cron: str
    description: str
    intended_date_kwarg: str | None = None


SCHEDULES: tuple[ScheduleSpec, ...] = (
    ScheduleSpec(
        name=jobs.MV_REFRESH,
        func="pipeline.tasks.refresh_contactable_leads_task",
        cron="30 5 * * *",
        description="REFRESH MATERIALIZED VIEW CONCURRENTLY mv_contactable_leads, daily 05:30 Los Angeles",
    ),
    ScheduleSpec(
        name=jobs.CAMPAIGN_FEEDER,
        func="pipeline.tasks.campaign_feeder_task",
        cron="0 6 * * 1-5",
        description="Campaign feeder: FEEDER_DAILY_LIMIT leads to Instantly, Mon-Fri 06:00 Los Angeles",
        # The intended run instant is the business day's idempotency key (one feed per day).
        intended_date_kwarg="intended_date",
    ),
    ScheduleSpec(
        name=jobs.SMS_FEEDER,
        func="pipeline.tasks.sms_feeder_task",
        cron="*/15 * * * *",
        description="SMS feed: first texts to SMS-only leads whose contact window is open (limit shared with e-mail)",
    ),
    ScheduleSpec(
        # 03:15, not 01:00-02:59: that hour is skipped or repeated on daylight-saving days.
        name=jobs.CLEANUP,
        func="pipeline.tasks.cleanup_task",
        cron="15 3 * * *",
        description="Cleanups: replay guards > 7 days, consent tokens > 30 days, expired upload files, rate limits",
    ),
    ScheduleSpec(
        name=jobs.RETENTION,
        func="pipeline.tasks.retention_task",
        cron="45 3 * * *",
        description="Retention: DLQ payloads, staging, webhook deliveries, events (detail, months), access, consent",
    ),
    ScheduleSpec(
        name=jobs.EVENT_PARTITIONS,
        func="pipeline.tasks.event_partitions_task",
        cron="5 4 * * *",
        description="pipeline_events: this month's partition and the next EVENT_PARTITION_MONTHS_AHEAD months'",
    ),
    ScheduleSpec(
        name=jobs.LEAD_SEARCH_FOLD,
        func="pipeline.tasks.lead_search_fold_task",
        cron="35 4 * * *",
        description="Portal search: the small lead_search partitions (one per large upload) folded into one",
    ),
    ScheduleSpec(
        # Before the 05:30 refresh of mv_contactable_leads, so the morning's feed ranks on tonight's scores.
        name=jobs.SCORE_MODEL_TRAIN,
        func="pipeline.tasks.score_model_train_task",
        cron="15 4 * * *",
        description="Train the learned score on the recorded outcomes; promote it only if it beats the rule score",
    ),
    ScheduleSpec(
        name=jobs.DLQ_RETRY,
        func="pipeline.tasks.dlq_retry_task",
        cron="*/15 * * * *",
        description="Retry DLQ rows whose retry_after has passed (Instantly pushes, transient failures)",
    ),
    ScheduleSpec(
        name=jobs.UPLOAD_SWEEP,
        func="pipeline.tasks.uploads_sweep_task",
        cron="* * * * *",
        description="Queue again the uploads no worker holds (a lost task); also the scheduler's heartbeat",
    ),
    ScheduleSpec(
        name=jobs.CONTACTS_ENCRYPT,
        func="pipeline.tasks.contacts_encrypt_task",
        cron="* * * * *",
        description="Encrypt the e-mail and phone of leads the seed's upsert_lead() wrote (plaintext) and index them",
    ),
    ScheduleSpec(
        name=jobs.SUPPRESSION_SYNC,
        func="pipeline.tasks.suppressions_instantly_sync_task",
        cron="* * * * *",
        description="New suppression entries to Instantly: block-list entries, running sequences stopped",
    ),
    ScheduleSpec(
        name=jobs.NOTIFICATIONS_MAIL,
        func="pipeline.tasks.broker_notifications_mail_task",
        cron="*/5 * * * *",
        description="Brokers' notification e-mails (replies, appointments, consent): one each, at most every 15 min",
    ),
    ScheduleSpec(
        name=jobs.ALERTS,
        func="pipeline.tasks.alerts_evaluate_task",
        cron="*/5 * * * *",
        description="Evaluate the alert rules; also the scheduler's heartbeat",
    ),
)


def schedule_time_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(Conf.TIME_ZONE)


def next_run_after(cron: str, instant: dt.datetime) -> dt.datetime:
    """The first cron slot after `instant` (aware), as django-q2 computes it, returned in UTC."""
    local = instant.astimezone(schedule_time_zone())
    return croniter(cron, local).get_next(dt.datetime).astimezone(dt.UTC)


def next_runs_after(cron: str, instant: dt.datetime, count: int) -> list[dt.datetime]:
    runs, current = [], instant
    for _ in range(count):
        current = next_run_after(cron, current)
        runs.append(current)
    return runs


@dataclass
class SyncResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    duplicates_removed: int

    def lines(self) -> list[str]:
        lines = [f"created {name}" for name in self.created] + [f"updated {name}" for name in self.updated]
        lines += [f"unchanged {name}" for name in self.unchanged]
        if self.duplicates_removed:
            lines.append(f"removed {self.duplicates_removed} duplicate schedule(s)")
        return lines


def schedules_sync(specs: tuple[ScheduleSpec, ...] = SCHEDULES) -> SyncResult:
    """Upsert each spec by name. Safe to run concurrently (serialised by an advisory lock) and repeatedly."""
    result = SyncResult(created=[], updated=[], unchanged=[], duplicates_removed=0)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('pipeline.schedules_sync'))")
        for spec in specs:
            existing = list(Schedule.objects.filter(name=spec.name).order_by("id"))
            if len(existing) > 1:
                Schedule.objects.filter(id__in=[s.id for s in existing[1:]]).delete()
                result.duplicates_removed += len(existing) - 1
            if not existing:
                Schedule.objects.create(
                    name=spec.name,
                    func=spec.func,
                    schedule_type=Schedule.CRON,
                    cron=spec.cron,
                    repeats=-1,
                    intended_date_kwarg=spec.intended_date_kwarg,
                )  # Schedule.save() computes next_run from the cron for a new CRON schedule
                result.created.append(spec.name)
                continue
            schedule = existing[0]
            wanted = {
                "func": spec.func,
                "schedule_type": Schedule.CRON,
                "cron": spec.cron,
                "intended_date_kwarg": spec.intended_date_kwarg,
                "minutes": None,
                "args": None,
                "kwargs": None,
            }
            changed = [key for key, value in wanted.items() if getattr(schedule, key) != value]
            timing_changed = {"cron", "schedule_type"} & set(changed) or schedule.next_run is None
            if schedule.repeats not in (-1, 0):  # 0 = paused by an operator: keep the pause
                schedule.repeats = -1
                changed.append("repeats")
            if not changed and not timing_changed:
                result.unchanged.append(spec.name)
                continue
            for key, value in wanted.items():
                setattr(schedule, key, value)
            if timing_changed:
                schedule.next_run = schedule.calculate_next_run()
            schedule.save()
            result.updated.append(spec.name)
    return result


def schedules_sync_on_migrate(sender=None, **kwargs) -> None:
    """A `post_migrate` receiver (connect it with sender=the pipeline app config) that runs the sync."""
    schedules_sync()
