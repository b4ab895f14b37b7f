"""The suppression list in the apply: an erased person's rows are rejected before anything else reads them,
and the leads the file created or changed are marked for the channels the list binds (leads/suppressions/sql.py),
after the insert. Both only look at blind indexes and address hashes (the staged plain text may go encrypted).
"""

from __future__ import annotations

from leads.suppressions.rules import ERASED_PERSON
from leads.suppressions.sql import marks_refresh_sql
from pipeline.ingest.rows import NORMALISED_NAMES

# Whether any erased person is listed (else the rejection below is not run at all).
ANY_ERASURE = "SELECT EXISTS (SELECT 1 FROM suppressions WHERE reason = 'erasure' AND removed_at IS NULL)"

# Rows whose e-mail or phone belongs to an erased person: rejected with the reason "erased person", and every
# value of the staged row blanked, so the DLQ row the next step makes holds the line number and the reason only.
_BLANKED = ", ".join(f"{name} = NULL" for name in NORMALISED_NAMES if name != "reject_reason")
ERASED_REJECT = f"""WITH erased AS (
  SELECT DISTINCT unnest(value_indexes)::text AS value_index FROM suppressions
   WHERE reason = 'erasure' AND removed_at IS NULL AND kind IN ('email', 'phone')
)
UPDATE leads_staging s SET reject_reason = '{ERASED_PERSON}', raw = '{{}}', melissa_payload = NULL, {_BLANKED}
 WHERE s.upload_id = %(upload)s AND s.reject_reason IS NULL
   AND (%(lines)s::int[] IS NULL OR s.line_number = ANY(%(lines)s::int[]))
   AND (s.email_bidx IN (SELECT value_index FROM erased) OR s.phone_bidx IN (SELECT value_index FROM erased))"""

SUPPRESSION_KEYS = """CREATE TEMP TABLE suppression_keys ON COMMIT DROP AS
SELECT DISTINCT unnest(value_indexes)::text AS value_index FROM suppressions WHERE removed_at IS NULL"""
# Whether the list holds any value, and the DNC registry any number: an arm of the targets below runs only when
# its source is not empty (one-time filters inside the statement were not enough: an arm that reads nothing
# still cost 0.3-2.4 s per 200k rows here).
SOURCES = """SELECT EXISTS (SELECT 1 FROM suppression_keys), EXISTS (SELECT 1 FROM dnc_registry_numbers)"""

# The leads of this apply whose marks may change: those a new owner arrived on (the old owner's marks go;
# `ingest_owner_changes`, sql/write.py), and those whose file values meet an active entry (hash lookups over the
# list's values) or a registry number (a primary-key lookup per phone). A plain join with the registry let the
# planner hash all of it: 13-17 s for 200k rows against 10M numbers, against ≈ 3.7 s of lookups.
TARGETS_OWNER_CHANGES = "SELECT o.lead_id AS id FROM ingest_owner_changes o"
TARGETS_LIST = """SELECT coalesce(r.target, r.new_id) FROM ingest_resolved r
 WHERE r.email_bidx IN (SELECT value_index FROM suppression_keys)
    OR r.email_domain_bidx IN (SELECT value_index FROM suppression_keys)
    OR r.phone_bidx IN (SELECT value_index FROM suppression_keys)
    OR r.addr_hash IN (SELECT value_index FROM suppression_keys)"""
TARGETS_REGISTRY = """SELECT coalesce(r.target, r.new_id) FROM ingest_resolved r
 CROSS JOIN LATERAL (SELECT 1 FROM dnc_registry_numbers d WHERE d.phone_key = dnc_phone_key(r.phone_bidx) LIMIT 1) d
 WHERE r.phone_bidx IS NOT NULL"""


def targets_sql(*, list_values: bool = True, registry_numbers: bool = True) -> str:
    """The targets, collected first into a table of their own: almost always none (an empty or small list binds
    few leads of a file), and then the marks statement is not run at all. Handed straight to `marks_refresh_sql()`
    as a subquery, they made the planner read the whole of `leads` twice (a hash of every lead for the `target`
    CTE, a primary-key scan for the UPDATE's join) to mark nothing: ≈ 2 s per 200k rows with empty lists
    (docs/benchmarks.md)::

        CREATE TEMP TABLE ingest_suppression_targets ON COMMIT DROP AS
        <owner changes> [UNION <list hits>] [UNION <registry hits>]
    """
    arms = [TARGETS_OWNER_CHANGES]
    if list_values:
        arms.append(TARGETS_LIST)
    if registry_numbers:
        arms.append(TARGETS_REGISTRY)
    return "CREATE TEMP TABLE ingest_suppression_targets ON COMMIT DROP AS\n" + "\nUNION\n".join(arms)


ANALYZE_TARGETS = "ANALYZE ingest_suppression_targets"  # a handful of ids: index lookups into `leads`
MARK_LEADS = marks_refresh_sql("SELECT t.id FROM ingest_suppression_targets t")
