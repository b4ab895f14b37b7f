"""Verify a signed partner request (the upload API's protocol, docs/api.md): one service, no HTTP in it.

    verified = signed_request_verify(method=…, path=…, headers=…, read=request.read, body_expected=True)

It checks the headers, the key (or the legacy `HMAC_SECRET_KEY`), the timestamp window, then streams the
body through SHA-256 (and the v1 HMAC when a v1 signature is offered) into a spool — memory, then disk past
`INGEST_SPOOL_BYTES` — and checks the declared content hash and the signatures, each in constant time.
It returns the verified key and the spooled body, or raises `SignatureRejected` with the HTTP status, a
reason class for the event trail, and a message that never says which check failed or what was expected.

The rollback plan's escape hatch (security/enforcement.py) can waive the timestamp and signature checks
for a limited time, loudly; keys, revocation and the content hash are always enforced.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings

from equity_connect.db import service_context

from . import signing
from .enforcement import signature_enforcement_disabled
from .models import PartnerKey, PartnerKeyStatus
from .services import partner_key_secret

logger = logging.getLogger("security.upload_verification")

UNAUTHORIZED = "signature verification failed"
CHUNK = 256 * 1024


class SignatureRejected(Exception):
    """The request is refused: `status` (HTTP), `reason` (a class for the event trail), a safe message."""

    def __init__(self, status: int, reason: str, message: str, key_id: str | None = None):
        super().__init__(message)
        self.status, self.reason, self.key_id = status, reason, key_id


class BodyTooLarge(Exception):
    """The body is over `max_bytes`."""


@dataclass
class SpooledBody:
    file: BinaryIO
    size: int
    sha256: str
    extra_digests: dict[str, str]


@dataclass
class VerifiedRequest:
    """A request whose signature verified. `key` is None in the legacy single-secret mode."""

    key: PartnerKey | None
    key_id: str | None
    body: SpooledBody | None

    @property
    def partner(self):
        return self.key.partner if self.key is not None else None

    def close(self) -> None:
        if self.body is not None:
            self.body.file.close()


def body_spool(read: Callable[[int], bytes], *, max_bytes: int, hashers: dict | None = None) -> SpooledBody:
    """Read `read(n)` to the end into a spool (memory, then disk past INGEST_SPOOL_BYTES), computing its
    SHA-256 and any extra incremental hashers (the v1 HMAC) on the way. Raises BodyTooLarge."""
    spool = tempfile.SpooledTemporaryFile(max_size=settings.INGEST_SPOOL_BYTES)  # noqa: SIM115 (returned)
    sha = hashlib.sha256()
    hashers = hashers or {}
    size = 0
    try:
        while chunk := read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLarge(f"the body is over the limit of {max_bytes} bytes")
            sha.update(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return SpooledBody(spool, size, sha.hexdigest(), {name: h.hexdigest() for name, h in hashers.items()})


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


def _enforce(error: SignatureRejected) -> None:
    """Raise a signature or timestamp failure, unless the rollback escape hatch is on: then the request goes
    through and the skipped check is logged loudly."""
    if not signature_enforcement_disabled():
        raise error
    logger.warning("signature check skipped (enforcement disabled) reason=%s key_id=%s", error.reason, error.key_id)


def signed_request_verify(
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    read: Callable[[int], bytes] | None,
    content_length: int | None = None,
    max_bytes: int | None = None,
) -> VerifiedRequest:
    """Verify one request. `read` is the body reader (None: the request has no body, e.g. a status GET,
    which is signed over the empty body's hash). Returns the verified key and the spooled body; raises
    SignatureRejected (400 malformed, 401 not verified, 413 too large)."""
    declared = _header(headers, "X-Content-SHA256")
    timestamp_text = _header(headers, "X-Signature-Timestamp")
    key_id = _header(headers, "X-Key-Id")[:64] or None
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
        _enforce(SignatureRejected(401, "timestamp_out_of_window", UNAUTHORIZED, key_id))
    wants_v1 = any(signature.scheme == signing.V1 for signature in signatures)
    body = None
    if read is not None:
        limit = settings.UPLOAD_MAX_BYTES if max_bytes is None else max_bytes
        too_large = f"the body is over the limit of {limit} bytes"
        if (content_length or 0) > limit:
            raise SignatureRejected(413, "too_large", too_large, key_id)
        try:
            body = body_spool(read, max_bytes=limit, hashers={"v1": signing.v1_hasher(secret)} if wants_v1 else {})
        except BodyTooLarge as error:
            raise SignatureRejected(413, "too_large", too_large, key_id) from error
        actual, v1_digest = body.sha256, body.extra_digests.get("v1")
    else:
        actual = hashlib.sha256(b"").hexdigest()
        v1_digest = signing.sign_v1(secret, b"") if wants_v1 else None
    verified = VerifiedRequest(key=key, key_id=key_id, body=body)
    try:
        if actual != declared:
            raise SignatureRejected(400, "content_hash_mismatch", "X-Content-SHA256 does not match the body", key_id)
        v2_digest = signing.sign_v2(
            secret, method=method, path=path, timestamp=timestamp_text, content_sha256=declared
        )
        if not signing.signatures_valid(signatures, v1_digest=v1_digest, v2_digest=v2_digest):
            _enforce(SignatureRejected(401, "bad_signature", UNAUTHORIZED, key_id))
    except SignatureRejected:
        verified.close()
        raise
    return verified
