"""Apply: staged rows → DLQ, in-file dedupe, match against `leads`, safe merge, insert, score — set-based.

One call runs in the caller's transaction (the ingestion service holds it and the global apply lock),
with a handful of statements whatever the file's size:

1. rejected staging rows → `pipeline_dlq` (raw row, upload, line number, reason);
2. in-file dedupe: rows sharing a MAK, an APN or an address hash are one property (connected
   components, by min-label propagation over the three keys); later rows merge into the first;
3. each cluster is matched against `leads` by MAK → APN → addr_hash; clusters that meet one lead are
   merged together first, keys that already belong to another lead are not copied;
4. `UPDATE … FROM` for matches with the seed's safe merge (flags OR-ed, code arrays unioned without
   duplicates, payload merged, existing contact data kept, campaign status untouched), and
   `INSERT … SELECT` for the rest — both computing `lead_score` and `score_breakdown` in the same
   statement (leads/scoring.py), so index upkeep is paid once per lead. A merge changes no indexed
   column and `leads` keeps room on each page (leads/migrations/0005), so the UPDATE writes heap-only
   tuples: no index entry at all.

No MERGE (≈16% slower on the update-heavy path, DESIGN §14), no per-row round trips.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.db import connection

from leads.scoring import breakdown_from_columns_sql, score_columns_sql, score_sql

FIRST = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "property_address",
    "property_city",
    "property_state",
    "property_zip",
    "property_type",
    "age",
    "owner_occupied",
    "mak",
    "apn",
    "addr_hash",
    "assigned_broker_id",
)
NEWEST = ("property_value", "estimated_equity")
FLAGS = ("email_verified", "phone_verified")
CODES = ("email_verification_codes", "phone_verification_codes")
PAYLOAD = ("melissa_payload",)
VALUES = FIRST + NEWEST + FLAGS + CODES + PAYLOAD


@dataclass
class ApplyCounts:
    rows_valid: int = 0
    rows_rejected: int = 0
    clusters: int = 0
    leads_created: int = 0
    leads_merged: int = 0
    propagation_passes: int = 0
    timings: dict[str, int] = field(default_factory=dict)

    @property
    def duplicates_in_file(self) -> int:
        return self.rows_valid - self.clusters


def _aggregate(column: str, *, alias: str, order: str, source: str | None = None) -> str:
    """The merge of one column over a group of rows, ordered by `order` (earliest first)."""
    value = f"{alias}.{source or column}"
    if column in FIRST:
        return f"(array_agg({value} ORDER BY {alias}.{order}) FILTER (WHERE {value} IS NOT NULL))[1]"
    if column in NEWEST:
        return f"(array_agg({value} ORDER BY {alias}.{order} DESC) FILTER (WHERE {value} IS NOT NULL))[1]"
    if column in FLAGS:
        return f"bool_or(coalesce({value}, false))"
    if column in CODES:
        return f"ec_array_distinct(text_array_cat_agg(coalesce({value}, '{{}}'::text[])))"
    return f"nullif(jsonb_merge_agg({value} ORDER BY {alias}.{order}), '{{}}'::jsonb)"


def _grouped(*, alias: str, order: str) -> tuple[str, str]:
    """The same merges as `_aggregate`, for the large case, with one sort instead of one per column.

    An aggregate with its own ORDER BY sorts each group once per column (PostgreSQL 15), which for
    ~17 columns was most of the match step. Instead a window over the group (one sort) finds, for each
    column, the line that holds its first (or newest) non-null value; the grouping then keeps the value
    of that line (lines are unique, so exactly one). Returns (columns over `WINDOW w`, aggregates over
    the rows `x` that carry them)."""
    windows, aggregates = [], []
    for column in VALUES:
        value = f"{alias}.{column}"
        if column in FIRST or column in NEWEST:
            pick = "min" if column in FIRST else "max"
            windows.append(f"{pick}({alias}.{order}) FILTER (WHERE {value} IS NOT NULL) OVER w AS {column}__at")
            aggregates.append(f"(array_agg(x.{column}) FILTER (WHERE x.{order} = x.{column}__at))[1] AS {column}")
        else:
            aggregates.append(f"{_aggregate(column, alias='x', order=order)} AS {column}")
    return ", ".join(windows), ", ".join(aggregates)


def _execute(sql: str, params: dict | list | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _scalar(sql: str, params: dict | list | None = None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _lines_filter(lines: list[int] | None, alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return "" if lines is None else f" AND {prefix}line_number = ANY(%(lines)s)"


def reject_to_dlq(*, upload_id: str, lines: list[int] | None = None) -> int:
    """Rejected staged rows → `pipeline_dlq`, one row each, with a reason a person can act on."""
    return _execute(
        "INSERT INTO pipeline_dlq (source, upload_id, line_number, payload, reason, error_detail, broker_id,"
        " status, attempts, max_attempts, resolution, resolution_note)"
        " SELECT 'upload_row', upload_id, line_number, raw::jsonb, reject_reason, '', assigned_broker_id, 'open',"
        " 0, 5, '', '' FROM leads_staging WHERE upload_id = %(upload)s AND reject_reason IS NOT NULL"
        f"{_lines_filter(lines)} ORDER BY line_number",
        {"upload": upload_id, "lines": lines},
    )


# Whether a propagation pass would still change a label: some key's rows carry more than one.
UNSETTLED = "SELECT " + " OR ".join(
    f"EXISTS (SELECT FROM ingest_linked WHERE {key} IS NOT NULL GROUP BY {key} HAVING min(label) <> max(label))"
    for key in ("mak", "apn", "addr_hash")
)


def dedupe_in_file(*, upload_id: str, lines: list[int] | None = None) -> ApplyCounts:
    """Label every valid staged row with its property (`ingest_linked`: only rows that share a key with
    another row of the file; every other row is its own property)."""
    params = {"upload": upload_id, "lines": lines}
    counts = ApplyCounts()
    # This upload's valid rows, narrow (no raw JSON) and ANALYZEd: the statistics of the shared staging
    # table say little about one upload, and a misestimate here turns the joins below into nested loops.
    counts.rows_valid = _execute(
        f"CREATE TEMP TABLE ingest_rows ON COMMIT DROP AS SELECT line_number AS line, {', '.join(VALUES)}"
        f" FROM leads_staging WHERE upload_id = %(upload)s AND reject_reason IS NULL{_lines_filter(lines)}",
        params,
    )
    # Only the columns that joins and groupings use: the row count and their statistics are what the
    # planner needs, and sampling the wide ones (payload, code arrays, names) costs more than the rest.
    _execute("ANALYZE ingest_rows (line, mak, apn, addr_hash)")
    # Hash aggregates find the keys used twice; only the rows carrying one need propagation.
    linked = _execute(
        "CREATE TEMP TABLE ingest_linked ON COMMIT DROP AS SELECT line, mak, apn, addr_hash, line AS label"
        " FROM ingest_rows k"
        " WHERE k.mak IN (SELECT mak FROM ingest_rows WHERE mak IS NOT NULL GROUP BY mak HAVING count(*) > 1)"
        "  OR k.apn IN (SELECT apn FROM ingest_rows WHERE apn IS NOT NULL GROUP BY apn HAVING count(*) > 1)"
        "  OR k.addr_hash IN (SELECT addr_hash FROM ingest_rows WHERE addr_hash IS NOT NULL"
        "   GROUP BY addr_hash HAVING count(*) > 1)"
    )
    # Min-label propagation (connected components over the three keys): each pass gives every row the
    # smallest label among the rows it shares a key with; it converges in as many passes as the longest
    # chain of keys (one in practice). It has converged when every key's rows carry one label (three
    # hash aggregates: far cheaper than the pass that would change nothing).
    while linked:
        counts.propagation_passes += 1
        changed = _execute(
            "UPDATE ingest_linked k SET label = y.new_label FROM ("
            " SELECT line, label, least(label,"
            "  CASE WHEN mak IS NOT NULL THEN min(label) OVER (PARTITION BY mak) END,"
            "  CASE WHEN apn IS NOT NULL THEN min(label) OVER (PARTITION BY apn) END,"
            "  CASE WHEN addr_hash IS NOT NULL THEN min(label) OVER (PARTITION BY addr_hash) END) AS new_label"
            " FROM ingest_linked) y"
            " WHERE k.line = y.line AND y.new_label < y.label"
        )
        if not changed or counts.propagation_passes >= 50 or not _scalar(UNSETTLED):
            break
    _execute("ANALYZE ingest_linked")  # the planner needs its size for the anti-join that follows
    properties = _scalar("SELECT count(DISTINCT label) FROM ingest_linked") if linked else 0
    counts.clusters = counts.rows_valid - linked + properties
    return counts


def match_leads() -> tuple[int, int, int]:
    """Build `ingest_resolved`: one row per property of the file, its rows merged in line order, with its
    existing lead (`target`) if any, and the keys it may fill in on that lead. When two properties of the
    file meet the same lead (rare), also build `ingest_merges`: one row per such lead, the properties
    merged in line order. Returns (properties, properties that match a lead, leads met by several)."""
    columns = ", ".join(f"s.{column}" for column in VALUES)
    windows, aggregates = _grouped(alias="s", order="line")
    resolved = _execute(
        "CREATE TEMP TABLE ingest_resolved ON COMMIT DROP AS"
        " WITH clusters AS ("
        f"  SELECT s.line AS label, {columns} FROM ingest_rows s"
        "   WHERE NOT EXISTS (SELECT 1 FROM ingest_linked k WHERE k.line = s.line)"
        "  UNION ALL"
        f"  SELECT x.label, {aggregates} FROM (SELECT k.label, s.line, {columns}, {windows}"
        "   FROM ingest_rows s JOIN ingest_linked k ON k.line = s.line WINDOW w AS (PARTITION BY k.label)) x"
        "   GROUP BY x.label)"
        " SELECT c.*, coalesce(lm.id, la.id, lh.id) AS target,"
        "  CASE WHEN lm.id IS NULL OR lm.id = coalesce(lm.id, la.id, lh.id) THEN c.mak END AS mak_fill,"
        "  CASE WHEN la.id IS NULL OR la.id = coalesce(lm.id, la.id, lh.id) THEN c.apn END AS apn_fill,"
        "  CASE WHEN lh.id IS NULL OR lh.id = coalesce(lm.id, la.id, lh.id) THEN c.addr_hash END AS addr_fill"
        " FROM clusters c"
        " LEFT JOIN leads lm ON lm.mak = c.mak AND lm.mak IS NOT NULL"
        " LEFT JOIN leads la ON la.apn = c.apn AND la.apn IS NOT NULL"
        " LEFT JOIN leads lh ON lh.addr_hash = c.addr_hash AND lh.addr_hash IS NOT NULL",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(n), 0), count(*) FILTER (WHERE n > 1) FROM"
            " (SELECT count(*) AS n FROM ingest_resolved WHERE target IS NOT NULL GROUP BY target) g"
        )
        matched, shared = cursor.fetchone()
    if shared:
        merge_columns = [column for column in VALUES if column not in ("mak", "apn", "addr_hash")]
        aggregates = ", ".join(
            f"{_aggregate(column, alias='g', order='label')} AS {column}" for column in merge_columns
        )
        keys = ", ".join(
            f"{_aggregate(column, alias='g', order='label', source=fill)} AS {fill}"
            for column, fill in (("mak", "mak_fill"), ("apn", "apn_fill"), ("addr_hash", "addr_fill"))
        )
        _execute(
            "CREATE TEMP TABLE ingest_merges ON COMMIT DROP AS"
            f" SELECT g.target, {keys}, {aggregates} FROM ingest_resolved g WHERE g.target IN"
            "  (SELECT target FROM ingest_resolved WHERE target IS NOT NULL GROUP BY target HAVING count(*) > 1)"
            " GROUP BY g.target"
        )
        _execute("ANALYZE ingest_merges")
    _execute("ANALYZE ingest_resolved (target)")  # the planner needs it for the update's join
    return resolved, int(matched), shared


def _score_assignment(columns: dict[str, str]) -> str:
    return (
        f"(SELECT {score_sql('q')}, {breakdown_from_columns_sql('q')}"
        f" FROM (SELECT {score_columns_sql(columns)} OFFSET 0) q)"
    )


MERGED = {
    **{
        column: f"coalesce(nullif(l.{column}, ''), m.{column})"
        for column in (
            "first_name",
            "last_name",
            "email",
            "phone",
            "property_address",
            "property_city",
            "property_state",
            "property_zip",
        )
    },
    "property_value": "coalesce(m.property_value, l.property_value)",
    "estimated_equity": "coalesce(m.estimated_equity, l.estimated_equity)",
    "property_type": "coalesce(l.property_type, m.property_type)",
    "age": "coalesce(l.age, m.age)",
    "owner_occupied": "coalesce(l.owner_occupied, m.owner_occupied)",
    "mak": "coalesce(l.mak, m.mak_fill)",
    "apn": "coalesce(l.apn, m.apn_fill)",
    "addr_hash": "coalesce(l.addr_hash, m.addr_fill)",
    "email_verified": "l.email_verified OR coalesce(m.email_verified, false)",
    "phone_verified": "l.phone_verified OR coalesce(m.phone_verified, false)",
    # `<@` first: the union (a set-returning SQL function) only when there is something new to add.
    **{
        column: f"CASE WHEN m.{column} IS NULL OR m.{column} <@ l.{column} THEN l.{column}"
        f" ELSE ec_array_distinct(l.{column} || m.{column}) END"
        for column in ("email_verification_codes", "phone_verification_codes")
    },
    "melissa_payload": "coalesce(l.melissa_payload, '{}'::jsonb) || coalesce(m.melissa_payload, '{}'::jsonb)",
    "assigned_broker_id": "coalesce(l.assigned_broker_id, m.assigned_broker_id)",
}


def merge_into_leads(*, upload_id: str, lead_events: bool, shared: bool = False) -> int:
    """Safe-merge each matched property into its lead and re-score it: from `ingest_resolved` for leads
    that one property of the file meets, and (`shared`) from `ingest_merges` for leads that several meet.
    Returns the leads updated."""
    updated = _merge_from(
        "(SELECT * FROM ingest_resolved WHERE target IS NOT NULL"
        + (" AND target NOT IN (SELECT target FROM ingest_merges))" if shared else ")"),
        upload_id=upload_id,
        lead_events=lead_events,
    )
    if shared:
        updated += _merge_from("ingest_merges", upload_id=upload_id, lead_events=lead_events)
    return updated


def _merge_from(source: str, *, upload_id: str, lead_events: bool) -> int:
    score_inputs = {**MERGED, "campaign_status": "l.campaign_status"}
    assignments = ", ".join(f"{column} = {expression}" for column, expression in MERGED.items())
    current = ", ".join(f"l.{column}" for column in MERGED)
    merged = ", ".join(MERGED.values())
    # A merge that changes nothing (the same data sent again) is not written: an UPDATE rewrites the row
    # and every index entry, which is most of the merge path's cost (DESIGN §14).
    update = (
        f"UPDATE leads l SET {assignments}, updated_at = now(),"
        f" (lead_score, score_breakdown) = {_score_assignment(score_inputs)}"
        f" FROM {source} m WHERE l.id = m.target AND ({current}) IS DISTINCT FROM ({merged})"
    )
    if not lead_events:
        return _execute(update)
    return _execute(
        f"WITH changed AS ({update} RETURNING l.id, l.assigned_broker_id)"
        " INSERT INTO pipeline_events (event_type, lead_id, broker_id, upload_id, event_data, status)"
        " SELECT 'lead_merged', id, assigned_broker_id, %(upload)s, '{}'::jsonb, 'success' FROM changed",
        {"upload": upload_id},
    )


INSERT_COLUMNS = VALUES


def insert_new_leads(*, upload_id: str, source: str, lead_events: bool) -> int:
    """Insert one lead per unmatched cluster, scored, with its source and upload. Returns the count."""
    score_inputs = {column: f"r.{column}" for column in VALUES} | {"campaign_status": "'new'"}
    columns = ", ".join(INSERT_COLUMNS)
    selected = ", ".join(
        f"coalesce(x.{column}, '{{}}'::text[])"
        if column in CODES
        else f"coalesce(x.{column}, '{{}}'::jsonb)"
        if column in PAYLOAD
        else f"coalesce(x.{column}, false)"
        if column in FLAGS
        else f"x.{column}"
        for column in INSERT_COLUMNS
    )
    insert = (
        f"INSERT INTO leads ({columns}, lead_score, score_breakdown, source, source_upload_id)"
        f" SELECT {selected}, {score_sql('x')}, {breakdown_from_columns_sql('x')}, %(source)s, %(upload)s"
        f" FROM (SELECT r.*, {score_columns_sql(score_inputs)} FROM ingest_resolved r WHERE r.target IS NULL"
        " OFFSET 0) x"  # OFFSET 0: the categories computed once per row, not once per reference
        # In key order: each unique index on `leads` then takes its new entries in ascending runs (fewer
        # pages touched) rather than scattered over the whole tree.
        " ORDER BY x.mak, x.apn, x.addr_hash"
    )
    params = {"upload": upload_id, "source": source}
    if not lead_events:
        return _execute(insert, params)
    return _execute(
        f"WITH created AS ({insert} RETURNING id, assigned_broker_id)"
        " INSERT INTO pipeline_events (event_type, lead_id, broker_id, upload_id, event_data, status)"
        " SELECT 'lead_created', id, assigned_broker_id, %(upload)s, '{}'::jsonb, 'success' FROM created",
        params,
    )


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

    _execute("SET LOCAL work_mem = '128MB'")
    rejected = reject_to_dlq(upload_id=upload_id, lines=lines) if write_dlq else 0
    lap("dlq_ms")
    counts = dedupe_in_file(upload_id=upload_id, lines=lines)
    counts.rows_rejected = rejected
    lap("dedupe_ms")
    properties, counts.leads_merged, shared = match_leads()
    if properties != counts.clusters:
        raise RuntimeError("the in-file dedupe and the match disagree on the number of properties")
    lap("match_ms")
    new_clusters = counts.clusters - counts.leads_merged
    lead_events = counts.clusters <= lead_events_max
    merge_into_leads(upload_id=upload_id, lead_events=lead_events, shared=shared > 0)
    lap("update_ms")
    counts.leads_created = insert_new_leads(upload_id=upload_id, source=source, lead_events=lead_events)
    lap("insert_ms")
    if counts.leads_created != new_clusters:  # a broken invariant must never commit
        raise RuntimeError(f"inserted {counts.leads_created} leads for {new_clusters} new clusters")
    _execute("DROP TABLE IF EXISTS ingest_rows, ingest_linked, ingest_resolved, ingest_merges")
    counts.timings = timings
    return counts
