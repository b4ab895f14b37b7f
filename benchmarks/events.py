"""The dashboard and the lead timeline over a partitioned `pipeline_events`: 50,000,000 events over 18 monthly
partitions (goal: the dashboard's p95 < 200 ms).

    .venv/bin/python -m benchmarks.events                        # builds the data set once, then measures
    .venv/bin/python -m benchmarks.events --fresh                 # rebuild the database first
    .venv/bin/python -m benchmarks.events --events 10000000       # a smaller data set (say so in the report)
    make bench BENCH_ARGS="events"                                 # the same through make

Data: the portal benchmark's 1,000,000 leads over 20 brokers (benchmarks/portal_data.py), then `--events`
events spread evenly in time from the first day of the month `--months - 1` months ago until now, one
`INSERT … SELECT generate_series` per month through the parent table (so into its monthly partitions, in time
order, as events arrive), each about a random lead and carrying its broker; 2% are `campaign_added` (about
7x the feeder's default daily limit), 0.3% `email_replied` and 0.1% `appointment_booked` (each about a lead fed
minutes before), the rest ingest, consent and job events. Then VACUUM ANALYZE, as autovacuum would.

Measured in-process, each call a different day or lead: `dashboard_figures()` (the 14-day staff dashboard:
leads, uploads and the events funnel), the same for one broker under RLS, its events part alone
(`campaign_outcomes`), and `lead_timeline()` of a lead. Writes the `events` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time

from psycopg import sql

from benchmarks import common

DB_NAME = "equity_connect_bench_events"
REPEATS = 50  # calls per measurement (--repeats)

# One event per generated row: its type by the row number modulo 1000 (so the mix is exact), about a lead.
EVENTS_SQL = """
INSERT INTO {table} (id, event_type, lead_id, broker_id, upload_id, event_data, status, duration_ms, created_at)
SELECT nextval('pipeline_events_id_seq'),
       CASE WHEN k < 400 THEN 'lead_created' WHEN k < 600 THEN 'lead_merged' WHEN k < 700 THEN 'lead_verified'
            WHEN k < 720 THEN 'campaign_added' WHEN k < 723 THEN 'email_replied'
            WHEN k < 724 THEN 'appointment_booked' WHEN k < 800 THEN 'lead_queued'
            WHEN k < 850 THEN 'consent_link_sent' WHEN k < 900 THEN 'consent_given'
            WHEN k < 950 THEN 'upload_received' ELSE 'job_run' END,
       CASE WHEN k < 950 THEN p.id END,
       CASE WHEN k < 950 THEN p.broker_id END,
       CASE WHEN k < 700 OR (k >= 900 AND k < 950) THEN md5('upload' || %(month)s || (g / 5000))::uuid END,
       CASE WHEN k < 700 THEN '{{}}'::jsonb ELSE jsonb_build_object('n', g %% 997) END,
       CASE WHEN k %% 97 = 0 THEN 'failure' ELSE 'success' END,
       CASE WHEN k >= 950 THEN (g %% 5000) END,
       %(start)s::timestamptz + (g - 0.5) / %(rows)s * (%(end)s::timestamptz - %(start)s::timestamptz)
  FROM (SELECT g, (g * 7919) %% 1000 AS k FROM generate_series(1::bigint, %(rows)s) AS g) AS rows
  -- A reply or booking (k 720-723) is about the lead fed 580 rows earlier (k - 20: a campaign_added row).
  JOIN bench_leads p
    ON p.n = 1 + ((CASE WHEN k >= 720 AND k < 724 THEN greatest(g - 580, 1) ELSE g END) * 104729
                  + %(month)s * 15485863) %% %(leads)s
"""


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def _month_starts(months: int, now: dt.datetime) -> list[dt.datetime]:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = []
    for back in range(months - 1, -1, -1):
        year, month = divmod(first.year * 12 + first.month - 1 - back, 12)
        starts.append(first.replace(year=year, month=month + 1))
    return starts


def build_events(*, total: int, months: int) -> float:
    """Insert `total` events evenly in time over `months` calendar months ending now; returns seconds."""
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    starts = _month_starts(months, now)
    span = (now - starts[0]).total_seconds()
    with common.psycopg_admin() as conn:
        conn.execute("SELECT pipeline_events_partitions_ensure(3)")
        conn.execute("DROP TABLE IF EXISTS bench_leads")
        conn.execute(
            "CREATE UNLOGGED TABLE bench_leads AS SELECT row_number() OVER (ORDER BY id) AS n, id,"
            " assigned_broker_id AS broker_id FROM leads"
        )
        conn.execute("CREATE UNIQUE INDEX ON bench_leads (n)")
        leads = conn.execute("SELECT count(*) FROM bench_leads").fetchone()[0]
        done = 0
        for index, start in enumerate(starts):
            end = starts[index + 1] if index + 1 < len(starts) else now
            rows = total - done if index + 1 == len(starts) else round(total * (end - start).total_seconds() / span)
            step = time.perf_counter()
            # Each month is filled as a table of its own and then attached, which builds its indexes in one
            # sorted pass each: ~4x faster here than inserting through the parent (the measurement is the same).
            table = sql.Identifier(f"pipeline_events_{start:%Y_%m}")
            upper = (
                starts[index + 1] if index + 1 < len(starts) else _month_starts(1, start + dt.timedelta(days=40))[0]
            )
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE pipeline_events INCLUDING DEFAULTS)").format(table))
            conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table))
            conn.execute(
                sql.SQL(EVENTS_SQL).format(table=table),
                {"month": index, "start": start, "end": end, "rows": max(rows, 1), "leads": leads},
            )
            conn.execute(
                sql.SQL("ALTER TABLE pipeline_events ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                    table, sql.Literal(start.isoformat()), sql.Literal(upper.isoformat())
                )
            )
            done += max(rows, 1)
            print(f"  {start:%Y-%m}: {rows:,} events in {time.perf_counter() - step:.0f} s", flush=True)
        conn.execute("DROP TABLE bench_leads")
        conn.execute("VACUUM ANALYZE pipeline_events")
    return time.perf_counter() - started


def _time(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.events")
    parser.add_argument("--fresh", action="store_true", help="drop and rebuild the benchmark database")
    parser.add_argument("--events", type=int, default=50_000_000, help="events to generate (default 50M)")
    parser.add_argument("--months", type=int, default=18, help="monthly partitions they span (default 18)")
    parser.add_argument("--repeats", type=int, default=REPEATS, help=f"calls per measurement (default {REPEATS})")
    options, _ = parser.parse_known_args(argv)
    os.environ["DJANGO_DEBUG"] = "false"
    common.setup(DB_NAME, fresh=options.fresh)

    from django.db import connection

    from benchmarks.portal_data import BROKERS, TOTAL_LEADS, bench_brokers, build, settle
    from equity_connect.db import admin_connection, broker_context, service_context
    from equity_connect.models import PipelineEvent
    from leads.models import Lead
    from leads.timeline import lead_timeline
    from pipeline.monitoring.dashboard import campaign_outcomes, dashboard_figures, window_start

    with service_context():
        brokers = bench_brokers()
        measured = brokers[0]
        existing_leads = Lead.objects.count()
    lead_seconds = events_seconds = None
    if existing_leads < TOTAL_LEADS:
        print(f"building {TOTAL_LEADS:,} leads…", flush=True)
        with admin_connection(), connection.cursor() as cursor:
            lead_seconds = build(cursor, [str(broker.pk) for broker in brokers])
        settle()
    with common.psycopg_admin() as conn:
        existing_events = conn.execute("SELECT count(*) FROM pipeline_events").fetchone()[0]
    if existing_events < options.events:
        print(f"building {options.events:,} events over {options.months} months…", flush=True)
        with common.psycopg_admin() as conn:
            conn.execute("TRUNCATE pipeline_events")
        events_seconds = build_events(total=options.events, months=options.months)
        print(f"built in {events_seconds:.0f} s", flush=True)

    with common.psycopg_admin() as conn:
        total_events = conn.execute("SELECT count(*) FROM pipeline_events").fetchone()[0]
        partitions = conn.execute(
            "SELECT c.relname, c.reltuples::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'pipeline_events'::regclass AND c.reltuples > 0 ORDER BY 1"
        ).fetchall()
        size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('pipeline_events'))").fetchone()[0]
        size = conn.execute(
            "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits"
            " WHERE inhparent = 'pipeline_events'::regclass"
        ).fetchone()[0]
    with service_context():
        lead_ids = list(
            PipelineEvent.objects.filter(event_type="campaign_added", broker_id=measured.pk)
            .order_by("-created_at")
            .values_list("lead_id", flat=True)[: options.repeats]
        )
        own_leads = list(Lead.objects.filter(pk__in=lead_ids))
    now = dt.datetime.now(dt.UTC)
    # Each repeat looks at a different "today" (the last --repeats hours back), so no two are the same query.
    instants = [now - dt.timedelta(hours=hour) for hour in range(options.repeats)]

    def staff_dashboard(at):
        with service_context():
            return dashboard_figures(now=at)

    def broker_dashboard(at):
        with broker_context(measured.pk):
            return dashboard_figures(broker=measured, now=at)

    def staff_outcomes(at):
        with service_context():
            return campaign_outcomes(since=window_start(days=14, now=at))

    def broker_timeline(lead):
        with broker_context(measured.pk):
            return lead_timeline(lead=lead)

    staff_dashboard(now)  # warm-up
    broker_dashboard(now)
    results = {
        "staff dashboard, 14 days (`dashboard_figures()`)": [
            _time(lambda a=at: staff_dashboard(a)) for at in instants
        ],
        "broker dashboard, 14 days (RLS)": [_time(lambda a=at: broker_dashboard(a)) for at in instants],
        "its events part alone (`campaign_outcomes`, staff)": [
            _time(lambda a=at: staff_outcomes(a)) for at in instants
        ],
        "lead timeline (broker, 200 newest events of a lead)": [
            _time(lambda lead=lead: broker_timeline(lead)) for lead in own_leads
        ],
    }
    figures = staff_dashboard(now)
    with service_context(), connection.cursor() as cursor:
        since = window_start(days=14, now=now)
        fed_ids = (
            PipelineEvent.objects.filter(lead_id__isnull=False, event_type="campaign_added", created_at__gte=since)
            .values("lead_id")
            .distinct()
        )
        query = (
            PipelineEvent.objects.filter(lead_id__isnull=False, lead_id__in=fed_ids, event_type="email_replied")
            .order_by()  # as `.count()` runs it: no ordering
            .values("lead_id")
            .distinct()
            .query
        )
        sql, params = query.sql_with_params()
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM ({sql}) AS replied", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {common.machine()}.",
        "",
        f"Data: {total_events:,} events in {len(partitions)} monthly partitions of `pipeline_events`"
        f" ({size} with indexes), about {TOTAL_LEADS:,} leads of {BROKERS} brokers; 14-day window: "
        f"{figures['funnel'][3]['count']:,} leads fed, {figures['funnel'][4]['count']:,} replied,"
        f" {figures['funnel'][5]['count']:,} booked."
        + (f" Building the events took {events_seconds:.0f} s." if events_seconds else "")
        + (f" Building the leads took {lead_seconds:.0f} s." if lead_seconds else ""),
        "",
        f"Server time of each call in-process (database context, ORM queries, Python), {options.repeats} calls"
        " each, each with a different end of window (or a different lead):",
        "",
        "| call | p50 (ms) | p95 (ms) | max (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name, values in results.items():
        lines.append(
            f"| {name} | {statistics.median(values):.1f} | {_percentile(values, 0.95):.1f} | {max(values):.1f} |"
        )
    goal = max(_percentile(results[name], 0.95) for name in list(results)[:2])
    lines += [
        "",
        f"Goal p95 < 200 ms for the dashboard: **{'met' if goal < 200 else 'missed'}** ({goal:.1f} ms, the"
        " slower of staff and broker).",
        "",
        f"Load average when done: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (the machine is shared).",
        "",
        "Partitions (planner's row estimates): "
        + ", ".join(f"`{name.removeprefix('pipeline_events_')}` {rows:,}" for name, rows in partitions)
        + ".",
        "",
        "Plan of the funnel's replied count (the events query that reads furthest back):",
        "",
        "```",
        plan.strip(),
        "```",
    ]
    common.write_section("events", "\n".join(lines))
    print("\n".join(lines[:14]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
