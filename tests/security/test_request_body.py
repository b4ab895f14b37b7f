"""Slow bodies against the production server: the real gunicorn command of scripts/serve.py (WEB_SERVER=gunicorn,
its settings in gunicorn.conf.py) on a free port, against the test database.

As many signed uploads as the server has workers, plus one, trickle their bodies in; /healthz still answers
within 5 s, and each trickling request is refused with 408 once its read deadline passes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import runpy
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from security import signing
from tests.factories import JobHeartbeatFactory, PartnerKeyFactory
from tests.security.signing_helpers import UPLOADS, rfc3339

ROOT = Path(__file__).resolve().parents[2]
GRACE_SECONDS, MIN_RATE = 2, 1000
LENGTH = 6000  # so each body has GRACE_SECONDS + LENGTH / MIN_RATE = 8 s to arrive, and arrives at 20 bytes/s
DEADLINE = GRACE_SECONDS + LENGTH / MIN_RATE


def _serve_module():
    spec = importlib.util.spec_from_file_location("serve", ROOT / "scripts" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _url(source: dict) -> str:
    host = urllib.parse.quote(source["HOST"] or "localhost", safe="")
    return (
        f"postgres://{source['USER']}:{source['PASSWORD']}@{host}:{source['PORT'] or 5432}/"
        f"{connection.settings_dict['NAME']}"
    )


def _healthz(base: str, timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    return status, time.monotonic() - started


class Trickle:
    """One signed upload whose headers arrive at once and whose body then comes 10 bytes at a time."""

    def __init__(self, port: int, key, n: int):
        body = f"mak\nSLOW-{n}\n".encode().ljust(LENGTH, b"x")
        digest = hashlib.sha256(body).hexdigest()
        timestamp = rfc3339()
        signature = signing.sign_v2(
            key.plain_secret, method="POST", path=UPLOADS, timestamp=timestamp, content_sha256=digest
        )
        head = (
            f"POST {UPLOADS} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/csv\r\n"
            f"Content-Length: {LENGTH}\r\nX-Content-SHA256: {digest}\r\nX-Signature-Timestamp: {timestamp}\r\n"
            f"X-Signature: v2={signature}\r\nX-Key-Id: {key.key_id}\r\n\r\n"
        )
        self.body, self.sent, self.answer, self.answered_at = body, 0, b"", None
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(head.encode())
        self.started = time.monotonic()

    def step(self) -> None:
        """Read what the server has answered; else send the next 10 bytes."""
        if self.answered_at is not None:
            return
        if select.select([self.sock], [], [], 0)[0]:
            self._receive()
            return
        try:
            self.sock.sendall(self.body[self.sent : self.sent + 10])
            self.sent += 10
        except OSError:
            self._receive()

    def _receive(self) -> None:
        try:
            while chunk := self.sock.recv(65536):
                self.answer += chunk
                if b"\r\n\r\n" in self.answer and self.answer.endswith(b"}"):
                    break
        except OSError:
            pass
        self.answered_at = time.monotonic()

    @property
    def status(self) -> int | None:
        first = self.answer.split(b"\r\n", 1)[0].split()
        return int(first[1]) if len(first) > 1 else None

    @property
    def error(self) -> str:
        _, _, body = self.answer.partition(b"\r\n\r\n")
        return json.loads(body or b"{}").get("error", "")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_slow_bodies_hold_no_more_than_their_threads_and_end_at_their_deadline(tmp_path):
    key = PartnerKeyFactory()
    JobHeartbeatFactory(name="scheduler")
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "equity_connect.settings.test",
        "DATABASE_URL": _url(connection.settings_dict),
        "DATABASE_ADMIN_URL": _url(django_settings.DATABASE_ADMIN),
        "MEDIA_ROOT": str(tmp_path),
        "HMAC_SECRET_KEY": "",
        "UPLOAD_READ_GRACE_SECONDS": str(GRACE_SECONDS),
        "UPLOAD_READ_MIN_BYTES_PER_SECOND": str(MIN_RATE),
        "LOG_LEVEL": "WARNING",
    }
    command = _serve_module().web_command(sys.executable, host="127.0.0.1", port=str(port), server="gunicorn")
    workers = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["workers"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if _healthz(base, timeout=2)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start")

        trickles = [Trickle(port, key, n) for n in range(workers + 1)]
        checks = []
        while any(t.answered_at is None for t in trickles) and time.monotonic() - trickles[0].started < 30:
            for trickle in trickles:
                trickle.step()
            elapsed = time.monotonic() - trickles[0].started
            if len(checks) < 3 and elapsed >= 1 + 2 * len(checks):  # at 1 s, 3 s and 5 s
                checks.append(_healthz(base, timeout=10))
            time.sleep(0.5)

        assert [status for status, _ in checks] == [200, 200, 200]
        assert max(seconds for _, seconds in checks) < 5, checks
        for trickle in trickles:
            assert trickle.status == 408, trickle.answer
            assert "did not arrive within 8 s" in trickle.error
            took = trickle.answered_at - trickle.started
            assert DEADLINE - 1 <= took <= DEADLINE + 5, took
            assert trickle.sent < LENGTH
    finally:
        for trickle in locals().get("trickles", []):
            trickle.sock.close()
        server.terminate()
        output = server.communicate(timeout=30)[0].decode(errors="replace")
    assert "Traceback" not in output, output[-3000:]
