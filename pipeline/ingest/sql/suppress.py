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

# The leads of this apply whose marks may change: those whose file values meet an active entry or a registry
# number (hash lookups over the list's values, a join with the registry), and those a new owner arrived on
# (the old owner's marks go).
INGEST_TARGETS = """SELECT coalesce(r.target, r.new_id) AS id FROM ingest_resolved r WHERE r.owner_changed
UNION
SELECT coalesce(r.target, r.new_id) FROM ingest_resolved r
 WHERE r.email_bidx IN (SELECT value_index FROM suppression_keys)
    OR r.email_domain_bidx IN (SELECT value_index FROM suppression_keys)
    OR r.phone_bidx IN (SELECT value_index FROM suppression_keys)
    OR r.addr_hash IN (SELECT value_index FROM suppression_keys)
UNION
SELECT coalesce(r.target, r.new_id) FROM ingest_resolved r
  JOIN dnc_registry_numbers d ON d.phone_key = dnc_phone_key(r.phone_bidx)"""
SUPPRESSION_KEYS = """CREATE TEMP TABLE suppression_keys ON COMMIT DROP AS
SELECT DISTINCT unnest(value_indexes)::text AS value_index FROM suppressions WHERE removed_at IS NULL"""
# The targets are collected first, into a table of their own: almost always none (an empty or small list
# binds few leads of a file), and then the marks statement below is not run at all. Handed straight to
# `marks_refresh_sql()` as a subquery, they made the planner read the whole of `leads` twice (a hash of every
# lead for the `target` CTE, a primary-key scan for the UPDATE's join) to mark nothing: ≈ 2 s per 200k rows
# with empty lists (docs/benchmarks.md).
TARGETS = f"CREATE TEMP TABLE ingest_suppression_targets ON COMMIT DROP AS\n{INGEST_TARGETS}"
ANALYZE_TARGETS = "ANALYZE ingest_suppression_targets"  # a handful of ids: index lookups into `leads`
MARK_LEADS = marks_refresh_sql("SELECT t.id FROM ingest_suppression_targets t")
