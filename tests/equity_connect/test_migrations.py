"""Every RunSQL has a working reverse: a fresh database migrates forward, back to zero, and forward again."""

import os
import subprocess
import sys
import urllib.parse
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tests.pg import conninfo

ROOT = Path(__file__).resolve().parents[2]


def url(config: dict, dbname: str) -> str:
    host = urllib.parse.quote(config["HOST"] or "localhost", safe="")
    return f"postgres://{config['USER']}:{config['PASSWORD']}@{host}:{config['PORT'] or 5432}/{dbname}"


@pytest.fixture
def scratch_database(django_db_blocker):
    name = f"ec_migrations_{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        admin = {**conninfo(admin=True), "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{name}" TO "{settings.DATABASE_APP_ROLE}"')
    yield name
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(database: str, *args: str) -> str:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "equity_connect.settings.test",
        "DATABASE_URL": url(settings.DATABASES["default"], database),
        "DATABASE_ADMIN_URL": url(settings.DATABASE_ADMIN, database),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def objects(database: str) -> dict:
    with psycopg.connect(**{**conninfo(admin=True), "dbname": database}) as conn:
        return {
            "tables": conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0],
            "matviews": conn.execute("SELECT count(*) FROM pg_matviews").fetchone()[0],
            "policies": conn.execute("SELECT count(*) FROM pg_policies").fetchone()[0],
            "functions": conn.execute(
                "SELECT count(*) FROM pg_proc WHERE proname IN ('upsert_lead', 'refresh_contactable_leads', "
                "'cleanup_old_replay_guards', 'cleanup_old_consent_tokens')"
            ).fetchone()[0],
            "auth": conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'auth'").fetchone()[0],
            "enum": conn.execute("SELECT count(*) FROM pg_type WHERE typname = 'campaign_status'").fetchone()[0],
        }


@pytest.mark.slow
def test_migrate_to_zero_and_back(scratch_database):
    manage(scratch_database, "migrate", "--noinput")
    forward = objects(scratch_database)
    assert forward["matviews"] == 1 and forward["functions"] == 4 and forward["auth"] == 1 and forward["enum"] == 1
    assert forward["policies"] > 20
    for app in ("pipeline", "security", "leads"):
        manage(scratch_database, "migrate", app, "zero", "--noinput")
    back = objects(scratch_database)
    assert back["matviews"] == 0 and back["functions"] == 0 and back["policies"] == 0
    assert back["auth"] == 0 and back["enum"] == 0
    manage(scratch_database, "migrate", "--noinput")
    assert objects(scratch_database) == forward
    # The app role's checks pass against the migrated database (not a superuser, not the owner, NOINHERIT).
    assert "no issues" in manage(scratch_database, "check", "--database", "default")
