"""Verify a signed partner request (the upload API's protocol, docs/api.md): one service, no HTTP in it.

    verified = signed_request_verify(method=…, path=…, headers=…, body=body_source(request))  # None: no body

Everything that can be checked without the body is checked before a byte of it is read: the framing
(a chunked body without Content-Length is 411, a Content-Length over `UPLOAD_MAX_BYTES` is 413), the
headers, the key (or the legacy `HMAC_SECRET_KEY`), the timestamp window and, for v2, the signature over the
declared content hash. So a request that is not authenticated is refused without reading its body. Then the
body is streamed into a spool (memory, then disk past `INGEST_SPOOL_BYTES`) within the size limit and a read
deadline (security/request_body.py), and its SHA-256 must equal the declared one.

Which signature counts: with an `X-Key-Id`, v2 only, unless the key was created with `allow_v1`. When a
request carries a v2 signature, only v2 counts (a bad v2 beside a good v1 is refused). v1 is an HMAC of the
body, so the v1 path (the legacy secret, or an `allow_v1` key) reads the body first, with the same limit
and deadline. It returns the verified key and the spooled body, or raises `SignatureRejected` with the HTTP
status, a reason class for the event trail, and a message that never says which check failed.

The rollback plan's escape hatch (security/enforcement.py) waives the signature only: the key must exist
and be active (or the legacy secret be configured), the timestamp must be in the window and the body must
match its declared hash. Each request let through without a valid signature records `upload_unverified`
(the alert `upload_unverified` fires on it) and comes back with `signature_verified = False`, which the
upload endpoint answers by ignoring `X-Broker-Id`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings

from equity_connect.db import service_context
from equity_connect.events import record_event

from . import signing
from .enforcement import signature_enforcement_disabled, signature_enforcement_disabled_until
from .models import PartnerKey, PartnerKeyStatus
from .request_body import (
    BodyIncomplete,
    BodySource,
    BodyTooLarge,
    BodyTooSlow,
    SpooledBody,
    body_spool,
    read_timeout_seconds,
)
from .services import partner_key_secret

logger = logging.getLogger("security.upload_verification")

UNAUTHORIZED = "signature verification failed"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class SignatureRejected(Exception):
    """The request is refused: `status` (HTTP), `reason` (a class for the event trail), a safe message."""

    def __init__(self, status: int, reason: str, message: str, key_id: str | None = None):
        super().__init__(message)
        self.status, self.reason, self.key_id = status, reason, key_id


@dataclass
class VerifiedRequest:
    """A request that passed verification. `key` is None in the legacy single-secret mode;
    `signature_verified` is False only when the rollback escape hatch let it through."""

    key: PartnerKey | None
    key_id: str | None
    body: SpooledBody | None
    signature_verified: bool = True

    @property
    def partner(self):
        return self.key.partner if self.key is not None else None

    def close(self) -> None:
        if self.body is not None:
            self.body.file.close()


def _header(headers: Mapping[str, str], name: str) -> str:
    return (headers.get(name) or "").strip()


def _key_for(headers: Mapping[str, str]) -> tuple[PartnerKey | None, str, str | None]:
    """(key or None for legacy, secret, key id). Raises SignatureRejected for unknown or revoked keys."""
    key_id = _header(headers, "X-Key-Id")
    if not key_id:
        if settings.HMAC_SECRET_KEY:
            return None, settings.HMAC_SECRET_KEY, None
        raise SignatureRejected(400, "missing_header", "X-Key-Id is missing")
    if len(key_id) > 64:
        raise SignatureRejected(400, "malformed_header", "X-Key-Id is malformed")
    with service_context():
        key = PartnerKey.objects.select_related("partner", "default_broker").filter(key_id=key_id).first()
        if key is None:
            raise SignatureRejected(401, "unknown_key", UNAUTHORIZED, key_id)
        if key.status != PartnerKeyStatus.ACTIVE or not key.partner.active:
            raise SignatureRejected(401, "revoked_key", UNAUTHORIZED, key_id)
        secret = partner_key_secret(key=key)
    return key, secret, key_id


def _waive(error: SignatureRejected) -> str:
    """Raise a signature failure, unless the rollback escape hatch is on: then return its reason class (the
    request goes through unverified, and is recorded as such once the body is known to match)."""
    if not signature_enforcement_disabled():
        raise error
    return error.reason


def _framing_check(body: BodySource | None, key_id: str | None) -> int | None:
    """The body's length, checked before anything is read: 411 for a chunked body without Content-Length
    (its size is unknown until it has all arrived), 413 for a declared length over the limit."""
    if body is None:
        return None
    if body.content_length is None and body.chunked:
        raise SignatureRejected(
            411, "length_required", "Content-Length is required: send the body with its length, not chunked", key_id
        )
    limit = settings.UPLOAD_MAX_BYTES
    if (body.content_length or 0) > limit:
        raise SignatureRejected(413, "too_large", f"the body is over the limit of {limit} bytes", key_id)
    return body.content_length or 0


def _body_read(body: BodySource, *, length: int, hashers: dict, key_id: str | None) -> SpooledBody:
    limit = settings.UPLOAD_MAX_BYTES
    try:
        return body_spool(
            body.read,
            max_bytes=limit,
            hashers=hashers,
            expected_bytes=length,
            timeout_seconds=read_timeout_seconds(length),
            interrupt=body.interrupt,
        )
    except BodyTooLarge as error:
        raise SignatureRejected(413, "too_large", f"the body is over the limit of {limit} bytes", key_id) from error
    except BodyTooSlow as error:
        raise SignatureRejected(408, "body_timeout", str(error), key_id) from error
    except BodyIncomplete as error:
        raise SignatureRejected(400, "body_incomplete", str(error), key_id) from error


def signed_request_verify(
    *, method: str, path: str, headers: Mapping[str, str], body: BodySource | None
) -> VerifiedRequest:
    """Verify one request. `body` is None for a request without one (a status GET, signed over the empty
    body's hash). Returns the verified key and the spooled body; raises SignatureRejected (400 malformed or
    not matching its hash, 401 not authenticated, 408 too slow, 411 chunked, 413 too large)."""
    declared = _header(headers, "X-Content-SHA256")
    timestamp_text = _header(headers, "X-Signature-Timestamp")
    key_id = _header(headers, "X-Key-Id")[:64] or None
    length = _framing_check(body, key_id)
    if not declared:
        raise SignatureRejected(400, "missing_header", "X-Content-SHA256 is missing", key_id)
    if not signing.is_sha256_hex(declared):
        raise SignatureRejected(
            400, "malformed_header", "X-Content-SHA256 must be 64 lowercase hex characters", key_id
        )
    try:
        timestamp = signing.parse_timestamp(timestamp_text)
        signatures = signing.parse_signatures(headers.get("X-Signature"))
    except signing.SignatureHeaderError as error:
        reason = "missing_header" if "missing" in str(error) else "malformed_header"
        raise SignatureRejected(400, reason, str(error), key_id) from error
    key, secret, key_id = _key_for(headers)
    if not signing.timestamp_within(timestamp, tolerance_seconds=settings.SIGNATURE_TOLERANCE_SECONDS):
        raise SignatureRejected(401, "timestamp_out_of_window", UNAUTHORIZED, key_id)

    v2 = [signature for signature in signatures if signature.scheme == signing.V2]
    v1 = [signature for signature in signatures if signature.scheme == signing.V1]
    waived = None  # the reason class of a failure the escape hatch let through
    if v2:
        expected = signing.sign_v2(secret, method=method, path=path, timestamp=timestamp_text, content_sha256=declared)
        if not signing.signatures_valid(v2, v1_digest=None, v2_digest=expected):
            waived = _waive(SignatureRejected(401, "bad_signature", UNAUTHORIZED, key_id))
        v1 = []  # beside a v2 signature a v1 one never counts
    elif key is not None and not key.allow_v1:
        waived = _waive(SignatureRejected(401, "v1_not_allowed", UNAUTHORIZED, key_id))
        v1 = []

    spooled = None
    if body is not None:
        hashers = {"v1": signing.v1_hasher(secret)} if v1 else {}
        spooled = _body_read(body, length=length, hashers=hashers, key_id=key_id)
        actual, v1_digest = spooled.sha256, spooled.extra_digests.get("v1")
    else:
        actual = EMPTY_SHA256
        v1_digest = signing.sign_v1(secret, b"") if v1 else None
    verified = VerifiedRequest(key=key, key_id=key_id, body=spooled)
    try:
        if actual != declared:
            raise SignatureRejected(400, "content_hash_mismatch", "X-Content-SHA256 does not match the body", key_id)
        if v1 and not signing.signatures_valid(v1, v1_digest=v1_digest, v2_digest=None):
            waived = _waive(SignatureRejected(401, "bad_signature", UNAUTHORIZED, key_id))
    except SignatureRejected:
        verified.close()
        raise
    if waived is not None:
        verified.signature_verified = False
        _unverified_record(reason=waived, key=key, key_id=key_id, method=method, path=path)
    return verified


def _unverified_record(*, reason: str, key: PartnerKey | None, key_id: str | None, method: str, path: str) -> None:
    """`upload_unverified` for a request the escape hatch let through (the alert of that name fires on it)."""
    until = signature_enforcement_disabled_until()
    logger.warning(
        "request accepted WITHOUT a valid signature (enforcement disabled) reason=%s key_id=%s path=%s",
        reason,
        key_id,
        path,
    )
    with service_context():
        record_event(
            "upload_unverified",
            status="failure",
            error_message=reason,
            data={
                "reason": reason,
                "key_id": key_id,
                "partner": key.partner.name if key is not None else None,
                "method": method,
                "path": path,
                "enforcement_disabled_until": until.isoformat() if until else None,
            },
        )
