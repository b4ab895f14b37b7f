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
(sleep, then send: the client has usually timed out by then); "kill" (send, then SIGKILL the process `kill_pid`
before answering: the sender dies after Twilio accepted the text); "kill_first" (SIGKILL `kill_pid` and send
nothing: the sender died before Twilio took the text).

Reading messages back, as Twilio's API does (the senders' reconciliation uses them; recorded like every call):
`GET .../Messages.json?To=<number>&DateSent>=<YYYY-MM-DD>` lists the accepted messages to that number
(`{"messages": [...], "next_page_uri": null}`, newest first), `GET .../Messages/<sid>.json` one message (404 with
code 20404 when unknown). Each message: sid, to, from, body, status, date_created (RFC 2822, as Twilio writes it).
`fake.reads()` lists those GET requests. `fake.fail_reads = True` answers them 503.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import signal
import time
import uuid
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.http import RecordingServer

_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
_ONE = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages/([A-Za-z0-9]+)\.json$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


class FakeTwilio(RecordingServer):
    def __init__(self, account_sid: str = "AC" + "1" * 32, auth_token: str = "test-twilio-token") -> None:  # noqa: S107 (a test fake)
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.opted_out: set[str] = set()
        self._sent: list[dict] = []
        self._script: list[str] = []
        self.kill_pid: int | None = None
        self.fail_reads = False

    def script(self, *steps: str) -> None:
        with self._lock:
            self._script.extend(steps)

    @staticmethod
    def form(request: dict) -> dict:
        return dict(parse_qsl(request["raw"].decode("utf-8", "replace"), keep_blank_values=True))

    def sent(self) -> list[dict]:
        with self._lock:
            return [{k: v for k, v in message.items() if k != "created"} for message in self._sent]

    def sends_to(self, number: str) -> int:
        """Every request that asked to text `number`, whatever the answer."""
        return sum(
            1
            for request in list(self.requests)
            if request["method"] == "POST" and self.form(request).get("To") == number
        )

    def reads(self) -> list[dict]:
        """Every GET (list or fetch of messages) received."""
        return [request for request in list(self.requests) if request["method"] == "GET"]

    def _authorised(self, request: dict, account: str) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request["headers"].get("Authorization") == expected and account == self.account_sid

    def _resource(self, message: dict) -> dict:
        return {
            "sid": message["sid"],
            "account_sid": self.account_sid,
            "to": message.get("To", ""),
            "from": message.get("From") or "",
            "messaging_service_sid": message.get("MessagingServiceSid"),
            "body": message.get("Body", ""),
            "status": "sent",
            "date_created": format_datetime(message["created"]),
        }

    def _read(self, request: dict):
        path, _, query = request["path"].partition("?")
        one, many = _ONE.match(path), _PATH.match(path)
        if not self._authorised(request, (one or many).group(1)):
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if self.fail_reads:
            return 503, {"code": 20500, "message": "try later", "status": 503}
        with self._lock:
            messages = list(self._sent)
        if one:
            found = [message for message in messages if message["sid"] == one.group(2)]
            if not found:
                return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
            return 200, self._resource(found[0])
        params = dict(parse_qsl(urlsplit("?" + query).query, keep_blank_values=True))
        to, since = params.get("To"), params.get("DateSent>=")
        day = dt.date.fromisoformat(since) if since else None
        chosen = [
            self._resource(message)
            for message in reversed(messages)
            if (to is None or message.get("To") == to) and (day is None or message["created"].date() >= day)
        ]
        return 200, {"messages": chosen, "next_page_uri": None, "page": 0, "page_size": 50}

    def answer(self, request: dict):
        path = request["path"].split("?", 1)[0]
        if request["method"] == "GET" and (_PATH.match(path) or _ONE.match(path)):
            return self._read(request)
        match = _PATH.match(path)
        if request["method"] != "POST" or not match:
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        if not self._authorised(request, match.group(1)):
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if "application/x-www-form-urlencoded" not in request["headers"].get("Content-Type", ""):
            return 400, {"code": 20001, "message": "not a form", "status": 400}
        with self._lock:
            step = self._script.pop(0) if self._script else "ok"
        if step == "kill_first":
            os.kill(self.kill_pid, signal.SIGKILL)
            return 503, {"code": 20500, "message": "the sender is gone", "status": 503}
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
            self._sent.append({**form, "sid": sid, "created": dt.datetime.now(dt.UTC).replace(microsecond=0)})
        if step == "kill":
            os.kill(self.kill_pid, signal.SIGKILL)  # Twilio took it; the sender never hears back
        return 201, {"sid": sid, "status": "queued", "to": to, "body": form["Body"], "account_sid": self.account_sid}
