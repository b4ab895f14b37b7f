"""`POST /api/v1/uploads`, `GET /api/v1/uploads/<id>` and `GET /api/v1/uploads/<id>/rejections`: the signed
upload API (docs/api.md).

Partners are anonymous to Django: each view asks security/upload_verification.py to verify the request
(headers and signature first; the body is read only for an authenticated request, streamed, within a
deadline), and only then opens `pipeline_writer_context()` (least privilege, pipeline/migrations/0012) to
store or read the upload. Every rejection answers JSON `{"error": …}` that never says which check failed or
what was expected, and is recorded as `upload_rejected` with its reason class and the key id if known.
"""

from __future__ import annotations

import logging

from django.http import FileResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from equity_connect.db import pipeline_writer_context
from pipeline.models import Upload
from security.request_body import body_source
from security.upload_verification import SignatureRejected, signed_request_verify

from .selectors import upload_rejections_csv, upload_status_payload
from .services import UploadRejected, upload_accept, upload_broker_resolve, upload_rejection_record

logger = logging.getLogger("pipeline.intake")


def _reject(request, *, status: int, reason: str, message: str, key_id: str | None, **extra) -> JsonResponse:
    try:
        with pipeline_writer_context(budget="web"):
            upload_rejection_record(
                reason=reason, http_status=status, method=request.method, path=request.path, key_id=key_id
            )
    except Exception:
        logger.exception("could not record upload_rejected")
    logger.info("upload rejected", extra={"reason": reason, "status": status, "key_id": key_id, **extra})
    return JsonResponse({"error": message, **extra}, status=status)


def _rejected(request, error: SignatureRejected) -> JsonResponse:
    return _reject(request, status=error.status, reason=error.reason, message=str(error), key_id=error.key_id)


def _verify(request, *, with_body: bool):
    return signed_request_verify(
        method=request.method,
        path=request.path,
        headers=request.headers,
        body=body_source(request) if with_body else None,
    )


@csrf_exempt
def uploads(request):
    """POST a signed CSV (202/400/401/403/408/409/411/413)."""
    if request.method != "POST":
        return JsonResponse({"error": "method not allowed"}, status=405, headers={"Allow": "POST"})
    try:
        verified = _verify(request, with_body=True)
    except SignatureRejected as error:
        return _rejected(request, error)
    body, key = verified.body, verified.key
    try:
        with pipeline_writer_context(budget="web"):
            upload = upload_accept(
                body=body.file,
                content_sha256=body.sha256,
                size_bytes=body.size,
                filename=(request.headers.get("X-Filename") or "")[:255],
                source=(request.headers.get("X-Upload-Source") or "")[:200],
                partner=verified.partner,
                partner_key=key,
                broker=upload_broker_resolve(
                    value=request.headers.get("X-Broker-Id"),
                    partner_key=key,
                    signature_verified=verified.signature_verified,
                ),
            )
    except UploadRejected as error:
        extra = {"upload_id": str(error.upload_id)} if error.upload_id else {}
        return _reject(
            request, status=error.status, reason=error.reason, message=str(error), key_id=verified.key_id, **extra
        )
    finally:
        verified.close()
    logger.info(
        "upload accepted",
        extra={
            "upload_id": str(upload.id),
            "partner": str(upload.partner_id) if upload.partner_id else None,  # as on the ingestion's lines
            "partner_name": getattr(verified.partner, "name", None),
            "key_id": key.key_id if key else None,
        },
    )
    return JsonResponse(
        {
            "upload_id": str(upload.id),
            "status": upload.status,
            "status_url": request.build_absolute_uri(f"/api/v1/uploads/{upload.id}"),
            "content_sha256": upload.content_sha256,
        },
        status=202,
    )


def _own_upload(verified, upload_id) -> Upload | None:
    """The upload, when the verified key's partner sent it (legacy mode: when no partner did). Needs a context."""
    upload = Upload.objects.filter(pk=upload_id).first()
    key = verified.key
    if upload is None:
        return None
    if (key is None and upload.partner_id is None) or (key is not None and upload.partner_id == key.partner_id):
        return upload
    return None


@csrf_exempt
def upload_rejections(request, upload_id):
    """GET the upload's rejected rows as CSV (line number, reason, the row as sent), signed like the status,
    by a key of the same partner: fix them and send them again."""
    if request.method != "GET":
        return JsonResponse({"error": "method not allowed"}, status=405, headers={"Allow": "GET"})
    try:
        verified = _verify(request, with_body=False)
    except SignatureRejected as error:
        return _rejected(request, error)
    with pipeline_writer_context(budget="web"):
        upload = _own_upload(verified, upload_id)
        if upload is None:
            return JsonResponse({"error": "no such upload"}, status=404)
        spool = upload_rejections_csv(upload)
    return FileResponse(
        spool, as_attachment=True, filename=f"rejections-{upload.id}.csv", content_type="text/csv; charset=utf-8"
    )


@csrf_exempt
def upload_status(request, upload_id):
    """GET an upload's status, signed like the POST (empty body), by a key of the same partner."""
    if request.method != "GET":
        return JsonResponse({"error": "method not allowed"}, status=405, headers={"Allow": "GET"})
    try:
        verified = _verify(request, with_body=False)
    except SignatureRejected as error:
        return _rejected(request, error)
    with pipeline_writer_context(budget="web"):
        upload = _own_upload(verified, upload_id)
        if upload is None:
            return JsonResponse({"error": "no such upload"}, status=404)
        return JsonResponse(upload_status_payload(upload, request))
