"""Run files through the real pipeline in tests: accept (as the API does) and ingest."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
from pathlib import Path

from equity_connect.db import service_context
from pipeline.ingest.services import upload_ingest
from pipeline.intake.services import upload_accept
from pipeline.models import Upload
from tests.processes import app_env

ROOT = Path(__file__).resolve().parents[2]


def accept(body: bytes, **kwargs) -> Upload:
    with service_context():
        return upload_accept(
            body=io.BytesIO(body),
            content_sha256=hashlib.sha256(body).hexdigest(),
            size_bytes=len(body),
            enqueue=False,
            **kwargs,
        )


def ingest(body: bytes, **kwargs) -> Upload:
    upload = upload_ingest(upload_id=accept(body, **kwargs).id)
    assert upload is not None
    return upload


def assert_invariant(upload: Upload) -> None:
    assert upload.rows_total == (
        upload.leads_created + upload.leads_merged + upload.duplicates_in_file + upload.rows_rejected
    ), upload.__dict__
    # Rows fixed in the DLQ since moved from rejected to created or merged (pipeline/ingest/services.py).
    assert 0 <= upload.rows_recovered <= upload.leads_created + upload.leads_merged, upload.__dict__


def csv_of(rows: list[dict]) -> bytes:
    headers = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([[row.get(header, "") for header in headers] for row in rows])
    return buffer.getvalue().encode()


def worker_process(upload_id, media_root, **env_extra) -> subprocess.Popen:
    """`manage.py process_upload <upload_id>` in a process of its own, against the test database."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "process_upload", str(upload_id)],
        cwd=ROOT,
        env=app_env(media_root, **env_extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
