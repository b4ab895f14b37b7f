"""The ingestion's django-q2 task: thin, takes an id, calls the service (enqueued on commit by
pipeline/uploads.py)."""

from __future__ import annotations

from pipeline.ingest.services import upload_ingest


def upload_process(upload_id: str) -> str:
    """Process one upload; safe to run twice (a done upload returns at once, a busy one is skipped)."""
    upload = upload_ingest(upload_id=upload_id)
    return "busy" if upload is None else upload.status
