"""A fake Instantly API v2 on 127.0.0.1 (a real HTTP server on a random port, tests/fakes/http.py).

    with FakeInstantly() as fake:
        fake.script("429", "ok")                 # the next add requests' answers, in order; then "ok"
        client = InstantlyClient(api_url=fake.url, api_key="k", campaign_id="c")

What it records, so that a second send is always seen:
- `fake.requests`: EVERY request it received, whatever its method, path, key or body (method, path,
  headers, raw bytes, JSON body, the status it answered, when it was received and answered);
- `fake.lead_adds_received()`: per email, how many add requests carried it, whatever the answer (a 429,
  a 5xx, a timeout, a skip) — every time the code sent that lead;
- `fake.lead_adds_processed()`: per email, how many times the fake processed an add of it (answered 2xx),
  whether it created the lead or skipped it;
- `fake.created`: every lead the campaign gained, in order, as (campaign, email, Instantly id);
- `fake.deleted_ids()`: every Instantly lead id a `DELETE /api/v2/leads` asked to remove, once per request
  (a lead taken out twice is listed twice);
- `fake.erased_ids()`: every Instantly lead id a `DELETE /api/v2/leads/{id}` named (a person's erasure: the
  lead leaves the workspace, every campaign), once per request; an unknown id is answered 404 and still listed.
- `fake.block_list_values()`: every value a `POST /api/v2/block-lists-entries` asked to block, once per
  request (a value blocked twice is listed twice). A blocked e-mail (or any e-mail at a blocked domain) is
  then skipped by later adds, as Instantly does.

`POST /api/v2/leads/add` answers with the recorded response shape (counts + `created_leads: [{id, email,
index}]`), skipping emails on the blocklist (`fake.blocklist`), invalid (no "@"), repeated in the same
request, or — when the request sets `skip_if_in_campaign` — already in the campaign. Without that flag an
email already in the campaign is added again (the campaign then holds it twice): the fake assumes the
worst, so an add that relies on the flag it did not send is seen as a duplicate.

Script steps (consumed by authorised add requests, in order):
- "ok"                      normal processing
- "429" / "429:<seconds>"   429 Too Many Requests (with `Retry-After: <seconds>` when given)
- "500", "502", "503", …    that status, nothing created
- "slow:<seconds>"          sleep, then process normally (the client has usually timed out by then)
- "slow-nocreate:<seconds>" sleep, then answer 503 without creating anything
- "401", "400"              that status (not retryable)
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

from tests.fakes.http import RecordingServer

ADD_PATH = "/api/v2/leads/add"
LEADS_PATH = "/api/v2/leads"
BLOCK_LIST_PATH = "/api/v2/block-lists-entries"


def _email(lead) -> str:
    return str((lead or {}).get("email") or "").strip().lower() if isinstance(lead, dict) else ""


class FakeInstantly(RecordingServer):
    def __init__(self, api_key: str = "test-instantly-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.created: list[tuple[str, str, str]] = []  # (campaign_id, email, Instantly id), every creation
        self.blocklist: set[str] = set()
        self._processed: Counter = Counter()
        self._script: list[str] = []

    # --- control and what was received -------------------------------------------------------------------

    def script(self, *steps: str) -> None:
        with self._lock:
            self._script.extend(steps)

    def add_requests(self) -> list[dict]:
        return self.requests_to(ADD_PATH)

    def lead_adds_received(self) -> Counter:
        """email -> how many requests to the add endpoint carried it (every send, whatever the answer)."""
        counts: Counter = Counter()
        for request in self.add_requests():
            body = request["body"]
            leads = body.get("leads") if isinstance(body, dict) else None
            for lead in leads if isinstance(leads, list) else []:
                counts[_email(lead)] += 1
        return counts

    def lead_adds_processed(self) -> Counter:
        """email -> how many times the fake processed an add of it (answered 2xx: created or skipped)."""
        with self._lock:
            return Counter(self._processed)

    def created_emails(self, campaign_id: str) -> list[str]:
        """Every email the campaign gained, once per creation (an email added twice is listed twice)."""
        with self._lock:
            return [email for campaign, email, _ in self.created if campaign == campaign_id]

    def created_count(self, campaign_id: str) -> Counter:
        return Counter(self.created_emails(campaign_id))

    def lead_ids(self, campaign_id: str) -> dict[str, str]:
        """email -> the Instantly id of its (latest) creation in the campaign."""
        with self._lock:
            return {email: lead_id for campaign, email, lead_id in self.created if campaign == campaign_id}

    def deleted_ids(self) -> list[str]:
        """Every Instantly lead id a delete request named, in order, once per request."""
        ids: list[str] = []
        for request in self.requests:
            body = request["body"] if isinstance(request["body"], dict) else {}
            if request["method"] == "DELETE" and request["path"] == LEADS_PATH:
                ids += [str(lead_id) for lead_id in body.get("ids") or []]
        return ids

    def erased_ids(self) -> list[str]:
        """Every Instantly lead id a single-lead delete named, in order, once per request."""
        return [
            request["path"][len(LEADS_PATH) + 1 :]
            for request in self.requests
            if request["method"] == "DELETE" and request["path"].startswith(LEADS_PATH + "/")
        ]

    def block_list_values(self) -> list[str]:
        """Every value a block-list request named, in order, once per request."""
        return [
            str((request["body"] or {}).get("bl_value") or "") if isinstance(request["body"], dict) else ""
            for request in self.requests_to(BLOCK_LIST_PATH, "POST")
        ]

    # --- serving -----------------------------------------------------------------------------------------

    def _delete(self, body) -> tuple:
        """`DELETE /api/v2/leads {campaign_id, ids}`: the campaign's leads with those ids go."""
        if not isinstance(body, dict) or not body.get("campaign_id") or not isinstance(body.get("ids"), list):
            return 400, {"error": "campaign_id and ids are required"}
        ids = {str(lead_id) for lead_id in body["ids"]}
        with self._lock:
            before = len(self.created)
            self.created = [
                entry for entry in self.created if not (entry[0] == body["campaign_id"] and entry[2] in ids)
            ]
            return 200, {"count": before - len(self.created)}

    def _erase(self, lead_id: str) -> tuple:
        """`DELETE /api/v2/leads/{id}`: the lead goes from every campaign; 404 when the workspace has no such lead."""
        with self._lock:
            gone = [entry for entry in self.created if entry[2] == lead_id]
            if not gone:
                return 404, {"error": "Lead not found"}
            self.created = [entry for entry in self.created if entry[2] != lead_id]
            return 200, {"id": lead_id, "email": gone[0][1]}

    def _next_step(self) -> str:
        with self._lock:
            return self._script.pop(0) if self._script else "ok"

    def answer(self, request: dict) -> tuple:
        if request["headers"].get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "Unauthorized"}
        if request["method"] == "DELETE" and request["path"] == LEADS_PATH:
            return self._delete(request["body"])
        if request["method"] == "DELETE" and request["path"].startswith(LEADS_PATH + "/"):
            return self._erase(request["path"][len(LEADS_PATH) + 1 :])
        if request["method"] == "POST" and request["path"] == BLOCK_LIST_PATH:
            value = str((request["body"] or {}).get("bl_value") or "").strip().lower()
            if not value:
                return 400, {"error": "bl_value is required"}
            with self._lock:
                self.blocklist.add(value)
            return 200, {"id": str(uuid.uuid4()), "bl_value": value}
        if request["method"] != "POST" or request["path"] != ADD_PATH:
            return 404, {"error": "Not Found"}
        step = self._next_step()
        kind, _, argument = step.partition(":")
        if kind == "slow":
            time.sleep(float(argument or 1))
        elif kind == "slow-nocreate":
            time.sleep(float(argument or 1))
            return 503, {"error": "Service Unavailable"}
        elif kind == "429":
            return 429, {"error": "Too Many Requests"}, ({"Retry-After": argument} if argument else {})
        elif kind.isdigit():
            return int(kind), {"error": f"HTTP {kind}"}
        body = request["body"]
        leads = body.get("leads") if isinstance(body, dict) else None
        if not isinstance(leads, list) or not 1 <= len(leads) <= 1000:
            return 400, {"error": "leads must be an array of 1 to 1000 items"}
        return 200, self._add(body)

    def _add(self, body: dict) -> dict:
        campaign = body.get("campaign_id") or ""
        skip_if_in_campaign = body.get("skip_if_in_campaign") is True
        with self._lock:
            existing = {email for c, email, _ in self.created if c == campaign}
            created, seen = [], set()
            counts = {
                "in_blocklist": 0,
                "invalid_email_count": 0,
                "duplicated_leads": 0,
                "duplicate_email_count": 0,
                "incomplete_count": 0,
            }
            for index, lead in enumerate(body["leads"]):
                email = _email(lead)
                self._processed[email] += 1
                if not email:
                    counts["incomplete_count"] += 1
                elif "@" not in email:
                    counts["invalid_email_count"] += 1
                elif email in self.blocklist or email.rsplit("@", 1)[-1] in self.blocklist:
                    counts["in_blocklist"] += 1
                elif email in seen:
                    counts["duplicate_email_count"] += 1
                elif email in existing and skip_if_in_campaign:
                    counts["duplicated_leads"] += 1
                else:
                    lead_id = str(uuid.uuid4())
                    self.created.append((campaign, email, lead_id))
                    existing.add(email)
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
