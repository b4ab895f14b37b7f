#!/usr/bin/env python3
"""Upload a lead CSV to Equity Connect, signed (docs/api.md). Python 3.9+, standard library only.

    python upload_leads.py leads.csv --url https://ec.example.com --key-id pk_… --secret … [--broker <uuid>]
        [--source propstream-batch] [--wait] [--timeout 1800]

The secret can also come from EC_SECRET (and the key id from EC_KEY_ID, the URL from EC_URL), so it
never has to appear in the shell history. The request carries the v2 signature only (method, path,
timestamp and body hash bound: a captured request cannot be replayed later or elsewhere). 5xx answers and
connection errors (and a 408: the body arrived too slowly) are retried with exponential backoff (the same
bytes and content hash, a fresh timestamp); other 4xx answers are final.
`--wait` polls the status URL and prints a progress line until the upload is done or failed.
Exit codes: 0 accepted (and done, with --wait), 1 rejected or failed, 2 gave up after retries.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime

UPLOADS_PATH = "/api/v1/uploads"


def sign_headers(secret: str, *, method: str, path: str, body: bytes, key_id: str | None) -> dict[str, str]:
    """The signing headers for one request (docs/api.md): X-Content-SHA256, X-Signature-Timestamp,
    X-Signature (`v2=…`), X-Key-Id."""
    content_sha256 = hashlib.sha256(body).hexdigest()
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = f"v2\n{method}\n{path}\n{timestamp}\n{content_sha256}".encode()
    v2 = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    headers = {
        "X-Content-SHA256": content_sha256,
        "X-Signature-Timestamp": timestamp,
        "X-Signature": f"v2={v2}",
    }
    if key_id:
        headers["X-Key-Id"] = key_id
    return headers


def request(
    url: str,
    *,
    method: str,
    body: bytes,
    secret: str,
    key_id: str | None,
    extra: dict | None = None,
    retries: int = 5,
    timeout: float = 300.0,
) -> tuple[int, dict]:
    """Send one signed request; retry 5xx, 408 (the body arrived too slowly) and connection errors (never
    another 4xx). Returns (status, JSON body)."""
    path = urllib.parse.urlsplit(url).path
    delay = 1.0
    for attempt in range(retries + 1):
        headers = {**sign_headers(secret, method=method, path=path, body=body, key_id=key_id), **(extra or {})}
        if method == "POST":
            headers["Content-Type"] = "text/csv"
        req = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            payload = _json(error.read())
            if error.code < 500 and error.code != 408:
                return error.code, payload
            problem = f"HTTP {error.code}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            problem = f"connection error: {getattr(error, 'reason', error)}"
        if attempt == retries:
            raise RuntimeError(f"gave up after {retries + 1} attempts ({problem})")
        print(f"{problem}; retrying in {delay:.0f} s", file=sys.stderr)
        time.sleep(delay)
        delay = min(delay * 2, 60.0)
    raise RuntimeError("unreachable")


def _json(raw: bytes) -> dict:
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return {"error": raw[:200].decode(errors="replace")}


def wait_for(status_url: str, *, secret: str, key_id: str | None, timeout: float, poll: float = 2.0) -> dict:
    """Poll the status URL until `done` or `failed`, printing a progress line."""
    deadline = time.monotonic() + timeout
    while True:
        code, status = request(status_url, method="GET", body=b"", secret=secret, key_id=key_id)
        if code != 200:
            raise RuntimeError(f"status request answered {code}: {status.get('error')}")
        print(
            f"\r{status['status']:<10} {status.get('progress', 0) * 100:5.1f}%  rows={status.get('rows_total', 0)}",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if status["status"] in ("done", "failed"):
            print(file=sys.stderr)
            return status
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the upload to finish")
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upload a signed lead CSV to Equity Connect.")
    parser.add_argument("file", help="the CSV file")
    parser.add_argument("--url", default=os.environ.get("EC_URL", "http://127.0.0.1:8000"), help="base URL")
    parser.add_argument("--key-id", default=os.environ.get("EC_KEY_ID"), help="partner key id (X-Key-Id)")
    parser.add_argument("--secret", default=None, help="partner secret (prefer the EC_SECRET environment variable)")
    parser.add_argument("--broker", help="assign the leads to this broker id (X-Broker-Id)")
    parser.add_argument("--source", default="", help="X-Upload-Source, e.g. propstream-batch")
    parser.add_argument("--wait", action="store_true", help="poll until processed and print the counts")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait with --wait")
    parser.add_argument("--retries", type=int, default=5, help="retries on 5xx and connection errors")
    args = parser.parse_args(argv)
    secret = args.secret or os.environ.get("EC_SECRET")
    if not secret:
        parser.error("give --secret or set EC_SECRET")
    with open(args.file, "rb") as handle:
        body = handle.read()
    extra = {"X-Filename": os.path.basename(args.file)}
    if args.broker:
        extra["X-Broker-Id"] = args.broker
    if args.source:
        extra["X-Upload-Source"] = args.source
    try:
        code, answer = request(
            args.url.rstrip("/") + UPLOADS_PATH,
            method="POST",
            body=body,
            secret=secret,
            key_id=args.key_id,
            extra=extra,
            retries=args.retries,
        )
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 2
    if code == 409:
        print(f"already received as upload {answer.get('upload_id')}", file=sys.stderr)
        return 1
    if code != 202:
        print(f"rejected ({code}): {answer.get('error')}", file=sys.stderr)
        return 1
    print(f"upload_id={answer['upload_id']} status_url={answer['status_url']}")
    if not args.wait:
        return 0
    try:
        final = wait_for(answer["status_url"], secret=secret, key_id=args.key_id, timeout=args.timeout)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 2
    print(
        " ".join(
            f"{name}={final.get(name)}"
            for name in (
                "status",
                "rows_total",
                "leads_created",
                "leads_merged",
                "duplicates_in_file",
                "rows_rejected",
            )
        )
    )
    if final.get("dlq_ids_sample"):
        print(f"dlq_ids_sample={final['dlq_ids_sample']}")
    return 0 if final["status"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
