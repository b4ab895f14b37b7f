"""The Instantly API v2 client: add leads to a campaign in batches, with retries.

`POST {INSTANTLY_API_URL}/api/v2/leads/add` takes 1 to 1000 leads and answers with counts and
`created_leads: [{id, email, index}]`, where `index` is the lead's position in the request. Leads
Instantly did not create (blocklist, invalid email, duplicates) are only counted, not listed, so a
lead missing from `created_leads` is "skipped" with the reason the counts give.

Retries: 429 and 5xx responses, timeouts and connection errors are retried with exponential backoff
and full jitter (a `Retry-After` header, when present, is honoured as the minimum wait), up to
`INSTANTLY_MAX_ATTEMPTS` attempts per batch. Requests set `skip_if_in_campaign`, so a retry after an
ambiguous failure (a timeout after Instantly had already created the leads) never adds a lead twice.

With no `INSTANTLY_API_KEY` the client is in dry-run mode: it sends nothing and says so.
This module knows nothing about our database; the feeder maps results back to leads.
"""

from __future__ import annotations

import copy
import email.utils
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

import requests
from django.conf import settings

logger = logging.getLogger(__name__)

ADD_LEADS_PATH = "/api/v2/leads/add"
LEADS_PATH = "/api/v2/leads"  # DELETE with {campaign_id, ids}: the leads leave the campaign
LEAD_PATH = "/api/v2/leads/{id}"  # DELETE: the lead is deleted from the workspace (a person's erasure)
BLOCK_LIST_PATH = "/api/v2/block-lists-entries"  # POST {bl_value}: an e-mail address or a domain, blocked
MAX_BATCH = 1000  # Instantly's limit per request

# Response counters that explain why a lead is missing from `created_leads`, with a reason a person reads.
SKIP_COUNTERS = (
    ("in_blocklist", "on Instantly's blocklist"),
    ("invalid_email_count", "invalid email address"),
    ("duplicated_leads", "already in the campaign"),
    ("duplicate_email_count", "duplicate email in the same request"),
    ("incomplete_count", "incomplete lead data"),
)
ALREADY_IN_CAMPAIGN = "already in the campaign"


class InstantlyConfigurationError(Exception):
    """The client has an API key but no campaign id (or a similar mistake a person must fix)."""


@dataclass
class BatchResult:
    """What happened to one request's leads. Indexes are positions in the list given to `add_leads`."""

    indexes: list[int]
    created: dict[int, str] = field(default_factory=dict)  # index -> Instantly lead id
    skipped: dict[int, str] = field(default_factory=dict)  # index -> reason
    failed: bool = False
    error: str = ""
    attempts: int = 0
    status_code: int | None = None
    counts: dict = field(default_factory=dict)


@dataclass
class Reply:
    """One request's outcome, after its retries."""

    ok: bool
    payload: dict = field(default_factory=dict)
    error: str = ""
    attempts: int = 0
    status_code: int | None = None
    dry_run: bool = False


@dataclass
class PushResult:
    batches: list[BatchResult]
    dry_run: bool = False

    @property
    def created(self) -> dict[int, str]:
        return {index: lead_id for batch in self.batches for index, lead_id in batch.created.items()}

    @property
    def skipped(self) -> dict[int, str]:
        return {index: reason for batch in self.batches for index, reason in batch.skipped.items()}

    @property
    def failed_batches(self) -> list[BatchResult]:
        return [batch for batch in self.batches if batch.failed]


class InstantlyClient:
    """`InstantlyClient().add_leads([{"email": …, "first_name": …, "custom_variables": {…}}, …])`.

    Defaults come from settings; tests pass a local server's URL and short timeouts. `sleep` is the
    wait between attempts (injectable so a test can see the waits without spending them).
    """

    def __init__(
        self,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        campaign_id: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int | None = None,
        backoff_seconds: float | None = None,
        backoff_max_seconds: float | None = None,
        batch_size: int = MAX_BATCH,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_url = (api_url if api_url is not None else settings.INSTANTLY_API_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else settings.INSTANTLY_API_KEY
        self.campaign_id = campaign_id if campaign_id is not None else settings.INSTANTLY_CAMPAIGN_ID
        self.timeout = (
            connect_timeout if connect_timeout is not None else settings.INSTANTLY_CONNECT_TIMEOUT_SECONDS,
            read_timeout if read_timeout is not None else settings.INSTANTLY_READ_TIMEOUT_SECONDS,
        )
        self.max_attempts = max(1, max_attempts if max_attempts is not None else settings.INSTANTLY_MAX_ATTEMPTS)
        self.backoff_seconds = backoff_seconds if backoff_seconds is not None else settings.INSTANTLY_BACKOFF_SECONDS
        self.backoff_max_seconds = (
            backoff_max_seconds if backoff_max_seconds is not None else settings.INSTANTLY_BACKOFF_MAX_SECONDS
        )
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.sleep = sleep
        self._session = session

    @property
    def dry_run(self) -> bool:
        return not self.api_key

    def for_campaign(self, campaign_id: str | None) -> InstantlyClient:
        """This client for another campaign (an experiment's variant); itself when it is the same campaign."""
        if not campaign_id or campaign_id == self.campaign_id:
            return self
        other = copy.copy(self)
        other.campaign_id = campaign_id
        return other

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = requests.Session()
            self._session.headers.update(
                {
                    "Authorization": f"Bearer {self.api_key}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "User-Agent": "equity-connect/1",
                }
            )
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def add_leads(self, leads: Sequence[dict]) -> PushResult:
        """Add `leads` to the campaign in batches of at most 1000. Never raises for HTTP failures: a batch
        that still fails after the last attempt comes back with `failed=True` and the error."""
        if self.dry_run:
            logger.info("instantly dry-run: INSTANTLY_API_KEY is not set; %d leads not sent", len(leads))
            return PushResult(batches=[BatchResult(indexes=list(range(len(leads))))], dry_run=True)
        if not self.campaign_id:
            raise InstantlyConfigurationError("INSTANTLY_CAMPAIGN_ID is not set: no campaign to add the leads to")
        batches = []
        for start in range(0, len(leads), self.batch_size):
            indexes = list(range(start, min(start + self.batch_size, len(leads))))
            batches.append(self._push_batch(indexes, [leads[i] for i in indexes]))
        return PushResult(batches=batches)

    # --- one batch -----------------------------------------------------------------------------------

    def delete_leads(self, instantly_ids: Sequence[str]) -> Reply:
        """Delete leads from the campaign (their sequence stops: nothing more is sent to them).
        Never raises for HTTP failures: the reply says whether it went through."""
        if self.dry_run:
            logger.info("instantly dry-run: INSTANTLY_API_KEY is not set; %d leads not deleted", len(instantly_ids))
            return Reply(ok=True, dry_run=True)
        if not self.campaign_id:
            raise InstantlyConfigurationError("INSTANTLY_CAMPAIGN_ID is not set: no campaign to delete the leads from")
        return self._send("DELETE", LEADS_PATH, {"campaign_id": self.campaign_id, "ids": list(instantly_ids)})

    def delete_lead(self, instantly_id: str) -> Reply:
        """Delete one lead from the Instantly workspace, every campaign and list included (`DELETE
        /api/v2/leads/{id}`): a person's erasure. Never raises for HTTP failures; a 404 means Instantly no longer
        has the lead, which the reply shows as `status_code` 404."""
        if self.dry_run:
            logger.info("instantly dry-run: INSTANTLY_API_KEY is not set; a lead not deleted")
            return Reply(ok=True, dry_run=True)
        return self._send("DELETE", LEAD_PATH.format(id=quote(str(instantly_id), safe="")), None)

    def block_list_add(self, value: str) -> Reply:
        """Put an e-mail address or a domain on the workspace's block list (Instantly then never e-mails it,
        in any campaign). Never raises for HTTP failures: the reply says whether it went through."""
        if self.dry_run:
            logger.info("instantly dry-run: INSTANTLY_API_KEY is not set; block-list entry not sent")
            return Reply(ok=True, dry_run=True)
        return self._send("POST", BLOCK_LIST_PATH, {"bl_value": value})

    # --- one request, with retries ----------------------------------------------------------------------

    def _send(self, method: str, path: str, body: dict | None) -> Reply:
        """One JSON request, retried on 429, 5xx, timeouts and connection errors (backoff with jitter,
        `Retry-After` honoured); a 4xx other than 429 or a 2xx without a JSON object is final."""
        reply = Reply(ok=False)
        url = self.api_url + path
        for attempt in range(1, self.max_attempts + 1):
            reply.attempts = attempt
            retry_after = None
            try:
                response = self.session.request(method, url, json=body, timeout=self.timeout)
            except requests.Timeout:
                reply.error, reply.status_code = f"timed out after {self.timeout[1]:g} s", None
            except requests.ConnectionError as exc:
                reply.error, reply.status_code = f"connection error: {type(exc).__name__}", None
            else:
                reply.status_code = response.status_code
                if response.status_code < 300:
                    try:
                        payload = response.json()
                    except ValueError:
                        payload = None
                    if isinstance(payload, dict):
                        reply.ok, reply.payload, reply.error = True, payload, ""
                        return reply
                    reply.error = "Instantly answered 2xx without a JSON object"
                    break  # not transient: retrying will not help
                reply.error = f"HTTP {response.status_code}: {_short(response.text)}"
                if response.status_code != 429 and response.status_code < 500:
                    break  # 4xx other than 429: our request is wrong; retrying will not help
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            if attempt < self.max_attempts:
                wait = self._backoff(attempt, retry_after)
                logger.warning(
                    "instantly: %s %s attempt %d/%d failed (%s); retrying in %.2f s",
                    method,
                    path,
                    attempt,
                    self.max_attempts,
                    reply.error,
                    wait,
                )
                self.sleep(wait)
        logger.error("instantly: %s %s failed after %d attempts: %s", method, path, reply.attempts, reply.error)
        return reply

    def _push_batch(self, indexes: list[int], leads: list[dict]) -> BatchResult:
        body = {"campaign_id": self.campaign_id, "skip_if_in_campaign": True, "leads": leads}
        reply = self._send("POST", ADD_LEADS_PATH, body)
        result = BatchResult(
            indexes=indexes, attempts=reply.attempts, status_code=reply.status_code, error=reply.error
        )
        if reply.ok:
            self._read_success(result, reply.payload)
        else:
            result.failed = True
        return result

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        # Full jitter (AWS architecture blog): uniform(0, base * 2^(attempt-1)), capped.
        ceiling = min(self.backoff_max_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        wait = random.uniform(0, ceiling)  # noqa: S311 (jitter, not security)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.backoff_max_seconds))
        return wait

    @staticmethod
    def _read_success(result: BatchResult, payload: dict) -> None:
        result.counts = {key: payload.get(key) for key, _ in SKIP_COUNTERS if payload.get(key) is not None}
        for key in ("total_sent", "leads_uploaded", "skipped_count"):
            if payload.get(key) is not None:
                result.counts[key] = payload[key]
        for created in payload.get("created_leads") or []:
            position = created.get("index")
            if isinstance(position, int) and 0 <= position < len(result.indexes) and created.get("id"):
                result.created[result.indexes[position]] = str(created["id"])
        missing = [index for index in result.indexes if index not in result.created]
        if missing:
            reason = skip_reason(payload)
            result.skipped = dict.fromkeys(missing, reason)


def skip_reason(payload: dict) -> str:
    """Why leads were not created, from the response's counters: one reason when only one counter is set."""
    reasons = [(label, payload.get(key)) for key, label in SKIP_COUNTERS if payload.get(key)]
    if len(reasons) == 1:
        return reasons[0][0]
    if not reasons:
        return "not created by Instantly (no reason given)"
    return "one of: " + ", ".join(f"{label} ({count})" for label, count in reasons)


def _retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _short(text: str, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit] + "…"
