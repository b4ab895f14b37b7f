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
