"""`POST /api/v1/uploads` and `GET /api/v1/uploads/<id>` (DESIGN §6 — a contract).

Partners are anonymous to Django: the view verifies the signature on the raw bytes first (streamed: hashed
while read, spooled to disk past a threshold), and only then opens `service_context()` to store the upload.
Every rejection answers with a JSON `{"error": …}` that never says which check failed or what was
expected, and records `upload_rejected` with a reason class and the key id if known.
"""

from __future__ import annotations

import hashlib
import logging
import uuid

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from equity_connect.db import service_context
from equity_connect.events import record_event
from leads.models import Broker
from pipeline.enforcement import signature_enforcement_disabled
from pipeline.models import Upload
from pipeline.uploads import UploadRejected, UploadTooLarge, body_spool, upload_accept
from security import signing
from security.models import PartnerKey, PartnerKeyStatus
from security.services import partner_key_secret

logger = logging.getLogger("pipeline.api")

UNAUTHORIZED = "signature verification failed"


class _Reject(Exception):
    def __init__(self, status: int, reason: str, message: str, key_id: str | None = None):
        super().__init__(message)
        self.status, self.reason, self.key_id = status, reason, key_id


def _reject(request, error: _Reject) -> JsonResponse:
    """Record `upload_rejected` (reason class, key id, method, path — never a secret, signature or body)."""
    try:
        with service_context():
            record_event(
                "upload_rejected",
                status="failure",
                error_message=error.reason,
                data={
                    "reason": error.reason,
                    "key_id": error.key_id,
                    "method": request.method,
                    "path": request.path,
                    "http_status": error.status,
                },
            )
    except Exception:
        logger.exception("could not record upload_rejected")
    logger.info("upload rejected reason=%s status=%s key_id=%s", error.reason, error.status, error.key_id)
    return JsonResponse({"error": str(error)}, status=error.status)


def _key_for(request) -> tuple[PartnerKey | None, str, str | None]:
    """(key or None for legacy, secret, key id). Raises _Reject for unknown/revoked keys."""
    key_id = (request.headers.get("X-Key-Id") or "").strip()
    if not key_id:
        if settings.HMAC_SECRET_KEY:
            return None, settings.HMAC_SECRET_KEY, None
        raise _Reject(400, "missing_header", "X-Key-Id is missing")
    if len(key_id) > 64:
        raise _Reject(400, "malformed_header", "X-Key-Id is malformed")
    with service_context():
        key = PartnerKey.objects.select_related("partner", "default_broker").filter(key_id=key_id).first()
        if key is None:
            raise _Reject(401, "unknown_key", UNAUTHORIZED, key_id)
        if key.status != PartnerKeyStatus.ACTIVE or not key.partner.active:
            raise _Reject(401, "revoked_key", UNAUTHORIZED, key_id)
        secret = partner_key_secret(key=key)
    return key, secret, key_id


def _enforce(error: _Reject) -> None:
    """Raise a signature or timestamp failure, unless the rollback plan's time-limited escape hatch is on
    (pipeline/enforcement.py): then the request goes through, and the skipped check is logged loudly.
    Keys, revocation and the content hash are always enforced."""
    if not signature_enforcement_disabled():
        raise error
    logger.warning("signature check skipped (enforcement disabled) reason=%s key_id=%s", error.reason, error.key_id)


def _verify(request, *, read_body: bool):
    """Check headers, key, timestamp; stream the body; check its hash and the signatures.

    Returns (key, key_id, spooled body or None)."""
    declared = (request.headers.get("X-Content-SHA256") or "").strip()
    timestamp_text = (request.headers.get("X-Signature-Timestamp") or "").strip()
    key_id = (request.headers.get("X-Key-Id") or "").strip()[:64] or None
    if not declared:
        raise _Reject(400, "missing_header", "X-Content-SHA256 is missing", key_id)
    if not signing.is_sha256_hex(declared):
        raise _Reject(400, "malformed_header", "X-Content-SHA256 must be 64 lowercase hex characters", key_id)
    try:
        timestamp = signing.parse_timestamp(timestamp_text)
        signatures = signing.parse_signatures(request.headers.get("X-Signature"))
    except signing.SignatureHeaderError as error:
        reason = "missing_header" if "missing" in str(error) else "malformed_header"
        raise _Reject(400, reason, str(error), key_id) from error
    key, secret, key_id = _key_for(request)
    if not signing.timestamp_within(timestamp, tolerance_seconds=settings.SIGNATURE_TOLERANCE_SECONDS):
        _enforce(_Reject(401, "timestamp_out_of_window", UNAUTHORIZED, key_id))
    wants_v1 = any(signature.scheme == signing.V1 for signature in signatures)
    body = None
    if read_body:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.UPLOAD_MAX_BYTES:
            raise _Reject(413, "too_large", str(UploadTooLarge()), key_id)
        try:
            body = body_spool(
                request.read,
                max_bytes=settings.UPLOAD_MAX_BYTES,
                hashers={"v1": signing.v1_hasher(secret)} if wants_v1 else {},
            )
        except UploadTooLarge as error:
            raise _Reject(413, "too_large", str(error), key_id) from error
        actual, v1_digest = body.sha256, body.extra_digests.get("v1")
    else:
        actual = hashlib.sha256(b"").hexdigest()
        v1_digest = signing.sign_v1(secret, b"") if wants_v1 else None
    try:
        if actual != declared:
            raise _Reject(400, "content_hash_mismatch", "X-Content-SHA256 does not match the body", key_id)
        v2_digest = signing.sign_v2(
            secret, method=request.method, path=request.path, timestamp=timestamp_text, content_sha256=declared
        )
        if not signing.signatures_valid(signatures, v1_digest=v1_digest, v2_digest=v2_digest):
            _enforce(_Reject(401, "bad_signature", UNAUTHORIZED, key_id))
    except _Reject:
        if body is not None:
            body.file.close()
        raise
    return key, key_id, body


def _broker(request, key_id) -> Broker | None:
    value = (request.headers.get("X-Broker-Id") or "").strip()
    if not value:
        return None
    try:
        broker_id = uuid.UUID(value)
    except ValueError as error:
        raise _Reject(400, "malformed_header", "X-Broker-Id is not a UUID", key_id) from error
    with service_context():
        broker = Broker.objects.filter(pk=broker_id, active=True).first()
    if broker is None:
        raise _Reject(400, "unknown_broker", "X-Broker-Id is not an active broker", key_id)
    return broker


def status_payload(upload: Upload, request=None) -> dict:
    sample = list(upload.dlq_rows.order_by("id").values_list("id", flat=True)[:10])
    path = f"/api/v1/uploads/{upload.id}"
    return {
        "upload_id": str(upload.id),
        "status": upload.status,
        "rows_total": upload.rows_total,
        "leads_created": upload.leads_created,
        "leads_merged": upload.leads_merged,
        "duplicates_in_file": upload.duplicates_in_file,
        "rows_rejected": upload.rows_rejected,
        "dlq_ids_sample": sample,
        "progress": upload.progress,
        "started_at": upload.started_at.isoformat() if upload.started_at else None,
        "finished_at": upload.finished_at.isoformat() if upload.finished_at else None,
        "status_url": request.build_absolute_uri(path) if request is not None else path,
        "error": upload.error_message or None,
    }


@csrf_exempt
def uploads(request):
    """POST a signed CSV (202/400/401/409/413)."""
    if request.method != "POST":
        return JsonResponse({"error": "method not allowed"}, status=405, headers={"Allow": "POST"})
    try:
        key, key_id, body = _verify(request, read_body=True)
    except _Reject as error:
        return _reject(request, error)
    try:
        broker = _broker(request, key_id)
    except _Reject as error:
        body.file.close()
        return _reject(request, error)
    try:
        with service_context():
            upload = upload_accept(
                body=body.file,
                content_sha256=body.sha256,
                size_bytes=body.size,
                filename=(request.headers.get("X-Filename") or "")[:255],
                source=(request.headers.get("X-Upload-Source") or "")[:200],
                partner=key.partner if key else None,
                partner_key=key,
                broker=broker,
            )
    except UploadRejected as error:
        response = _reject(request, _Reject(error.status, error.reason, str(error), key_id))
        if error.upload_id is None:
            return response
        return JsonResponse({"error": str(error), "upload_id": str(error.upload_id)}, status=error.status)
    finally:
        body.file.close()
    status_url = request.build_absolute_uri(f"/api/v1/uploads/{upload.id}")
    return JsonResponse(
        {
            "upload_id": str(upload.id),
            "status": upload.status,
            "status_url": status_url,
            "content_sha256": upload.content_sha256,
        },
        status=202,
    )


@csrf_exempt
def upload_status(request, upload_id):
    """GET an upload's status, signed like the POST (empty body), by a key of the same partner."""
    if request.method != "GET":
        return JsonResponse({"error": "method not allowed"}, status=405, headers={"Allow": "GET"})
    try:
        key, _key_id, _ = _verify(request, read_body=False)
    except _Reject as error:
        return _reject(request, error)
    with service_context():
        upload = Upload.objects.filter(pk=upload_id).first()
        allowed = upload is not None and (
            (key is None and upload.partner_id is None) or (key is not None and upload.partner_id == key.partner_id)
        )
        if not allowed:
            return JsonResponse({"error": "no such upload"}, status=404)
        return JsonResponse(status_payload(upload, request))
