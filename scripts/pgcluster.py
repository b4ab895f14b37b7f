"""The embedded PostgreSQL cluster of `scripts/bootstrap.py`: found binaries, data, socket and logs under
var/pg (or a short fallback path), started as the `postgres` user when we are root, and provisioned with
the application's role and database.

Standard library only: this runs before the virtualenv exists.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import urllib.parse
from pathlib import Path

from bootstrap_util import ROOT, VAR, apt_install, is_root, run, say

PG_PORT = int(os.environ.get("EMBEDDED_PG_PORT", "54329"))
PG_ADMIN = "ec_admin"
PG_APP = "equity_app"
PG_DB = "equity_connect"
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN"


def find_pg_bindir() -> Path | None:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
            candidates.append(Path(out))
        except subprocess.CalledProcessError:
            pass
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)

    def version(path: str) -> int:
        try:
            return int(Path(path).parent.name)
        except ValueError:
            return 0

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    return None


class Cluster:
    """The project-local cluster: data, socket and logs under var/pg (or a short fallback path).

    `Cluster(home=..., port=...)` is another, independent cluster there (the fault tests start, stop and
    remove one of their own); `home` must be reachable by the `postgres` user when we are root, and short
    enough for a socket path."""

    def __init__(self, home: Path | None = None, port: int = PG_PORT, conf: dict[str, str] | None = None) -> None:
        self.bindir = find_pg_bindir()
        self.owner = self._owner()
        self.port = port
        self.conf = conf or {}  # postgresql.conf settings over the defaults below
        self.home = Path(home) if home is not None else self._home()
        self.data = self.home / "data"
        self.socket_dir = self.home / "run"
        self.log = self.home / "log" / "postgres.log"

    @staticmethod
    def _owner() -> str | None:
        # PostgreSQL refuses to run as root; as root we run it as the `postgres` system user.
        if not is_root():
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            run(["useradd", "--system", "--home-dir", "/var/lib/postgresql", "--shell", "/bin/false", "postgres"])
        return "postgres"

    def _home(self) -> Path:
        preferred = VAR / "pg"
        if preferred.is_symlink() or (preferred / "data").exists():
            return preferred.resolve()
        usable = len(str(preferred / "run")) <= SOCKET_PATH_MAX
        if usable and self.owner:
            # the postgres user must be able to reach var/ through every parent directory
            usable = all(os.stat(p).st_mode & 0o001 for p in [*ROOT.parents, ROOT])
        if usable:
            return preferred
        fallback = Path("/var/tmp") / f"equity-connect-pg-{hashlib.sha1(str(ROOT).encode()).hexdigest()[:12]}"
        fallback.mkdir(parents=True, exist_ok=True)
        VAR.mkdir(exist_ok=True)
        if not preferred.exists():
            preferred.symlink_to(fallback)
        say(f"var/pg -> {fallback} (the repo path is not reachable by the postgres user or too long for a socket)")
        return fallback

    def as_owner(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", self.owner, "--", *cmd] if self.owner else cmd

    def pg(self, tool: str) -> str:
        assert self.bindir
        return str(self.bindir / tool)

    def chown(self, path: Path) -> None:
        if self.owner:
            shutil.chown(path, self.owner, self.owner)

    def running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        status = self.as_owner([self.pg("pg_ctl"), "-D", str(self.data), "status"])
        result = subprocess.run(status, capture_output=True)
        return result.returncode == 0

    def password_file(self, role: str) -> Path:
        return self.home / f"{role}.password"

    def password(self, role: str) -> str:
        path = self.password_file(role)
        if not path.exists():
            path.write_text(secrets.token_hex(24))
            path.chmod(0o600)
        return path.read_text().strip()

    def init(self) -> None:
        say(f"creating the embedded PostgreSQL cluster in {self.data}")
        for directory in (self.home, self.socket_dir, self.log.parent):
            directory.mkdir(parents=True, exist_ok=True)
            self.chown(directory)
        pwfile = self.home / "initdb.pw"
        pwfile.write_text(self.password(PG_ADMIN) + "\n")
        pwfile.chmod(0o600)
        self.chown(pwfile)
        try:
            run(
                self.as_owner(
                    [
                        self.pg("initdb"),
                        "-D",
                        str(self.data),
                        "-U",
                        PG_ADMIN,
                        f"--pwfile={pwfile}",
                        "--auth-local=scram-sha-256",
                        "--auth-host=scram-sha-256",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                    ]
                ),
                stdout=subprocess.DEVNULL,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.data / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write(
                "\n# --- equity-connect embedded cluster ---\n"
                "listen_addresses = ''\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                f"port = {self.port}\n"
                "max_connections = 200\n"
                "shared_buffers = 512MB\n"
                "work_mem = 32MB\n"
                "maintenance_work_mem = 512MB\n"
                "max_wal_size = 8GB\n"
                "checkpoint_timeout = 15min\n"
                # a local development cluster: losing the last few commits on a power cut is acceptable
                "synchronous_commit = off\n"
                "timezone = 'UTC'\n"
            )
            handle.writelines(f"{name} = {value}\n" for name, value in self.conf.items())

    def start(self) -> None:
        if not self.bindir:
            apt_install("postgresql")
            self.bindir = find_pg_bindir()
            if not self.bindir:
                raise SystemExit("PostgreSQL binaries not found (pg_config, PATH, /usr/lib/postgresql/*/bin)")
        if not (self.data / "PG_VERSION").exists():
            self.init()
        if self.running():
            return
        say("starting the embedded PostgreSQL cluster")
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.chown(self.socket_dir)
        run(
            self.as_owner(
                [
                    self.pg("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    "120",
                    "start",
                ]
            ),
            stdout=subprocess.DEVNULL,
        )

    def stop(self, mode: str = "fast") -> None:
        if self.bindir and self.running():
            say("stopping the embedded PostgreSQL cluster")
            run(
                self.as_owner([self.pg("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
                stdout=subprocess.DEVNULL,
            )

    def url(self, role: str, database: str = PG_DB) -> str:
        host = urllib.parse.quote(str(self.socket_dir), safe="")
        return f"postgres://{role}:{self.password(role)}@{host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        env = {**os.environ, "PGPASSWORD": self.password(PG_ADMIN)}
        psql = self.pg("psql") if (self.bindir / "psql").exists() else "psql"
        result = subprocess.run(
            [
                psql,
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                PG_ADMIN,
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        if result.returncode != 0:
            raise SystemExit(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def provision(self) -> None:
        """The application's login role (NOINHERIT: it has no domain privileges until it SETs a ROLE) and the
        database, owned by the admin role so the application can never ALTER or bypass row-level security."""
        app_password = self.password(PG_APP)
        if not self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{PG_APP}'"):
            say(f"creating role {PG_APP}")
            self.psql(f"CREATE ROLE {PG_APP} LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS PASSWORD '{app_password}'")
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{PG_DB}'"):
            say(f"creating database {PG_DB}")
            self.psql(f"CREATE DATABASE {PG_DB} OWNER {PG_ADMIN}")
            self.psql(f"GRANT CONNECT, TEMPORARY ON DATABASE {PG_DB} TO {PG_APP}")
        # The test runner creates its own databases as the admin role and grants them the same way.
        self.psql(f"GRANT USAGE ON SCHEMA public TO {PG_APP}", database=PG_DB)
