"""Shared set-up for `make bench`: a separate database per benchmark, so the dev data is never touched.

    from benchmarks import common
    common.setup("equity_connect_bench_ingest", fresh=True)   # before importing models
    ...
    common.write_section("ingest", markdown_text)              # replaces that section of docs/benchmarks.md

Figures go to docs/benchmarks.md with the machine's description (`common.machine()`).
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"


def _env_file() -> dict[str, str]:
    values = {}
    env_file = ROOT / ".env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    return values


def _with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def setup(db_name: str, *, fresh: bool = False) -> None:
    """Point Django at database `db_name` (created and migrated by the admin role), then django.setup()."""
    import psycopg

    values = {**_env_file(), **os.environ}
    app_url, admin_url = values["DATABASE_URL"], values.get("DATABASE_ADMIN_URL", values["DATABASE_URL"])
    conninfo = _admin_conninfo()
    app_user = urllib.parse.unquote(urllib.parse.urlsplit(app_url).username or "")
    with psycopg.connect(**conninfo) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
        if exists and fresh:
            connection.execute(f'DROP DATABASE "{db_name}" WITH (FORCE)')
            exists = None
        if not exists:
            connection.execute(f'CREATE DATABASE "{db_name}" OWNER "{conninfo["user"]}"')
            connection.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{db_name}" TO "{app_user}"')
    os.environ["DATABASE_URL"] = _with_database(app_url, db_name)
    os.environ["DATABASE_ADMIN_URL"] = _with_database(admin_url, db_name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "equity_connect.settings.local")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    import django

    django.setup()


def _admin_conninfo() -> dict:
    values = {**_env_file(), **os.environ}
    admin_parts = urllib.parse.urlsplit(values.get("DATABASE_ADMIN_URL", values["DATABASE_URL"]))
    conninfo = {
        "host": urllib.parse.unquote(admin_parts.hostname or "") or None,
        "port": admin_parts.port,
        "user": urllib.parse.unquote(admin_parts.username or ""),
        "password": urllib.parse.unquote(admin_parts.password or ""),
        "dbname": "postgres",
        "autocommit": True,
    }
    if admin_parts.netloc.split("@")[-1].startswith("%2F"):
        conninfo["host"] = urllib.parse.unquote(admin_parts.netloc.split("@")[-1].rsplit(":", 1)[0])
    return conninfo


def drop(db_name: str) -> None:
    """Drop the scratch database `db_name` (closing Django's connections to it first)."""
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(**_admin_conninfo()) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def psycopg_admin():
    """A psycopg connection (autocommit) as the owner role to the database `setup()` chose."""
    import psycopg
    from django.conf import settings

    admin = settings.DATABASE_ADMIN
    return psycopg.connect(
        host=admin["HOST"] or None,
        port=admin["PORT"] or None,
        user=admin["USER"],
        password=admin["PASSWORD"] or None,
        dbname=admin["NAME"],
        autocommit=True,
    )


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip() or "PostgreSQL"
    return (
        f"{os.cpu_count()} cores ({cpu}){memory}, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}, {pg.replace('psql (PostgreSQL) ', 'PostgreSQL ')}"
    )


def write_section(name: str, markdown: str) -> None:
    """Replace the `<!-- bench:NAME -->` … `<!-- /bench:NAME -->` block of docs/benchmarks.md."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text and end in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)
