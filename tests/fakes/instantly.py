"""A fake Instantly API v2 on 127.0.0.1 (a real `ThreadingHTTPServer` on a random port).

    with FakeInstantly() as fake:
        fake.script("429", "ok")                 # the next requests' answers, in order; then "ok"
        client = InstantlyClient(api_url=fake.url, api_key="k", campaign_id="c")

It records every request (`fake.requests`: path, headers, JSON body, the status it answered) and keeps
the campaign's leads by email, as Instantly does: `POST /api/v2/leads/add` answers with the recorded
response shape (counts + `created_leads: [{id, email, index}]`), skipping emails already in the campaign
(`skip_if_in_campaign`), on the blocklist (`fake.blocklist`), or invalid (no "@").

Script steps:
- "ok"                      normal processing
- "429" / "429:<seconds>"   429 Too Many Requests (with `Retry-After: <seconds>` when given)
- "500", "502", "503", …    that status, nothing created
- "slow:<seconds>"          sleep, then process normally (the client has usually timed out by then)
- "slow-nocreate:<seconds>" sleep, then answer 503 without creating anything
- "401", "400"              that status (not retryable)
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADD_PATH = "/api/v2/leads/add"


class FakeInstantly:
    def __init__(self, api_key: str = "test-instantly-key") -> None:
        self.api_key = api_key
        self.requests: list[dict] = []
        self.campaigns: dict[str, dict[str, str]] = {}  # campaign_id -> {email: instantly id}
        self.blocklist: set[str] = set()
        self._script: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *steps: str) -> None:
        with self._lock:
            self._script.extend(steps)

    def created_emails(self, campaign_id: str) -> list[str]:
        return list(self.campaigns.get(campaign_id, {}))

    def add_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == ADD_PATH]

    def start(self) -> FakeInstantly:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = None
                fake._handle(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeInstantly:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- serving -----------------------------------------------------------------------------------------

    def _next_step(self) -> str:
        with self._lock:
            return self._script.pop(0) if self._script else "ok"

    def _handle(self, handler: BaseHTTPRequestHandler, body) -> None:
        record = {
            "path": handler.path,
            "headers": dict(handler.headers),
            "body": body,
            "status": None,
            "at": time.monotonic(),
        }
        with self._lock:
            self.requests.append(record)
        if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._reply(handler, record, 401, {"error": "Unauthorized"})
        if handler.path != ADD_PATH:
            return self._reply(handler, record, 404, {"error": "Not Found"})
        step = self._next_step()
        kind, _, argument = step.partition(":")
        if kind == "slow":
            time.sleep(float(argument or 1))
        elif kind == "slow-nocreate":
            time.sleep(float(argument or 1))
            return self._reply(handler, record, 503, {"error": "Service Unavailable"})
        elif kind == "429":
            headers = {"Retry-After": argument} if argument else {}
            return self._reply(handler, record, 429, {"error": "Too Many Requests"}, headers)
        elif kind.isdigit():
            return self._reply(handler, record, int(kind), {"error": f"HTTP {kind}"})
        leads = body.get("leads") if isinstance(body, dict) else None
        if not isinstance(leads, list) or not 1 <= len(leads) <= 1000:
            return self._reply(handler, record, 400, {"error": "leads must be an array of 1 to 1000 items"})
        self._reply(handler, record, 200, self._add(body))

    def _add(self, body: dict) -> dict:
        campaign = body.get("campaign_id") or ""
        with self._lock:
            existing = self.campaigns.setdefault(campaign, {})
            created, seen = [], set()
            counts = {
                "in_blocklist": 0,
                "invalid_email_count": 0,
                "duplicated_leads": 0,
                "duplicate_email_count": 0,
                "incomplete_count": 0,
            }
            for index, lead in enumerate(body["leads"]):
                email = str((lead or {}).get("email") or "").strip().lower()
                if not email:
                    counts["incomplete_count"] += 1
                elif "@" not in email:
                    counts["invalid_email_count"] += 1
                elif email in self.blocklist:
                    counts["in_blocklist"] += 1
                elif email in seen:
                    counts["duplicate_email_count"] += 1
                elif email in existing and body.get("skip_if_in_campaign"):
                    counts["duplicated_leads"] += 1
                else:
                    lead_id = str(uuid.uuid4())
                    existing[email] = lead_id
                    created.append({"id": lead_id, "email": email, "index": index})
                seen.add(email)
        skipped = len(body["leads"]) - len(created)
        return {
            "status": "success",
            "total_sent": len(body["leads"]),
            "leads_uploaded": len(created),
            "skipped_count": skipped,
            "blocklist_used": None,
            "remaining_in_plan": 100000 - len(created),
            **counts,
            "created_leads": created,
        }

    def _reply(self, handler, record, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        record["status"] = status
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)
