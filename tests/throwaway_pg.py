"""A PostgreSQL cluster of a test's own, for faults the shared cluster must never see (stopping the server).

    with throwaway_database(media_root=tmp_path) as db:   # initdb, start, provision, `manage.py migrate`
        upload_id = db.accept(body)                       # as the upload API does, in a process of its own
        worker = db.manage_process("process_upload", upload_id)
        db.cluster.stop()                                 # pg_ctl stop -m fast
        db.cluster.start()
        db.query("SELECT status FROM uploads WHERE id = %s", [upload_id])

It is scripts/pgcluster.py's `Cluster` at another home (a short path under /var/tmp, which the `postgres`
user reaches when we run as root, as the bootstrap does) and port, provisioned like the embedded cluster and
migrated by the schema owner, as the test set-up does. It is stopped and removed whatever happens.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
# A scratch cluster: no durability to speak of, little memory. A clean stop still writes everything out.
CONF = {"shared_buffers": "128MB", "fsync": "off", "full_page_writes": "off", "max_connections": "50"}


def _pgcluster():
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))  # pgcluster imports its sibling bootstrap_util by name
    import pgcluster

    return pgcluster


class ThrowawayDatabase:
    def __init__(self, cluster, media_root: Path):
        self.cluster = cluster
        self.pg = _pgcluster()
        self.media_root = media_root

    @property
    def env(self) -> dict[str, str]:
        """The environment of a process of the application that uses this cluster."""
        return {
            **os.environ,
            "DATABASE_URL": self.cluster.url(self.pg.PG_APP),
            "DATABASE_ADMIN_URL": self.cluster.url(self.pg.PG_ADMIN),
            "DJANGO_SETTINGS_MODULE": "equity_connect.settings.test",
            "MEDIA_ROOT": str(self.media_root),
        }

    def manage(self, *args: str, timeout: float = 300, **env: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)}: {result.stderr[-3000:]}"
        return result.stdout

    def manage_process(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def accept(self, body: bytes) -> str:
        """Accept `body` as an upload exactly as the upload API does (replay guard, stored file, row, event)."""
        path = self.media_root / "incoming.csv"
        path.write_bytes(body)
        code = (
            "import hashlib, io, pathlib\n"
            "from equity_connect.db import service_context\n"
            "from pipeline.intake.services import upload_accept\n"
            f"body = pathlib.Path({str(path)!r}).read_bytes()\n"
            "with service_context():\n"
            "    upload = upload_accept(body=io.BytesIO(body), content_sha256=hashlib.sha256(body).hexdigest(),"
            " size_bytes=len(body), enqueue=False)\n"
            "print(upload.id)\n"
        )
        return self.manage("shell", "-c", code).strip().splitlines()[-1]

    def connect(self) -> psycopg.Connection:
        """As the schema owner, a superuser of this cluster: every row, no row-level security."""
        return psycopg.connect(
            host=str(self.cluster.socket_dir),
            port=self.cluster.port,
            user=self.pg.PG_ADMIN,
            password=self.cluster.password(self.pg.PG_ADMIN),
            dbname=self.pg.PG_DB,
            autocommit=True,
            connect_timeout=5,
        )

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()

    def try_query(self, sql: str, params: list | None = None) -> list[tuple] | None:
        """The rows, or None while the server is down or starting."""
        try:
            return self.query(sql, params)
        except psycopg.OperationalError:
            return None


@contextmanager
def throwaway_database(*, media_root: Path) -> Iterator[ThrowawayDatabase]:
    pg = _pgcluster()
    home = Path(tempfile.mkdtemp(prefix="ec-pg-", dir="/var/tmp"))
    # Only a socket listens (no TCP port), in this cluster's own directory; the number names the socket file.
    cluster = pg.Cluster(home=home, port=55000 + os.getpid() % 5000, conf=CONF)
    try:
        cluster.start()
        cluster.provision()
        database = ThrowawayDatabase(cluster, media_root)
        database.manage("migrate", "--no-input")
        yield database
    finally:
        try:
            if cluster.bindir and cluster.running():
                cluster.stop(mode="immediate")
        finally:
            shutil.rmtree(home, ignore_errors=True)
