"""The launch-day view: the dashboard's first screen answers the go-live lists of the plan this product grew from.

"First 24 hours": error rates (requests refused, rows rejected, uploads failed, jobs failed), the DLQ's depth,
the data flow (rows in -> leads -> fed), when the contactable view was refreshed and the feeder last ran, and the
alerts firing. "First week / month": per week, the reply rate (replies per lead fed that week) and the
processing time (median `dedupe_success.duration_ms`), each against the first week, the week the first lead was
fed (or the first upload processed). Read-only; events are read by type and time (their index), uploads by time.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, Sum
from django.utils import timezone

from equity_connect.models import PipelineEvent
from pipeline.models import Alert, AlertState, Upload

from .dashboard import dlq_depth

WEEKS = 8  # the first week and the latest ones, at most this many in all

_WEEKLY_SQL = """
SELECT date_trunc('week', created_at AT TIME ZONE %(zone)s)::date AS week,
       count(*) FILTER (WHERE event_type = 'campaign_added') AS fed,
       count(*) FILTER (WHERE event_type = 'email_replied') AS replied,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)
         FILTER (WHERE event_type = 'dedupe_success' AND duration_ms IS NOT NULL) AS processing_ms
  FROM pipeline_events
 WHERE event_type IN ('campaign_added', 'email_replied', 'dedupe_success')
   AND created_at >= %(since)s
 GROUP BY 1
"""


def _last(event_type: str, **filters):
    return PipelineEvent.objects.filter(event_type=event_type, **filters).order_by("-created_at").first()


def _rate(part: int | None, whole: int | None) -> float | None:
    return part / whole if whole else None


def first_24_hours(*, now: dt.datetime) -> dict:
    since = now - dt.timedelta(hours=24)
    uploads = Upload.objects.filter(created_at__gte=since).aggregate(
        uploads=Count("id"),
        failed=Count("id", filter=Q(status="failed")),
        rows_in=Sum("rows_total"),
        rows_rejected=Sum("rows_rejected"),
        leads_created=Sum("leads_created"),
        leads_merged=Sum("leads_merged"),
    )
    events = dict(
        PipelineEvent.objects.filter(
            created_at__gte=since, event_type__in=("upload_received", "upload_rejected", "campaign_added")
        )
        .values_list("event_type")
        .annotate(count=Count("id"))
    )
    requests = events.get("upload_received", 0) + events.get("upload_rejected", 0)
    rows_in = uploads["rows_in"] or 0
    feeder = _last("feeder_run")
    refreshed = _last("mv_refreshed", status="success")
    firing = Alert.objects.filter(state=AlertState.FIRING).aggregate(
        firing=Count("id"), critical=Count("id", filter=Q(severity="critical"))
    )
    return {
        "since": since,
        "requests": requests,
        "requests_refused": events.get("upload_rejected", 0),
        "refused_rate": _rate(events.get("upload_rejected", 0), requests),
        "uploads": uploads["uploads"],
        "uploads_failed": uploads["failed"],
        "rows_in": rows_in,
        "rows_rejected": uploads["rows_rejected"] or 0,
        "rejected_rate": _rate(uploads["rows_rejected"] or 0, rows_in),
        "leads": (uploads["leads_created"] or 0) + (uploads["leads_merged"] or 0),
        "fed": events.get("campaign_added", 0),
        "jobs_failed": PipelineEvent.objects.filter(
            created_at__gte=since, event_type__in=("job_run", "feeder_run", "mv_refreshed"), status="failure"
        ).count(),
        "dlq_depth": dlq_depth(),
        "mv_refreshed_at": refreshed.created_at if refreshed else None,
        "feeder_ran_at": feeder.created_at if feeder else None,
        "feeder_status": feeder.status if feeder else None,
        "feeder_fed": (feeder.event_data or {}).get("fed") if feeder else None,
        "alerts_firing": firing["firing"],
        "alerts_critical": firing["critical"],
    }


def weekly_trends(*, now: dt.datetime) -> list[dict]:
    """One row per shown week, oldest first: the first week, then the latest weeks (WEEKS in all)."""
    zone = settings.SCHEDULE_TIME_ZONE
    first = (
        PipelineEvent.objects.filter(event_type__in=("campaign_added", "dedupe_success"))
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if first is None:
        return []
    local = zoneinfo.ZoneInfo(zone)
    first_week = first.astimezone(local).date() - dt.timedelta(days=first.astimezone(local).weekday())
    this_week = now.astimezone(local).date() - dt.timedelta(days=now.astimezone(local).weekday())
    weeks = [first_week]
    latest = max(first_week + dt.timedelta(weeks=1), this_week - dt.timedelta(weeks=WEEKS - 2))
    while latest <= this_week:
        weeks.append(latest)
        latest += dt.timedelta(weeks=1)
    with connection.cursor() as cursor:
        cursor.execute(_WEEKLY_SQL, {"zone": zone, "since": first - dt.timedelta(days=7)})
        found = {week: (fed, replied, ms) for week, fed, replied, ms in cursor.fetchall()}
    rows = []
    for week in weeks:
        fed, replied, processing_ms = found.get(week, (0, 0, None))
        rows.append(
            {
                "week": week,
                "fed": fed,
                "replied": replied,
                "reply_rate": _rate(replied, fed),
                "processing_ms": processing_ms,
            }
        )
    base = rows[0]
    for row in rows:
        row["reply_vs_first"] = _ratio(row["reply_rate"], base["reply_rate"])
        row["processing_vs_first"] = _ratio(row["processing_ms"], base["processing_ms"])
    return rows


def _ratio(value: float | None, first: float | None) -> float | None:
    return value / first if value is not None and first else None


def launch_figures(*, now: dt.datetime | None = None) -> dict:
    """What the dashboard's first screen shows (inside a service context)."""
    now = now or timezone.now()
    return {"day": first_24_hours(now=now), "weeks": weekly_trends(now=now)}
