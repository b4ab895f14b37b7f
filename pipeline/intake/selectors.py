"""Reads of the upload API: an upload's status as partners see it (the contract of docs/api.md)."""

from __future__ import annotations

from pipeline.models import Upload


def upload_status_payload(upload: Upload, request=None) -> dict:
    """`GET /api/v1/uploads/<id>`'s body: status, counts, progress, times, a sample of DLQ ids."""
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
