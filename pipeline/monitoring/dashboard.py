"""The dashboard's figures: one query module for the staff dashboard and the broker portal.

    dashboard_figures()                 # staff: every lead, upload and event
    dashboard_figures(broker=broker)    # a broker: only their own leads and events
    dashboard_figures(start=date(2026, 11, 1), end=date(2026, 11, 30))   # a date range (local dates, inclusive)
    partner_quality(since=…, until=…, days=…)   # staff: per partner, the quality of their files
    feeder_days(today=…)                        # staff: the feeder's last ten business days

Call it inside the caller's database context (a staff request runs as `service_role`, a broker as
`authenticated`): row-level security is the second wall, `Lead.objects.for_broker` and `broker_id` on
events the first. Nothing here writes.

Definitions (every figure is over the last `days` days, or the `start`..`end` range, local dates in TIME_ZONE,
unless it says "now"; every event query is bounded by `event_type` and `created_at`, or by `lead_id`, so it uses
one of `pipeline_events`' indexes however large the table grows):
- `daily_uploads`: uploads received per day (`uploads_total`: their sum). For a broker: distinct source
  uploads of their leads created that day (brokers cannot read `uploads`).
- `daily_leads`: leads created per day.
- `verification`: of the leads created in the window — share with a verified email among those with an
  email, share with a verified phone among those with a phone, share verified on either channel.
- `campaign_status`: leads per campaign status, now (every status present, zero-filled).
- funnel (`funnel`, ordered): rows uploaded → rows deduped into a lead (created or merged) → leads
  verified (created in the window, either channel) → fed (distinct leads with a `campaign_added` or
  `sms_sent` event in the window) → replied / booked (those fed leads that have an `email_replied` or
  `sms_replied` / an `appointment_booked` event since the window's start). For a broker the first two stages
  are their leads created in the window.
- `reply_rate` = replied / fed and `booking_rate` = booked / fed (None when nothing was fed).
- `dlq_depth`: DLQ items open or retrying, now.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from equity_connect.models import PipelineEvent
from leads.models import CampaignStatus, Lead
from pipeline.campaigns.calendar import is_business_day
from pipeline.campaigns.feeder import business_date_for
from pipeline.models import DLQStatus, FeederRun, PipelineDLQ, Upload

FUNNEL_STAGES = (
    ("uploaded", "Uploaded rows"),
    ("deduped", "Deduped into leads"),
    ("verified", "Verified"),
    ("fed", "Fed to campaign"),
    ("replied", "Replied"),
    ("booked", "Booked"),
)
OPEN_DLQ_STATUSES = (DLQStatus.OPEN, DLQStatus.RETRYING)


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if not denominator else numerator / denominator


def window_start(*, days: int, now: dt.datetime | None = None) -> dt.datetime:
    """The start of a `days`-day window ending today: local midnight `days - 1` days ago."""
    today = timezone.localdate(now or timezone.now())
    first = today - dt.timedelta(days=days - 1)
    return local_midnight(first)


def local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def date_range(*, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime, int]:
    """(since, until, days) of the local dates `start`..`end`, both included: until is the midnight after `end`."""
    return local_midnight(start), local_midnight(end + dt.timedelta(days=1)), (end - start).days + 1


def _day_series(rows, *, start: dt.datetime, days: int) -> list[dict]:
    counts = {row["day"]: row["count"] for row in rows}
    first = timezone.localdate(start)
    series = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        series.append({"date": day.isoformat(), "count": counts.get(day, 0)})
    return series


def lead_scope(broker=None):
    """The leads a figure may count: all of them for staff, a broker's own otherwise."""
    leads = Lead.objects.all() if broker is None else Lead.objects.for_broker(broker)
    return leads.live()  # a merged-away lead is counted once, as its survivor


def event_scope(broker=None):
    events = PipelineEvent.objects.all()
    if broker is not None:
        events = events.filter(broker_id=getattr(broker, "pk", broker))
    return events


def verification_figures(leads) -> dict:
    """Email, phone and either-channel verification rates of a lead queryset."""
    with_email = ~Q(email__isnull=True) & ~Q(email="")
    with_phone = ~Q(phone__isnull=True) & ~Q(phone="")
    counts = leads.aggregate(
        n_total=Count("id"),
        n_with_email=Count("id", filter=with_email),
        n_email_verified=Count("id", filter=with_email & Q(email_verified=True)),
        n_with_phone=Count("id", filter=with_phone),
        n_phone_verified=Count("id", filter=with_phone & Q(phone_verified=True)),
        n_verified=Count("id", filter=Q(email_verified=True) | Q(phone_verified=True)),
    )
    counts = {key.removeprefix("n_"): value for key, value in counts.items()}
    return {
        **counts,
        "email_rate": _ratio(counts["email_verified"], counts["with_email"]),
        "phone_rate": _ratio(counts["phone_verified"], counts["with_phone"]),
        "rate": _ratio(counts["verified"], counts["total"]),
    }


def campaign_status_counts(broker=None) -> tuple[dict[str, int], int]:
    """(live leads per campaign status, all live leads): one index-only scan of `leads_live_broker_status_idx`,
    which also gives the total (a lead without a status counts there and in no status)."""
    counts = {status.value: 0 for status in CampaignStatus}
    total = 0
    rows = (
        lead_scope(broker).values("campaign_status").annotate(count=Count("*"))
    )  # COUNT(*): the index alone answers.order_by()
    for row in rows:
        total += row["count"]
        if row["campaign_status"] is not None:
            counts[row["campaign_status"]] = row["count"]
    return counts, total


# Fed leads are the distinct leads of the window's `campaign_added` events; their replies and bookings are the
# `email_replied` / `appointment_booked` events since the window's start. Both are ranges of
# `pipeline_events_type_idx` (event_type, created_at), joined by hash: the cost follows the window's events, not
# the table. (A per-lead probe let the planner AND a scan of every reply ever with the lead index, once per lead.)
_OUTCOMES_SQL = """
WITH fed AS (
  SELECT DISTINCT lead_id FROM pipeline_events
   WHERE event_type IN ('campaign_added', 'sms_sent') AND created_at >= %(since)s AND created_at < %(until)s
     AND lead_id IS NOT NULL AND (%(broker)s::uuid IS NULL OR broker_id = %(broker)s::uuid)
), outcome AS (
  SELECT lead_id,
         bool_or(event_type IN ('email_replied', 'sms_replied')) AS replied,
         bool_or(event_type = 'appointment_booked') AS booked
    FROM pipeline_events
   WHERE event_type IN ('email_replied', 'sms_replied', 'appointment_booked') AND created_at >= %(since)s
     AND lead_id IS NOT NULL AND (%(broker)s::uuid IS NULL OR broker_id = %(broker)s::uuid)
   GROUP BY lead_id
)
SELECT count(*), count(*) FILTER (WHERE outcome.replied), count(*) FILTER (WHERE outcome.booked)
  FROM fed LEFT JOIN outcome USING (lead_id)
"""


def campaign_outcomes(*, since: dt.datetime, until: dt.datetime | None = None, broker=None) -> dict:
    """Leads fed in [since, until) (a `campaign_added` or `sms_sent` event) and how many of them replied / booked
    (an `email_replied` or `sms_replied` / `appointment_booked` event since `since`)."""
    broker_id = None if broker is None else str(getattr(broker, "pk", broker))
    params = {"since": since, "until": until or dt.datetime.max.replace(tzinfo=dt.UTC), "broker": broker_id}
    with connection.cursor() as cursor:
        cursor.execute(_OUTCOMES_SQL, params)
        fed, replied, booked = cursor.fetchone()
    return {
        "fed": fed,
        "replied": replied,
        "booked": booked,
        "reply_rate": _ratio(replied, fed),
        "booking_rate": _ratio(booked, fed),
    }


def dlq_depth(broker=None) -> int:
    items = PipelineDLQ.objects.filter(status__in=OPEN_DLQ_STATUSES)
    if broker is not None:
        items = items.filter(broker_id=getattr(broker, "pk", broker))
    return items.count()


def _upload_figures(*, since: dt.datetime, until: dt.datetime, days: int, broker=None) -> tuple[list[dict], int, int]:
    """(daily uploads, rows uploaded, rows deduped into leads) over the window."""
    if broker is None:
        uploads = Upload.objects.filter(created_at__gte=since, created_at__lt=until)
        daily = uploads.annotate(day=TruncDate("created_at")).values("day").annotate(count=Count("id")).order_by()
        totals = uploads.aggregate(
            rows=Sum("rows_total", default=0),
            deduped=Sum(F("leads_created") + F("leads_merged"), default=0),
        )
        return _day_series(daily, start=since, days=days), totals["rows"], totals["deduped"]
    leads = lead_scope(broker).filter(created_at__gte=since, created_at__lt=until)
    daily = (
        leads.filter(source_upload_id__isnull=False)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(count=Count("source_upload_id", distinct=True))
        .order_by()
    )
    created = leads.count()
    return _day_series(daily, start=since, days=days), created, created


def dashboard_figures(
    *,
    broker=None,
    days: int = 14,
    now: dt.datetime | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> dict:
    """Every dashboard figure for staff (`broker=None`) or for one broker (a Broker or its id), over the last
    `days` days or over the local dates `start`..`end` (both included) when they are given."""
    if start is not None and end is not None:
        since, until, days = date_range(start=start, end=end)
    else:
        since = window_start(days=days, now=now)
        until = since + dt.timedelta(days=days)
    leads = lead_scope(broker)
    in_window = leads.filter(created_at__gte=since, created_at__lt=until)
    daily_uploads, uploaded, deduped = _upload_figures(since=since, until=until, days=days, broker=broker)
    daily_leads_rows = (
        in_window.annotate(day=TruncDate("created_at")).values("day").annotate(count=Count("id")).order_by()
    )
    verification = verification_figures(in_window)
    outcomes = campaign_outcomes(since=since, until=until, broker=broker)
    status_counts, leads_total = campaign_status_counts(broker)
    funnel_counts = {
        "uploaded": uploaded,
        "deduped": deduped,
        "verified": verification["verified"],
        "fed": outcomes["fed"],
        "replied": outcomes["replied"],
        "booked": outcomes["booked"],
    }
    return {
        "days": days,
        "since": since,
        "until": until,
        "start": timezone.localdate(since),
        "end": timezone.localdate(until) - dt.timedelta(days=1),
        "leads_created": verification["total"],
        "scope": "all" if broker is None else str(getattr(broker, "pk", broker)),
        "daily_uploads": daily_uploads,
        "uploads_total": sum(point["count"] for point in daily_uploads),
        "daily_leads": _day_series(daily_leads_rows, start=since, days=days),
        "verification": verification,
        "campaign_status": status_counts,
        "leads_total": leads_total,
        "reply_rate": outcomes["reply_rate"],
        "booking_rate": outcomes["booking_rate"],
        "dlq_depth": dlq_depth(broker),
        "funnel": [{"stage": key, "label": label, "count": funnel_counts[key]} for key, label in FUNNEL_STAGES],
    }


# --- staff only -----------------------------------------------------------------------------------------------


def _share(numerator: int, denominator: int) -> float | None:
    return _ratio(numerator, denominator)


def partner_quality(*, since: dt.datetime, until: dt.datetime, days: int) -> list[dict]:
    """Per partner, their uploads in [since, until): uploads, rows, and
    - rejected % = rows rejected (to the DLQ) / rows;
    - duplicate % = (rows repeated inside their file + rows merged into a lead we had) / rows;
    - possible-duplicate % = pairs put up for review / rows;
    - verified % = leads their uploads created in the window that are verified (e-mail or phone) / those leads;
    - reply % = of those leads that were fed, the share that replied (`last_reply_at`);
    - `daily_verified`: the verified % per day of the window (None on a day without new leads), for a sparkline.
    Uploads a person made in the admin have no partner: they are one row of their own (partner None)."""
    uploads = (
        Upload.objects.filter(created_at__gte=since, created_at__lt=until)
        .values("partner_id", "partner__name")
        .annotate(
            uploads=Count("id"),
            rows=Sum("rows_total", default=0),
            rejected=Sum("rows_rejected", default=0),
            duplicates=Sum(F("duplicates_in_file") + F("leads_merged"), default=0),
            possible=Sum("possible_duplicates", default=0),
        )
        .order_by()
    )
    partners = {row["partner_id"]: {**row, "leads": 0, "verified": 0, "fed": 0, "replied": 0} for row in uploads}
    # The leads those uploads created, by source upload and day: one pass over the window's leads.
    lead_rows = list(
        Lead.objects.live()
        .filter(created_at__gte=since, created_at__lt=until, source_upload_id__isnull=False)
        .annotate(day=TruncDate("created_at"))
        .values("source_upload_id", "day")
        .annotate(
            leads=Count("id"),
            verified=Count("id", filter=Q(email_verified=True) | Q(phone_verified=True)),
            fed=Count("id", filter=Q(added_to_campaign_at__isnull=False)),
            replied=Count("id", filter=Q(added_to_campaign_at__isnull=False, last_reply_at__isnull=False)),
        )
        .order_by()
    )
    upload_partner = dict(
        Upload.objects.filter(id__in={row["source_upload_id"] for row in lead_rows}).values_list("id", "partner_id")
    )
    first_day = timezone.localdate(since)
    daily: dict = {}
    for row in lead_rows:
        partner_id = upload_partner.get(row["source_upload_id"], "missing")
        if partner_id not in partners:
            continue  # an upload from before the window: its partner's row covers only the window's uploads
        entry = partners[partner_id]
        for key in ("leads", "verified", "fed", "replied"):
            entry[key] += row[key]
        per_day = daily.setdefault(partner_id, {})
        leads, verified = per_day.get(row["day"], (0, 0))
        per_day[row["day"]] = (leads + row["leads"], verified + row["verified"])
    result = []
    for partner_id, entry in partners.items():
        per_day = daily.get(partner_id, {})
        series = []
        for offset in range(days):
            leads, verified = per_day.get(first_day + dt.timedelta(days=offset), (0, 0))
            series.append(_share(verified, leads))
        result.append(
            {
                "partner_id": partner_id,
                "partner": entry["partner__name"] or "(no partner: uploaded in the admin)",
                "uploads": entry["uploads"],
                "rows": entry["rows"],
                "rejected_rate": _share(entry["rejected"], entry["rows"]),
                "duplicate_rate": _share(entry["duplicates"], entry["rows"]),
                "possible_duplicate_rate": _share(entry["possible"], entry["rows"]),
                "leads": entry["leads"],
                "verified_rate": _share(entry["verified"], entry["leads"]),
                "fed": entry["fed"],
                "reply_rate": _share(entry["replied"], entry["fed"]),
                "daily_verified": series,
            }
        )
    return sorted(result, key=lambda row: (-row["rows"], row["partner"]))


def feeder_days(*, today: dt.date | None = None, count: int = 10) -> list[dict]:
    """The feeder's last `count` business days up to `today` (Los Angeles), newest first: leads fed, the day's
    limit and how many leads the view offered (`contactable`, the run's `ready`), from the ledger
    (`feeder_runs`) and the runs' `feeder_run` events (read by type and time: their index)."""
    day = today or business_date_for()
    business_days = []
    while len(business_days) < count:
        if is_business_day(day):
            business_days.append(day)
        day -= dt.timedelta(days=1)
    oldest = business_days[-1]
    runs = {run.business_date: run for run in FeederRun.objects.filter(business_date__gte=oldest, dry_run=False)}
    events: dict = {}
    for data in (
        PipelineEvent.objects.filter(
            event_type="feeder_run", created_at__gte=local_midnight(oldest) - dt.timedelta(days=1)
        )
        .order_by("created_at", "id")
        .values_list("event_data", flat=True)
    ):
        if data and data.get("business_date"):
            events[data["business_date"]] = data  # the day's last run wins
    rows = []
    for business_day in business_days:
        run, data = runs.get(business_day), events.get(business_day.isoformat(), {})
        rows.append(
            {
                "date": business_day,
                "fed": run.leads_pushed if run else data.get("fed", 0),
                "limit": data.get("limit", settings.FEEDER_DAILY_LIMIT),
                "contactable": data.get("ready"),
                "status": run.status if run else ("no run" if business_day < (today or business_date_for()) else "—"),
            }
        )
    return rows
