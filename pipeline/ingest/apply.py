"""Apply: staged rows → DLQ, in-file dedupe, match against `leads`, safe merge, new owners, insert, score,
possible duplicates — set-based.

One call runs in the caller's transaction (the ingestion service holds it and the apply gate, shared: other
uploads apply at the same time), with a handful of statements whatever the file's size (each in
pipeline/ingest/sql/):

1. rejected staging rows → `pipeline_dlq` (raw row, upload, line number, reason; pipeline/dlq.py);
2. in-file dedupe (`sql/dedupe.py`): MAK → APN → address hash, and two rows are one property only when
   they share a key and no stronger key is present on both and different; later rows merge into the first;
3. match (`sql/match.py`): each property against `leads` by the same rule; an ambiguous or conflicting
   match makes a lead of its own, and the leads it shares a key with become possible duplicates;
0. an erased person's rows are rejected ("erased person", nothing of the row kept: `sql/suppress.py`);
4. write (`sql/write.py`), optimistic: first `INSERT … ON CONFLICT DO NOTHING` of the new leads in key order;
   a property whose key another upload committed since our match lost, and is matched again (`match.LOSERS`:
   it merges into that lead, or stays a lead of its own where the rule says so). Then the leads to merge into
   are locked in id order (`match.LOCK_TARGETS`) and, if another apply committed meanwhile, the new-owner test
   is asked again of the locked lead; then a new owner on a parcel met by MAK or APN replaces the old owner's
   contact data and consent (kept on the timeline); `UPDATE … FROM` for the other matches with the seed's safe
   merge (flags OR-ed, code arrays unioned, payload merged, existing contact data kept, campaign status
   untouched) — all computing `lead_score` and `score_breakdown` in the same statement (leads/scoring.py). A
   merge changes no indexed column and `leads` keeps room on each page (leads/migrations/0005), so the UPDATE
   writes heap-only tuples: no index entry at all.

   Inserts first, then row locks, then possible duplicates (each in one order): an apply waits only on what
   another holds at the same stage or a later one, so uploads that share keys queue and never deadlock.

5. suppression marks (`sql/suppress.py`): the leads created or changed whose e-mail, domain, phone or address the
   suppression list or the DNC registry binds get their `suppressed_channels` (leads/suppressions/sql.py); those
   leads are collected first, and when there are none (the usual case) `leads` is not read again.

6. possible duplicates, in pair order; after commit, when another apply committed after this one's match, the
   leads this one created are swept for pairs with the leads the other created (`possible_duplicates_sweep`):
   each was invisible to the other's match.

7. portal search rows (`sql/search.py`), last: a large upload's new leads as one new `lead_search` partition.

No MERGE statement (≈16% slower than UPDATE + INSERT on the update-heavy path), no per-row round trips.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import F

from equity_connect.db import pipeline_writer_context
from pipeline.dlq import dlq_record_owner_change_reviews, dlq_record_rejected_rows
from pipeline.duplicates.records import POSSIBLE_DUPLICATES_FROM_INGEST_SQL, POSSIBLE_DUPLICATES_SWEEP_SQL
from pipeline.models import Upload

from .locks import applies_committed_since, other_applies_running, snapshot_now
from .sql import (
    DROP_TEMP_TABLES,
    SET_LOCK_TIMEOUT,
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
# A property that lost its insert to another upload's lead matches that lead (the unique keys follow the match
# rule), so one more round is the most it takes; a bound anyway.
MAX_INSERT_ROUNDS = 5
logger = logging.getLogger("pipeline.ingest")


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
    insert_losers: int = 0  # new properties whose insert lost to a lead another upload committed meanwhile
    concurrent: bool = False  # another apply committed since the match, or ran beside this one when it locked
    # What the match could not see (pg_current_snapshot), for the sweep after commit.
    snapshot: str = ""
    # The leads a DLQ reprocess created (an upload's stay in the session's `ingest_created`).
    created_lead_ids: list[str] | None = None

    def race_figures(self) -> dict:
        return {"insert_losers": self.insert_losers, "concurrent": self.concurrent}

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


def match_leads() -> int:
    """Build `ingest_resolved` (and the candidates). Returns the properties."""
    resolved = _execute(match.resolved_sql())
    _execute(match.CANDIDATES)
    if _scalar(match.COUNT_CANDIDATES):
        _execute(match.TARGET_FROM_CANDIDATES)
        _execute(match.KEEP_OTHERS_KEYS)
    return resolved


def match_counts() -> tuple[int, int]:
    """(properties that match a lead, leads met by several); builds `ingest_merges` when there are such leads."""
    matched, shared = _fetchall(match.MATCH_COUNTS)[0]
    if shared:
        _execute(match.merges_sql())
        _execute(match.ANALYZE_MERGES)
    _execute(match.ANALYZE_RESOLVED)  # the planner needs it for the update's join
    return int(matched), shared


def losers_rematch() -> int:
    """Match again, against `leads` as it is now, the new properties whose insert another upload's lead beat
    (by MAK, then by their candidates read again). Returns how many lost."""
    _execute(match.DROP_LOSERS)
    losers = _execute(match.LOSERS)
    if losers:
        _execute(match.LOSERS_BY_MAK)
        _execute(match.LOSERS_CANDIDATES_FORGET)
        _execute(match.LOSERS_CANDIDATES)
        _execute(match.TARGET_FROM_CANDIDATES)
        _execute(match.KEEP_OTHERS_KEYS)
    return losers


def leads_insert_optimistic(*, upload_id: str, source: str, lead_events: bool, expected: int) -> tuple[int, int]:
    """Insert the new leads (ON CONFLICT DO NOTHING); while some lost to another upload's lead, match those
    again and insert the ones that still match none. Returns (leads created, inserts lost)."""
    created = insert_new_leads(upload_id=upload_id, source=source, lead_events=lead_events)
    lost = 0
    for _ in range(MAX_INSERT_ROUNDS):
        if created == expected:
            break
        losers = losers_rematch()
        lost += losers
        expected = created + _scalar(match.COUNT_LOSERS_UNMATCHED)
        created += _execute(
            write.insert_sql(lead_events=lead_events, losers_only=True), {"upload": upload_id, "source": source}
        )
    return created, lost


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
    """The apply's last statement: the deferred new leads' search rows, as a new partition of `lead_search`
    (nothing when the insert was not deferred: the trigger wrote them)."""
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
    _execute(SET_LOCK_TIMEOUT)
    erased = erased_rows_reject(upload_id=upload_id, lines=lines)
    rejected = dlq_record_rejected_rows(upload_id=upload_id, lines=lines) if write_dlq or erased else 0
    lap("dlq_ms")
    counts = dedupe_in_file(upload_id=upload_id, lines=lines)
    counts.rows_rejected = rejected
    counts.rows_erased = erased
    lap("dedupe_ms")
    # What the match cannot see: anything another apply commits from here on (asked again below).
    snapshot = snapshot_now()
    properties = match_leads()
    if properties != counts.clusters:
        raise RuntimeError("the in-file dedupe and the match disagree on the number of properties")
    matched, _ = _fetchall(match.MATCH_COUNTS)[0]
    lap("match_ms")
    lead_events = counts.clusters <= lead_events_max
    new_clusters = counts.clusters - int(matched)
    search_rows_defer(new_leads=new_clusters)
    counts.leads_created, counts.insert_losers = leads_insert_optimistic(
        upload_id=upload_id, source=source, lead_events=lead_events, expected=new_clusters
    )
    lap("insert_ms")
    _execute(match.LOCK_TARGETS)
    counts.concurrent = other_applies_running() or applies_committed_since(snapshot, upload_id=upload_id)
    if counts.concurrent:
        _execute(match.ANALYZE_RESOLVED)  # a join with `leads`: never a nested loop over an unanalysed table
        _execute(match.OWNER_CHANGED_RECHECK)
    counts.leads_merged, shared = match_counts()
    if counts.leads_created != counts.clusters - counts.leads_merged:  # a broken invariant must never commit
        raise RuntimeError(
            f"inserted {counts.leads_created} leads for {counts.clusters - counts.leads_merged} new clusters"
        )
    owners_change(upload_id=upload_id, counts=counts, shared=shared > 0)
    if counts.leads_merged:  # none met (an upload into new parcels): skipped, as run for zero rows this UPDATE
        # once took over five minutes at 250k rows (docs/benchmarks.md, concurrent_apply)
        merge_into_leads(upload_id=upload_id, lead_events=lead_events, shared=shared > 0)
    lap("update_ms")
    counts.leads_suppressed = leads_suppression_mark()
    lap("suppress_ms")
    counts.possible_duplicates = _execute(POSSIBLE_DUPLICATES_FROM_INGEST_SQL, {"upload": upload_id})
    # Last: attaching the partition locks `lead_search` against other attaches until this commits, and from here
    # this apply touches only rows it already holds, so an upload waiting to attach never waits in a cycle.
    search_rows_add()
    lap("search_ms")
    counts.snapshot = snapshot
    if lines is None:
        _execute(match.DROP_CREATED)
        _execute(match.KEEP_CREATED)
    else:
        counts.created_lead_ids = [str(lead) for (lead,) in _fetchall(match.NEW_LEADS)]
    _execute(DROP_TEMP_TABLES)
    counts.timings = timings
    return counts


def possible_duplicates_sweep(*, upload_id: str, counts: ApplyCounts) -> int:
    """After commit, in a transaction of its own: when another apply committed after this one's match (whenever
    they overlapped, at least the one that commits second finds the other here), record the possible duplicates
    between the leads this apply created and every other lead (POSSIBLE_DUPLICATES_SWEEP_SQL): the other's were
    invisible to this match, and this one's to theirs. Returns the pairs recorded."""
    try:
        if not applies_committed_since(counts.snapshot, upload_id=upload_id):
            return 0
        if counts.created_lead_ids is not None:
            _execute(match.DROP_CREATED)
            _execute(match.CREATED_FROM_LIST, {"leads": counts.created_lead_ids})
        return _execute(POSSIBLE_DUPLICATES_SWEEP_SQL, {"upload": upload_id})
    finally:
        _execute(match.DROP_CREATED)


def possible_duplicates_sweep_after_commit(*, upload_id: str, counts: ApplyCounts) -> int:
    """`possible_duplicates_sweep` in a transaction of its own, its pairs added to the upload's count. Never fails
    the upload (it is done): a fault here is logged, and those pairs are not proposed."""
    try:
        with pipeline_writer_context():
            found = possible_duplicates_sweep(upload_id=upload_id, counts=counts)
            if found:
                Upload.objects.filter(pk=upload_id).update(possible_duplicates=F("possible_duplicates") + found)
            return found
    except Exception:
        logger.exception("the sweep for possible duplicates with concurrent uploads failed")
        return 0
