"""Write: the safe merge into matched leads, the new owner on a known parcel, new leads, and the pairs put
up for review (pipeline/ingest/apply.py runs these after the match, in this order). Every write is one
statement that scores the leads it touches in the same pass (leads/scoring.py).
"""

from __future__ import annotations

from equity_connect.events import lead_events_insert_sql
from leads.columns import (
    ADDRESS,
    CODES,
    CONTACT,
    CONTACT_INDEXES,
    FLAGS,
    INDEXED_WITH,
    INGESTED,
    KEEP_NEWEST,
    KEYS,
    MAILING,
    OWNER_RESET,
    UNCONFIRMED,
)
from leads.scoring import breakdown_from_columns_sql, score_columns_sql, score_sql

from .match import KEY_FILLS

# The seed's safe merge of a property `m` into its lead `l`, column by column.
MERGED = {
    **{
        column: f"coalesce(nullif(l.{column}, ''), m.{column})"
        for column in (*CONTACT, *ADDRESS, *MAILING, "owner2_name")
    },
    # A blind index follows its e-mail or phone: the lead's while the lead keeps its own value.
    **{
        column: f"CASE WHEN nullif(l.{point}, '') IS NULL THEN m.{column} ELSE l.{column} END"
        for column, point in INDEXED_WITH.items()
    },
    **{column: f"coalesce(m.{column}, l.{column})" for column in KEEP_NEWEST},
    **{column: f"coalesce(l.{column}, m.{column})" for column in ("property_type", "age", "owner_occupied")},
    **{column: f"coalesce(l.{column}, m.{fill})" for column, fill in zip(KEYS, KEY_FILLS, strict=True)},
    **{column: f"l.{column} OR coalesce(m.{column}, false)" for column in FLAGS},
    # A broker-typed contact point: the file's verification is about the file's value, so it verifies the lead's
    # only when the values are the same (their blind indexes) …
    **{
        f"{point}_verified": f"l.{point}_verified OR (coalesce(m.{point}_verified, false)"
        f" AND (NOT l.{point}_unconfirmed OR l.{index} = m.{index}))"
        for point, index in (("email", "email_bidx"), ("phone", "phone_bidx"))
    },
    # … and the same value in a partner's file confirms it.
    **{column: f"l.{column} AND l.{index} IS DISTINCT FROM m.{index}" for column, index in UNCONFIRMED.items()},
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
    # `o` is the lead as it was (a FROM row is read before the update): a flag that was false and is now true
    # is a contact the merge verified.
    update = update.replace(f"  FROM {source} m\n", f"  FROM {source} m JOIN leads o ON o.id = m.target\n")
    return (
        f"WITH changed AS ({update}\n RETURNING l.id, l.assigned_broker_id,"
        " l.email_verified AND NOT o.email_verified AS email_verified,"
        " l.phone_verified AND NOT o.phone_verified AS phone_verified),\n"
        f"verified AS ({lead_verified_events_sql('changed')})\n"
        + lead_events_insert_sql("lead_merged", source="changed")
    )


def lead_verified_events_sql(source: str) -> str:
    """`lead_verified` for each row of `source` whose email_verified / phone_verified say which contact became
    verified (the event's `channels`)."""
    return lead_events_insert_sql(
        "lead_verified",
        source=source,
        data_sql="jsonb_build_object('channels', array_remove(ARRAY[CASE WHEN email_verified THEN 'email' END,"
        " CASE WHEN phone_verified THEN 'phone' END], NULL))",
        where_sql="email_verified OR phone_verified",
    )


# What each merge reads: a property per lead (`ingest_resolved`), or, for leads several properties meet,
# their merge (`ingest_merges`); the new-owner merge takes the leads whose owner changed, the safe merge the rest.
MERGE_SOURCE_SINGLE = "(SELECT * FROM ingest_resolved WHERE target IS NOT NULL AND NOT owner_changed)"
MERGE_SOURCE_SINGLE_NOT_SHARED = (
    "(SELECT * FROM ingest_resolved WHERE target IS NOT NULL AND NOT owner_changed"
    " AND target NOT IN (SELECT target FROM ingest_merges))"
)
MERGE_SOURCE_SHARED = "(SELECT * FROM ingest_merges WHERE NOT owner_changed)"
OWNER_SOURCE_SINGLE = "(SELECT * FROM ingest_resolved WHERE target IS NOT NULL AND owner_changed)"
OWNER_SOURCE_SINGLE_NOT_SHARED = (
    "(SELECT * FROM ingest_resolved WHERE target IS NOT NULL AND owner_changed"
    " AND target NOT IN (SELECT target FROM ingest_merges))"
)
OWNER_SOURCE_SHARED = "(SELECT * FROM ingest_merges WHERE owner_changed)"

# The leads a new owner arrived on, with what the old owner left on them (for the timeline, the review of a
# do-not-contact and the stop of their Instantly sequence), before the new owner's data replaces it.
OWNER_CHANGES = """CREATE TEMP TABLE ingest_owner_changes ON COMMIT DROP AS
SELECT l.id AS lead_id, l.assigned_broker_id, l.campaign_status::text AS old_status, l.do_not_contact_reason,
       l.first_name AS old_first_name, l.last_name AS old_last_name, l.owner2_name AS old_owner2_name,
       l.email AS old_email, l.phone AS old_phone, l.consent AS old_consent, l.consented_at AS old_consented_at,
       l.email_verified AS old_email_verified, l.phone_verified AS old_phone_verified, l.instantly_lead_id,
       m.first_name AS new_first_name, m.last_name AS new_last_name
  FROM (SELECT DISTINCT ON (target) target, first_name, last_name FROM ingest_resolved
         WHERE owner_changed ORDER BY target, label) m
  JOIN leads l ON l.id = m.target"""
COUNT_OWNER_CHANGES = "SELECT count(*) FROM ingest_owner_changes"
OWNER_CHANGE_EVENTS = lead_events_insert_sql(
    "lead_owner_changed",
    source="ingest_owner_changes",
    lead_column="lead_id",
    data_sql=(
        "jsonb_strip_nulls(jsonb_build_object('old_owner', concat_ws(' ', old_first_name, old_last_name),"
        " 'old_co_owner', old_owner2_name, 'old_email', old_email, 'old_phone', old_phone,"
        " 'old_consent', old_consent, 'old_consented_at', old_consented_at,"
        " 'old_email_verified', old_email_verified, 'old_phone_verified', old_phone_verified,"
        " 'old_campaign_status', old_status, 'old_instantly_lead_id', instantly_lead_id,"
        " 'new_owner', concat_ws(' ', new_first_name, new_last_name)))"
    ),
)
INSTANTLY_SEQUENCES_TO_STOP = (
    "SELECT lead_id, instantly_lead_id FROM ingest_owner_changes WHERE instantly_lead_id IS NOT NULL"
)

# The new owner's merge: the lead keeps its id, property and keys; the old owner's name, e-mail, phone,
# consent and verification go (they are on the timeline), and so does their mailing address; the new owner's
# fill it; a lead the old owner asked not to contact stays do-not-contact until a person has looked (a DLQ
# review row), any other is new again.
OWNER_REPLACED = {
    **{
        column: f"m.{column}"
        for column in (*CONTACT, *CONTACT_INDEXES, *MAILING, "owner2_name", "age", "owner_occupied")
    },
    **{column: f"coalesce(m.{column}, false)" for column in FLAGS},
    **{column: f"coalesce(m.{column}, '{{}}'::text[])" for column in CODES},
    **dict.fromkeys(UNCONFIRMED, "false"),  # the typed value is gone with the old owner
}
OWNER_RESET_TO = {
    "consent": "false",
    "consented_at": "NULL",
    "consent_method": "NULL",
    "campaign_status": "CASE WHEN l.campaign_status = 'do_not_contact' THEN l.campaign_status"
    " ELSE 'new'::campaign_status END",
    "added_to_campaign_at": "NULL",
    "instantly_lead_id": "NULL",
    "current_sequence_step": "NULL",
    "last_reply_at": "NULL",
    # The statement's time, not the transaction's: an address entry made before this statement is older.
    "owner_changed_at": "statement_timestamp()",
}
if tuple(OWNER_RESET_TO) != OWNER_RESET:  # pipeline_writer may update only the listed columns
    raise RuntimeError("OWNER_RESET_TO must reset exactly leads/columns.py OWNER_RESET")


def owner_merge_sql(source: str) -> str:
    """The new owner's merge of each property of `source` into its lead (see OWNER_REPLACED)::

    UPDATE leads l SET first_name = m.first_name, …, email = m.email, …, consent = false, …,
           campaign_status = <do_not_contact kept, else new>, …, (lead_score, score_breakdown) = (…)
      FROM <source> m WHERE l.id = m.target
    """
    columns = {**MERGED, **OWNER_REPLACED}
    score_inputs = {**columns, "campaign_status": "l.campaign_status"}
    assignments = ", ".join(f"{column} = {expression}" for column, expression in {**columns, **OWNER_RESET_TO}.items())
    return (
        f"UPDATE leads l SET {assignments}, updated_at = now(),\n"
        f"       (lead_score, score_breakdown) = {_score_assignment(score_inputs)}\n"
        f"  FROM {source} m\n"
        " WHERE l.id = m.target"
    )


def insert_sql(*, lead_events: bool, losers_only: bool = False) -> str:
    """One new lead per property that matched none, scored, with its source and upload::

        INSERT INTO leads (id, <INGESTED columns>, lead_score, score_breakdown, source, source_upload_id)
        SELECT x.new_id, x.first_name, …, coalesce(x.email_verified, false), …, <score>, <breakdown>, %(source)s,
               %(upload)s
          FROM (SELECT r.*, <category points> FROM ingest_resolved r WHERE r.target IS NULL OFFSET 0) x
         ORDER BY x.mak, x.apn, x.addr_hash
        ON CONFLICT DO NOTHING

    OFFSET 0 computes the score's categories once per row, not once per reference. In key order, each
    unique index takes its new entries in ascending runs (fewer pages touched). With `lead_events`, each
    new lead gets a `lead_created` event.

    No lock keeps other uploads out: a property whose key another apply holds uncommitted waits for it, and
    once that commits, ON CONFLICT DO NOTHING (every unique index) skips it, and the apply matches it again
    (`match.LOSERS`). Every apply inserts in the same key order, and two leads conflict only when they hold
    the same MAK (MAK first in the order), or no MAK and the same APN, or neither and the same address: so
    an apply only ever waits on a key ordered after every key it holds, and two inserts cannot deadlock.
    `losers_only` inserts only those that lost before and still match no lead."""
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
        f"INSERT INTO leads (id, {', '.join(INGESTED)}, lead_score, score_breakdown, source, source_upload_id)\n"
        f"SELECT x.new_id, {selected}, {score_sql('x')}, {breakdown_from_columns_sql('x')}, %(source)s, %(upload)s\n"
        f"  FROM (SELECT r.*, {score_columns_sql(score_inputs)} FROM ingest_resolved r WHERE r.target IS NULL"
        + (" AND r.label IN (SELECT label FROM ingest_losers)" if losers_only else "")
        + " OFFSET 0) x\n"
        " ORDER BY x.mak, x.apn, x.addr_hash\n"
        "ON CONFLICT DO NOTHING"
    )
    if not lead_events:
        return insert
    return (
        f"WITH created AS ({insert}\n RETURNING id, assigned_broker_id, email_verified, phone_verified),\n"
        f"verified AS ({lead_verified_events_sql('created')})\n"
        + lead_events_insert_sql("lead_created", source="created")
    )
