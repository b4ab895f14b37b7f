"""The ingestion's two advisory locks: one per upload, held by the session across the staging and apply
transactions (two workers never process one upload together; a dead worker's lock goes with its
connection), and one global, held by each apply transaction (concurrent uploads with overlapping keys
neither race on the unique keys nor deadlock)."""

from __future__ import annotations

import logging
import time
import zlib
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection, transaction

logger = logging.getLogger("pipeline.ingest")

APPLY_LOCK = zlib.crc32(b"equity_connect.ingest_apply")


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


def apply_lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPLY_LOCK])
