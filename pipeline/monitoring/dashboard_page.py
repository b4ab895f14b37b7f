"""What the staff dashboard shows, built from pipeline/monitoring/dashboard.py's figures: the date range an operator
asked for, the cards with the filtered admin list behind each, the charts (SVG, pipeline/monitoring/charts.py) and
the tables the page shows and exports as CSV (`/admin/dashboard/export/<table>.csv`, same range).

    dashboard_range(params)  ->  (start, end, error)
    dashboard_page(start=…, end=…)  ->  the template's context (figures, cards, charts, tables)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

from pipeline.experiments.selectors import experiment_results
from pipeline.models import Alert, AlertState, Experiment, PossibleDuplicate

from . import charts
from .charts import number, percent
from .dashboard import dashboard_figures, dlq_depth, feeder_days, partner_quality
from .launch import launch_figures

DEFAULT_DAYS = 14
MAX_DAYS = 366
PRESETS = (7, 14, 30, 90)


def dashboard_range(params, *, today: dt.date | None = None) -> tuple[dt.date, dt.date, str | None]:
    """The local dates to show, from `from`/`to` (YYYY-MM-DD) or `days`; a bad range falls back to the last
    14 days with an error to show."""
    today = today or timezone.localdate()
    default = (today - dt.timedelta(days=DEFAULT_DAYS - 1), today)
    if params.get("from") or params.get("to"):
        try:
            start = dt.date.fromisoformat(params.get("from") or "")
            end = dt.date.fromisoformat(params.get("to") or today.isoformat())
        except ValueError:
            return *default, "Dates must be written as YYYY-MM-DD."
        if start > end:
            return *default, "The start date is after the end date."
        if (end - start).days + 1 > MAX_DAYS:
            return *default, f"A range may cover at most {MAX_DAYS} days."
        return start, end, None
    try:
        days = int(params.get("days", DEFAULT_DAYS))
    except (TypeError, ValueError):
        return *default, "The number of days must be a whole number."
    if not 1 <= days <= MAX_DAYS:
        return *default, f"The number of days must be between 1 and {MAX_DAYS}."
    return today - dt.timedelta(days=days - 1), today, None


def admin_list(model: str, **filters) -> str:
    """The admin changelist of `app_model` filtered by `filters` (lookups the changelist applies as given)."""
    url = reverse(f"admin:{model}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def _created(since: dt.datetime, until: dt.datetime, field_name: str = "created_at") -> dict:
    return {f"{field_name}__gte": since.isoformat(), f"{field_name}__lt": until.isoformat()}


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)  # cells as shown (strings) ...
    raw: list[list] = field(default_factory=list)  # ... and as exported (numbers unformatted)
    links: list[str | None] = field(default_factory=list)  # an admin list per row, or None


def _tables(figures: dict, partners: list[dict], feeder: list[dict], alerts: list[Alert], since, until) -> dict:
    daily = Table("daily", "Uploads and new leads per day", ["date", "uploads", "new leads"])
    for uploads, leads in zip(figures["daily_uploads"], figures["daily_leads"], strict=True):
        day = dt.date.fromisoformat(uploads["date"])
        day_since, day_until = (
            timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=offset), dt.time.min)) for offset in (0, 1)
        )
        daily.rows.append([uploads["date"], number(uploads["count"]), number(leads["count"])])
        daily.raw.append([uploads["date"], uploads["count"], leads["count"]])
        daily.links.append(admin_list("pipeline_upload", **_created(day_since, day_until)))

    funnel = Table("funnel", "Funnel", ["stage", "count", "share of the step before"])
    previous = None
    for stage in figures["funnel"]:
        share = None if previous in (None, 0) else stage["count"] / previous
        funnel.rows.append([stage["label"], number(stage["count"]), "" if previous is None else percent(share)])
        funnel.raw.append([stage["label"], stage["count"], "" if share is None else round(share, 4)])
        previous = stage["count"]

    status = Table("campaign_status", "Campaign status (now)", ["status", "leads"])
    for name, count in figures["campaign_status"].items():
        status.rows.append([name, number(count)])
        status.raw.append([name, count])
        status.links.append(admin_list("leads_lead", campaign_status__exact=name, merged_into__isnull="True"))

    verification = Table(
        "verification", "Verification of the leads created in the range", ["channel", "verified", "of", "rate"]
    )
    v = figures["verification"]
    for label, verified, total, rate in (
        ("e-mail", v["email_verified"], v["with_email"], v["email_rate"]),
        ("phone", v["phone_verified"], v["with_phone"], v["phone_rate"]),
        ("either", v["verified"], v["total"], v["rate"]),
    ):
        verification.rows.append([label, number(verified), number(total), percent(rate)])
        verification.raw.append([label, verified, total, "" if rate is None else round(rate, 4)])

    quality = Table(
        "partners",
        "Partner quality",
        ["partner", "uploads", "rows", "rejected %", "duplicate %", "possible-duplicate %", "verified %", "reply %"],
    )
    for row in partners:
        rates = ("rejected_rate", "duplicate_rate", "possible_duplicate_rate", "verified_rate", "reply_rate")
        quality.rows.append(
            [row["partner"], number(row["uploads"]), number(row["rows"]), *(percent(row[key]) for key in rates)]
        )
        quality.raw.append(
            [
                row["partner"],
                row["uploads"],
                row["rows"],
                *("" if row[key] is None else round(row[key], 4) for key in rates),
            ]
        )
        partner_filter = (
            {"partner__isnull": "True"} if row["partner_id"] is None else {"partner__id__exact": row["partner_id"]}
        )
        quality.links.append(admin_list("pipeline_upload", **partner_filter, **_created(since, until)))

    feeder_table = Table(
        "feeder", "Feeder: the last ten business days", ["business day", "fed", "limit", "contactable", "run"]
    )
    for row in feeder:
        feeder_table.rows.append(
            [
                f"{row['date']:%a %Y-%m-%d}",
                number(row["fed"]),
                number(row["limit"]),
                number(row["contactable"]),
                row["status"],
            ]
        )
        feeder_table.raw.append(
            [
                row["date"].isoformat(),
                row["fed"],
                row["limit"],
                "" if row["contactable"] is None else row["contactable"],
                row["status"],
            ]
        )
        feeder_table.links.append(admin_list("pipeline_feederrun", business_date=row["date"].isoformat()))

    open_alerts = Table("alerts", "Open alerts", ["rule", "severity", "message", "opened", "acknowledged"])
    for alert in alerts:
        opened = timezone.localtime(alert.opened_at)
        acknowledged = (
            f"{alert.acknowledged_by.get_username() if alert.acknowledged_by else '?'},"
            f" {timezone.localtime(alert.acknowledged_at):%Y-%m-%d %H:%M}"
            if alert.acknowledged_at
            else ""
        )
        open_alerts.rows.append([alert.rule, alert.severity, alert.message, f"{opened:%Y-%m-%d %H:%M}", acknowledged])
        open_alerts.raw.append([alert.rule, alert.severity, alert.message, opened.isoformat(), acknowledged])
        open_alerts.links.append(reverse("admin:pipeline_alert_change", args=[alert.pk]))

    return {
        "daily": daily,
        "funnel": funnel,
        "campaign_status": status,
        "verification": verification,
        "partners": quality,
        "feeder": feeder_table,
        "alerts": open_alerts,
    }


def _cards(figures: dict, since, until, open_alerts: int) -> list[dict]:
    created = _created(since, until)
    fed_events = {"event_type": "campaign_added", **created}
    v = figures["verification"]
    return [
        {
            "id": "card-uploads",
            "label": "Uploads",
            "value": number(figures["uploads_total"]),
            "sub": f"{number(figures['funnel'][0]['count'])} rows",
            "url": admin_list("pipeline_upload", **created),
        },
        {
            "id": "card-new-leads",
            "label": "New leads",
            "value": number(figures["leads_created"]),
            "sub": "created in the range",
            "url": admin_list("leads_lead", merged_into__isnull="True", **created),
        },
        {
            "id": "card-email-verification",
            "label": "E-mail verified",
            "value": percent(v["email_rate"]),
            "sub": f"{number(v['email_verified'])} of {number(v['with_email'])}",
            "url": admin_list("leads_lead", email_verified__exact="1", merged_into__isnull="True", **created),
        },
        {
            "id": "card-phone-verification",
            "label": "Phone verified",
            "value": percent(v["phone_rate"]),
            "sub": f"{number(v['phone_verified'])} of {number(v['with_phone'])}",
            "url": admin_list("leads_lead", phone_verified__exact="1", merged_into__isnull="True", **created),
        },
        {
            "id": "card-fed",
            "label": "Fed to campaign",
            "value": number(figures["funnel"][3]["count"]),
            "sub": "leads (the list shows each feed)",
            "url": admin_list("equity_connect_pipelineevent", **fed_events),
        },
        {
            "id": "card-reply-rate",
            "label": "Reply rate",
            "value": percent(figures["reply_rate"]),
            "sub": f"{number(figures['funnel'][4]['count'])} replied",
            "url": admin_list("equity_connect_pipelineevent", event_type="email_replied", **created),
        },
        {
            "id": "card-booking-rate",
            "label": "Booking rate",
            "value": percent(figures["booking_rate"]),
            "sub": f"{number(figures['funnel'][5]['count'])} booked",
            "url": admin_list("equity_connect_pipelineevent", event_type="appointment_booked", **created),
        },
        {
            "id": "card-dlq-depth",
            "label": "DLQ depth",
            "value": number(figures["dlq_depth"]),
            "sub": "open or retrying, now",
            "url": admin_list("pipeline_pipelinedlq", status__in="open,retrying"),
        },
        {
            "id": "card-possible-duplicates",
            "label": "Possible duplicates",
            "value": number(figures["possible_duplicates_open"]),
            "sub": "to decide, now",
            "url": admin_list("pipeline_possibleduplicate", status__exact="open"),
        },
        {
            "id": "card-open-alerts",
            "label": "Alerts firing",
            "value": number(open_alerts),
            "sub": "now",
            "url": admin_list("pipeline_alert", state__exact="firing"),
        },
        {
            "id": "card-leads",
            "label": "Leads (all)",
            "value": number(figures["leads_total"]),
            "sub": "now",
            "url": admin_list("leads_lead", merged_into__isnull="True"),
        },
    ]


def _charts(figures: dict, tables: dict) -> dict:
    short = [point["date"][5:] for point in figures["daily_uploads"]]
    funnel_rows = [
        (row[0], raw[1], row[2]) for row, raw in zip(tables["funnel"].rows, tables["funnel"].raw, strict=True)
    ]
    v = figures["verification"]
    return {
        "uploads": charts.bar_chart(
            "chart-daily-uploads",
            "Uploads per day",
            list(zip(short, [p["count"] for p in figures["daily_uploads"]], strict=True)),
            width=960,
            height=240,
        ),
        "leads": charts.bar_chart(
            "chart-daily-leads",
            "New leads per day",
            list(zip(short, [p["count"] for p in figures["daily_leads"]], strict=True)),
            color=charts.ACCENT,
            width=960,
            height=240,
        ),
        "funnel": charts.hbar_chart("chart-funnel", "Funnel: uploaded rows to booked", funnel_rows),
        "campaign_status": charts.hbar_chart(
            "chart-campaign-status",
            "Leads per campaign status (now)",
            [(name, count, "") for name, count in figures["campaign_status"].items()],
        ),
        "verification": charts.bar_chart(
            "chart-verification",
            "Verified share of the leads created in the range",
            [("e-mail", v["email_rate"]), ("phone", v["phone_rate"]), ("either", v["rate"])],
            formatter=percent,
            height=180,
            maximum=1,
        ),
    }


def _launch_charts(weeks: list[dict]) -> dict:
    points = [(f"{row['week']:%m-%d}", row) for row in weeks]
    return {
        "reply": charts.trend_chart(
            "chart-launch-reply",
            "Reply rate per week (replies per lead fed), against the first week",
            [(label, row["reply_rate"]) for label, row in points],
            formatter=charts.percent,
        ),
        "processing": charts.trend_chart(
            "chart-launch-processing",
            "Processing time per week (median ms per upload), against the first week",
            [(label, row["processing_ms"]) for label, row in points],
            color=charts.ACCENT,
        ),
    }


def dashboard_page(*, start: dt.date, end: dt.date) -> dict:
    """Everything the dashboard template needs for the local dates `start`..`end` (inside a service context)."""
    figures = dashboard_figures(start=start, end=end)
    figures["possible_duplicates_open"] = PossibleDuplicate.objects.filter(status="open").count()
    since, until, days = figures["since"], figures["until"], figures["days"]
    partners = partner_quality(since=since, until=until, days=days)
    feeder = feeder_days()
    alerts = list(
        Alert.objects.filter(state=AlertState.FIRING)
        .select_related("acknowledged_by")
        .order_by("severity", "-opened_at")
    )
    tables = _tables(figures, partners, feeder, alerts, since, until)
    for row, quality in zip(tables["partners"].rows, partners, strict=True):
        quality["cells"] = row
        quality["sparkline"] = charts.sparkline(
            quality["daily_verified"], f"{quality['partner']}: verified % per day, {start} to {end}"
        )
    partner_rows = list(zip(partners, tables["partners"].links, strict=True))
    chart_svgs = _charts(figures, tables)
    feeder_chart = charts.bar_chart(
        "chart-feeder",
        "Leads fed per business day (limit in the table)",
        [(f"{row['date']:%m-%d}", row["fed"]) for row in reversed(feeder)],
        height=180,
    )
    contactable_chart = charts.bar_chart(
        "chart-contactable",
        "Contactable leads the view offered per business day",
        [(f"{row['date']:%m-%d}", row["contactable"]) for row in reversed(feeder)],
        height=180,
        color=charts.ACCENT,
    )
    launch = launch_figures()
    experiments = [
        (experiment, experiment_results(experiment=experiment))
        for experiment in Experiment.objects.filter(status__in=("running", "stopped")).order_by("-started_at")
    ]
    return {
        "experiments": experiments,
        "launch": launch,
        "launch_charts": _launch_charts(launch["weeks"]),
        "figures": figures,
        "start": start,
        "end": end,
        "days": days,
        "presets": PRESETS,
        "cards": _cards(figures, since, until, len(alerts)),
        "charts": chart_svgs,
        "feeder_chart": feeder_chart,
        "contactable_chart": contactable_chart,
        "tables": tables,
        "chart_blocks": [
            ("uploads", "Uploads per day", chart_svgs["uploads"], tables["daily"]),
            ("leads", "New leads per day (an axis of its own)", chart_svgs["leads"], tables["daily"]),
            ("funnel", "Funnel: uploaded rows → booked", chart_svgs["funnel"], tables["funnel"]),
            ("campaign-status", "Campaign status (now)", chart_svgs["campaign_status"], tables["campaign_status"]),
            ("verification", "Verified share of the new leads", chart_svgs["verification"], tables["verification"]),
        ],
        "alert_rows": list(zip(alerts, tables["alerts"].rows, strict=True)),
        "feeder_rows": list(zip(tables["feeder"].rows, tables["feeder"].links, strict=True)),
        "partner_rows": partner_rows,
        "open_alerts": alerts,
        "recent_alerts": list(Alert.objects.filter(state=AlertState.RESOLVED).order_by("-resolved_at")[:5]),
        "dlq_depth_now": dlq_depth(),
    }
