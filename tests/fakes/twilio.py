"""A fake Twilio Messaging API on 127.0.0.1 (a real HTTP server on a random port, tests/fakes/http.py).

    with FakeTwilio() as fake:
        fake.script("503", "ok")            # the next send requests' answers, in order; then "ok"
        client = TwilioClient(api_url=fake.url, account_sid=fake.account_sid, auth_token=fake.auth_token, ...)

It records EVERY request it receives (`fake.requests`, with the raw form body) and answers
`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form-encoded, HTTP basic auth with the account SID and
auth token) as Twilio does: 201 with the message resource (`sid` "SM" + 32 hex digits, `status` "queued"),
401 for wrong credentials or another account, 400 with Twilio's `code` 21211 for a `To` that is not E.164,
21610 for a number in `fake.opted_out`, 21604 without a Body, 21603/21606 without a sender.
`fake.sent()` lists every message it accepted as a dict of the form's fields (To, Body, From or
MessagingServiceSid, StatusCallback) with its sid; `fake.sends_to(number)` counts every request to a number,
whatever the answer, so a text sent twice is always seen.

Script steps: "ok"; "429", "500", "503" (that status; nothing sent); "400" (Twilio's 21211); "slow:<seconds>"
(sleep, then send: the client has usually timed out by then).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from urllib.parse import parse_qsl

from tests.fakes.http import RecordingServer

_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


class FakeTwilio(RecordingServer):
    def __init__(self, account_sid: str = "AC" + "1" * 32, auth_token: str = "test-twilio-token") -> None:  # noqa: S107 (a test fake)
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.opted_out: set[str] = set()
        self._sent: list[dict] = []
        self._script: list[str] = []

    def script(self, *steps: str) -> None:
        with self._lock:
            self._script.extend(steps)

    @staticmethod
    def form(request: dict) -> dict:
        return dict(parse_qsl(request["raw"].decode("utf-8", "replace"), keep_blank_values=True))

    def sent(self) -> list[dict]:
        with self._lock:
            return [dict(message) for message in self._sent]

    def sends_to(self, number: str) -> int:
        """Every request that asked to text `number`, whatever the answer."""
        return sum(1 for request in list(self.requests) if self.form(request).get("To") == number)

    def answer(self, request: dict):
        match = _PATH.match(request["path"].split("?", 1)[0])
        if request["method"] != "POST" or not match:
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request["headers"].get("Authorization") != expected or match.group(1) != self.account_sid:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if "application/x-www-form-urlencoded" not in request["headers"].get("Content-Type", ""):
            return 400, {"code": 20001, "message": "not a form", "status": 400}
        with self._lock:
            step = self._script.pop(0) if self._script else "ok"
        if step.startswith("slow:"):
            time.sleep(float(step.split(":", 1)[1]))
        elif step in ("429", "500", "502", "503"):
            return int(step), {"code": 20429 if step == "429" else 20500, "message": "try later", "status": int(step)}
        form = self.form(request)
        to = form.get("To", "")
        if step == "400" or not _E164.match(to):
            return 400, {"code": 21211, "message": f"The 'To' number {to} is not a valid phone number.", "status": 400}
        if to in self.opted_out:
            return 400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}
        if not form.get("Body"):
            return 400, {"code": 21604, "message": "A 'Body' is required", "status": 400}
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return 400, {"code": 21603, "message": "A 'From' phone number is required", "status": 400}
        sid = "SM" + uuid.uuid4().hex
        with self._lock:
            self._sent.append({**form, "sid": sid})
        return 201, {"sid": sid, "status": "queued", "to": to, "body": form["Body"], "account_sid": self.account_sid}
