"""The dead-letter queue's recorder: every insert into `pipeline_dlq` and every change of a row's state.

Writers (ingestion, the feeder, the webhook, the push retry, people in the admin) call these; none writes
the table itself (a test greps for it). A recorder: it never imports a worker. Reprocessing a rejected
upload row is the ingestion service's job (pipeline/ingest/services.py), which closes the row here with
`dlq_mark_resolved`; discarding is a person's decision and needs a note.
"""

from __future__ import annotations

import datetime as dt
import re

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from equity_connect.events import record_event
from pipeline.models import DLQSource, DLQStatus, PipelineDLQ
from security.fields import seal_note

OPEN_STATUSES = (DLQStatus.OPEN, DLQStatus.RETRYING)
CLOSED_STATUSES = (DLQStatus.RESOLVED, DLQStatus.DISCARDED)

# The rejected rows of an upload's staging (optionally only `lines`), one DLQ row each, with the raw row
# and the reason the row shaping gave. `%(lines)s` is NULL for every line.
DLQ_FROM_STAGING_SQL = """
INSERT INTO pipeline_dlq (source, upload_id, line_number, payload, reason, error_detail, broker_id,
                          status, attempts, max_attempts, resolution, resolution_note)
SELECT 'upload_row', upload_id, line_number, raw::jsonb, reject_reason, '', assigned_broker_id,
       'open', 0, 5, '', ''
  FROM leads_staging
 WHERE upload_id = %(upload)s AND reject_reason IS NOT NULL
   AND (%(lines)s::int[] IS NULL OR line_number = ANY(%(lines)s::int[]))
 ORDER BY line_number
"""

# A new owner arrived on a lead the old owner asked not to contact: the lead stays do-not-contact, and a person
# decides (`ingest_owner_changes`, pipeline/ingest/sql/write.py). The do-not-contact reason is encrypted on the
# lead, so it is not copied here. Needs `%(upload)s`.
DLQ_REVIEW_FROM_OWNER_CHANGES_SQL = """
INSERT INTO pipeline_dlq (source, upload_id, line_number, payload, reason, error_detail, broker_id, lead_id,
                          status, attempts, max_attempts, resolution, resolution_note)
SELECT 'review', %(upload)s, NULL,
       jsonb_build_object('lead_id', lead_id, 'old_owner', concat_ws(' ', old_first_name, old_last_name),
                          'new_owner', concat_ws(' ', new_first_name, new_last_name)),
       'A new owner (' || concat_ws(' ', new_first_name, new_last_name) || ') arrived on a lead the previous owner ('
         || concat_ws(' ', old_first_name, old_last_name) || ') asked not to contact (the reason is on the lead)'
         || ': it stays do-not-contact until you decide whether the new owner may be contacted',
       '', assigned_broker_id, lead_id, 'open', 0, 5, '', ''
  FROM ingest_owner_changes
 WHERE old_status = 'do_not_contact'
"""


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


def dlq_record_rejected_rows(*, upload_id: str, lines: list[int] | None = None) -> int:
    """The upload's rejected staging rows → one open DLQ row each (set-based). Returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(DLQ_FROM_STAGING_SQL, {"upload": upload_id, "lines": lines})
        return cursor.rowcount


def dlq_record_owner_change_reviews(*, upload_id: str) -> int:
    """A review row for each lead of this apply that was do-not-contact for its previous owner."""
    with connection.cursor() as cursor:
        cursor.execute(DLQ_REVIEW_FROM_OWNER_CHANGES_SQL, {"upload": upload_id})
        return cursor.rowcount


def dlq_record_failed_upload(*, upload, reason: str) -> PipelineDLQ | None:
    """A whole upload that could not be read: one open DLQ row for it (not a second one on a re-run)."""
    open_rows = PipelineDLQ.objects.filter(upload_id=upload.pk, source=DLQSource.UPLOAD, status=DLQStatus.OPEN)
    if open_rows.exists():
        return None
    return dlq_record(
        source=DLQSource.UPLOAD,
        upload=upload,
        payload={"filename": upload.filename},
        reason=reason,
        broker=upload.broker,
    )


def dlq_list(*, status: str | None = None, source: str | None = None, upload=None) -> QuerySet[PipelineDLQ]:
    """Rows by status (`pending`: open or retrying), source and upload, newest first."""
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


def dlq_update_payload(*, item: PipelineDLQ, payload: dict) -> PipelineDLQ:
    """Replace an open item's payload (an operator's correction before reprocessing)."""
    if item.status in CLOSED_STATUSES:
        raise DLQError(f"DLQ item #{item.pk} is {item.status}: its payload is kept as it was")
    if not isinstance(payload, dict):
        raise DLQError("the payload must be a JSON object")
    item.payload = payload
    item.save(update_fields=["payload", "updated_at"])
    return item


def dlq_attempt_record(*, item: PipelineDLQ, payload: dict, reason: str | None) -> PipelineDLQ:
    """Count a reprocessing attempt of an open row: keep the (edited) payload and, when the row is still
    unusable, the new reason."""
    item.payload = payload
    item.attempts += 1
    if reason is not None:
        item.reason = reason
    item.save(update_fields=["payload", "attempts", "reason", "updated_at"])
    return item


def dlq_attempt_failed(
    *, item: PipelineDLQ, error: str, retry_after: dt.datetime | None, extra: dict | None = None
) -> PipelineDLQ:
    """An automatic retry failed: count it, keep the error, and either wait until `retry_after` or (None:
    no retries left) stay open for a person. Records `dlq_reprocessed` (retry or failure)."""
    item.attempts += 1
    item.error_detail = error[:4000]
    item.status = DLQStatus.RETRYING if retry_after else DLQStatus.OPEN
    item.retry_after = retry_after
    item.save(update_fields=["attempts", "error_detail", "status", "retry_after", "updated_at"])
    record_event(
        "dlq_reprocessed",
        broker_id=item.broker_id,
        lead_id=item.lead_id,
        upload_id=item.upload_id,
        status="retry" if retry_after else "failure",
        error_message=error[:2000],
        data={"dlq_id": item.pk, "source": item.source, "attempt": item.attempts, **(extra or {})},
    )
    return item


def dlq_mark_resolved(
    *,
    item: PipelineDLQ,
    resolution: str = "reprocessed",
    user=None,
    note: str = "",
    lead_id=None,
    broker_id=None,
    payload: dict | None = None,
    count_attempt: bool = False,
    event_data: dict | None = None,
) -> PipelineDLQ:
    """Close `item` as handled (the ingestion service, after it applied the row; the push retry, after the
    batch went through). Records `dlq_reprocessed` with `event_data`. Idempotent: a closed item is
    returned unchanged."""
    with transaction.atomic():
        item = PipelineDLQ.objects.select_for_update().get(pk=item.pk)
        if item.status in CLOSED_STATUSES:
            return item
        item.status = DLQStatus.RESOLVED
        item.resolution = resolution
        item.resolution_note = note
        item.resolved_at = timezone.now()
        item.resolved_by = user if getattr(user, "pk", None) else None
        item.retry_after = None
        if count_attempt:
            item.attempts += 1
        if lead_id is not None:
            item.lead_id = lead_id
        if payload is not None:
            item.payload = payload
        item.save()
        record_event(
            "dlq_reprocessed",
            upload_id=item.upload_id,
            lead_id=item.lead_id,
            broker_id=broker_id,
            data={"dlq_id": item.pk, "source": item.source, "resolution": resolution, **(event_data or {})},
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
                "note": seal_note(note),
                "by": getattr(user, "get_username", lambda: None)(),
            },
        )
    return item


# A payload that was redacted: the row, its reason and line number stay; what the row held is gone.
REDACTED_KEY = "_redacted"
_EXPIRE_PAYLOADS_SQL = """
UPDATE pipeline_dlq SET payload = jsonb_build_object('_redacted', 'retention')
 WHERE created_at < %(before)s AND NOT (payload ? '_redacted')
"""


def dlq_payloads_expire(*, before: dt.datetime) -> int:
    """Retention: redact the payload of every row created before `before` (set-based). Returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(_EXPIRE_PAYLOADS_SQL, {"before": before})
        return cursor.rowcount


def dlq_person_redact(*, ids: list[int], needles: list[str]) -> int:
    """Erasure: the rows `ids` (a person's) lose their payload, and their reason, error and note lose every
    mention of `needles` (a reason may quote a row's e-mail address). Returns how many rows."""
    if not ids:
        return 0
    pattern = re.compile("|".join(re.escape(needle) for needle in sorted(needles, key=len, reverse=True)), re.I)
    rows = list(PipelineDLQ.objects.filter(id__in=ids))
    for row in rows:
        row.payload = {REDACTED_KEY: "erasure"}
        row.reason = pattern.sub("[erased]", row.reason) if needles else row.reason
        row.error_detail = pattern.sub("[erased]", row.error_detail) if needles else row.error_detail
        row.resolution_note = pattern.sub("[erased]", row.resolution_note) if needles else row.resolution_note
    PipelineDLQ.objects.bulk_update(rows, ["payload", "reason", "error_detail", "resolution_note"])
    return len(rows)
