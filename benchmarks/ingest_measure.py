"""What the ingestion benchmark (`benchmarks/ingest.py`) measures: the two COPY floors, our pipeline end to
end (a signed request to a running server, then the worker, until the upload is `done`) and the peer
(django-import-export), plus the web server and the emptying of `leads` between runs.
"""

from __future__ import annotations

import csv
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import common
from benchmarks.ingest_files import CLEAN_COLUMNS, HEADERS


def floor_raw_copy(path: Path) -> float:
    with common.psycopg_admin() as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute("CREATE UNLOGGED TABLE bench_raw (" + ", ".join(f"c{i} text" for i in range(len(HEADERS))) + ")")
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY bench_raw FROM STDIN (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_raw")
    return elapsed


def floor_clean_copy(clean_path: Path) -> float:
    with common.psycopg_admin() as conn:
        conn.execute("DROP TABLE IF EXISTS bench_leads")
        conn.execute("CREATE TABLE bench_leads (LIKE leads INCLUDING ALL)")
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy(f"COPY bench_leads ({', '.join(CLEAN_COLUMNS)}) FROM STDIN (FORMAT csv)") as copy,
            clean_path.open("rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_leads")
    return elapsed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ours(path: Path, *, base_url: str, key_id: str, secret: str) -> dict:
    """Signed request sent → worker → status done. Returns timings, counts and the worker's peak RSS."""
    from clients.upload_leads import request

    body = path.read_bytes()
    # The worker is up before the request is sent, as a qcluster worker is (benchmarks/worker.py).
    worker = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.worker"],
        cwd=common.ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    if worker.stdout.readline().strip() != "ready":
        worker.kill()
        raise RuntimeError("the benchmark worker did not start")
    started = time.perf_counter()
    code, answer = request(
        base_url + "/api/v1/uploads",
        method="POST",
        body=body,
        secret=secret,
        key_id=key_id,
        extra={"X-Upload-Source": "bench"},
        retries=0,
        timeout=900,
    )
    accepted = time.perf_counter() - started
    del body
    if code != 202:
        worker.kill()
        raise RuntimeError(f"upload refused: {code} {answer}")
    worker.stdin.write(answer["upload_id"] + "\n")
    worker.stdin.close()
    # VmHWM (peak RSS of the worker's own image): getrusage's ru_maxrss would also count the parent's
    # pages that the child shared between fork and exec.
    peak_kb = 0
    while worker.poll() is None:
        try:
            with open(f"/proc/{worker.pid}/status") as status_file:
                for line in status_file:
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.05)
    worker.wait()
    output = worker.stdout.read()
    code, final = request(answer["status_url"], method="GET", body=b"", secret=secret, key_id=key_id)
    elapsed = time.perf_counter() - started
    if final.get("status") != "done":
        raise RuntimeError(f"upload did not finish: {final} {output}")
    return {
        "seconds": elapsed,
        "accept_seconds": accepted,
        "rss_mb": peak_kb / 1024,
        **_timings(answer["upload_id"]),
        **final,
    }


def _timings(upload_id: str) -> dict:
    """`timings` (ms per step) and the normaliser process's peak RSS (MB; 0 when staging ran in the worker),
    from the upload's `dedupe_success` event."""
    with common.psycopg_admin() as conn:
        row = conn.execute(
            "SELECT event_data->'timings', (event_data->>'normaliser_peak_rss_kb')::int FROM pipeline_events"
            " WHERE event_type = 'dedupe_success' AND upload_id = %s ORDER BY created_at DESC LIMIT 1",
            [upload_id],
        ).fetchone()
    timings, normaliser_kb = row or (None, None)
    return {"timings": timings or {}, "normaliser_rss_mb": (normaliser_kb or 0) / 1024}


def peer(path: Path, rows: int) -> float:
    """django-import-export, bulk mode, `apn` as the import id, on the first `rows` rows. Returns rows/s."""
    import tablib
    from import_export import resources

    from equity_connect.db import service_context
    from leads.models import Lead

    class LeadResource(resources.ModelResource):
        class Meta:
            model = Lead
            import_id_fields = ("apn",)
            fields = (
                "apn",
                "mak",
                "first_name",
                "last_name",
                "email",
                "phone",
                "property_address",
                "property_city",
                "property_state",
                "property_zip",
                "property_type",
                "age",
            )
            use_bulk = True
            batch_size = 1000

    dataset = tablib.Dataset(headers=list(LeadResource.Meta.fields))
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        for index, row in enumerate(reader):
            if index >= rows:
                break
            dataset.append(
                [
                    row["APN"],
                    row["MAK"],
                    row["Owner 1 First Name"],
                    row["Owner 1 Last Name"],
                    row["Email 1"],
                    row["Phone 1"],
                    row["Address"],
                    row["City"],
                    row["State"],
                    row["Zip"][:5],
                    row["Property Type"],
                    row["Age"],
                ]
            )
    with service_context():
        Lead.objects.filter(source="peer").delete()
    started = time.perf_counter()
    with service_context():
        result = LeadResource().import_data(dataset, dry_run=False, raise_errors=False)
    elapsed = time.perf_counter() - started
    if result.has_errors():
        print("peer reported row errors (counted as processed)", file=sys.stderr)
    return rows / elapsed


def truncate_leads() -> None:
    with common.psycopg_admin() as conn:
        conn.execute(
            "TRUNCATE leads, uploads, leads_staging, pipeline_dlq, pipeline_events, ingest_replay_guard CASCADE"
        )


def start_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=common.ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.3)
    server.kill()
    raise RuntimeError("the web server did not start")
