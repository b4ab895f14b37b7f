"""The dead-letter queue's recorder and selectors: store rows, list them, close them.

A recorder: it never imports a worker. Reprocessing a row goes through the ingestion service (the same
code path as an upload), which the admin action calls; that service closes the row with
`dlq_mark_resolved`. Discarding is a person's decision and needs a note.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from equity_connect.events import record_event
from pipeline.models import DLQSource, DLQStatus, PipelineDLQ

OPEN_STATUSES = (DLQStatus.OPEN, DLQStatus.RETRYING)
CLOSED_STATUSES = (DLQStatus.RESOLVED, DLQStatus.DISCARDED)


class DLQError(Exception):
    """A DLQ operation that cannot be done; the message is safe to show."""


def dlq_record(
    *,
    source: str,
    reason: str,
    payload: dict | None = None,
    upload=None,
    line_number: int | None = None,
    error_detail: str = "",
    broker=None,
    lead=None,
    retry_after: dt.datetime | None = None,
    max_attempts: int = 5,
) -> PipelineDLQ:
    """Store one item. `reason` says, in words a person can act on, what is wrong."""
    if source not in DLQSource.values:
        raise DLQError(f"unknown DLQ source {source!r}")
    if not reason:
        raise DLQError("a DLQ item needs a reason")
    return PipelineDLQ.objects.create(
        source=source,
        reason=reason,
        payload=payload or {},
        upload=upload,
        line_number=line_number,
        error_detail=error_detail,
        broker=broker,
        lead=lead,
        retry_after=retry_after,
        max_attempts=max_attempts,
        status=DLQStatus.RETRYING if retry_after else DLQStatus.OPEN,
    )


def dlq_list(*, status: str | None = None, source: str | None = None, upload=None) -> QuerySet[PipelineDLQ]:
    items = PipelineDLQ.objects.select_related("upload", "resolved_by")
    if status == "pending":
        items = items.filter(status__in=OPEN_STATUSES)
    elif status:
        items = items.filter(status=status)
    if source:
        items = items.filter(source=source)
    if upload is not None:
        items = items.filter(upload_id=getattr(upload, "pk", upload))
    return items


def dlq_pending_count() -> int:
    return PipelineDLQ.objects.filter(status__in=OPEN_STATUSES).count()


def dlq_mark_resolved(
    *, item: PipelineDLQ, resolution: str = "reprocessed", user=None, note: str = "", lead=None
) -> PipelineDLQ:
    """Close `item` as handled (the ingestion service calls this after it applied the row).

    Records `dlq_reprocessed`. Idempotent: a closed item is returned unchanged."""
    with transaction.atomic():
        item = PipelineDLQ.objects.select_for_update().get(pk=item.pk)
        if item.status in CLOSED_STATUSES:
            return item
        item.status = DLQStatus.RESOLVED
        item.resolution = resolution
        item.resolution_note = note
        item.resolved_at = timezone.now()
        item.resolved_by = user if getattr(user, "pk", None) else None
        if lead is not None:
            item.lead = lead
        item.save(
            update_fields=[
                "status",
                "resolution",
                "resolution_note",
                "resolved_at",
                "resolved_by",
                "lead",
                "updated_at",
            ]
        )
        record_event(
            "dlq_reprocessed",
            upload_id=item.upload_id,
            lead_id=item.lead_id,
            data={"dlq_id": item.pk, "source": item.source, "resolution": resolution},
        )
    return item


def dlq_discard(*, item: PipelineDLQ, note: str, user=None) -> PipelineDLQ:
    """Discard `item` on purpose: it will not be retried. Needs a note (why), keeps who and when.

    Records `dlq_discarded`. Raises DLQError without a note or when the item is already closed."""
    note = (note or "").strip()
    if not note:
        raise DLQError("a discard needs a note saying why")
    with transaction.atomic():
        item = PipelineDLQ.objects.select_for_update().get(pk=item.pk)
        if item.status in CLOSED_STATUSES:
            raise DLQError(f"DLQ item #{item.pk} is already {item.status}")
        item.status = DLQStatus.DISCARDED
        item.resolution = "discarded"
        item.resolution_note = note
        item.resolved_at = timezone.now()
        item.resolved_by = user if getattr(user, "pk", None) else None
        item.retry_after = None
        item.save(
            update_fields=[
                "status",
                "resolution",
                "resolution_note",
                "resolved_at",
                "resolved_by",
                "retry_after",
                "updated_at",
            ]
        )
        record_event(
            "dlq_discarded",
            upload_id=item.upload_id,
            data={
                "dlq_id": item.pk,
                "source": item.source,
                "note": note,
                "by": getattr(user, "get_username", lambda: None)(),
            },
        )
    return item


def dlq_update_payload(*, item: PipelineDLQ, payload: dict) -> PipelineDLQ:
    """Replace an open item's payload (an operator's correction before reprocessing)."""
    if item.status in CLOSED_STATUSES:
        raise DLQError(f"DLQ item #{item.pk} is {item.status}: its payload is kept as it was")
    if not isinstance(payload, dict):
        raise DLQError("the payload must be a JSON object")
    item.payload = payload
    item.save(update_fields=["payload", "updated_at"])
    return item
