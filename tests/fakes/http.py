"""The base of every fake: a real `ThreadingHTTPServer` on 127.0.0.1 (a random port) that records EVERY
request it receives, whatever its method, path or body, before it answers.

    class Receiver(RecordingServer):
        def answer(self, request):           # -> (status, JSON payload[, extra headers])
            return 200, {"ok": True}

    with Receiver() as server:
        ...                                  # the code under test talks to server.url
        server.wait_answered()               # every request received so far has been answered
        assert len(server.requests) == 1     # so a second call is always seen

Each entry of `requests` is a dict: method, path (with the query string), headers, raw (the bytes),
body (the JSON body, or None), status (None until answered), received_at, answered_at (monotonic). A
request is appended before `answer` runs, so a request the fake is still working on (a deliberately slow
answer) or one whose client gave up is recorded too.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.waiting import wait_for


class RecordingServer:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- to override -------------------------------------------------------------------------------------

    def answer(self, request: dict) -> tuple:
        """(status, payload) or (status, payload, headers) for one recorded request. Runs in the server's
        request thread; may sleep to play a slow server."""
        return 200, {}

    # --- control -----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def requests_to(self, path: str, method: str | None = None) -> list[dict]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r["path"].split("?", 1)[0] == path and (method is None or r["method"] == method)
            ]

    def unanswered(self) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["answered_at"] is None]

    def wait_answered(self, *, at_least: int = 0, timeout: float = 10.0) -> list[dict]:
        """Wait until at least `at_least` requests were received and every one received so far has been
        answered (or its client had gone); returns the requests."""
        wait_for(
            lambda: len(self.requests) >= at_least and not self.unanswered(),
            timeout=timeout,
            message=lambda: f"{len(self.requests)} requests received, {len(self.unanswered())} still unanswered",
        )
        return list(self.requests)

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def __getattr__(self, name):
                # every method (GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, or any other) is recorded
                if name.startswith("do_"):
                    return self._any
                raise AttributeError(name)

            def _any(self):
                fake._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: `shutdown()` waits for the serving loop to notice, up to one interval.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- serving -----------------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        raw = _read_body(handler)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = {
            "method": handler.command,
            "path": handler.path,
            "headers": dict(handler.headers),
            "raw": raw,
            "body": body,
            "status": None,
            "received_at": time.monotonic(),
            "answered_at": None,
        }
        with self._lock:
            self.requests.append(record)
        status, payload, headers = 500, {"error": "the fake failed"}, {}
        try:
            status, payload, *extra = self.answer(record)
            headers = extra[0] if extra else {}
        finally:
            self._reply(handler, record, status, payload, headers)

    def _reply(self, handler, record: dict, status: int, payload, headers: dict) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        record["status"] = status
        try:
            handler.send_response(status)
            if "Content-Type" not in headers:
                handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)
        finally:
            record["answered_at"] = time.monotonic()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""
