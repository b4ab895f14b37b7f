"""Rate limits shared by every web process: counters in PostgreSQL (`equity_connect_throttle`), never in a
process's memory, so four gunicorn workers on three machines count one client once.

A `Limit` allows `limit` hits of one key (a client address, an e-mail address) per `window`. A key's window
starts with its first hit and a new one starts with the first hit after it ends (a fixed window per key).

    LIMIT = Limit("reset-email", limit=3, window=timedelta(hours=1))
    if throttle_hit(LIMIT, email) > LIMIT.limit: ...   # this hit is over the limit
    if throttle_reached(LIMIT, email): ...             # the limit is used up (checked before the work)

Each hit is one atomic `INSERT … ON CONFLICT … DO UPDATE … RETURNING` (the row lock orders concurrent hits,
so none is lost or counted twice). Keys are stored as SHA-256 digests: no address is kept in the clear.
The daily cleanup drops rows whose window ended long ago (`throttles_prune`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection

from .models import Throttle

TABLE = Throttle._meta.db_table
MAX_HITS = 1_000_000_000  # the counter saturates here instead of overflowing its column


@dataclass(frozen=True)
class Limit:
    scope: str
    limit: int
    window: timedelta


def _digest(key: object) -> str:
    return hashlib.sha256(str(key).encode("utf-8", "surrogatepass")).hexdigest()


def throttle_hit(limit: Limit, key: object) -> int:
    """Count one hit of `key`; returns the hits of its current window, this one included."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} AS t (scope, key_digest, window_started_at, hits)"
            " VALUES (%(scope)s, %(key)s, clock_timestamp(), 1)"
            " ON CONFLICT (scope, key_digest) DO UPDATE SET"
            "  window_started_at = CASE WHEN t.window_started_at <= clock_timestamp() - %(window)s"
            "   THEN clock_timestamp() ELSE t.window_started_at END,"
            "  hits = CASE WHEN t.window_started_at <= clock_timestamp() - %(window)s"
            "   THEN 1 ELSE LEAST(t.hits + 1, %(max)s) END"
            " RETURNING hits",
            {"scope": limit.scope, "key": _digest(key), "window": limit.window, "max": MAX_HITS},
        )
        return cursor.fetchone()[0]


def throttle_hits(limit: Limit, key: object) -> int:
    """The hits of `key`'s current window (0 when its window has ended or it was never hit)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT hits FROM {TABLE} WHERE scope = %s AND key_digest = %s"
            " AND window_started_at > clock_timestamp() - %s",
            [limit.scope, _digest(key), limit.window],
        )
        row = cursor.fetchone()
    return row[0] if row else 0


def throttle_reached(limit: Limit, key: object) -> bool:
    """Whether `key` has used up its limit for the current window (the next hit would be over it)."""
    return throttle_hits(limit, key) >= limit.limit


def throttles_prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Delete counters whose window started longer ago than `older_than` (longer than any limit's window)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE window_started_at < clock_timestamp() - %s", [older_than])
        return cursor.rowcount
