"""Dead-man's switches: alert rules that fire when something that should have happened did not.

- `mv_refresh_missing` (critical): no successful MV refresh for ALERT_MV_REFRESH_MAX_AGE_HOURS (26 h: the
  refresh is daily);
- `feeder_missed` (critical): a business day past ALERT_FEEDER_DEADLINE (06:30 Los Angeles; the feeder runs at
  06:00) without a feeder run for that day (fed, skipped as already fed, or a dry run);
- `feeder_short` (warning): the last feeder run fed fewer than its limit while the view offered at least that
  many leads;
- `feeder_dry_run` (critical): no INSTANTLY_API_KEY outside DEBUG, so every run is a dry run;
- `uploads_stuck` (critical): uploads older than UPLOAD_STUCK_MINUTES that are not done.

A switch can only fire when something runs it: the alerts job does every five minutes, and /healthz does too
when that job has not run for ALERTS_FALLBACK_AFTER_SECONDS (pipeline/monitoring/health.py), so the alerts
still go out when the scheduler is dead. Before the first expected run (a database migrated less than 26 h
ago, or after today's deadline) nothing is missing yet.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.db.migrations.recorder import MigrationRecorder

from equity_connect.models import PipelineEvent
from pipeline.campaigns.calendar import is_business_day
from pipeline.campaigns.feeder import business_date_for
from pipeline.jobs import CAMPAIGN_FEEDER
from pipeline.models import Upload, UploadStatus

from .types import Observation


def installed_at() -> dt.datetime | None:
    """When this database was first migrated: nothing can be missing from before then."""
    return MigrationRecorder.Migration.objects.order_by("applied").values_list("applied", flat=True).first()


def check_mv_refresh_missing(now: dt.datetime) -> Observation:
    hours = settings.ALERT_MV_REFRESH_MAX_AGE_HOURS
    last = (
        PipelineEvent.objects.filter(event_type="mv_refreshed", status="success")
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    since = last or installed_at() or now
    age = (now - since).total_seconds() / 3600
    when = f"last at {last:%Y-%m-%d %H:%M %Z}" if last else "none since the database was set up"
    return Observation(age > hours, round(age, 1), hours, f"MV refresh: {when} ({age:.1f} h ago; limit {hours} h)")


def check_dnc_registry_stale(now: dt.datetime) -> Observation:
    """The newest DNC registry import (`manage.py dnc_import`) is older than DNC_REGISTRY_MAX_AGE_DAYS (counted
    from the database's set-up while there is none): calls and texts would go to numbers listed since."""
    from leads.suppressions.models import DncRegistryImport

    days = settings.DNC_REGISTRY_MAX_AGE_DAYS
    last = DncRegistryImport.objects.order_by("-imported_at").values_list("imported_at", flat=True).first()
    since = last or installed_at() or now
    age = (now - since).total_seconds() / 86400
    when = f"last import {last:%Y-%m-%d}" if last else "no import since the database was set up"
    return Observation(age > days, round(age, 1), days, f"DNC registry: {when} ({age:.1f} days ago; limit {days})")


def _deadline(day: dt.date) -> dt.datetime:
    hour, minute = (int(part) for part in settings.ALERT_FEEDER_DEADLINE.split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zoneinfo.ZoneInfo(settings.SCHEDULE_TIME_ZONE))


def check_feeder_missed(now: dt.datetime) -> Observation:
    day = business_date_for(now)
    deadline = _deadline(day)
    due = is_business_day(day) and now >= deadline and (installed_at() or now) < deadline
    ran = (
        due
        and PipelineEvent.objects.filter(
            event_type__in=("feeder_run", "job_run", "job_skipped"),
            event_data__job=CAMPAIGN_FEEDER,
            event_data__business_date=day.isoformat(),
        ).exists()
    )
    missed = due and not ran
    if missed:
        message = f"No campaign feeder run for {day:%a %Y-%m-%d} by {settings.ALERT_FEEDER_DEADLINE} Los Angeles"
    else:
        message = f"Campaign feeder for {day:%a %Y-%m-%d}: " + ("ran" if ran else "not due")
    return Observation(missed, 1.0 if missed else 0.0, 0.0, message)


def check_feeder_short(now: dt.datetime) -> Observation:
    last = (
        PipelineEvent.objects.filter(event_type="feeder_run", event_data__job=CAMPAIGN_FEEDER)
        .order_by("-created_at", "-id")
        .values_list("event_data", flat=True)
        .first()
    )
    if not last or "ready" not in last:
        return Observation(False, None, 0.0, "Campaign feeder: no run to compare")
    fed, limit, ready = last.get("fed", 0), last.get("limit", 0), last["ready"]
    short = fed < limit and ready >= limit
    return Observation(
        short,
        fed,
        limit,
        f"Campaign feeder fed {fed} of {limit} leads for {last.get('business_date')} while {ready} were ready",
    )


def check_feeder_dry_run(now: dt.datetime) -> Observation:
    dry = not settings.INSTANTLY_API_KEY and not settings.DEBUG
    message = (
        "INSTANTLY_API_KEY is not set: the campaign feeder only does dry runs, nothing reaches Instantly"
        if dry
        else "Campaign feeder: live"
        if settings.INSTANTLY_API_KEY
        else "Campaign feeder: dry runs (DEBUG)"
    )
    return Observation(dry, 1.0 if dry else 0.0, 0.0, message)


def stuck_uploads(now: dt.datetime) -> dict:
    """Uploads older than UPLOAD_STUCK_MINUTES that are not done (nor failed): how many, and the oldest."""
    minutes = settings.UPLOAD_STUCK_MINUTES
    stuck = Upload.objects.filter(
        status__in=(UploadStatus.RECEIVED, UploadStatus.PROCESSING),
        created_at__lt=now - dt.timedelta(minutes=minutes),
    )
    oldest = stuck.order_by("created_at").values("id", "created_at").first()
    return {"count": stuck.count(), "older_than_minutes": minutes, "oldest": oldest}


def check_uploads_stuck(now: dt.datetime) -> Observation:
    stuck = stuck_uploads(now)
    count, minutes = stuck["count"], stuck["older_than_minutes"]
    message = f"{count} upload(s) not done after {minutes} minutes"
    if stuck["oldest"]:
        oldest = stuck["oldest"]
        message += f"; the oldest is {oldest['id']}, received {oldest['created_at']:%Y-%m-%d %H:%M %Z}"
    return Observation(count > 0, count, 0, message)
