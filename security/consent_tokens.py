"""Signed consent links (`CONSENT_FORM_URL/consent?token=…`) and unsubscribe links (`…/unsubscribe?token=…`).

A token is `<lead id hex>.<broker id hex>.<nonce>.<signature>`: the payload carries only the lead id,
the broker id and a random nonce — no name, email or phone. The signature is the lowercase hex
HMAC-SHA256 of the payload text with `FORM_LINK_SECRET`, computed over the exact characters of the link,
so changing any one character (payload or signature) makes the token invalid.

Only `sha256(nonce)` (the `token_hash`) is stored, in `consent_tokens`, together with its expiry
(`CONSENT_TOKEN_TTL_DAYS`) and `used_at`: expiry and single use are decided by that row, atomically,
by the lead services (`leads.consent.services`). This module neither reads nor writes tables.

A link is also bound to what it was issued for: `consent_fingerprint` (an HMAC of the lead's broker, e-mail
and phone, stored beside the hash) is compared when the link is used, so a link dies when its lead changes
broker, e-mail or phone, whichever code path changed them.

An unsubscribe token is `<lead id hex>.<send id hex>.<signature>`: the lead and the id of the e-mail it
came in (which the sending recorded with the address), signed with its own prefix so that neither kind of
token passes for the other. It does not expire: an unsubscribe link must keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

_VERSION = "c1"
_UNSUBSCRIBE_VERSION = "u1"
_FINGERPRINT_VERSION = "f1"
# fullmatch, not `$`: `$` would accept a trailing newline.
_TOKEN_RE = re.compile(
    r"(?P<payload>[0-9a-f]{32}\.(?:[0-9a-f]{32}|0)\.[A-Za-z0-9_-]{22})\.(?P<signature>[0-9a-f]{64})"
)
_UNSUBSCRIBE_RE = re.compile(r"(?P<payload>[0-9a-f]{32}\.[0-9a-f]{32})\.(?P<signature>[0-9a-f]{64})")
NO_BROKER = "0"


class ConsentTokenInvalid(Exception):
    """The token is malformed or its signature does not match (forged or altered)."""


@dataclass(frozen=True)
class ConsentTokenClaims:
    lead_id: uuid.UUID
    broker_id: uuid.UUID | None
    token_hash: str


@dataclass(frozen=True)
class SignedConsentToken:
    token: str
    token_hash: str
    expires_at: datetime
    lead_id: uuid.UUID
    broker_id: uuid.UUID | None


def _secret() -> bytes:
    secret = settings.FORM_LINK_SECRET
    if not secret:
        raise ImproperlyConfigured("FORM_LINK_SECRET is not set: consent links cannot be signed or checked.")
    return secret.encode()


def _signature(payload: str, version: str = _VERSION) -> str:
    return hmac.new(_secret(), f"{version}.{payload}".encode(), hashlib.sha256).hexdigest()


def token_hash_for_nonce(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def consent_token_sign(
    *, lead_id: uuid.UUID | str, broker_id: uuid.UUID | str | None, now: datetime | None = None
) -> SignedConsentToken:
    """A new token for the lead (nothing is stored here: the caller stores `token_hash` and `expires_at`)."""
    lead_uuid = uuid.UUID(str(lead_id))
    broker_uuid = uuid.UUID(str(broker_id)) if broker_id else None
    nonce = secrets.token_urlsafe(16)  # 22 characters, 128 bits
    payload = f"{lead_uuid.hex}.{broker_uuid.hex if broker_uuid else NO_BROKER}.{nonce}"
    expires_at = (now or timezone.now()) + timedelta(days=settings.CONSENT_TOKEN_TTL_DAYS)
    return SignedConsentToken(
        token=f"{payload}.{_signature(payload)}",
        token_hash=token_hash_for_nonce(nonce),
        expires_at=expires_at,
        lead_id=lead_uuid,
        broker_id=broker_uuid,
    )


def consent_token_verify(token: str | None) -> ConsentTokenClaims:
    """The claims of a genuine token; raises ConsentTokenInvalid for anything malformed or altered."""
    match = _TOKEN_RE.fullmatch(token or "")
    if match is None:
        raise ConsentTokenInvalid("malformed consent token")
    payload, signature = match["payload"], match["signature"]
    if not hmac.compare_digest(_signature(payload), signature):
        raise ConsentTokenInvalid("bad consent token signature")
    lead_hex, broker_hex, nonce = payload.split(".")
    return ConsentTokenClaims(
        lead_id=uuid.UUID(hex=lead_hex),
        broker_id=None if broker_hex == NO_BROKER else uuid.UUID(hex=broker_hex),
        token_hash=token_hash_for_nonce(nonce),
    )


def consent_url(token: str) -> str:
    """The public link: `CONSENT_FORM_URL/consent?token=…`."""
    base = settings.CONSENT_FORM_URL.rstrip("/")
    return f"{base}/consent?{urllib.parse.urlencode({'token': token})}"


def consent_fingerprint(*, broker_id: uuid.UUID | str | None, email: str | None, phone: str | None) -> str:
    """What a consent link is bound to: the lead's broker, e-mail and phone (keyed, so it reveals neither)."""
    broker = uuid.UUID(str(broker_id)).hex if broker_id else NO_BROKER
    contact = f"{broker}|{(email or '').strip().lower()}|{(phone or '').strip()}"
    return _signature(contact, _FINGERPRINT_VERSION)


def consent_fingerprint_matches(stored: str, **lead) -> bool:
    """Whether a stored fingerprint is the lead's now (`broker_id`, `email`, `phone`). An empty one never is."""
    return bool(stored) and hmac.compare_digest(stored, consent_fingerprint(**lead))


@dataclass(frozen=True)
class UnsubscribeClaims:
    lead_id: uuid.UUID
    send_id: uuid.UUID


def unsubscribe_token_sign(*, lead_id: uuid.UUID | str, send_id: uuid.UUID | str) -> str:
    payload = f"{uuid.UUID(str(lead_id)).hex}.{uuid.UUID(str(send_id)).hex}"
    return f"{payload}.{_signature(payload, _UNSUBSCRIBE_VERSION)}"


def unsubscribe_token_verify(token: str | None) -> UnsubscribeClaims:
    """The claims of a genuine unsubscribe token; raises ConsentTokenInvalid for anything else."""
    match = _UNSUBSCRIBE_RE.fullmatch(token or "")
    if match is None or not hmac.compare_digest(
        _signature(match["payload"], _UNSUBSCRIBE_VERSION), match["signature"]
    ):
        raise ConsentTokenInvalid("malformed or altered unsubscribe token")
    lead_hex, send_hex = match["payload"].split(".")
    return UnsubscribeClaims(lead_id=uuid.UUID(hex=lead_hex), send_id=uuid.UUID(hex=send_hex))


def unsubscribe_url(token: str) -> str:
    """The public link: `CONSENT_FORM_URL/unsubscribe?token=…`."""
    base = settings.CONSENT_FORM_URL.rstrip("/")
    return f"{base}/unsubscribe?{urllib.parse.urlencode({'token': token})}"
