"""The daily refresh of `mv_contactable_leads` (05:30 Los Angeles), the feeder's candidate list: the leads
that have consented, have a verified contact point, are assigned and are not marked never-contact.

`refresh_contactable_leads()` (the SQL function; leads/migrations/0002) refreshes it CONCURRENTLY under a
transaction-scoped advisory lock, so readers are never blocked and two refreshes never run together.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from pipeline.jobs import MV_REFRESH, JobReport, JobResult, JobSkipped, job_run, ms_since

MV_COUNTS_SQL = """
SELECT count(*), count(*) FILTER (WHERE campaign_status = 'queued' AND added_to_campaign_at IS NULL)
  FROM mv_contactable_leads
"""


def contactable_leads_refresh() -> JobReport:
    """`refresh_contactable_leads()`: REFRESH MATERIALIZED VIEW CONCURRENTLY under the SQL function's own
    advisory lock. Waits at most MV_REFRESH_LOCK_TIMEOUT_SECONDS for the view's lock, then fails."""
    with connection.cursor() as cursor:
        lock_timeout_ms = max(1, int(settings.MV_REFRESH_LOCK_TIMEOUT_SECONDS * 1000))
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{lock_timeout_ms}ms"])
        started = time.monotonic()
        cursor.execute("SELECT refresh_contactable_leads()")
        refreshed = cursor.fetchone()[0]
        refresh_ms = ms_since(started)
        if not refreshed:
            raise JobSkipped("another refresh of mv_contactable_leads is running")
        cursor.execute(MV_COUNTS_SQL)
        rows, queued = cursor.fetchone()
    return JobReport(
        message=f"refreshed mv_contactable_leads in {refresh_ms} ms: {rows} contactable leads, {queued} queued",
        data={"rows": rows, "queued": queued, "refresh_ms": refresh_ms},
    )


def contactable_leads_refresh_run() -> JobResult:
    return job_run(MV_REFRESH, contactable_leads_refresh, event_type="mv_refreshed", budget="mv_refresh")
