"""The Twilio Messaging API client: send one text, with retries.

`POST {TWILIO_API_URL}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded (To, Body, and
MessagingServiceSid or From, and StatusCallback when TWILIO_WEBHOOK_BASE_URL is set), HTTP basic auth with the
account SID and auth token. Twilio answers 201 with the message resource (`sid`, `status`); a 4xx carries
Twilio's `code` and `message` (e.g. 21211 invalid number, 21610 the recipient has replied STOP).

Retries: 429 and 5xx, timeouts and connection errors, with exponential backoff and full jitter, up to
TWILIO_MAX_ATTEMPTS. A timeout after Twilio accepted the request could send a text twice, so a request that
timed out on the read is NOT retried (the message is recorded as uncertain and a person looks at it): a text
sent twice to a homeowner is worse than one not sent.

Reading back (`find_sent`): `GET .../Messages.json?To=<number>&DateSent>=<date>` lists what Twilio holds for a
number, so a text whose answer was lost (a read timeout, a sender killed before it recorded the sid) can be
reconciled instead of sent again: found, not there, or not knowable (Twilio did not answer).

With no TWILIO_ACCOUNT_SID or TWILIO_AUTH_TOKEN the client is in dry-run mode. Knows nothing of our database.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings

logger = logging.getLogger(__name__)

MESSAGES_PATH = "/2010-04-01/Accounts/{sid}/Messages.json"
WEBHOOK_PATH = "/api/v1/webhooks/twilio"
MAX_BODY = 1600  # Twilio's limit for one message body


class TwilioConfigurationError(Exception):
    """Credentials but no sender (Messaging Service or From number): a person must fix the settings."""


@dataclass
class SendResult:
    ok: bool
    sid: str = ""
    status: str = ""
    error: str = ""
    error_code: int | None = None
    status_code: int | None = None
    attempts: int = 0
    final: bool = True  # False: a transient failure (try again later); True with ok False: Twilio refused it
    uncertain: bool = False  # a read timeout: Twilio may have sent it
    dry_run: bool = False


@dataclass
class FindResult:
    known: bool  # False: Twilio could not be asked (error, timeout): nobody knows whether it was sent
    sids: tuple[tuple[str, str], ...] = ()  # (sid, status) of each matching message
    error: str = ""


# Twilio's clock and ours differ a little, and its list keeps whole seconds.
CLOCK_SLACK = dt.timedelta(seconds=60)


class TwilioClient:
    def __init__(
        self,
        *,
        api_url: str | None = None,
        account_sid: str | None = None,
        auth_token: str | None = None,
        messaging_service_sid: str | None = None,
        from_number: str | None = None,
        status_callback: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int | None = None,
        backoff_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_url = (api_url if api_url is not None else settings.TWILIO_API_URL).rstrip("/")
        self.account_sid = account_sid if account_sid is not None else settings.TWILIO_ACCOUNT_SID
        self.auth_token = auth_token if auth_token is not None else settings.TWILIO_AUTH_TOKEN
        self.messaging_service_sid = (
            messaging_service_sid if messaging_service_sid is not None else settings.TWILIO_MESSAGING_SERVICE_SID
        )
        self.from_number = from_number if from_number is not None else settings.TWILIO_FROM_NUMBER
        base = settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/")
        default_callback = base + WEBHOOK_PATH if base else ""
        self.status_callback = status_callback if status_callback is not None else default_callback
        self.timeout = (
            connect_timeout if connect_timeout is not None else settings.TWILIO_CONNECT_TIMEOUT_SECONDS,
            read_timeout if read_timeout is not None else settings.TWILIO_READ_TIMEOUT_SECONDS,
        )
        self.max_attempts = max(1, max_attempts if max_attempts is not None else settings.TWILIO_MAX_ATTEMPTS)
        self.backoff_seconds = backoff_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.sleep = sleep
        self._session: requests.Session | None = None

    @property
    def dry_run(self) -> bool:
        return not (self.account_sid and self.auth_token)

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = requests.Session()
            self._session.auth = (self.account_sid, self.auth_token)
            self._session.headers.update({"Accept": "application/json", "User-Agent": "equity-connect/1"})
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def send(self, *, to: str, body: str) -> SendResult:
        """Send `body` to `to` (E.164). Never raises for HTTP failures: the result says what happened."""
        if self.dry_run:
            logger.info("twilio dry-run: TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN not set; a text not sent")
            return SendResult(ok=False, dry_run=True, error="dry run")
        if not (self.messaging_service_sid or self.from_number):
            raise TwilioConfigurationError("set TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER: no sender")
        form = {"To": to, "Body": body[:MAX_BODY]}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = self.from_number
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        url = self.api_url + MESSAGES_PATH.format(sid=self.account_sid)
        result = SendResult(ok=False)
        for attempt in range(1, self.max_attempts + 1):
            result.attempts = attempt
            try:
                response = self.session.post(url, data=form, timeout=self.timeout)
            except requests.ConnectTimeout:
                result.error, result.final = f"connect timed out after {self.timeout[0]:g} s", False
            except requests.Timeout:
                # Twilio may have queued the text: do not send it again.
                result.error, result.final, result.uncertain = f"timed out after {self.timeout[1]:g} s", True, True
                return result
            except requests.ConnectionError as exc:
                result.error, result.final = f"connection error: {type(exc).__name__}", False
            else:
                result.status_code = response.status_code
                payload = _json(response)
                if response.status_code < 300 and payload.get("sid"):
                    result.ok, result.final, result.error = True, True, ""
                    result.sid, result.status = str(payload["sid"])[:64], str(payload.get("status") or "queued")[:16]
                    return result
                code = payload.get("code")
                result.error_code = code if isinstance(code, int) else None
                result.error = f"HTTP {response.status_code}: {str(payload.get('message') or response.text)[:200]}"
                if response.status_code != 429 and response.status_code < 500:
                    result.final = True  # Twilio refused this text (bad number, opted out): retrying will not help
                    return result
                result.final = False
            if attempt < self.max_attempts:
                ceiling = min(self.backoff_max_seconds, self.backoff_seconds * 2 ** (attempt - 1))
                self.sleep(random.uniform(0, ceiling))  # noqa: S311 (jitter, not security)
        logger.error("twilio: send failed after %d attempts: %s", result.attempts, result.error)
        return result

    def find_sent(self, *, to: str, body: str, since: dt.datetime) -> FindResult:
        """The messages Twilio holds to `to` with this `body`, created at or after `since` (less CLOCK_SLACK).
        Never raises for HTTP failures: `known` is False when Twilio could not say."""
        url = self.api_url + MESSAGES_PATH.format(sid=self.account_sid)
        params = {"To": to, "DateSent>=": (since - CLOCK_SLACK).date().isoformat(), "PageSize": "100"}
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            return FindResult(known=False, error=f"Twilio not reachable: {type(exc).__name__}")
        payload = _json(response)
        if response.status_code != 200 or not isinstance(payload.get("messages"), list):
            return FindResult(known=False, error=f"HTTP {response.status_code} listing messages")
        if payload.get("next_page_uri"):
            return FindResult(known=False, error="more than one page of messages to that number")
        found = []
        for message in payload["messages"]:
            if not isinstance(message, dict) or message.get("body") != body[:MAX_BODY]:
                continue
            try:
                created = parsedate_to_datetime(str(message.get("date_created") or ""))
            except (TypeError, ValueError):
                return FindResult(known=False, error="a message without a readable date_created")
            if created >= since - CLOCK_SLACK:
                found.append((str(message.get("sid") or "")[:64], str(message.get("status") or "queued")[:16]))
        return FindResult(known=True, sids=tuple(found))


def _json(response) -> dict:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}
