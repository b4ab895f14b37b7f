"""clients/upload_leads.py: uploads to the live test server, waits, prints the final counts; retries 5xx
and connection errors but never 4xx (checked against a local HTTP server playing the API)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

from clients import upload_leads
from equity_connect.db import service_context
from pipeline.ingest.services import upload_ingest
from pipeline.models import Upload
from security import signing
from tests.factories import PartnerKeyFactory
from tests.pipeline.ingest_helpers import csv_of

ROOT = Path(__file__).resolve().parents[2]


def _worker(stop: threading.Event):
    """Plays the django-q cluster: processes received uploads until stopped."""
    try:
        while not stop.is_set():
            with service_context():
                pending = list(Upload.objects.filter(status="received").values_list("id", flat=True))
            for upload_id in pending:
                upload_ingest(upload_id=upload_id)
            time.sleep(0.2)
    finally:
        connection.close()


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


class _Api(BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        type(self).seen.append({"headers": headers, "body": body})
        status = type(self).answers.pop(0)
        payload = (
            {"upload_id": "u1", "status": "received", "status_url": "x", "content_sha256": "y"}
            if status == 202
            else {"error": "nope"}
        )
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def api_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Api.seen = []
    yield server
    server.shutdown()


def test_client_retries_5xx_not_4xx(api_server, monkeypatch):
    monkeypatch.setattr(upload_leads.time, "sleep", lambda seconds: None)
    url = f"http://127.0.0.1:{api_server.server_port}/api/v1/uploads"
    _Api.answers = [503, 502, 202]
    status, answer = upload_leads.request(url, method="POST", body=b"a,b\n", secret="s" * 40, key_id="pk_x")
    assert (status, answer["upload_id"], len(_Api.seen)) == (202, "u1", 3)
    first = _Api.seen[0]["headers"]
    expected = signing.sign_v2(
        "s" * 40,
        method="POST",
        path="/api/v1/uploads",
        timestamp=first["x-signature-timestamp"],
        content_sha256=first["x-content-sha256"],
    )
    assert f"v2={expected}" in first["x-signature"].split() and first["x-key-id"] == "pk_x"
    _Api.seen, _Api.answers = [], [401, 202]
    status, _ = upload_leads.request(url, method="POST", body=b"a,b\n", secret="s" * 40, key_id="pk_x")
    assert (status, len(_Api.seen)) == (401, 1)


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
