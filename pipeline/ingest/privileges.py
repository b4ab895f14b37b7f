"""What the ingestion may change, listed once: `pipeline_writer`'s column-level UPDATE grants.

The ingestion reads partner files from the internet, so it runs as `pipeline_writer`
(`equity_connect.db.pipeline_writer_context`), never as `service_role`. On `leads` it may insert, and update
only the columns the apply writes: the merged columns (leads/columns.py INGESTED), what a new owner resets
(OWNER_RESET), the score and `updated_at`. On `uploads` it may update only its progress, counts and outcome.
The upload API runs as `pipeline_writer` too, and updates what UPDATABLE lists for it.
Everything else (brokers, consent, keys, assignments made in the portal, tombstones) it can read at most.

`pipeline_writer_privileges_grant` re-applies these lists after every `migrate` (revoke, then grant), so the
database always holds exactly what is listed here; tests/equity_connect/test_rls.py compares them with
`information_schema.column_privileges`.
"""

from __future__ import annotations

from django.db import connections
from psycopg import sql

from leads.columns import INGESTED, OWNER_RESET, UNCONFIRMED

# `suppressed_channels`: the apply marks the leads the suppression list binds (leads/suppressions/sql.py).
# `UNCONFIRMED`: a partner file that brings the value a broker typed confirms it.
LEAD_COLUMNS = (
    *INGESTED,
    *OWNER_RESET,
    *UNCONFIRMED,
    "lead_score",
    "score_breakdown",
    "suppressed_channels",
    "updated_at",
)
UPLOAD_COLUMNS = (
    "status",
    "attempts",
    "progress",
    "rows_total",
    "rows_rejected",
    "rows_recovered",
    "leads_created",
    "leads_merged",
    "duplicates_in_file",
    "possible_duplicates",
    "blank_lines",
    "unrecognised_columns",
    "columns",
    "encoding",
    "error_message",
    "started_at",
    "finished_at",
    "updated_at",
)
# The upload API (pipeline/intake, also as pipeline_writer): a claim re-arms an expired replay guard and names
# the new upload on it; a key's last use is noted.
UPDATABLE = {
    "leads": LEAD_COLUMNS,
    "uploads": UPLOAD_COLUMNS,
    "ingest_replay_guard": ("created_at", "upload_id"),
    "partner_keys": ("last_used_at",),
}


def pipeline_writer_privileges_grant(using: str = "default", **kwargs) -> None:
    """Make `pipeline_writer`'s UPDATE privilege on each table exactly UPDATABLE's columns (post_migrate)."""
    with connections[using].cursor() as cursor:
        for table, listed in UPDATABLE.items():
            cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s",
                [table],
            )
            existing = {name for (name,) in cursor.fetchall()}
            # Migrated back past the table or some of its columns: grant what is there.
            columns = [column for column in listed if column in existing]
            if not columns:
                continue
            cursor.execute(sql.SQL("REVOKE UPDATE ON {} FROM pipeline_writer").format(sql.Identifier(table)))
            cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s",
                [table],
            )
            present = {name for (name,) in cursor.fetchall()}
            # Migrated back part of the way (`migrate pipeline zero` also unapplies the leads migrations that
            # depend on it): the columns that exist now; the next forward migrate grants the rest.
            columns = [column for column in columns if column in present]
            if not columns:
                continue
            cursor.execute(
                sql.SQL("GRANT UPDATE ({}) ON {} TO pipeline_writer").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
                )
            )
