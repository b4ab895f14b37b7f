"""deploy/compose.yaml as the tests run it, without Docker: a real redis-server, a real PgBouncer (Debian's
packages, installed by `scripts/bootstrap.py services`) and the web and worker processes, each with its service's
command and environment from the recipe. Only what must be the test run's own is replaced: the addresses of the
database, Redis and the media folder, the settings module (the test settings: the partner keys a test makes are
encrypted with their keys), and, as root, PgBouncer's `-u` (it refuses to run as root).
"""

from __future__ import annotations

import configparser
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import redis
import yaml
from django.conf import settings
from django.db import connection

from tests.processes import app_env
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
PGBOUNCER_INI = DEPLOY / "pgbouncer" / "pgbouncer.ini"
# What a lane sets itself; every other value of a service's environment is the recipe's own.
LANE_KEYS = ("DATABASE_URL", "DATABASE_DIRECT_URL", "DATABASE_ADMIN_URL", "REDIS_URL", "MEDIA_ROOT")
SOCKET_PATH_MAX = 100


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def service(name: str) -> dict:
    return compose()["services"][name]


def command(name: str) -> list[str]:
    """The service's command, with `python` as this interpreter (the virtualenv's)."""
    words = [str(word) for word in service(name)["command"]]
    return [sys.executable if word == "python" else word for word in words]


def environment(name: str) -> dict[str, str]:
    """The service's environment without the lane's keys; nothing in it may be left to interpolate."""
    values = {key: str(value) for key, value in (service(name).get("environment") or {}).items()}
    kept = {key: value for key, value in values.items() if key not in LANE_KEYS and key != "DJANGO_ENV"}
    unresolved = [key for key, value in kept.items() if "${" in value]
    assert not unresolved, f"compose.yaml: {unresolved} need a value the tests do not set"
    return kept


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _home(prefix: str) -> Path:
    """A folder for a service's socket, configuration and log: under var/ when the path is short enough for a
    socket and the `postgres` user can reach it (PgBouncer runs as that user when we are root), else /tmp."""
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    reachable = all(os.stat(path).st_mode & 0o001 for path in [*var.parents, var])
    parent = var if reachable and len(str(var)) < SOCKET_PATH_MAX - 40 else None
    home = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    home.chmod(0o755)
    return home


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class RedisServer:
    """compose.yaml's redis command on a unix socket of its own; `url` is what REDIS_URL gets."""

    def __init__(self) -> None:
        self.home = _home("ec-redis-")
        self.socket = self.home / "redis.sock"
        self.url = f"unix://{self.socket}?db=0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        cmd = [*command("redis"), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        cmd += ["--dir", str(self.home), "--daemonize", "no", "--logfile", str(self.home / "redis.log")]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_for(self._answers, timeout=30, interval=0.05, message="redis-server answers")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket))

    def _answers(self) -> bool:
        assert self.process.poll() is None, (self.home / "redis.log").read_text()[-2000:]
        try:
            return self.client().ping()
        except redis.ConnectionError:
            return False

    def flush(self) -> None:
        self.client().flushall()

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
        shutil.rmtree(self.home, ignore_errors=True)


class PgBouncer:
    """compose.yaml's pgbouncer command with deploy/pgbouncer/pgbouncer.ini, in front of the test database:
    the recipe's settings (transaction mode, pool sizes, authentication) with this run's addresses."""

    def __init__(self) -> None:
        self.home = _home("ec-pgbouncer-")
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = self.home / "pgbouncer.log"

    def config(self) -> configparser.ConfigParser:
        parser = configparser.ConfigParser(
            interpolation=None, comment_prefixes=(";", "#"), empty_lines_in_values=False
        )
        parser.optionxform = str  # database names are case-sensitive
        parser.read_string(PGBOUNCER_INI.read_text())
        server = connection.settings_dict
        name = server["NAME"]
        parser.remove_section("databases")
        parser.add_section("databases")
        parser["databases"][name] = f"host={server['HOST'] or '127.0.0.1'} port={server['PORT'] or 5432} dbname={name}"
        ours = parser["pgbouncer"]
        ours.update(
            {
                "listen_addr": "127.0.0.1",
                "listen_port": str(self.port),
                "unix_socket_dir": "",
                "auth_file": str(self.home / "userlist.txt"),
                "logfile": "",
                "pidfile": "",
            }
        )
        return parser

    def start(self) -> PgBouncer:
        ini = self.home / "pgbouncer.ini"
        with ini.open("w") as handle:
            self.config().write(handle)
        users = self.home / "userlist.txt"
        users.write_text(f'"{connection.settings_dict["USER"]}" "{connection.settings_dict["PASSWORD"]}"\n')
        users.chmod(0o600)
        cmd = [str(ini) if word == "/etc/pgbouncer/pgbouncer.ini" else word for word in command("pgbouncer")]
        if os.geteuid() == 0:
            owner = "postgres"
            pwd.getpwnam(owner)  # the embedded cluster's bootstrap made it
            for path in (self.home, ini, users):
                shutil.chown(path, owner)
            cmd = [cmd[0], "-u", owner, *cmd[1:]]
        self.process = subprocess.Popen(
            cmd, stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for(self._listening, timeout=30, interval=0.05, message=lambda: self.log.read_text()[-2000:])
        return self

    def _listening(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()[-2000:]
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def logins(self) -> int:
        """How many client logins PgBouncer has logged."""
        return self.log.read_text().count("login attempt:")

    def url(self) -> str:
        server = connection.settings_dict
        user = urllib.parse.quote(server["USER"], safe="")
        password = urllib.parse.quote(server["PASSWORD"], safe="")
        return f"postgres://{user}:{password}@127.0.0.1:{self.port}/{server['NAME']}"

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
        shutil.rmtree(self.home, ignore_errors=True)


def direct_url() -> str:
    """The test database, straight to PostgreSQL, as the application's role."""
    url = urllib.parse.urlsplit(settings.DATABASE_URL)
    return urllib.parse.urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))


@dataclass
class Lane:
    """Where the machines connect: Redis always; the database through PgBouncer or straight."""

    redis: RedisServer
    logs: Path
    pgbouncer: PgBouncer | None = None
    processes: list[subprocess.Popen] = field(default_factory=list)

    def env(self, name: str, media_root: Path, **extra: str) -> dict[str, str]:
        """The environment of compose service `name` on this lane."""
        env = {**app_env(media_root), **environment(name)}
        env.update(
            {
                "DATABASE_URL": self.pgbouncer.url() if self.pgbouncer else direct_url(),
                "DATABASE_DIRECT_URL": direct_url(),
                "DATABASE_ADMIN_URL": settings.DATABASE_ADMIN_URL,
                "REDIS_URL": self.redis.url,
                "MEDIA_ROOT": str(media_root),
                **extra,
            }
        )
        return env

    def web(self, media_root: Path, *, service_name: str = "web-1", **extra: str) -> str:
        """Start compose's web service (gunicorn) on a free port; returns its base URL once it answers."""
        port = free_port()
        cmd = command(service_name)
        cmd[cmd.index("-b") + 1] = f"127.0.0.1:{port}"
        process = self._start(service_name, cmd, self.env(service_name, media_root, **extra))
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert process.poll() is None, self.log_tail()
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_for(answers, timeout=90, interval=0.2, message="the web server listens")
        return base

    def cluster(self, media_root: Path, *, service_name: str = "worker-1", **extra: str) -> subprocess.Popen:
        """Start compose's worker service (a django-q2 cluster)."""
        return self._start(service_name, command(service_name), self.env(service_name, media_root, **extra))

    def _start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = self.logs / f"{len(self.processes):02d}-{name}.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes.append(process)
        return process

    def log_tail(self, characters: int = 3000) -> str:
        """The end of every process's output (a failing test shows it)."""
        return "\n".join(f"--- {log.name}\n{log.read_text()[-characters:]}" for log in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        for process in reversed(self.processes):
            _stop(process)
        self.processes.clear()
