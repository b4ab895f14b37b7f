"""Key rotation without downtime (`manage.py reencrypt`): every value still under an old PII key is encrypted
again under the current one (the first of PII_ENCRYPTION_KEYS), and every lead's blind indexes still under an
old version are computed again under the current version (the first of BLIND_INDEX_KEY; a lead's values
decrypt, so its indexes can be recomputed; a suppression entry of an erased person cannot and keeps its version,
which lookups still ask for).

Batches of `batch` rows, each its own short transaction in the service context, rows locked with
`FOR UPDATE SKIP LOCKED`: the application keeps running (a row it holds is picked up by a later pass). A batch
selects only rows that still need work, so an interrupted run resumes where it stopped: run it again. The old
keys stay configured until a run reports nothing left; then they can go.

What is covered: leads (e-mail, phone, do-not-contact reason, the four blind indexes), every encrypted model
field of the pipeline (staging, DLQ payloads and notes, possible-duplicate notes, webhook deliveries) and the
encrypted contact values inside `pipeline_events` (`to` of a consent-link mail, `old_email`/`old_phone` of an
owner change). The event trail is append-only (pipeline 0026): its values are re-sealed through the definer function
`pipeline_events_reseal`, which may change nothing else, unlocked (a row erased meanwhile is skipped).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction

from equity_connect.db import service_context
from leads.contact_indexes import contact_indexes
from security.fields import NOTE_KEYS, decrypt_stored, looks_encrypted, open_document, seal_document
from security.pii import EMAIL, NOTES, PHONE, RAW_ROW, codec

DEFAULT_BATCH = 2_000
CIPHERTEXT_RE = "^[A-Za-z0-9]{1,32}:[A-Za-z0-9_=-]{38,}$"

# (table, key column, key type, column, kind, SQL type) of every other encrypted column; documents are
# sealed as {"encrypted": token} (security/fields.py).
TEXT_COLUMNS = (
    ("leads_staging", "id", "bigint", "email", EMAIL),
    ("leads_staging", "id", "bigint", "phone", PHONE),
    ("pipeline_dlq", "id", "bigint", "resolution_note", NOTES),
    ("possible_duplicates", "id", "bigint", "note", NOTES),
    ("webhook_deliveries", "dedupe_hash", "text", "lead_email", EMAIL),
)
DOCUMENT_COLUMNS = (
    ("leads_staging", "id", "bigint", "raw", RAW_ROW, "json"),
    ("pipeline_dlq", "id", "bigint", "payload", RAW_ROW, "jsonb"),
    ("webhook_deliveries", "dedupe_hash", "text", "payload", RAW_ROW, "jsonb"),
)
# The encrypted values inside events: addresses and numbers, and the sealed free-text notes.
EVENT_KEYS = {"to": EMAIL, "old_email": EMAIL, "old_phone": PHONE, **dict.fromkeys(NOTE_KEYS, NOTES)}


@dataclass
class RotationProgress:
    part: str
    rows: int


def _not_current(column: str) -> str:
    """SQL: the text column holds a token under another key than the current (`%(prefix)s`)."""
    return f"({column} ~ '{CIPHERTEXT_RE}' AND left({column}, length(%(prefix)s)) <> %(prefix)s)"


def _index_not_current(column: str) -> str:
    return f"({column} IS NOT NULL AND left({column}, length(%(version)s)) <> %(version)s)"


def _batches(select_sql: str, params: dict, key_type: str, convert: Callable[[list], int], batch: int):
    """Run `select_sql` (rows after `%(last)s`, in key order, locked, LIMIT `%(batch)s`) batch by batch, each in
    its own transaction; `convert` writes one batch. Yields the rows done per batch."""
    last = None
    while True:
        with service_context(budget="job"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(select_sql, {**params, "last": last, "batch": batch})
            rows = cursor.fetchall()
            if not rows:
                return
            done = convert(rows)
        last = rows[-1][0]
        yield done
        if len(rows) < batch:
            return


def _leads(batch: int):
    pii = codec()
    params = {"prefix": pii.current_key_id + ":", "version": pii.current_index_version + ":"}
    stale = " OR ".join(
        [_not_current(column) for column in ("email", "phone", "do_not_contact_reason")]
        + [
            _index_not_current(column)
            for column in ("email_bidx", "email_domain_bidx", "phone_bidx", "phone_last4_bidx")
        ]
    )
    select = (
        "SELECT id, email, phone, do_not_contact_reason FROM leads"
        f" WHERE ({stale}) AND (%(last)s::uuid IS NULL OR id > %(last)s::uuid)"
        " ORDER BY id LIMIT %(batch)s FOR UPDATE SKIP LOCKED"
    )

    def convert(rows: list) -> int:
        values = []
        for lead_id, email, phone, reason in rows:
            email, phone = decrypt_stored(email, EMAIL) or None, decrypt_stored(phone, PHONE) or None
            indexes = contact_indexes(email, phone)
            values.append(
                (
                    lead_id,
                    pii.encrypt(email, EMAIL),
                    pii.encrypt(phone, PHONE),
                    pii.reencrypt(reason, NOTES) if looks_encrypted(reason) else reason,
                    *indexes.values(),
                )
            )
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE leads l SET email = v.email, phone = v.phone, do_not_contact_reason = v.reason,"
                " email_bidx = v.email_bidx, email_domain_bidx = v.email_domain_bidx, phone_bidx = v.phone_bidx,"
                " phone_last4_bidx = v.phone_last4_bidx"
                " FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
                " %s::text[]) AS v(id, email, phone, reason, email_bidx, email_domain_bidx, phone_bidx,"
                " phone_last4_bidx) WHERE l.id = v.id",
                [list(column) for column in zip(*values, strict=True)],
            )
        return len(rows)

    yield from _batches(select, params, "uuid", convert, batch)


def _text_column(table: str, key: str, key_type: str, column: str, kind: str, batch: int):
    pii = codec()
    select = (
        f"SELECT {key}, {column} FROM {table} WHERE {_not_current(column)}"
        f" AND (%(last)s::{key_type} IS NULL OR {key} > %(last)s::{key_type})"
        f" ORDER BY {key} LIMIT %(batch)s FOR UPDATE SKIP LOCKED"
    )

    def convert(rows: list) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} t SET {column} = v.value FROM unnest(%s::{key_type}[], %s::text[]) AS v(key, value)"
                f" WHERE t.{key} = v.key",
                [[row[0] for row in rows], [pii.reencrypt(row[1], kind) for row in rows]],
            )
        return len(rows)

    yield from _batches(select, {"prefix": pii.current_key_id + ":"}, key_type, convert, batch)


def _document_column(table: str, key: str, key_type: str, column: str, kind: str, sql_type: str, batch: int):
    pii = codec()
    token = f"({column}::jsonb ->> 'encrypted')"
    select = (
        f"SELECT {key}, {column}::text FROM {table} WHERE {_not_current(token)}"
        f" AND (%(last)s::{key_type} IS NULL OR {key} > %(last)s::{key_type})"
        f" ORDER BY {key} LIMIT %(batch)s FOR UPDATE SKIP LOCKED"
    )

    def convert(rows: list) -> int:
        values = [json.dumps(seal_document(open_document(json.loads(row[1]), kind), kind)) for row in rows]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} t SET {column} = v.value::{sql_type}"
                f" FROM unnest(%s::{key_type}[], %s::text[]) AS v(key, value) WHERE t.{key} = v.key",
                [[row[0] for row in rows], values],
            )
        return len(rows)

    yield from _batches(select, {"prefix": pii.current_key_id + ":"}, key_type, convert, batch)


def _events(batch: int):
    """The event trail is append-only (pipeline 0026): its sealed values are re-sealed through the one definer
    function that may do it, `pipeline_events_reseal`, which changes nothing but those values and skips a row whose
    detail changed since it was read. No row lock (service_role may not UPDATE the table, so not lock it either)."""
    pii = codec()
    stale = " OR ".join(_not_current(f"(event_data ->> '{name}')") for name in EVENT_KEYS)
    select = (
        f"SELECT id, event_data::text FROM pipeline_events WHERE ({stale})"
        " AND (%(last)s::bigint IS NULL OR id > %(last)s::bigint) ORDER BY id LIMIT %(batch)s"
    )

    def convert(rows: list) -> int:
        values = []
        for _, data in rows:
            data = json.loads(data)
            for name, kind in EVENT_KEYS.items():
                if isinstance(data.get(name), str) and looks_encrypted(data[name]):
                    data[name] = pii.reencrypt(data[name], kind)
            values.append(json.dumps(data))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pipeline_events_reseal(%s::bigint[], %s::jsonb[], %s::jsonb[])",
                [[row[0] for row in rows], [row[1] for row in rows], values],
            )
            return cursor.fetchone()[0]

    yield from _batches(select, {"prefix": pii.current_key_id + ":"}, "bigint", convert, batch)


def pii_reencrypt(*, batch: int = DEFAULT_BATCH, progress: Callable[[RotationProgress], None] | None = None) -> dict:
    """Re-encrypt everything under an old key and re-index every lead under an old blind-index version (see the
    module's docstring). Changes rows in batches; calls `progress` after each batch. Returns rows per part."""
    parts: list[tuple[str, Callable]] = [("leads", lambda: _leads(batch))]
    parts += [
        (f"{t}.{c}", lambda t=t, k=k, kt=kt, c=c, kind=kind: _text_column(t, k, kt, c, kind, batch))
        for t, k, kt, c, kind in TEXT_COLUMNS
    ]
    parts += [
        (f"{t}.{c}", lambda t=t, k=k, kt=kt, c=c, kind=kind, st=st: _document_column(t, k, kt, c, kind, st, batch))
        for t, k, kt, c, kind, st in DOCUMENT_COLUMNS
    ]
    parts.append(("pipeline_events.event_data", lambda: _events(batch)))
    totals: dict[str, int] = {}
    for name, run in parts:
        totals[name] = 0
        for done in run():
            totals[name] += done
            if progress is not None:
                progress(RotationProgress(part=name, rows=totals[name]))
    return totals
