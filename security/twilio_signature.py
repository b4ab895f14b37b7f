"""Twilio's request signature (`X-Twilio-Signature`), for the SMS webhook (pipeline/sms/webhooks.py).

Twilio signs each request with the account's auth token: base64(HMAC-SHA1(token, URL + params)), where URL is
the full public URL it posted to (scheme, host, path and query string, exactly as configured on Twilio) and
params are the POST parameters sorted by name, each name followed by its value (a repeated name: its values
in sorted order). Behind a TLS proxy the URL our server sees is not the one Twilio signed, so the caller builds
it from TWILIO_WEBHOOK_BASE_URL. The comparison is constant-time. Pure: it never logs, and nothing it returns
holds the token or the expected signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def twilio_signature(*, auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The signature Twilio sends for a POST of `params` (name, value pairs; a name may repeat) to `url`."""
    ordered = sorted((str(name), str(value)) for name, value in params)
    message = url + "".join(name + value for name, value in ordered)
    digest = hmac.new(auth_token.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(
    *, auth_token: str, url: str, params: Iterable[tuple[str, str]], provided: str | None
) -> bool:
    """Whether `provided` is Twilio's signature of this request. No token or no signature: never valid."""
    if not auth_token or not provided:
        return False
    expected = twilio_signature(auth_token=auth_token, url=url, params=params)
    return hmac.compare_digest(expected.encode(), provided.strip().encode("utf-8", "replace"))
