"""The ingestion's advisory locks: one per upload, held by the session across the staging and apply
transactions (two workers never process one upload together; a dead worker's lock goes with its
connection), and the apply gate, which every apply transaction holds SHARED: applies never wait for one
another on it (uploads whose keys do not meet apply at the same time; those that meet are kept apart by the
unique keys, pipeline/ingest/apply.py), but whoever holds it exclusively (`pg_advisory_lock(APPLY_GATE)`: an
operator before a maintenance step, or a test that needs a worker stopped inside its apply) holds every new
apply at its start.

Also what an apply needs to know about the others: whether one runs now (`other_applies_running`), and whether
one committed since a snapshot (`applies_committed_since`)."""

from __future__ import annotations

import logging
import time
import zlib
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection, transaction

logger = logging.getLogger("pipeline.ingest")

APPLY_GATE = zlib.crc32(b"equity_connect.ingest_apply")
APPLY_LOCK = APPLY_GATE  # its name while it was a global lock (held exclusively by every apply)


def upload_lock_key(upload_id) -> int:
    return zlib.crc32(f"upload:{upload_id}".encode()) - 2**31


def upload_lock_held(upload_id) -> bool:
    """Whether a worker holds the upload's lock right now.

    Asked with the transaction-scoped form (it conflicts with the worker's session-level lock on the same key),
    so it works through a transaction-mode pooler: a session-level try-lock and its unlock could land on two
    different server sessions, and the lock would stay with a pooled session for good."""
    key = upload_lock_key(upload_id)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
        return not cursor.fetchone()[0]


@contextmanager
def upload_lock(upload_id, *, wait_seconds: float):
    """Hold a session-level advisory lock on the upload across the staging and apply transactions.

    Waits up to `wait_seconds` for a worker that is finishing (or a dead worker's backend that PostgreSQL
    has not reaped yet); yields whether the lock was taken. The session is named after the upload
    (`application_name`), so pg_stat_activity shows which backend ingests which upload."""
    key = upload_lock_key(upload_id)
    deadline = time.monotonic() + wait_seconds
    with connection.cursor() as cursor:
        # Notice a vanished client during a long statement, so a killed worker's locks go quickly.
        cursor.execute("SET client_connection_check_interval = '1s'")
        cursor.execute("SELECT set_config('application_name', %s, false)", [f"equity-connect ingest {upload_id}"])
    session = connection.connection
    # The apply step's temporary tables live in local buffers (8 MB by default). PostgreSQL only allows
    # a change before the session's first temporary table, so a long-lived worker may keep its value.
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('temp_buffers', %s, false)", [settings.INGEST_TEMP_BUFFERS])
    except DatabaseError:
        pass
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if cursor.fetchone()[0]:
                break
            if time.monotonic() >= deadline:
                cursor.execute("RESET application_name")
                yield False
                return
            time.sleep(0.5)
    try:
        yield True
    finally:
        if connection.connection is not session:  # the session is gone, and the lock with it
            logger.warning("connection lost while holding the upload lock", extra={"upload_id": str(upload_id)})
        else:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
                    cursor.execute("RESET application_name")
            except Exception:  # the connection broke just now, and the lock went with it
                logger.warning("advisory unlock failed; connection lost", extra={"upload_id": str(upload_id)})


def apply_gate() -> None:
    """Take the apply gate, shared, for the rest of the transaction (waits only while someone holds it
    exclusively). From here the transaction's lock_timeout is its statement_timeout: an apply may wait for a
    maintenance step, or another upload's commit, as long as a statement may run."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', current_setting('statement_timeout'), true)")
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [APPLY_GATE])


def other_applies_running() -> bool:
    """Whether another session of this database holds the apply gate now (an apply in progress)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = 0 AND objid = %s::bigint::oid AND objsubid = 1 AND pid <> pg_backend_pid())",
            [APPLY_GATE],
        )
        return cursor.fetchone()[0]


def snapshot_now() -> str:
    """The transaction snapshot as `xmin:xmax:xip,…` (pg_current_snapshot): what the next statement cannot see."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_snapshot()::text")
        return cursor.fetchone()[0]


def invisible_in(snapshot: str, xid: int) -> bool:
    """Whether the transaction `xid` (a 32-bit xid, as a row's xmin) had not committed for `snapshot`: it was
    running then (in the xip list) or began after (at or past xmax). The snapshot's 64-bit ids are taken
    modulo 2**32, compared within the 2**31 window PostgreSQL itself keeps."""
    _, xmax, xip = snapshot.split(":")
    if xid < 3:  # bootstrap / frozen: visible to everyone
        return False
    if any(int(running) % 2**32 == xid for running in filter(None, xip.split(","))):
        return True
    return (xid - int(xmax) % 2**32) % 2**32 < 2**31


def applies_committed_since(snapshot: str, *, upload_id) -> bool:
    """Whether another upload's apply (or a DLQ reprocess) committed after `snapshot` was taken: each of them
    updates its upload's row in the apply transaction, so that row's xmin is the apply's transaction. Looks at
    the uploads changed in the last day (a longer apply is not one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xmin::text::bigint FROM uploads WHERE id <> %s AND status = 'done'"
            " AND updated_at > now() - interval '1 day'",
            [upload_id],
        )
        return any(invisible_in(snapshot, xmin) for (xmin,) in cursor.fetchall())
