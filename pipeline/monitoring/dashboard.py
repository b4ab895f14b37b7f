"""The dashboard's figures: one query module for the staff dashboard and the broker portal.

    dashboard_figures()                 # staff: every lead, upload and event
    dashboard_figures(broker=broker)    # a broker: only their own leads and events

Call it inside the caller's database context (a staff request runs as `service_role`, a broker as
`authenticated`): row-level security is the second wall, `Lead.objects.for_broker` and `broker_id` on
events the first. Nothing here writes.

Definitions (every figure is over the last `days` days, local dates in TIME_ZONE, unless it says "now"):
- `daily_uploads`: uploads received per day (`uploads_total`: their sum). For a broker: distinct source
  uploads of their leads created that day (brokers cannot read `uploads`).
- `daily_leads`: leads created per day.
- `verification`: of the leads created in the window — share with a verified email among those with an
  email, share with a verified phone among those with a phone, share verified on either channel.
- `campaign_status`: leads per campaign status, now (every status present, zero-filled).
- funnel (`funnel`, ordered): rows uploaded → rows deduped into a lead (created or merged) → leads
  verified (created in the window, either channel) → fed (distinct leads with a `campaign_added` or
  `sms_sent` event in the window) → replied / booked (those fed leads that have an `email_replied` or
  `sms_replied` / an `appointment_booked` event). For a broker the first two stages are their leads created
  in the window.
- `reply_rate` = replied / fed and `booking_rate` = booked / fed (None when nothing was fed).
- `dlq_depth`: DLQ items open or retrying, now.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from equity_connect.models import PipelineEvent
from leads.models import CampaignStatus, Lead
from pipeline.models import DLQStatus, PipelineDLQ, Upload

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
    return timezone.make_aware(dt.datetime.combine(first, dt.time.min))


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


def campaign_status_distribution(broker=None) -> dict[str, int]:
    counts = {status.value: 0 for status in CampaignStatus}
    rows = lead_scope(broker).values("campaign_status").annotate(count=Count("id")).order_by()
    for row in rows:
        if row["campaign_status"] is not None:
            counts[row["campaign_status"]] = row["count"]
    return counts


def campaign_outcomes(*, since: dt.datetime, broker=None) -> dict:
    """Leads fed since `since` (a `campaign_added` event) and how many of them replied / booked."""
    events = event_scope(broker).filter(lead_id__isnull=False)
    fed_ids = (
        events.filter(event_type__in=("campaign_added", "sms_sent"), created_at__gte=since)
        .values("lead_id")
        .distinct()
    )
    outcome_events = events.filter(lead_id__in=fed_ids)

    def with_event(*event_types: str) -> int:
        return outcome_events.filter(event_type__in=event_types).values("lead_id").distinct().count()

    fed = fed_ids.count()
    replied = with_event("email_replied", "sms_replied")
    booked = with_event("appointment_booked")
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


def _upload_figures(*, since: dt.datetime, days: int, broker=None) -> tuple[list[dict], int, int]:
    """(daily uploads, rows uploaded, rows deduped into leads) over the window."""
    if broker is None:
        uploads = Upload.objects.filter(created_at__gte=since)
        daily = uploads.annotate(day=TruncDate("created_at")).values("day").annotate(count=Count("id")).order_by()
        totals = uploads.aggregate(
            rows=Sum("rows_total", default=0),
            deduped=Sum(F("leads_created") + F("leads_merged"), default=0),
        )
        return _day_series(daily, start=since, days=days), totals["rows"], totals["deduped"]
    leads = lead_scope(broker).filter(created_at__gte=since)
    daily = (
        leads.filter(source_upload_id__isnull=False)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(count=Count("source_upload_id", distinct=True))
        .order_by()
    )
    created = leads.count()
    return _day_series(daily, start=since, days=days), created, created


def dashboard_figures(*, broker=None, days: int = 14, now: dt.datetime | None = None) -> dict:
    """Every dashboard figure for staff (`broker=None`) or for one broker (a Broker or its id)."""
    since = window_start(days=days, now=now)
    leads = lead_scope(broker)
    daily_uploads, uploaded, deduped = _upload_figures(since=since, days=days, broker=broker)
    daily_leads_rows = (
        leads.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(count=Count("id"))
        .order_by()
    )
    verification = verification_figures(leads.filter(created_at__gte=since))
    outcomes = campaign_outcomes(since=since, broker=broker)
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
        "scope": "all" if broker is None else str(getattr(broker, "pk", broker)),
        "daily_uploads": daily_uploads,
        "uploads_total": sum(point["count"] for point in daily_uploads),
        "daily_leads": _day_series(daily_leads_rows, start=since, days=days),
        "verification": verification,
        "campaign_status": campaign_status_distribution(broker),
        "leads_total": leads.count(),
        "reply_rate": outcomes["reply_rate"],
        "booking_rate": outcomes["booking_rate"],
        "dlq_depth": dlq_depth(broker),
        "funnel": [{"stage": key, "label": label, "count": funnel_counts[key]} for key, label in FUNNEL_STAGES],
    }
