"""Apply: staged rows → DLQ, in-file dedupe, match against `leads`, safe merge, new owners, insert, score,
possible duplicates — set-based.

One call runs in the caller's transaction (the ingestion service holds it and the apply lock), with a
handful of statements whatever the file's size (each in pipeline/ingest/sql/):

1. rejected staging rows → `pipeline_dlq` (raw row, upload, line number, reason; pipeline/dlq.py);
2. in-file dedupe (`sql/dedupe.py`): MAK → APN → address hash, and two rows are one property only when
   they share a key and no stronger key is present on both and different; later rows merge into the first;
3. match (`sql/match.py`): each property against `leads` by the same rule; an ambiguous or conflicting
   match makes a lead of its own, and the leads it shares a key with become possible duplicates;
0. an erased person's rows are rejected ("erased person", nothing of the row kept: `sql/suppress.py`);
4. write (`sql/write.py`): a new owner on a parcel met by MAK or APN replaces the old owner's contact data
   and consent (kept on the timeline); `UPDATE … FROM` for the other matches with the seed's safe merge
   (flags OR-ed, code arrays unioned, payload merged, existing contact data kept, campaign status
   untouched); `INSERT … SELECT` for the rest — all computing `lead_score` and `score_breakdown` in the
   same statement (leads/scoring.py). A merge changes no indexed column and `leads` keeps room on each
   page (leads/migrations/0005), so the UPDATE writes heap-only tuples: no index entry at all.

5. suppression marks (`sql/suppress.py`): the leads created or changed whose e-mail, domain, phone or address the
   suppression list or the DNC registry binds get their `suppressed_channels` (leads/suppressions/sql.py); those
   leads are collected first, and when there are none (the usual case) `leads` is not read again.

No MERGE statement (≈16% slower than UPDATE + INSERT on the update-heavy path), no per-row round trips.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from pipeline.dlq import dlq_record_owner_change_reviews, dlq_record_rejected_rows
from pipeline.duplicates.records import POSSIBLE_DUPLICATES_FROM_INGEST_SQL

from .sql import (
    DROP_TEMP_TABLES,
    SET_NO_JIT,
    SET_RANDOM_PAGE_COST,
    SET_WORK_MEM,
    dedupe,
    match,
    search,
    suppress,
    write,
)

# Component propagation converges in as many passes as the longest chain of addresses; a bound anyway.
MAX_PROPAGATION_PASSES = 50


@dataclass
class ApplyCounts:
    rows_valid: int = 0
    rows_rejected: int = 0
    clusters: int = 0
    leads_created: int = 0
    leads_merged: int = 0
    owner_changes: int = 0
    possible_duplicates: int = 0
    rows_erased: int = 0  # rejected as an erased person's (counted in rows_rejected too)
    leads_suppressed: int = 0  # leads whose suppression marks this apply changed
    propagation_passes: int = 0
    timings: dict[str, int] = field(default_factory=dict)
    # (lead id, Instantly lead id) of leads whose old owner's sequence must stop (after commit).
    sequences_to_stop: list[tuple[str, str]] = field(default_factory=list)

    @property
    def duplicates_in_file(self) -> int:
        return self.rows_valid - self.clusters


def _execute(statement: str, params: dict | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def _fetchall(statement: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def _scalar(statement: str, params: dict | None = None):
    return _fetchall(statement, params)[0][0]


def dedupe_in_file(*, upload_id: str, lines: list[int] | None = None) -> ApplyCounts:
    """Label every valid staged row with its property (`ingest_linked`: only rows that share a key with
    another row of the file; every other row is its own property), and pair the properties that share a
    key but stayed apart (`ingest_pairs`)."""
    counts = ApplyCounts()
    counts.rows_valid = _execute(dedupe.ROWS, {"upload": upload_id, "lines": lines})
    _execute(dedupe.ANALYZE_ROWS)
    linked = _execute(dedupe.LINKED)
    if linked:
        _execute(dedupe.TIER_MAK)
        _execute(dedupe.TIER_APN)
        _execute(dedupe.TIER_ADDRESS_ONLY)
        if _execute(dedupe.SHARED_ADDRESSES):
            _execute(dedupe.GROUPS)
            while counts.propagation_passes < MAX_PROPAGATION_PASSES:
                counts.propagation_passes += 1
                if not _execute(dedupe.PROPAGATE_COMPONENTS):
                    break
            _execute(dedupe.MERGE_COMPONENTS)
    _execute(dedupe.ANALYZE_LINKED)  # the planner needs its size for the anti-join that follows
    properties = _scalar(dedupe.COUNT_LINKED_PROPERTIES) if linked else 0
    counts.clusters = counts.rows_valid - linked + properties
    _execute(dedupe.PAIRS)
    return counts


def match_leads() -> tuple[int, int, int]:
    """Build `ingest_resolved` (and, when several properties meet one lead, `ingest_merges`).
    Returns (properties, properties that match a lead, leads met by several)."""
    resolved = _execute(match.resolved_sql())
    _execute(match.CANDIDATES)
    if _scalar(match.COUNT_CANDIDATES):
        _execute(match.TARGET_FROM_CANDIDATES)
        _execute(match.KEEP_OTHERS_KEYS)
    matched, shared = _fetchall(match.MATCH_COUNTS)[0]
    if shared:
        _execute(match.merges_sql())
        _execute(match.ANALYZE_MERGES)
    _execute(match.ANALYZE_RESOLVED)  # the planner needs it for the update's join
    return resolved, int(matched), shared


def owners_change(*, upload_id: str, counts: ApplyCounts, shared: bool) -> None:
    """New owners on known parcels: record the old owner's data on the timeline, put do-not-contact leads up
    for review, note the sequences to stop, and replace the old owner's contact data and consent."""
    _execute(write.OWNER_CHANGES)
    counts.owner_changes = _scalar(write.COUNT_OWNER_CHANGES)
    if not counts.owner_changes:
        return
    _execute(write.OWNER_CHANGE_EVENTS, {"upload": upload_id})
    dlq_record_owner_change_reviews(upload_id=upload_id)
    counts.sequences_to_stop = [
        (str(lead), instantly) for lead, instantly in _fetchall(write.INSTANTLY_SEQUENCES_TO_STOP)
    ]
    _execute(write.owner_merge_sql(write.OWNER_SOURCE_SINGLE_NOT_SHARED if shared else write.OWNER_SOURCE_SINGLE))
    if shared:
        _execute(write.owner_merge_sql(write.OWNER_SOURCE_SHARED))


def merge_into_leads(*, upload_id: str, lead_events: bool, shared: bool = False) -> int:
    """Safe-merge each matched property into its lead and re-score it: from `ingest_resolved` for leads
    that one property of the file meets, and (`shared`) from `ingest_merges` for leads that several meet.
    Returns the leads updated."""
    params = {"upload": upload_id}
    single = write.MERGE_SOURCE_SINGLE_NOT_SHARED if shared else write.MERGE_SOURCE_SINGLE
    updated = _execute(write.merge_sql(single, lead_events=lead_events), params)
    if shared:
        updated += _execute(write.merge_sql(write.MERGE_SOURCE_SHARED, lead_events=lead_events), params)
    return updated


def insert_new_leads(*, upload_id: str, source: str, lead_events: bool) -> int:
    """Insert one lead per unmatched property, scored, with its source and upload. Returns the count."""
    return _execute(write.insert_sql(lead_events=lead_events), {"upload": upload_id, "source": source})


def search_rows_defer(*, new_leads: int) -> None:
    """Before the insert of a large upload's new leads: the search row trigger skips them, `search_rows_add`
    adds them as one built partition (pipeline/ingest/sql/search.py)."""
    if new_leads >= settings.INGEST_SEARCH_PARTITION_MIN_LEADS:
        _execute(search.DEFER)


def search_rows_add() -> int:
    """After the insert: the deferred new leads' search rows, as a new partition of `lead_search` (nothing when
    the insert was not deferred: the trigger wrote them)."""
    return _scalar(search.PARTITION_ADD)


def erased_rows_reject(*, upload_id: str, lines: list[int] | None) -> int:
    """Reject the staged rows of an erased person (suppression entries with reason `erasure`), blanking them.
    Returns how many (no statement at all while no one is erased)."""
    if not _scalar(suppress.ANY_ERASURE):
        return 0
    return _execute(suppress.ERASED_REJECT, {"upload": upload_id, "lines": lines})


def leads_suppression_mark() -> int:
    """Mark the leads of this apply that the suppression list or the DNC registry binds (and unmark the old
    owner's). Returns the leads whose marks changed."""
    _execute(suppress.SUPPRESSION_KEYS)
    list_values, registry_numbers = _fetchall(suppress.SOURCES)[0]
    if not _execute(suppress.targets_sql(list_values=list_values, registry_numbers=registry_numbers)):
        return 0
    _execute(suppress.ANALYZE_TARGETS)
    return _execute(suppress.MARK_LEADS)


def apply_staged(
    *,
    upload_id: str,
    source: str,
    lines: list[int] | None = None,
    lead_events_max: int = 0,
    write_dlq: bool = True,
) -> ApplyCounts:
    """Run steps 1-4 for the upload's staged rows (or only `lines`). Caller holds the transaction."""
    timings: dict[str, int] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = int((now - clock) * 1000)
        clock = now

    _execute(SET_WORK_MEM)
    _execute(SET_NO_JIT)
    _execute(SET_RANDOM_PAGE_COST)
    erased = erased_rows_reject(upload_id=upload_id, lines=lines)
    rejected = dlq_record_rejected_rows(upload_id=upload_id, lines=lines) if write_dlq or erased else 0
    lap("dlq_ms")
    counts = dedupe_in_file(upload_id=upload_id, lines=lines)
    counts.rows_rejected = rejected
    counts.rows_erased = erased
    lap("dedupe_ms")
    properties, counts.leads_merged, shared = match_leads()
    if properties != counts.clusters:
        raise RuntimeError("the in-file dedupe and the match disagree on the number of properties")
    lap("match_ms")
    new_clusters = counts.clusters - counts.leads_merged
    lead_events = counts.clusters <= lead_events_max
    owners_change(upload_id=upload_id, counts=counts, shared=shared > 0)
    merge_into_leads(upload_id=upload_id, lead_events=lead_events, shared=shared > 0)
    lap("update_ms")
    search_rows_defer(new_leads=new_clusters)
    counts.leads_created = insert_new_leads(upload_id=upload_id, source=source, lead_events=lead_events)
    lap("insert_ms")
    search_rows_add()
    lap("search_ms")
    if counts.leads_created != new_clusters:  # a broken invariant must never commit
        raise RuntimeError(f"inserted {counts.leads_created} leads for {new_clusters} new clusters")
    counts.leads_suppressed = leads_suppression_mark()
    lap("suppress_ms")
    counts.possible_duplicates = _execute(POSSIBLE_DUPLICATES_FROM_INGEST_SQL, {"upload": upload_id})
    _execute(DROP_TEMP_TABLES)
    counts.timings = timings
    return counts
