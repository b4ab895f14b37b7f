"""Match: each property of the file against `leads`, by the same rule as the in-file dedupe.

A property is the same as a lead when they share a key and no stronger key is present on both and
different. MAK decides alone (it is unique). Otherwise, at the strongest key with any such lead: the one
lead, or of several the one whose stronger keys are exactly the property's; else none (ambiguous): the
property becomes a lead of its own, and every lead it shares a key with but did not merge into is recorded
as a possible duplicate. A new owner on a parcel met by MAK or APN is flagged (`owner_changed`).
"""

from __future__ import annotations

from leads.columns import CODES, FLAGS, INGESTED, KEEP_FIRST, KEEP_NEWEST, KEYS

# The lead owner test (leads/migrations/0007): a missing name is never a change.
OWNER_CHANGED = (
    "ec_owner_changed({lead}.first_name, {lead}.last_name, {lead}.owner2_name,"
    " {row}.first_name, {row}.last_name, {row}.owner2_name)"
)


def _aggregate(column: str, *, alias: str, order: str, source: str | None = None) -> str:
    """The merge of one column over a group of rows, ordered by `order` (earliest first)."""
    value = f"{alias}.{source or column}"
    if column in KEEP_FIRST:
        return f"(array_agg({value} ORDER BY {alias}.{order}) FILTER (WHERE {value} IS NOT NULL))[1]"
    if column in KEEP_NEWEST:
        return f"(array_agg({value} ORDER BY {alias}.{order} DESC) FILTER (WHERE {value} IS NOT NULL))[1]"
    if column in FLAGS:
        return f"bool_or(coalesce({value}, false))"
    if column in CODES:
        return f"ec_array_distinct(text_array_cat_agg(coalesce({value}, '{{}}'::text[])))"
    return f"nullif(jsonb_merge_agg({value} ORDER BY {alias}.{order}), '{{}}'::jsonb)"


def _grouped(*, alias: str, order: str) -> tuple[str, str]:
    """The same merges as `_aggregate`, with one sort per group instead of one per column.

    An aggregate with its own ORDER BY sorts each group once per column (PostgreSQL 15), which for ~17
    columns was most of the match step. Instead a window over the group (one sort) finds, for each column,
    the line that holds its first (or newest) non-null value; the grouping then keeps the value of that
    line (lines are unique, so exactly one). Returns (columns over `WINDOW w`, aggregates over `x`)."""
    windows, aggregates = [], []
    for column in INGESTED:
        value = f"{alias}.{column}"
        if column in KEEP_FIRST or column in KEEP_NEWEST:
            pick = "min" if column in KEEP_FIRST else "max"
            windows.append(f"{pick}({alias}.{order}) FILTER (WHERE {value} IS NOT NULL) OVER w AS {column}__at")
            aggregates.append(f"(array_agg(x.{column}) FILTER (WHERE x.{order} = x.{column}__at))[1] AS {column}")
        else:
            aggregates.append(f"{_aggregate(column, alias='x', order=order)} AS {column}")
    return ", ".join(windows), ", ".join(aggregates)


def resolved_sql() -> str:
    """One row per property of the file — its rows merged in line order — with the lead its MAK names
    (`target`), whether that lead has a new owner, the keys it may fill in, and the id a new lead would get::

        CREATE TEMP TABLE ingest_resolved ON COMMIT DROP AS
        WITH clusters AS (
          SELECT s.line AS label, s.<columns> FROM ingest_rows s          -- rows that share no key
           WHERE NOT EXISTS (SELECT 1 FROM ingest_linked k WHERE k.line = s.line)
          UNION ALL
          SELECT x.label, <merged columns> FROM (SELECT k.label, s.line, s.<columns>, <first/newest line per
                 column> FROM ingest_rows s JOIN ingest_linked k ON k.line = s.line WINDOW w AS (…)) x
           GROUP BY x.label)
        SELECT c.*, lm.id AS target, <'mak' when matched> AS via, <owner changed> AS owner_changed,
               c.mak AS mak_fill, c.apn AS apn_fill, c.addr_hash AS addr_fill,
               <ec_uuid_time_ordered() when unmatched> AS new_id
          FROM clusters c LEFT JOIN leads lm ON lm.mak = c.mak
    """
    columns = ", ".join(f"s.{column}" for column in INGESTED)
    windows, aggregates = _grouped(alias="s", order="line")
    return (
        "CREATE TEMP TABLE ingest_resolved ON COMMIT DROP AS\n"
        "WITH clusters AS (\n"
        f"  SELECT s.line AS label, {columns} FROM ingest_rows s\n"
        "   WHERE NOT EXISTS (SELECT 1 FROM ingest_linked k WHERE k.line = s.line)\n"
        "  UNION ALL\n"
        f"  SELECT x.label, {aggregates}\n"
        f"    FROM (SELECT k.label, s.line, {columns}, {windows}\n"
        "            FROM ingest_rows s JOIN ingest_linked k ON k.line = s.line\n"
        "          WINDOW w AS (PARTITION BY k.label)) x\n"
        "   GROUP BY x.label)\n"
        "SELECT c.*, lm.id AS target, CASE WHEN lm.id IS NOT NULL THEN 'mak' END AS via,\n"
        f"       lm.id IS NOT NULL AND {OWNER_CHANGED.format(lead='lm', row='c')} AS owner_changed,\n"
        "       c.mak AS mak_fill, c.apn AS apn_fill, c.addr_hash AS addr_fill,\n"
        "       CASE WHEN lm.id IS NULL THEN ec_uuid_time_ordered() END AS new_id\n"
        "  FROM clusters c LEFT JOIN leads lm ON lm.mak = c.mak AND lm.mak IS NOT NULL"
    )


# Every other lead a property shares its APN or its address with (rare: MAK-matched properties usually find
# their own lead again, which is left out here, so on a re-sent file this writes nothing).
CANDIDATES = """CREATE TEMP TABLE ingest_candidates ON COMMIT DROP AS
SELECT r.label, l.id AS lead_id, 'apn' AS via, l.mak, l.apn, l.addr_hash,
       l.first_name, l.last_name, l.owner2_name
  FROM ingest_resolved r JOIN leads l ON l.apn = r.apn
 WHERE l.id IS DISTINCT FROM r.target
UNION ALL
SELECT r.label, l.id, 'addr_hash', l.mak, l.apn, l.addr_hash, l.first_name, l.last_name, l.owner2_name
  FROM ingest_resolved r JOIN leads l ON l.addr_hash = r.addr_hash
 WHERE l.id IS DISTINCT FROM r.target"""
COUNT_CANDIDATES = "SELECT count(*) FROM ingest_candidates"

# For properties their MAK did not place: the lead at the strongest key where any lead fits (no stronger key
# conflicts) — the only one, or the one whose stronger keys are exactly the property's; none if ambiguous.
TARGET_FROM_CANDIDATES = (
    """UPDATE ingest_resolved r
   SET target = t.lead_id, via = t.via, new_id = NULL,
       owner_changed = t.via = 'apn' AND t.owner_changed
  FROM (SELECT DISTINCT ON (label) label, via,
               CASE WHEN fitting = 1 THEN any_lead ELSE exact_lead END AS lead_id,
               CASE WHEN fitting = 1 THEN any_owner_changed ELSE exact_owner_changed END AS owner_changed
          FROM (SELECT c.label, c.via, count(*) AS fitting,
                       (array_agg(c.lead_id))[1] AS any_lead,
                       (array_agg(c.lead_id) FILTER (WHERE c.exact))[1] AS exact_lead,
                       bool_or(c.owner_changed) AS any_owner_changed,
                       bool_or(c.owner_changed) FILTER (WHERE c.exact) AS exact_owner_changed
                  FROM (SELECT c.*,
                               c.mak IS NOT DISTINCT FROM p.mak
                                 AND (c.via = 'apn' OR c.apn IS NOT DISTINCT FROM p.apn) AS exact,
                               """
    + OWNER_CHANGED.format(lead="c", row="p")
    + """ AS owner_changed
                          FROM ingest_candidates c JOIN ingest_resolved p ON p.label = c.label
                         WHERE p.target IS NULL
                           AND (c.mak IS NULL OR p.mak IS NULL)
                           AND (c.via = 'apn' OR c.apn IS NULL OR p.apn IS NULL)) c
                 GROUP BY c.label, c.via) levels
         ORDER BY label, via = 'apn' DESC) t
 WHERE r.label = t.label AND t.lead_id IS NOT NULL"""
)

# A key another lead already holds is not copied onto the target (it stays a possible duplicate instead).
KEEP_OTHERS_KEYS = """UPDATE ingest_resolved r
   SET apn_fill = CASE WHEN o.apn_taken THEN NULL ELSE r.apn_fill END,
       addr_fill = CASE WHEN o.addr_taken THEN NULL ELSE r.addr_fill END
  FROM (SELECT c.label, bool_or(c.via = 'apn') AS apn_taken, bool_or(c.via = 'addr_hash') AS addr_taken
          FROM ingest_candidates c JOIN ingest_resolved p ON p.label = c.label
         WHERE c.lead_id IS DISTINCT FROM p.target GROUP BY c.label) o
 WHERE r.label = o.label"""

# How many properties match a lead, and how many leads several properties of the file meet.
MATCH_COUNTS = """SELECT coalesce(sum(n), 0), count(*) FILTER (WHERE n > 1)
  FROM (SELECT count(*) AS n FROM ingest_resolved WHERE target IS NOT NULL GROUP BY target) g"""
ANALYZE_RESOLVED = "ANALYZE ingest_resolved (target)"
ANALYZE_MERGES = "ANALYZE ingest_merges"

KEY_FILLS = ("mak_fill", "apn_fill", "addr_fill")


def merges_sql() -> str:
    """When several properties of the file meet one lead (rare): one row per such lead, the properties
    merged in line order::

        CREATE TEMP TABLE ingest_merges ON COMMIT DROP AS
        SELECT g.target, bool_or(g.owner_changed) AS owner_changed, <merged key fills>, <merged columns>
          FROM ingest_resolved g
         WHERE g.target IN (SELECT target FROM ingest_resolved WHERE target IS NOT NULL
                             GROUP BY target HAVING count(*) > 1)
         GROUP BY g.target
    """
    merge_columns = [column for column in INGESTED if column not in KEYS]
    aggregates = ", ".join(f"{_aggregate(column, alias='g', order='label')} AS {column}" for column in merge_columns)
    keys = ", ".join(
        f"{_aggregate(column, alias='g', order='label', source=fill)} AS {fill}"
        for column, fill in zip(KEYS, KEY_FILLS, strict=True)
    )
    return (
        "CREATE TEMP TABLE ingest_merges ON COMMIT DROP AS\n"
        f"SELECT g.target, bool_or(g.owner_changed) AS owner_changed, {keys}, {aggregates}\n"
        "  FROM ingest_resolved g\n"
        " WHERE g.target IN (SELECT target FROM ingest_resolved WHERE target IS NOT NULL\n"
        "                     GROUP BY target HAVING count(*) > 1)\n"
        " GROUP BY g.target"
    )


# --- Optimistic apply (no global lock): what a concurrent upload changed between our match and our writes. ---

# The leads each property will merge into, locked before any of them is written, in one order (by id) in every
# apply: two applies that meet the same leads queue on the first shared one instead of deadlocking. NO KEY
# UPDATE (what the merge's own UPDATE takes, since it changes no key column) does not block the KEY SHARE that
# inserting a possible duplicate or an event takes on a lead.
LOCK_TARGETS = """SELECT l.id FROM leads l
 WHERE l.id IN (SELECT target FROM ingest_resolved WHERE target IS NOT NULL)
 ORDER BY l.id
   FOR NO KEY UPDATE OF l"""

# After another apply committed since our match: a new owner is judged against the lead as it is now (locked),
# not as the match read it (the same file's owner on a lead another upload just changed to them is no change).
OWNER_CHANGED_RECHECK = (
    """UPDATE ingest_resolved r
   SET owner_changed = """
    + OWNER_CHANGED.format(lead="l", row="r")
    + """
  FROM leads l
 WHERE l.id = r.target AND r.via IN ('mak', 'apn')
   AND r.owner_changed IS DISTINCT FROM """
    + OWNER_CHANGED.format(lead="l", row="r")
    + "\n"
)

# The new properties whose insert lost to a lead another upload committed after our match (ON CONFLICT DO
# NOTHING skipped them: their `new_id` is no lead). Looked for only when the insert made fewer leads than asked.
LOSERS = """CREATE TEMP TABLE ingest_losers ON COMMIT DROP AS
SELECT r.label FROM ingest_resolved r
 WHERE r.target IS NULL AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.id = r.new_id)"""
DROP_LOSERS = "DROP TABLE IF EXISTS ingest_losers"
COUNT_LOSERS_UNMATCHED = (
    "SELECT count(*) FROM ingest_resolved WHERE target IS NULL AND label IN (SELECT label FROM ingest_losers)"
)

# The losers matched again, by the match's own rule, against `leads` as it is now: by MAK first …
LOSERS_BY_MAK = (
    """UPDATE ingest_resolved r
   SET target = lm.id, via = 'mak', new_id = NULL, owner_changed = """
    + OWNER_CHANGED.format(lead="lm", row="r")
    + """
  FROM leads lm
 WHERE r.label IN (SELECT label FROM ingest_losers) AND lm.mak = r.mak AND r.mak IS NOT NULL"""
)

# … then their candidates (the other leads they share an APN or an address with) are read again; the
# candidate statements that follow (TARGET_FROM_CANDIDATES, KEEP_OTHERS_KEYS) give every other property the
# same answer as before, since its candidates did not change.
LOSERS_CANDIDATES_FORGET = "DELETE FROM ingest_candidates WHERE label IN (SELECT label FROM ingest_losers)"
LOSERS_CANDIDATES = """INSERT INTO ingest_candidates
SELECT r.label, l.id, 'apn', l.mak, l.apn, l.addr_hash, l.first_name, l.last_name, l.owner2_name
  FROM ingest_resolved r JOIN leads l ON l.apn = r.apn
 WHERE r.label IN (SELECT label FROM ingest_losers) AND l.id IS DISTINCT FROM r.target
UNION ALL
SELECT r.label, l.id, 'addr_hash', l.mak, l.apn, l.addr_hash, l.first_name, l.last_name, l.owner2_name
  FROM ingest_resolved r JOIN leads l ON l.addr_hash = r.addr_hash
 WHERE r.label IN (SELECT label FROM ingest_losers) AND l.id IS DISTINCT FROM r.target"""

# The leads this apply created, kept past the commit in the session for the sweep that may follow it
# (apply.possible_duplicates_sweep); a DLQ reprocess, which may run through a pooler, reads them instead.
KEEP_CREATED = """CREATE TEMP TABLE ingest_created ON COMMIT PRESERVE ROWS AS
SELECT new_id AS id FROM ingest_resolved WHERE target IS NULL"""
CREATED_FROM_LIST = "CREATE TEMP TABLE ingest_created ON COMMIT DROP AS SELECT unnest(%(leads)s::uuid[]) AS id"
DROP_CREATED = "DROP TABLE IF EXISTS ingest_created"
NEW_LEADS = "SELECT new_id FROM ingest_resolved WHERE target IS NULL"
