"""The daily `event_partitions` job (04:05 Los Angeles): `pipeline_events` partitions ready before they are needed.

`pipeline_events` is partitioned by calendar month in UTC (pipeline migration 0018): `pipeline_events_YYYY_MM`
plus a DEFAULT partition that takes any row no month covers, so an insert never fails. This job creates the
current month's partition and the next EVENT_PARTITION_MONTHS_AHEAD months' (through the SECURITY DEFINER
`pipeline_events_partitions_ensure()`, since only the table's owner may attach partitions); rows the DEFAULT
partition holds for a month it creates move into that month. Dropping old months is the retention job's
(pipeline/retention.py, EVENT_RETENTION_DAYS).
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from pipeline.jobs import EVENT_PARTITIONS, JobReport, JobResult, job_run


def event_partitions_ensure(*, months_ahead: int | None = None) -> int:
    """Create the missing monthly partitions of `pipeline_events` from this month to `months_ahead` months on
    (EVENT_PARTITION_MONTHS_AHEAD by default); returns how many it created."""
    months = settings.EVENT_PARTITION_MONTHS_AHEAD if months_ahead is None else months_ahead
    with connection.cursor() as cursor:
        cursor.execute("SELECT pipeline_events_partitions_ensure(%s)", [months])
        return cursor.fetchone()[0]


def event_partitions() -> JobReport:
    created = event_partitions_ensure()
    return JobReport(message=f"event partitions: {created} created", data={"partitions_created": created})


def event_partitions_run() -> JobResult:
    return job_run(EVENT_PARTITIONS, event_partitions)
