#!/usr/bin/env python3
"""Bootstrap a working copy: virtualenv, embedded PostgreSQL cluster, `.env`.

Standard library only: this runs before the virtualenv exists.

    python3 scripts/bootstrap.py venv        # .venv with requirements.txt (skipped when unchanged)
    python3 scripts/bootstrap.py db          # start (creating if needed) the embedded cluster, write .env
    python3 scripts/bootstrap.py browser     # Debian's chromium for the browser tests
    python3 scripts/bootstrap.py services    # Debian's redis-server and pgbouncer for the many-machines tests
    python3 scripts/bootstrap.py stop        # stop the embedded cluster
    python3 scripts/bootstrap.py status      # print where the database is

When DATABASE_URL is set in the environment, `db` uses that server and starts nothing.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

# Sibling modules (Python puts this script's directory first on sys.path): the embedded cluster itself, and the
# helpers both share.
from bootstrap_util import ROOT, VAR, apt_install, run, say
from pgcluster import PG_ADMIN, PG_APP, PG_PORT, Cluster

VENV = ROOT / ".venv"
ENV_FILE = ROOT / ".env"


# --------------------------------------------------------------------------- venv


def ensure_venv() -> None:
    python = VENV / "bin" / "python"
    if not python.exists():
        say("creating .venv")
        try:
            run([sys.executable, "-m", "venv", str(VENV)])
        except subprocess.CalledProcessError:
            shutil.rmtree(VENV, ignore_errors=True)
            apt_install(f"python3.{sys.version_info.minor}-venv")
            run([sys.executable, "-m", "venv", str(VENV)])
    requirements = (ROOT / "requirements.txt").read_bytes()
    digest = hashlib.sha256(requirements).hexdigest()
    stamp = VENV / ".requirements.sha256"
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    say("installing requirements.txt into .venv")
    run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", "requirements.txt"], cwd=ROOT)
    stamp.write_text(digest)


# --------------------------------------------------------------------------- .env


def read_env_file() -> dict[str, str]:
    values: dict[str, str] = {}
    if ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    return values


def write_env_file(updates: dict[str, str]) -> None:
    """Set keys in `.env`, keeping every other line (and comment) as the user wrote it."""
    lines = (
        ENV_FILE.read_text().splitlines()
        if ENV_FILE.exists()
        else [
            "# Written by scripts/bootstrap.py for this working copy. Not committed (see .env.example).",
            "# Variables set in the process environment override these.",
        ]
    )
    pending = dict(updates)
    for index, line in enumerate(lines):
        key = line.split("=", 1)[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in pending:
            lines[index] = f"{key}={pending.pop(key)}"
    lines.extend(f"{key}={value}" for key, value in pending.items())
    ENV_FILE.write_text("\n".join(lines) + "\n")
    ENV_FILE.chmod(0o600)


def ensure_local_secrets() -> None:
    """Per-checkout random secrets, so no two local installs share a key."""
    current = read_env_file()
    fresh = {}
    if "SECRET_KEY" not in current:
        fresh["SECRET_KEY"] = secrets.token_urlsafe(50)
    if "ENCRYPTION_KEY" not in current:
        import base64

        fresh["ENCRYPTION_KEY"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    if "PII_ENCRYPTION_KEYS" not in current:
        import base64

        fresh["PII_ENCRYPTION_KEYS"] = "k1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    if "BLIND_INDEX_KEY" not in current:
        import base64

        fresh["BLIND_INDEX_KEY"] = "1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    if "FORM_LINK_SECRET" not in current:
        fresh["FORM_LINK_SECRET"] = secrets.token_hex(32)
    if "INSTANTLY_WEBHOOK_SECRET" not in current:
        fresh["INSTANTLY_WEBHOOK_SECRET"] = secrets.token_urlsafe(32)
    if fresh:
        write_env_file(fresh)


def ensure_db() -> None:
    ensure_local_secrets()
    (VAR / "staticfiles").mkdir(parents=True, exist_ok=True)  # whitenoise wants STATIC_ROOT to exist
    if os.environ.get("DATABASE_URL"):
        say("DATABASE_URL is set: using that server, the embedded cluster is not started")
        return
    cluster = Cluster()
    cluster.start()
    cluster.provision()
    write_env_file(
        {
            "DATABASE_URL": cluster.url(PG_APP),
            "DATABASE_ADMIN_URL": cluster.url(PG_ADMIN),
        }
    )


def ensure_browser() -> None:
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        return
    apt_install("chromium", "fonts-liberation")


def ensure_services() -> None:
    """redis-server and pgbouncer, which the many-machines tests start themselves (deploy/compose.yaml's
    commands); their packaged system services are not started."""
    missing = [
        package
        for package, binary in (("redis-server", "redis-server"), ("pgbouncer", "pgbouncer"))
        if not (shutil.which(binary) or Path("/usr/sbin", binary).exists() or Path("/usr/bin", binary).exists())
    ]
    if missing:
        apt_install(*missing, start_services=False)


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    commands = argv[1:] or ["venv", "db"]
    for command in commands:
        if command == "venv":
            ensure_venv()
        elif command == "db":
            ensure_db()
        elif command == "browser":
            ensure_browser()
        elif command == "services":
            ensure_services()
        elif command == "stop":
            Cluster().stop()
        elif command == "status":
            cluster = Cluster()
            state = "running" if cluster.running() else "stopped"
            print(f"embedded cluster: {cluster.data} ({state}), socket {cluster.socket_dir}, port {PG_PORT}")
        else:
            print(__doc__)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
