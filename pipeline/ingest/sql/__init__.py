"""The statements of the set-based apply, as SQL a reader can paste into psql: each is a named constant or a
builder whose docstring shows the statement it builds. `dedupe` (which rows of the file are one property),
`match` (which lead each property is), `write` (merge, new owner, insert); pipeline/ingest/apply.py runs
them in the order of `apply_statements`, which `manage.py ingest_sql` prints.

Parameters: `%(upload)s` (the upload id), `%(lines)s` (an int[] of line numbers, or NULL for all),
`%(source)s` (the new leads' source). The temporary tables live until the transaction ends.
"""

from __future__ import annotations

from pipeline.dlq import DLQ_FROM_STAGING_SQL, DLQ_REVIEW_FROM_OWNER_CHANGES_SQL
from pipeline.duplicates.records import POSSIBLE_DUPLICATES_FROM_INGEST_SQL, POSSIBLE_DUPLICATES_SWEEP_SQL

from . import dedupe, match, search, suppress, write

SET_WORK_MEM = "SET LOCAL work_mem = '128MB'"
# No JIT compilation for the apply: its statements are costed by the size of `leads`, so once the table holds a few
# million leads they pass jit_optimize_above_cost / jit_inline_above_cost and PostgreSQL spends seconds compiling
# them (EXPLAIN at 5M leads: 5.7 s of the 9.2 s of `ingest_resolved`, 11.5 s over the upload) to run them over
# rows of one file. Measured in docs/benchmarks.md (`ingest_growth`).
SET_NO_JIT = "SET LOCAL jit = off"
# Index lookups priced as what they are here, reads of cached or SSD pages (PostgreSQL's default 4 prices a disk
# seek): at 1M leads the planner otherwise joined an 85k-property file to `leads` by three hash joins over whole
# scans of its heap (335k pages read, 9.2 s for the key joins), where the three index lookups per property read
# 21k heap pages (5.1 s). A large file against a small table still gets its hash join.
SET_RANDOM_PAGE_COST = "SET LOCAL random_page_cost = 1.1"
# An apply waits on another upload's apply (an uncommitted key its insert meets, a lead both merge into) until
# that one commits, which may take longer than the ingest budget's lock_timeout: as long as a statement may run.
SET_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', current_setting('statement_timeout'), true)"
DROP_TEMP_TABLES = (
    "DROP TABLE IF EXISTS ingest_rows, ingest_linked, ingest_addresses, ingest_groups, ingest_pairs,"
    " ingest_resolved, ingest_candidates, ingest_merges, ingest_owner_changes, suppression_keys,"
    " ingest_suppression_targets, ingest_losers"
)


def apply_statements(*, lead_events: bool, shared: bool) -> list[tuple[str, str]]:
    """Every statement of one apply, in the order it runs, as (what it does, SQL). Some run only when they
    have something to do: the address tier when two properties share an address (the propagation repeats
    until it changes nothing), the candidate steps when a property shares a key with another lead,
    `ingest_merges` and its merges when several properties meet one lead (`shared`)."""
    statements = [
        ("work memory for the sorts and hashes below", SET_WORK_MEM),
        ("no JIT compilation: these statements run over one file's rows, however large `leads` is", SET_NO_JIT),
        ("index lookups priced as cached or SSD reads", SET_RANDOM_PAGE_COST),
        ("waits on another upload's apply as long as a statement may run", SET_LOCK_TIMEOUT),
        ("is anyone erased? (else the next statement is not run)", suppress.ANY_ERASURE),
        ("an erased person's rows rejected, blanked (pipeline/ingest/sql/suppress.py)", suppress.ERASED_REJECT),
        ("rejected rows to the DLQ (pipeline/dlq.py)", DLQ_FROM_STAGING_SQL.strip()),
        ("the upload's valid rows", dedupe.ROWS),
        ("their statistics", dedupe.ANALYZE_ROWS),
        ("rows that share a key with another row of the file", dedupe.LINKED),
        ("tier 1: one MAK, one property", dedupe.TIER_MAK),
        ("tier 2: by APN, joined to the one MAK property that holds it", dedupe.TIER_APN),
        ("tier 3: address-only rows by address", dedupe.TIER_ADDRESS_ONLY),
        ("addresses two properties share", dedupe.SHARED_ADDRESSES),
        ("those properties and their strong keys", dedupe.GROUPS),
        ("components over shared addresses (repeated until it changes nothing)", dedupe.PROPAGATE_COMPONENTS),
        ("a component without conflicting keys is one property", dedupe.MERGE_COMPONENTS),
        ("statistics of the linked rows", dedupe.ANALYZE_LINKED),
        ("properties among the linked rows", dedupe.COUNT_LINKED_PROPERTIES),
        ("properties of the file that share a key but stayed apart", dedupe.PAIRS),
        ("what the match cannot see (another apply that commits later)", "SELECT pg_current_snapshot()::text"),
        ("one row per property, with the lead its MAK names", match.resolved_sql()),
        ("other leads each property shares a key with", match.CANDIDATES),
        ("how many", match.COUNT_CANDIDATES),
        (
            "the lead at the strongest fitting key, for properties their MAK did not place",
            match.TARGET_FROM_CANDIDATES,
        ),
        ("keys other leads hold are not copied", match.KEEP_OTHERS_KEYS),
        ("properties that match a lead; leads that several meet", match.MATCH_COUNTS),
        ("large upload: the new leads' search rows wait for their partition", search.DEFER),
        (
            "new leads, in key order; a key another upload committed since the match is skipped",
            write.insert_sql(lead_events=lead_events),
        ),
        ("when fewer were inserted: the properties that lost to another upload's lead", match.LOSERS),
        ("matched again: by MAK", match.LOSERS_BY_MAK),
        ("their old candidates forgotten", match.LOSERS_CANDIDATES_FORGET),
        ("and read again", match.LOSERS_CANDIDATES),
        ("the candidate steps above again; those that still match none", match.COUNT_LOSERS_UNMATCHED),
        ("inserted", write.insert_sql(lead_events=lead_events, losers_only=True)),
        ("the leads to merge into, locked in id order", match.LOCK_TARGETS),
        (
            "if another apply committed since the match: the new-owner test against the locked leads",
            match.OWNER_CHANGED_RECHECK,
        ),
        ("properties that match a lead; leads that several meet", match.MATCH_COUNTS),
    ]
    if shared:
        statements += [
            ("leads that several properties meet", match.merges_sql()),
            ("their statistics", match.ANALYZE_MERGES),
        ]
    statements.append(("statistics of the resolved properties", match.ANALYZE_RESOLVED))
    single, owner_single = (
        (write.MERGE_SOURCE_SINGLE_NOT_SHARED, write.OWNER_SOURCE_SINGLE_NOT_SHARED)
        if shared
        else (write.MERGE_SOURCE_SINGLE, write.OWNER_SOURCE_SINGLE)
    )
    statements += [
        ("leads a new owner arrived on, as the old owner left them", write.OWNER_CHANGES),
        ("how many", write.COUNT_OWNER_CHANGES),
        ("the change on each lead's timeline", write.OWNER_CHANGE_EVENTS),
        ("a review for each that was do-not-contact (pipeline/dlq.py)", DLQ_REVIEW_FROM_OWNER_CHANGES_SQL.strip()),
        ("their Instantly sequences, stopped after commit", write.INSTANTLY_SEQUENCES_TO_STOP),
        ("the new owners' merge", write.owner_merge_sql(owner_single)),
        ("the safe merge into matched leads", write.merge_sql(single, lead_events=lead_events)),
    ]
    if shared:
        statements += [
            ("the new owners' merge into leads several meet", write.owner_merge_sql(write.OWNER_SOURCE_SHARED)),
            (
                "the safe merge into leads several meet",
                write.merge_sql(write.MERGE_SOURCE_SHARED, lead_events=lead_events),
            ),
        ]
    statements += [
        ("every value the suppression list holds", suppress.SUPPRESSION_KEYS),
        ("does the list hold any value, the DNC registry any number?", suppress.SOURCES),
        (
            "leads a new owner arrived on, or that the list or the registry binds (an arm per non-empty source;"
            " with none, the next two are not run)",
            suppress.targets_sql(),
        ),
        ("their statistics", suppress.ANALYZE_TARGETS),
        ("marks of the leads the list or the DNC registry binds", suppress.MARK_LEADS),
        ("possible duplicates (pipeline/duplicates/records.py)", POSSIBLE_DUPLICATES_FROM_INGEST_SQL),
        (
            "the new leads' search rows as one built partition of lead_search, last (pipeline/ingest/sql/search.py)",
            search.PARTITION_ADD,
        ),
        ("the leads created, kept past the commit (a DLQ reprocess reads them instead)", match.KEEP_CREATED),
        ("clean up", DROP_TEMP_TABLES),
        (
            "after commit, if another apply committed since the match: possible duplicates with its new leads"
            " (pipeline/duplicates/records.py)",
            POSSIBLE_DUPLICATES_SWEEP_SQL,
        ),
        ("clean up", match.DROP_CREATED),
    ]
    return statements
