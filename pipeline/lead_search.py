"""The nightly `lead_search_fold` job (04:35 Los Angeles): the portal search's small partitions folded into one.

Each large upload adds its new leads' search rows to `lead_search` as a partition of its own (leads migration
0026_lead_search, pipeline/ingest/sql/search.py), and the portal's search probes one trigram GIN per partition.
This job copies the rows of every upload partition under LEAD_SEARCH_FOLD_ROWS rows into one new partition, builds
its indexes and drops the old ones, in one transaction (SECURITY DEFINER `lead_search_fold()`: only the table's
owner may attach and drop partitions). Every lead stays findable throughout: readers see the old partitions until
the fold commits, the new one after.
"""

from __future__ import annotations

from django.db import connection

from pipeline.jobs import LEAD_SEARCH_FOLD, JobReport, JobResult, job_run

# An upload partition with fewer rows than this is folded (one with more is an index worth keeping as it is).
LEAD_SEARCH_FOLD_ROWS = 200_000


def lead_search_partitions_fold(*, max_rows: int = LEAD_SEARCH_FOLD_ROWS) -> int:
    """Fold the upload partitions of `lead_search` under `max_rows` rows into one; returns how many were folded
    (0 when fewer than two are that small)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT lead_search_fold(%s)", [max_rows])
        return cursor.fetchone()[0]


def lead_search_fold() -> JobReport:
    folded = lead_search_partitions_fold()
    return JobReport(message=f"lead search: {folded} partitions folded into one", data={"partitions_folded": folded})


def lead_search_fold_run() -> JobResult:
    return job_run(LEAD_SEARCH_FOLD, lead_search_fold)
