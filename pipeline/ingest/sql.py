"""The statements of the set-based apply (pipeline/ingest/apply.py runs them, in this order, in one
transaction). Each is a named constant, or a builder whose docstring shows the statement it builds; the
column lists come from leads/columns.py and the score from leads/scoring.py.
`manage.py ingest_sql` prints every statement as it will run, ready to paste into psql.

Parameters: `%(upload)s` (the upload id), `%(lines)s` (an int[] of line numbers, or NULL for all),
`%(source)s` (the new leads' source). The temporary tables live until the transaction ends.
"""

from __future__ import annotations

from equity_connect.events import lead_events_insert_sql
from leads.columns import ADDRESS, CODES, CONTACT, FLAGS, INGESTED, KEEP_FIRST, KEEP_NEWEST, KEYS
from leads.scoring import breakdown_from_columns_sql, score_columns_sql, score_sql
from pipeline.dlq import DLQ_FROM_STAGING_SQL

SET_WORK_MEM = "SET LOCAL work_mem = '128MB'"
# The keys a matched property may fill in on its lead (`resolved_sql`), one per key of KEYS.
KEY_FILLS = ("mak_fill", "apn_fill", "addr_fill")

# 1. The upload's valid rows, narrow (no raw JSON) and ANALYZEd: the statistics of the shared staging table
#    say little about one upload, and a misestimate here turns the joins below into nested loops. Only the
#    columns that joins and groupings use are analysed: sampling the wide ones costs more than the rest.
ROWS = (
    f"CREATE TEMP TABLE ingest_rows ON COMMIT DROP AS\n"
    f"SELECT line_number AS line, {', '.join(INGESTED)}\n"
    "  FROM leads_staging\n"
    " WHERE upload_id = %(upload)s AND reject_reason IS NULL\n"
    "   AND (%(lines)s::int[] IS NULL OR line_number = ANY(%(lines)s::int[]))"
)
ANALYZE_ROWS = "ANALYZE ingest_rows (line, mak, apn, addr_hash)"

# 2. In-file dedupe. Hash aggregates find the keys used more than once; only rows carrying one are linked.
LINKED = """CREATE TEMP TABLE ingest_linked ON COMMIT DROP AS
SELECT line, mak, apn, addr_hash, line AS label
  FROM ingest_rows k
 WHERE k.mak IN (SELECT mak FROM ingest_rows WHERE mak IS NOT NULL GROUP BY mak HAVING count(*) > 1)
    OR k.apn IN (SELECT apn FROM ingest_rows WHERE apn IS NOT NULL GROUP BY apn HAVING count(*) > 1)
    OR k.addr_hash IN (SELECT addr_hash FROM ingest_rows WHERE addr_hash IS NOT NULL
                        GROUP BY addr_hash HAVING count(*) > 1)"""

# Min-label propagation (connected components over the three keys): each pass gives every row the smallest
# label among the rows it shares a key with.
PROPAGATE = """UPDATE ingest_linked k SET label = y.new_label
  FROM (SELECT line, label,
               least(label,
                     CASE WHEN mak IS NOT NULL THEN min(label) OVER (PARTITION BY mak) END,
                     CASE WHEN apn IS NOT NULL THEN min(label) OVER (PARTITION BY apn) END,
                     CASE WHEN addr_hash IS NOT NULL THEN min(label) OVER (PARTITION BY addr_hash) END) AS new_label
          FROM ingest_linked) y
 WHERE k.line = y.line AND y.new_label < y.label"""

# Whether another pass would still change a label: some key's rows carry more than one (three hash
# aggregates, far cheaper than the pass that would change nothing).
UNSETTLED = "SELECT " + "\n    OR ".join(
    f"EXISTS (SELECT FROM ingest_linked WHERE {key} IS NOT NULL GROUP BY {key} HAVING min(label) <> max(label))"
    for key in KEYS
)
ANALYZE_LINKED = "ANALYZE ingest_linked"
COUNT_LINKED_PROPERTIES = "SELECT count(DISTINCT label) FROM ingest_linked"

# 3. How many properties match a lead, and how many leads several properties of the file meet.
MATCH_COUNTS = """SELECT coalesce(sum(n), 0), count(*) FILTER (WHERE n > 1)
  FROM (SELECT count(*) AS n FROM ingest_resolved WHERE target IS NOT NULL GROUP BY target) g"""
ANALYZE_MERGES = "ANALYZE ingest_merges"
ANALYZE_RESOLVED = "ANALYZE ingest_resolved (target)"

DROP_TEMP_TABLES = "DROP TABLE IF EXISTS ingest_rows, ingest_linked, ingest_resolved, ingest_merges"


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
    """One row per property of the file — its rows merged in line order — with the lead it matches
    (`target`, by MAK, then APN, then address hash) and the keys it may fill in on that lead (a key that
    already belongs to another lead is not copied)::

        CREATE TEMP TABLE ingest_resolved ON COMMIT DROP AS
        WITH clusters AS (
          SELECT s.line AS label, s.<columns> FROM ingest_rows s          -- rows that share no key
           WHERE NOT EXISTS (SELECT 1 FROM ingest_linked k WHERE k.line = s.line)
          UNION ALL
          SELECT x.label, <merged columns> FROM (SELECT k.label, s.line, s.<columns>, <first/newest line per
                 column> FROM ingest_rows s JOIN ingest_linked k ON k.line = s.line WINDOW w AS (…)) x
           GROUP BY x.label)
        SELECT c.*, coalesce(lm.id, la.id, lh.id) AS target, <mak_fill>, <apn_fill>, <addr_fill>
          FROM clusters c
          LEFT JOIN leads lm ON lm.mak = c.mak … LEFT JOIN leads la ON la.apn = c.apn …
          LEFT JOIN leads lh ON lh.addr_hash = c.addr_hash …
    """
    columns = ", ".join(f"s.{column}" for column in INGESTED)
    windows, aggregates = _grouped(alias="s", order="line")
    target = "coalesce(lm.id, la.id, lh.id)"
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
        f"SELECT c.*, {target} AS target,\n"
        f"       CASE WHEN lm.id IS NULL OR lm.id = {target} THEN c.mak END AS mak_fill,\n"
        f"       CASE WHEN la.id IS NULL OR la.id = {target} THEN c.apn END AS apn_fill,\n"
        f"       CASE WHEN lh.id IS NULL OR lh.id = {target} THEN c.addr_hash END AS addr_fill\n"
        "  FROM clusters c\n"
        "  LEFT JOIN leads lm ON lm.mak = c.mak AND lm.mak IS NOT NULL\n"
        "  LEFT JOIN leads la ON la.apn = c.apn AND la.apn IS NOT NULL\n"
        "  LEFT JOIN leads lh ON lh.addr_hash = c.addr_hash AND lh.addr_hash IS NOT NULL"
    )


def merges_sql() -> str:
    """When several properties of the file meet one lead (rare): one row per such lead, the properties
    merged in line order::

        CREATE TEMP TABLE ingest_merges ON COMMIT DROP AS
        SELECT g.target, <merged key fills>, <merged columns>
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
        f"SELECT g.target, {keys}, {aggregates}\n"
        "  FROM ingest_resolved g\n"
        " WHERE g.target IN (SELECT target FROM ingest_resolved WHERE target IS NOT NULL\n"
        "                     GROUP BY target HAVING count(*) > 1)\n"
        " GROUP BY g.target"
    )


# The seed's safe merge of a property `m` into its lead `l`, column by column.
MERGED = {
    **{column: f"coalesce(nullif(l.{column}, ''), m.{column})" for column in CONTACT + ADDRESS},
    **{column: f"coalesce(m.{column}, l.{column})" for column in KEEP_NEWEST},
    **{column: f"coalesce(l.{column}, m.{column})" for column in ("property_type", "age", "owner_occupied")},
    **{column: f"coalesce(l.{column}, m.{fill})" for column, fill in zip(KEYS, KEY_FILLS, strict=True)},
    **{column: f"l.{column} OR coalesce(m.{column}, false)" for column in FLAGS},
    # `<@` first: the union (a set-returning SQL function) only when there is something new to add.
    **{
        column: f"CASE WHEN m.{column} IS NULL OR m.{column} <@ l.{column} THEN l.{column}"
        f" ELSE ec_array_distinct(l.{column} || m.{column}) END"
        for column in CODES
    },
    "melissa_payload": "coalesce(l.melissa_payload, '{}'::jsonb) || coalesce(m.melissa_payload, '{}'::jsonb)",
    "assigned_broker_id": "coalesce(l.assigned_broker_id, m.assigned_broker_id)",
}


def _score_assignment(columns: dict[str, str]) -> str:
    return (
        f"(SELECT {score_sql('q')}, {breakdown_from_columns_sql('q')}"
        f" FROM (SELECT {score_columns_sql(columns)} OFFSET 0) q)"
    )


def merge_sql(source: str, *, lead_events: bool) -> str:
    """Safe-merge each property of `source` (a table or subquery with `target`) into its lead and re-score
    it; a merge that changes nothing is not written (an UPDATE rewrites the row)::

        UPDATE leads l SET first_name = coalesce(nullif(l.first_name, ''), m.first_name), …,
               updated_at = now(), (lead_score, score_breakdown) = (SELECT <score>, <breakdown> FROM …)
          FROM <source> m
         WHERE l.id = m.target AND (l.first_name, …) IS DISTINCT FROM (<merged first_name>, …)

    With `lead_events`, the changed leads get a `lead_merged` event each (equity_connect/events.py)."""
    score_inputs = {**MERGED, "campaign_status": "l.campaign_status"}
    assignments = ", ".join(f"{column} = {expression}" for column, expression in MERGED.items())
    current = ", ".join(f"l.{column}" for column in MERGED)
    merged = ", ".join(MERGED.values())
    update = (
        f"UPDATE leads l SET {assignments}, updated_at = now(),\n"
        f"       (lead_score, score_breakdown) = {_score_assignment(score_inputs)}\n"
        f"  FROM {source} m\n"
        f" WHERE l.id = m.target AND ({current}) IS DISTINCT FROM ({merged})"
    )
    if not lead_events:
        return update
    return f"WITH changed AS ({update}\n RETURNING l.id, l.assigned_broker_id)\n" + lead_events_insert_sql(
        "lead_merged", source="changed"
    )


MERGE_SOURCE_SINGLE = "(SELECT * FROM ingest_resolved WHERE target IS NOT NULL)"
MERGE_SOURCE_SINGLE_NOT_SHARED = (
    "(SELECT * FROM ingest_resolved WHERE target IS NOT NULL AND target NOT IN (SELECT target FROM ingest_merges))"
)
MERGE_SOURCE_SHARED = "ingest_merges"


def insert_sql(*, lead_events: bool) -> str:
    """One new lead per property that matched none, scored, with its source and upload::

        INSERT INTO leads (<INGESTED columns>, lead_score, score_breakdown, source, source_upload_id)
        SELECT x.first_name, …, coalesce(x.email_verified, false), …, <score>, <breakdown>, %(source)s,
               %(upload)s
          FROM (SELECT r.*, <category points> FROM ingest_resolved r WHERE r.target IS NULL OFFSET 0) x
         ORDER BY x.mak, x.apn, x.addr_hash

    OFFSET 0 computes the score's categories once per row, not once per reference. In key order, each
    unique index takes its new entries in ascending runs (fewer pages touched). With `lead_events`, each
    new lead gets a `lead_created` event."""
    score_inputs = {column: f"r.{column}" for column in INGESTED} | {"campaign_status": "'new'"}
    selected = ", ".join(
        f"coalesce(x.{column}, '{{}}'::text[])"
        if column in CODES
        else f"coalesce(x.{column}, '{{}}'::jsonb)"
        if column == "melissa_payload"
        else f"coalesce(x.{column}, false)"
        if column in FLAGS
        else f"x.{column}"
        for column in INGESTED
    )
    insert = (
        f"INSERT INTO leads ({', '.join(INGESTED)}, lead_score, score_breakdown, source, source_upload_id)\n"
        f"SELECT {selected}, {score_sql('x')}, {breakdown_from_columns_sql('x')}, %(source)s, %(upload)s\n"
        f"  FROM (SELECT r.*, {score_columns_sql(score_inputs)} FROM ingest_resolved r WHERE r.target IS NULL"
        " OFFSET 0) x\n"
        " ORDER BY x.mak, x.apn, x.addr_hash"
    )
    if not lead_events:
        return insert
    return f"WITH created AS ({insert}\n RETURNING id, assigned_broker_id)\n" + lead_events_insert_sql(
        "lead_created", source="created"
    )


def apply_statements(*, lead_events: bool, shared: bool) -> list[tuple[str, str]]:
    """Every statement of one apply, in the order it runs, as (what it does, SQL): what
    `manage.py ingest_sql` prints. PROPAGATE repeats until UNSETTLED is false; `ingest_merges` and the
    second merge run only when several properties of the file meet one lead (`shared`)."""
    statements = [
        ("work memory for the sorts and hashes below", SET_WORK_MEM),
        ("rejected rows to the DLQ (pipeline/dlq.py)", DLQ_FROM_STAGING_SQL.strip()),
        ("the upload's valid rows", ROWS),
        ("their statistics", ANALYZE_ROWS),
        ("rows that share a key with another row of the file", LINKED),
        ("one propagation pass (repeated while UNSETTLED)", PROPAGATE),
        ("UNSETTLED: would another pass change a label?", UNSETTLED),
        ("statistics of the linked rows", ANALYZE_LINKED),
        ("properties among the linked rows", COUNT_LINKED_PROPERTIES),
        ("one row per property, with the lead it matches", resolved_sql()),
        ("properties that match a lead; leads that several meet", MATCH_COUNTS),
    ]
    if shared:
        statements += [("leads that several properties meet", merges_sql()), ("their statistics", ANALYZE_MERGES)]
    statements.append(("statistics of the resolved properties", ANALYZE_RESOLVED))
    single = MERGE_SOURCE_SINGLE_NOT_SHARED if shared else MERGE_SOURCE_SINGLE
    statements.append(("the safe merge into matched leads", merge_sql(single, lead_events=lead_events)))
    if shared:
        statements.append(
            ("the safe merge into leads several meet", merge_sql(MERGE_SOURCE_SHARED, lead_events=lead_events))
        )
    statements += [("new leads", insert_sql(lead_events=lead_events)), ("clean up", DROP_TEMP_TABLES)]
    return statements
