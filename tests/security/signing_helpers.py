"""Helpers to sign test requests exactly as a partner would (docs/api.md)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from security import signing

UPLOADS = "/api/v1/uploads"


def rfc3339(moment: datetime | None = None, *, offset_seconds: float = 0) -> str:
    moment = (moment or datetime.now(UTC)) + timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def signed_headers(
    secret: str,
    body: bytes,
    *,
    key_id: str | None = None,
    method: str = "POST",
    path: str = UPLOADS,
    timestamp: str | None = None,
    forms=("v2",),
    content_sha256=None,
    **extra,
) -> dict:
    timestamp = timestamp or rfc3339()
    digest = content_sha256 or hashlib.sha256(body).hexdigest()
    signatures = []
    for form in forms:
        if form == "v1":
            signatures.append(f"sha256={signing.sign_v1(secret, body)}")
        else:
            value = signing.sign_v2(secret, method=method, path=path, timestamp=timestamp, content_sha256=digest)
            signatures.append(f"v2={value}")
    headers = {
        "HTTP_X_CONTENT_SHA256": digest,
        "HTTP_X_SIGNATURE_TIMESTAMP": timestamp,
        "HTTP_X_SIGNATURE": " ".join(signatures),
    }
    if key_id:
        headers["HTTP_X_KEY_ID"] = key_id
    for name, value in extra.items():
        headers[f"HTTP_{name.upper()}"] = value
    return headers


def post_upload(client, secret: str, body: bytes, **kwargs):
    headers = signed_headers(secret, body, **kwargs)
    return client.post(UPLOADS, data=body, content_type="text/csv", **headers)


def get_status(client, secret: str, upload_id, **kwargs):
    path = f"{UPLOADS}/{upload_id}"
    headers = signed_headers(secret, b"", method="GET", path=path, **kwargs)
    return client.get(path, **headers)
