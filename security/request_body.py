"""Reading a request body into a spool: within a size limit and, for partner requests, a read deadline.

    source = body_source(request)                        # how the body arrives (length, chunked, socket)
    body = body_spool(source.read, max_bytes=…, expected_bytes=…, timeout_seconds=…, interrupt=source.interrupt)

A body that trickles in ties up a web thread for as long as it takes, so a partner's body must arrive within
`UPLOAD_READ_GRACE_SECONDS` plus one second per `UPLOAD_READ_MIN_BYTES_PER_SECOND` bytes of its
Content-Length. A read blocked on the socket cannot see a deadline pass, so under gunicorn (which hands the
application its socket) a timer shuts the socket's reading side at the deadline, which makes the blocked
read return; elsewhere (the development server, the test client) the deadline is checked between reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings

CHUNK = 256 * 1024


class BodyTooLarge(Exception):
    """The body is over `max_bytes`."""


class BodyTooSlow(Exception):
    """The body did not arrive before its read deadline."""


class BodyIncomplete(Exception):
    """The body ended (or the connection broke) before its Content-Length bytes arrived."""


@dataclass
class SpooledBody:
    file: BinaryIO
    size: int
    sha256: str
    extra_digests: dict[str, str]


@dataclass(frozen=True)
class BodySource:
    """How a request's body arrives. `content_length` is None without a Content-Length header; `interrupt`
    makes a read blocked on the connection return at once (None when the server gives no access to it)."""

    read: Callable[[int], bytes]
    content_length: int | None
    chunked: bool = False
    interrupt: Callable[[], None] | None = None


def body_source(request) -> BodySource:
    """The body source of a Django request."""
    raw_length = (request.META.get("CONTENT_LENGTH") or "").strip()
    try:
        content_length = int(raw_length) if raw_length else None
    except ValueError:
        content_length = None
    if content_length is not None and content_length < 0:
        content_length = None
    chunked = "chunked" in (request.headers.get("Transfer-Encoding") or "").lower()
    return BodySource(
        read=request.read, content_length=content_length, chunked=chunked, interrupt=_interrupter(request.META)
    )


def _interrupter(meta) -> Callable[[], None] | None:
    sock = meta.get("gunicorn.socket")
    if sock is None:
        return None

    def interrupt() -> None:
        with contextlib.suppress(OSError):  # already closed by the client: the read has returned anyway
            sock.shutdown(socket.SHUT_RD)

    return interrupt


def read_timeout_seconds(content_length: int) -> float:
    """How long a body of `content_length` bytes may take to arrive."""
    rate = max(1, settings.UPLOAD_READ_MIN_BYTES_PER_SECOND)
    return settings.UPLOAD_READ_GRACE_SECONDS + content_length / rate


def body_spool(
    read: Callable[[int], bytes],
    *,
    max_bytes: int,
    hashers: dict | None = None,
    expected_bytes: int | None = None,
    timeout_seconds: float | None = None,
    interrupt: Callable[[], None] | None = None,
) -> SpooledBody:
    """Read `read(n)` to the end into a spool (memory, then disk past INGEST_SPOOL_BYTES), computing its
    SHA-256 and any extra incremental hashers (the v1 HMAC) on the way.

    Raises BodyTooLarge past `max_bytes`; with `timeout_seconds`, BodyTooSlow when fewer than
    `expected_bytes` arrived in time; BodyIncomplete when the body ends or breaks short of `expected_bytes`."""
    spool = tempfile.SpooledTemporaryFile(max_size=settings.INGEST_SPOOL_BYTES)  # noqa: SIM115 (returned)
    sha = hashlib.sha256()
    hashers = hashers or {}
    size = 0
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    expired = threading.Event()
    timer = None
    if timeout_seconds is not None and interrupt is not None:

        def expire() -> None:
            expired.set()
            interrupt()

        timer = threading.Timer(timeout_seconds, expire)
        timer.daemon = True
        timer.start()

    def late() -> bool:
        incomplete = expected_bytes is None or size < expected_bytes
        return deadline is not None and incomplete and (expired.is_set() or time.monotonic() > deadline)

    try:
        while True:
            try:
                chunk = read(CHUNK)
            except OSError as error:
                if late():
                    raise BodyTooSlow(_too_slow(timeout_seconds)) from error
                raise BodyIncomplete("the connection broke before the whole body arrived") from error
            size += len(chunk)
            if late():
                raise BodyTooSlow(_too_slow(timeout_seconds))
            if not chunk:
                break
            if size > max_bytes:
                raise BodyTooLarge(f"the body is over the limit of {max_bytes} bytes")
            sha.update(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
            spool.write(chunk)
        if expected_bytes is not None and size < expected_bytes:
            raise BodyIncomplete("the body is shorter than its Content-Length")
    except BaseException:
        spool.close()
        raise
    finally:
        if timer is not None:
            timer.cancel()
    spool.seek(0)
    return SpooledBody(spool, size, sha.hexdigest(), {name: h.hexdigest() for name, h in hashers.items()})


def _too_slow(timeout_seconds: float | None) -> str:
    return (
        f"the request body did not arrive within {timeout_seconds:.0f} s (at least "
        f"{settings.UPLOAD_READ_MIN_BYTES_PER_SECOND} bytes per second are needed); send it again"
    )
