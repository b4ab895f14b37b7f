"""Every command in docs/runbooks/*.md is exercised: each `manage.py` line exists and its arguments parse
with the command's real parser; the safe ones run for real against the test database; the backup is a
real pg_dump, restored with pg_restore into a scratch database; the rollback setting's example parses."""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command, get_commands, load_command_class
from django.db import connection
from django.utils.dateparse import parse_datetime

from equity_connect.db import service_context
from pipeline.models import PipelineDLQ, Upload
from security.enforcement import signature_enforcement_disabled
from security.models import PartnerKey
from tests import factories
from tests.pg import conninfo

pytestmark = pytest.mark.django_db

RUNBOOKS = Path(django_settings.BASE_DIR) / "docs" / "runbooks"
BLOCK = re.compile(r"```(bash|sql)\n(.*?)```", re.S)
MANAGE = ".venv/bin/python manage.py "

# Read-only or idempotent: run for real in the test (the rest are only parsed).
RUN_FOR_REAL = {
    "support_contacts",
    "dlq list",
    "dlq retry --due",
    "dlq discard",
    "healthcheck",
    "evaluate_alerts",
    "refresh_contactable_leads",
    "run_campaign_feeder --dry-run",
    "partner_key create",
    "partner_key list",
    "partner_key revoke",
    "partner_key reencrypt",
    "showmigrations",
    "process_upload",
}
# Run for real in a separate process (they switch the connection to the schema owner).
RUN_IN_SUBPROCESS = {"migrate pipeline 0002 --plan"}


def runbook_lines() -> list[tuple[str, str, str]]:
    """(runbook, language, line) for every command line in a bash or sql block."""
    lines = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        for language, block in BLOCK.findall(path.read_text()):
            for line in block.splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    lines.append((path.name, language, line))
    return lines


LINES = runbook_lines()
MANAGE_LINES = [(book, line) for book, language, line in LINES if line.startswith(MANAGE)]


def test_every_runbook_names_commands():
    books = {path.name for path in RUNBOOKS.glob("*.md")} - {"README.md"}
    assert books == {
        "dlq.md",
        "mv-refresh.md",
        "failed-upload.md",
        "hmac-key-rotation.md",
        "alerts.md",
        "rollback.md",
        "contacts.md",
        "dnc-registry.md",
    }
    assert {book for book, _ in MANAGE_LINES} == books
    # Each line is one of the kinds this test knows how to exercise.
    for book, language, line in LINES:
        assert language == "sql" or line.startswith(
            (MANAGE, "pg_dump ", "pg_restore ", ".venv/bin/python -c ", "curl ", "SIGNATURE_ENFORCEMENT_")
        ), (book, line)


def _key(line: str) -> str:
    """The command and its subcommand/flags that decide whether a line is safe to run."""
    words = [word for word in shlex.split(line[len(MANAGE) :]) if not word.startswith("<")]
    name = words[0]
    for candidate in (" ".join(words[:4]), " ".join(words[:3]), " ".join(words[:2]), name):
        if candidate in RUN_FOR_REAL | RUN_IN_SUBPROCESS:
            return candidate
    return name


@pytest.fixture
def state(settings, tmp_path):
    """Real objects for the placeholders of the runbooks' commands."""
    from django.core.files.base import ContentFile

    settings.MEDIA_ROOT = tmp_path
    factories.JobHeartbeatFactory(name="scheduler")
    body = b"property_address,property_city,property_state,property_zip\n1 Main St,San Diego,CA,92101\n"
    upload = factories.UploadFactory(status="failed", file=ContentFile(body, name="leads.csv"), size_bytes=len(body))
    dlq = factories.PipelineDLQFactory(upload=upload, source="webhook")
    return {"upload_id": str(upload.pk), "dlq_id": str(dlq.pk), "key_id": None, "file": "x"}


def _substitute(line: str, state: dict) -> str:
    def value(match):
        name = match.group(1)
        if name == "key_id":
            with service_context():
                state["key_id"] = (
                    state["key_id"] or PartnerKey.objects.filter(status="active").latest("created_at").key_id
                )
        return state.get(name) or str(uuid.uuid4())

    return re.sub(r"<([a-z_]+)>", value, line)


def _subprocess_env() -> dict:
    def url(source) -> str:
        host = (source["HOST"] or "").replace("/", "%2F")
        return (
            f"postgres://{source['USER']}:{source['PASSWORD']}@{host}:{source['PORT'] or 5432}/"
            f"{connection.settings_dict['NAME']}"
        )

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "equity_connect.settings.test",
        "DATABASE_URL": url(connection.settings_dict),
        "DATABASE_ADMIN_URL": url(django_settings.DATABASE_ADMIN),
        "LOG_LEVEL": "WARNING",
    }


def test_manage_commands(state):
    commands = get_commands()
    ran = []
    for book, line in MANAGE_LINES:
        args = shlex.split(_substitute(line, state)[len(MANAGE) :])
        name = args[0]
        assert name in commands, f"{book}: no command {name!r}"
        command = load_command_class(commands[name], name)
        parser = command.create_parser("manage.py", name)
        assert parser.format_help()
        parser.parse_args(args[1:])  # the runbook's arguments are the command's real ones (exits on error)
        key = _key(line)
        if key in RUN_FOR_REAL:
            out = StringIO()
            call_command(name, *args[1:], stdout=out, stderr=out)
            ran.append(key)
        elif key in RUN_IN_SUBPROCESS:
            done = subprocess.run(
                [sys.executable, "manage.py", *args],
                env=_subprocess_env(),
                capture_output=True,
                text=True,
                timeout=120,
                cwd=django_settings.BASE_DIR,
            )
            assert done.returncode == 0, done.stderr
            assert "Planned operations" in done.stdout
            ran.append(key)
    assert set(ran) == RUN_FOR_REAL | RUN_IN_SUBPROCESS
    with service_context():
        assert PipelineDLQ.objects.get(pk=state["dlq_id"]).status == "discarded"
        assert PartnerKey.objects.get(key_id=state["key_id"]).status == "revoked"
        assert Upload.objects.get(pk=state["upload_id"]).status == "done"  # process_upload re-ran it


def test_sql_checks_run(service):
    for book, language, line in LINES:
        if language == "sql":
            with connection.cursor() as cursor:
                cursor.execute(line)
                assert cursor.fetchall(), (book, line)


def test_python_one_liners_run():
    for _book, _language, line in LINES:
        if line.startswith(".venv/bin/python -c "):
            code = shlex.split(line)[2]
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
            assert done.returncode == 0 and done.stdout.strip(), done.stderr


def test_metrics_curl_line(client, settings):
    [line] = [line for _book, _language, line in LINES if line.startswith("curl ")]
    assert "Authorization: Bearer $METRICS_TOKEN" in line and "/metrics" in line
    settings.METRICS_TOKEN = "runbook-token"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer runbook-token")
    assert any(row.startswith("ec_dlq_depth ") for row in response.content.decode().splitlines())


def test_rollback_setting_example():
    [line] = [line for _book, _language, line in LINES if line.startswith("SIGNATURE_ENFORCEMENT_DISABLED_UNTIL=")]
    value = line.split("=", 1)[1]
    until = parse_datetime(value)
    assert until is not None and until.utcoffset() is not None
    with pytest.MonkeyPatch.context():
        from django.test import override_settings

        with override_settings(SIGNATURE_ENFORCEMENT_DISABLED_UNTIL=value):
            assert signature_enforcement_disabled(now=until - dt.timedelta(hours=1)) is True
            assert signature_enforcement_disabled(now=until) is False
            assert signature_enforcement_disabled(now=until - dt.timedelta(hours=25)) is False  # too far ahead


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if not candidates:
        pytest.skip(f"{name} not found")
    return str(candidates[-1])


def test_backup_and_restore_commands(tmp_path):
    """The runbook's pg_dump makes a real backup of the (test) database; its pg_restore lines list it and
    restore it into a scratch database."""
    dump_line = next(line for _b, _l, line in LINES if line.startswith("pg_dump "))
    list_line = next(line for _b, _l, line in LINES if line.startswith("pg_restore --list"))
    restore_line = next(line for _b, _l, line in LINES if line.startswith("pg_restore --clean"))
    admin = conninfo(admin=True)
    env = {**os.environ, "PGPASSWORD": admin["password"] or ""}

    def dsn(dbname: str) -> str:
        return f"host={admin['host']} port={admin['port'] or 5432} user={admin['user']} dbname={dbname}"

    backup = tmp_path / "equity_connect.dump"

    def argv(line: str, dbname: str) -> list[str]:
        line = re.sub(r"\$\(date [^)]*\)", "20260101T000000Z", line)
        words = shlex.split(line.replace('"$DATABASE_ADMIN_URL"', "DSN"))
        out = []
        for word in words:
            if word == "DSN":
                out.append(dsn(dbname))
            elif word.startswith("--dbname="):
                out.append(f"--dbname={dsn(dbname)}")
            elif word.startswith("--file="):
                out.append(f"--file={backup}")
            elif word.startswith("var/backups/"):
                out.append(str(backup))
            else:
                out.append(word)
        out[0] = _pg_tool(out[0])
        return out

    done = subprocess.run(argv(dump_line, admin["dbname"]), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listing = subprocess.run(argv(list_line, admin["dbname"]), env=env, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and "MATERIALIZED VIEW" in listing.stdout and "POLICY" in listing.stdout

    scratch = f"{admin['dbname']}_restore"
    with psycopg.connect(**{**admin, "dbname": "postgres"}, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        restored = subprocess.run(argv(restore_line, scratch), env=env, capture_output=True, text=True, timeout=180)
        assert restored.returncode == 0, restored.stderr[-2000:]
        with psycopg.connect(**{**admin, "dbname": scratch}) as conn:
            assert (
                conn.execute("SELECT count(*) FROM pg_matviews WHERE matviewname = 'mv_contactable_leads'").fetchone()[
                    0
                ]
                == 1
            )
            assert conn.execute("SELECT relrowsecurity FROM pg_class WHERE relname = 'leads'").fetchone()[0]
    finally:
        with psycopg.connect(**{**admin, "dbname": "postgres"}, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
