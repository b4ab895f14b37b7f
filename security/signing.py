"""Request signing for partner uploads (docs/api.md: a contract partners code against).

Two signature forms, sent space-separated in `X-Signature`; one valid signature suffices:

- v1 (the seed's): `sha256=<hex HMAC-SHA256(secret, raw body)>`
- v2: `v2=<hex HMAC-SHA256(secret, "v2\\n" + METHOD + "\\n" + PATH + "\\n" + timestamp + "\\n" + content_sha256)>`

v2 binds the method, the path, the timestamp and the body's hash, so a captured request cannot be replayed
with a new timestamp or against another path. Every comparison is constant-time (`hmac.compare_digest`).
This module is pure: it never logs, and nothing it returns contains a secret or an expected signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

V1 = "sha256"
V2 = "v2"
SCHEMES = (V1, V2)
MAX_SIGNATURES = 8

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# RFC 3339: date, "T" (or a space), time, optional fraction, then Z or an offset.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII)


class SignatureHeaderError(ValueError):
    """A signing header is missing or malformed (a 400). The message names the header, never a value."""


@dataclass(frozen=True)
class Signature:
    scheme: str
    digest: str  # lowercase hex


def is_sha256_hex(value: str) -> bool:
    return bool(_HEX64.match(value or ""))


def parse_signatures(header: str | None) -> list[Signature]:
    """`sha256=<hex> v2=<hex>` → signatures. Unknown schemes are ignored; none known is an error."""
    if not header or not header.strip():
        raise SignatureHeaderError("X-Signature is missing")
    parts = header.split()
    if len(parts) > MAX_SIGNATURES:
        raise SignatureHeaderError("X-Signature carries too many signatures")
    signatures = []
    for part in parts:
        scheme, sep, digest = part.partition("=")
        if not sep:
            raise SignatureHeaderError("X-Signature must be space-separated `scheme=hex` pairs")
        scheme = scheme.strip().lower()
        if scheme not in SCHEMES:
            continue
        digest = digest.strip().lower()
        if not _HEX64.match(digest):
            raise SignatureHeaderError("X-Signature holds a signature that is not 64 hex characters")
        signatures.append(Signature(scheme, digest))
    if not signatures:
        raise SignatureHeaderError("X-Signature has no sha256= or v2= signature")
    return signatures


def parse_timestamp(value: str | None) -> datetime:
    """An RFC 3339 timestamp (`2026-11-27T22:50:00Z`, with an offset, or a fraction) as an aware datetime."""
    if not value or not value.strip():
        raise SignatureHeaderError("X-Signature-Timestamp is missing")
    value = value.strip()
    if not _RFC3339.match(value):
        raise SignatureHeaderError("X-Signature-Timestamp is not an RFC 3339 time")
    text = value.replace("t", "T").replace("z", "Z").replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:  # Python parses at most 6 fraction digits
        head, _, rest = text.partition(".")
        fraction = re.match(r"[0-9]+", rest).group(0)
        text = f"{head}.{fraction[:6].ljust(6, '0')}{rest[len(fraction) :]}"
    try:
        return datetime.fromisoformat(text)
    except ValueError as error:
        raise SignatureHeaderError("X-Signature-Timestamp is not an RFC 3339 time") from error


def timestamp_within(timestamp: datetime, *, tolerance_seconds: int, now: datetime | None = None) -> bool:
    """True when `timestamp` is within ±tolerance of now (both ways: old and future times fail)."""
    now = now or datetime.now(UTC)
    return abs((now - timestamp).total_seconds()) <= tolerance_seconds


def v2_message(*, method: str, path: str, timestamp: str, content_sha256: str) -> bytes:
    return f"v2\n{method.upper()}\n{path}\n{timestamp}\n{content_sha256}".encode()


def sign_v1(secret: str | bytes, body: bytes) -> str:
    return hmac.new(_bytes(secret), body, hashlib.sha256).hexdigest()


def sign_v2(secret: str | bytes, *, method: str, path: str, timestamp: str, content_sha256: str) -> str:
    message = v2_message(method=method, path=path, timestamp=timestamp, content_sha256=content_sha256)
    return hmac.new(_bytes(secret), message, hashlib.sha256).hexdigest()


def v1_hasher(secret: str | bytes):
    """An incremental HMAC for the v1 form: feed it the body while streaming, then `.hexdigest()`."""
    return hmac.new(_bytes(secret), digestmod=hashlib.sha256)


def signatures_valid(signatures: list[Signature], *, v1_digest: str | None, v2_digest: str | None) -> bool:
    """Whether any presented signature equals the expected one for its scheme (constant-time each).

    Every presented signature is compared (no early exit), so timing does not tell which one matched."""
    valid = False
    for signature in signatures:
        expected = v1_digest if signature.scheme == V1 else v2_digest
        if expected is None:
            continue
        valid |= hmac.compare_digest(signature.digest.encode(), expected.encode())
    return valid


def _bytes(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode()
