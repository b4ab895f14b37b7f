"""Helpers for tests that need their own PostgreSQL connections (concurrency, plain-SQL checks)."""

from __future__ import annotations

import psycopg
from django.db import connection


def conninfo(admin: bool = False) -> dict:
    """Connection parameters for the current test database, as the app role (or the admin role)."""
    from django.conf import settings

    source = settings.DATABASE_ADMIN if admin else connection.settings_dict
    return {
        "dbname": connection.settings_dict["NAME"],
        "user": source["USER"],
        "password": source["PASSWORD"],
        "host": source["HOST"] or None,
        "port": source["PORT"] or None,
    }


def connect(admin: bool = False, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(**conninfo(admin), autocommit=autocommit)


def blocked_by(holder_pid: int) -> list[int]:
    """The sessions now waiting, directly or behind another waiter, for a lock that session `holder_pid`
    holds (asked from another connection, as the owner, which sees every session of the test database)."""
    with connect(admin=True) as other:
        rows = other.execute(
            "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
        ).fetchall()
    behind = {holder_pid}
    while True:
        more = {pid for pid, blockers in rows if pid not in behind and behind.intersection(blockers)}
        if not more:
            return sorted(behind - {holder_pid})
        behind |= more


def backend_pid(django_connection=None) -> int:
    """The server process id of a Django connection (default: the test's own)."""
    django_connection = django_connection or connection
    with django_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]
