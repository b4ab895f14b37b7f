"""Verify before reading: a request that is not authenticated is answered from its headers alone, without
waiting for (or reading) its body; an authenticated one is read within its deadline.

Over real sockets to the live server: each request sends its headers and a Content-Length, and then no body
at all, so an answer can only come from a server that did not wait for the body."""

from __future__ import annotations

import hashlib
import socket
import urllib.parse

import pytest

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from security import signing
from tests.factories import PartnerKeyFactory
from tests.security.signing_helpers import UPLOADS, post_upload, rfc3339
from tests.waiting import wait_for

BODY = b"mak,address,city,state,zip\nM1,1 Main St,San Diego,CA,92101\n" * 2000


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.HMAC_SECRET_KEY = ""


def headers_only(url: str, headers: dict, *, length: int = len(BODY), wait: float = 5.0) -> str:
    """Send a POST's headers (announcing `length` body bytes) and no body; return the status line the server
    answers within `wait` seconds, or "" when it is still waiting for the body."""
    parts = urllib.parse.urlsplit(url)
    lines = [
        f"POST {UPLOADS} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: text/csv",
        f"Content-Length: {length}",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((parts.hostname, parts.port), timeout=wait) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            answer = sock.recv(4096)
        except TimeoutError:
            return ""
    return answer.decode(errors="replace").split("\r\n", 1)[0]


def signed(secret: str, key_id: str, *, form: str = "v2", timestamp: str | None = None) -> dict:
    timestamp = timestamp or rfc3339()
    digest = hashlib.sha256(BODY).hexdigest()
    if form == "v2":
        signature = "v2=" + signing.sign_v2(
            secret, method="POST", path=UPLOADS, timestamp=timestamp, content_sha256=digest
        )
    else:
        signature = "sha256=" + signing.sign_v1(secret, BODY)
    return {
        "X-Content-SHA256": digest,
        "X-Signature-Timestamp": timestamp,
        "X-Signature": signature,
        "X-Key-Id": key_id,
    }


@pytest.mark.django_db(transaction=True)
def test_an_unauthenticated_upload_is_refused_before_its_body_is_read(live_server):
    key = PartnerKeyFactory()
    refused = {
        "wrong secret": signed("w" * 40, key.key_id),
        "v1 from a key without allow_v1": signed(key.plain_secret, key.key_id, form="v1"),
        "unknown key": signed(key.plain_secret, "pk_unknown"),
        "old timestamp": signed(key.plain_secret, key.key_id, timestamp=rfc3339(offset_seconds=-3600)),
    }
    answers = {case: headers_only(live_server.url, headers) for case, headers in refused.items()}
    assert answers == dict.fromkeys(refused, "HTTP/1.1 401 Unauthorized")
    # Too large and chunked are refused from the headers too.
    assert headers_only(live_server.url, signed(key.plain_secret, key.key_id), length=10**12).startswith(
        "HTTP/1.1 413"
    )
    chunked = {**signed(key.plain_secret, key.key_id), "Transfer-Encoding": "chunked"}
    parts = urllib.parse.urlsplit(live_server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        head = [f"POST {UPLOADS} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: text/csv"]
        head += [f"{name}: {value}" for name, value in chunked.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        assert sock.recv(4096).decode().startswith("HTTP/1.1 411")


@pytest.mark.django_db(transaction=True)
def test_an_authenticated_upload_is_read(live_server):
    """The control: with a valid signature the server does wait for the body (and so answers nothing here);
    when the client then hangs up, the request ends as a 400 of its own, not a server error."""
    key = PartnerKeyFactory()
    assert headers_only(live_server.url, signed(key.plain_secret, key.key_id), wait=1.5) == ""

    def broken_off():
        with service_context():
            return list(
                PipelineEvent.objects.filter(event_type="upload_rejected").values_list("event_data", flat=True)
            )

    [event] = wait_for(broken_off, message="the server's answer to the broken-off request")
    assert (event["reason"], event["http_status"]) == ("body_incomplete", 400)


@pytest.mark.django_db
def test_a_body_past_its_read_deadline_is_408(client, settings):
    settings.UPLOAD_READ_GRACE_SECONDS = 0  # the deadline passes while the body is read
    settings.UPLOAD_READ_MIN_BYTES_PER_SECOND = 10**12
    key = PartnerKeyFactory()
    body = BODY * 3  # more than one read: the deadline is checked between reads (the test client has no socket)
    response = post_upload(client, key.plain_secret, body, key_id=key.key_id)
    assert response.status_code == 408
    assert "did not arrive within" in response.json()["error"]
    with service_context():
        event = PipelineEvent.objects.get(event_type="upload_rejected")
    assert (event.event_data["reason"], event.event_data["http_status"]) == ("body_timeout", 408)
    settings.UPLOAD_READ_GRACE_SECONDS = 30
    assert post_upload(client, key.plain_secret, body, key_id=key.key_id).status_code == 202
