"""clients/upload_leads.py: uploads to the live test server, waits, prints the final counts; retries 5xx
and connection errors but never 4xx (checked against a local HTTP server playing the API)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection

from clients import upload_leads
from equity_connect.db import service_context
from pipeline.ingest.services import upload_ingest
from pipeline.models import Upload
from security import signing
from tests.factories import PartnerKeyFactory
from tests.fakes.upload_api import FakeUploadApi
from tests.pipeline.ingest_helpers import csv_of
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _received() -> list:
    with service_context():
        return list(Upload.objects.filter(status="received").values_list("id", flat=True))


def _worker(stop: threading.Event):
    """Plays the django-q cluster: processes each received upload as soon as there is one, until stopped."""
    try:
        while True:
            pending = wait_for(lambda: stop.is_set() or _received(), timeout=120, interval=0.02)
            if stop.is_set():
                return
            for upload_id in pending:
                upload_ingest(upload_id=upload_id)
    finally:
        connection.close()


@pytest.mark.slow  # a live server, the client as a process, and its status polls two seconds apart
@pytest.mark.django_db(transaction=True)
def test_client_uploads_waits_and_prints_counts(live_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    key = PartnerKeyFactory()
    path = tmp_path / "leads.csv"
    path.write_bytes(
        csv_of([{"mak": f"K{i % 40}", "first_name": f"N{i}"} for i in range(50)] + [{"first_name": "no key"}])
    )
    stop = threading.Event()
    worker = threading.Thread(target=_worker, args=(stop,), daemon=True)
    worker.start()
    try:
        env = {**os.environ, "EC_SECRET": key.plain_secret}
        result = subprocess.run(
            [
                sys.executable,
                "clients/upload_leads.py",
                str(path),
                "--url",
                live_server.url,
                "--key-id",
                key.key_id,
                "--wait",
                "--source",
                "pytest-client",
                "--timeout",
                "60",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        stop.set()
        worker.join(10)
    assert result.returncode == 0, result.stderr
    assert (
        "status=done rows_total=51 leads_created=40 leads_merged=0 duplicates_in_file=10 rows_rejected=1"
        in result.stdout
    )
    assert key.plain_secret not in result.stdout + result.stderr
    with service_context():
        assert Upload.objects.get().source == "pytest-client"


@pytest.fixture
def api_server():
    with FakeUploadApi() as api:
        yield api


def test_client_retries_5xx_not_4xx(api_server, monkeypatch):
    monkeypatch.setattr(upload_leads.time, "sleep", lambda seconds: None)
    url = f"{api_server.url}/api/v1/uploads"
    api_server.script(503, 408, 202)
    status, answer = upload_leads.request(url, method="POST", body=b"a,b\n", secret="s" * 40, key_id="pk_x")
    seen = api_server.requests  # every call the fake received
    assert (status, answer["upload_id"], len(seen)) == (202, "u1", 3)
    assert [(r["method"], r["path"], r["raw"], r["status"]) for r in seen] == [
        ("POST", "/api/v1/uploads", b"a,b\n", answer_status) for answer_status in (503, 408, 202)
    ]
    first = {name.lower(): value for name, value in seen[0]["headers"].items()}
    expected = signing.sign_v2(
        "s" * 40,
        method="POST",
        path="/api/v1/uploads",
        timestamp=first["x-signature-timestamp"],
        content_sha256=first["x-content-sha256"],
    )
    # v2 only: the v1 form (an HMAC of the body alone) would let a captured request be replayed
    assert first["x-signature"] == f"v2={expected}" and first["x-key-id"] == "pk_x"
    api_server.script(401, 202)
    status, _ = upload_leads.request(url, method="POST", body=b"a,b\n", secret="s" * 40, key_id="pk_x")
    assert (status, len(api_server.requests)) == (401, 4)  # one more call: a 4xx is never retried


def test_client_gives_up_on_connection_errors(monkeypatch):
    monkeypatch.setattr(upload_leads.time, "sleep", lambda seconds: None)
    with pytest.raises(RuntimeError, match="gave up after 3 attempts"):
        upload_leads.request(
            "http://127.0.0.1:9/api/v1/uploads",
            method="POST",
            body=b"x",
            secret="s" * 40,
            key_id=None,
            retries=2,
            timeout=2,
        )
