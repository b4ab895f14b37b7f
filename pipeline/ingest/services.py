"""The ingestion services: process one upload end to end, and reprocess one rejected row from the DLQ.

`upload_ingest` is restartable and runs exactly once per upload:
- a session advisory lock on the upload means two workers never process it together (a worker that dies
  drops its connection, and PostgreSQL releases the lock with it);
- staging commits in batches (progress and counts visible); a restart first deletes what a crash staged;
- everything that changes `leads`, `pipeline_dlq`, `pipeline_events` and the upload's final counts
  happens in ONE transaction, beside other uploads' (optimistic, no global lock: pipeline/ingest/apply.py).
  A crash before its commit leaves nothing; after it, the upload is `done` and a re-run returns at once
  (possible duplicates with a concurrent upload's new leads are swept just after the commit);
- so a transient database fault (a restart, a failover, a dropped connection, a deadlock) restarts the
  whole run on a fresh connection, with backoff, for up to INGEST_TRANSIENT_RETRY_SECONDS (retry.py);
  only a permanent error fails the upload, which releases its replay guard in the same transaction;
- it runs on a direct connection (DATABASE_DIRECT_URL), never through a transaction-mode pooler.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django_q.tasks import async_task

from equity_connect.db import direct_connection, pipeline_writer_context, service_context
from equity_connect.events import record_event
from equity_connect.logging import log_context
from leads.models import Lead
from leads.suppressions.rules import ERASED_PERSON
from pipeline.dlq import CLOSED_STATUSES, dlq_attempt_record, dlq_mark_resolved, dlq_record_failed_upload
from pipeline.models import DLQSource, IngestReplayGuard, PipelineDLQ, Upload, UploadStatus

from . import apply, staging
from .locks import apply_gate, upload_lock
from .reading import FileUnreadable
from .retry import retry_transient, sqlstate, transient_database_error
from .rows import NORMALISED_NAMES

logger = logging.getLogger("pipeline.ingest")

STAGE_PROGRESS_SHARE = 0.8  # staging is most of the work; the apply step takes progress to 1.0
# A race with another writer rolls the apply back whole but keeps the session (its upload lock, its staged
# rows), so the apply alone runs again: a key taken between our match and our insert, a deadlock or a
# serialisation failure with a writer outside the ingestion.
APPLY_RACES = frozenset({"23505", "40P01", "40001"})
APPLY_ATTEMPTS = 3


class IngestError(Exception):
    """An ingestion operation that cannot be done; the message is safe to show."""


class RowStillInvalid(IngestError):
    """A reprocessed DLQ row is still unusable; the message is the reason."""


class UploadCancelled(Exception):
    """A person cancelled the upload while this worker ran it (pipeline/ingest/control.py): stop, apply nothing."""


def upload_ingest(*, upload_id) -> Upload | None:
    """Stage, normalise, validate, dedupe, merge/insert, score and count one upload.

    Changes `leads`, `pipeline_dlq` (one row per rejected line), `leads_staging` (emptied again) and the
    upload (status, progress, counts). Records `dedupe_success` with the counts and `duration_ms`, and
    per-lead `lead_created`/`lead_merged` events when the upload touches at most INGEST_LEAD_EVENTS_MAX
    leads. A transient database error restarts the run, with backoff, for up to
    INGEST_TRANSIENT_RETRY_SECONDS; a permanent one (or an unreadable file) marks the upload failed,
    releases its replay guard and records `upload_failed`. Returns the upload, or None when another worker
    holds it. Raises the error of a run that failed for any reason but an unreadable file."""
    started = time.monotonic()
    budget = settings.INGEST_TRANSIENT_RETRY_SECONDS

    def give_up(error: BaseException) -> None:
        reason = f"the database stayed unavailable for {budget:g} s ({type(error).__name__}); the upload can be re-run"
        try:
            with upload_lock(upload_id, wait_seconds=0) as acquired:
                if acquired:  # else another worker has it now, and is not failing
                    _fail(upload_id, reason, started, reason_class="database_unavailable", error=error)
        except Exception:  # still unavailable: the upload stays `processing`, for a re-run to finish
            logger.exception("could not record the upload's failure")

    # Every line logged for this upload carries `upload_id` (and `partner`, once read) as fields. One session
    # from start to finish (its upload lock, temporary tables, temp_buffers): never a transaction-mode pooler.
    with log_context(upload_id=str(upload_id)), direct_connection():
        return retry_transient(
            partial(_ingest_attempt, upload_id, started),
            budget_seconds=budget,
            what="upload",
            give_up=give_up,
        )


def _ingest_attempt(upload_id, started: float) -> Upload | None:
    with upload_lock(upload_id, wait_seconds=settings.INGEST_LOCK_WAIT_SECONDS) as acquired:
        if not acquired:
            logger.info("upload busy: another worker is processing it")
            return None
        with pipeline_writer_context():
            upload = Upload.objects.get(pk=upload_id)
            if upload.status == UploadStatus.DONE or upload.cancelled_at is not None:
                return upload  # done once; or cancelled, until a person re-runs it (control.upload_rerun)
            staging.staging_rows_delete(upload.id)  # what a crashed run staged
            # Conditional: a cancel that committed since the read above wins.
            started_run = Upload.objects.filter(pk=upload.id, cancelled_at__isnull=True).update(
                status=UploadStatus.PROCESSING,
                attempts=upload.attempts + 1,
                progress=0.0,
                rows_total=0,
                rows_rejected=0,
                rows_recovered=0,
                leads_created=0,
                leads_merged=0,
                duplicates_in_file=0,
                possible_duplicates=0,
                blank_lines=0,
                unrecognised_columns=[],
                columns=[],
                error_message="",
                started_at=timezone.now(),
                finished_at=None,
                updated_at=timezone.now(),
            )
            if not started_run:
                return Upload.objects.get(pk=upload.id)
        # The partner's id (pipeline_writer reads no partner names; the admin and the intake's lines have them).
        with log_context(partner=str(upload.partner_id) if upload.partner_id else None):
            try:
                return _ingest(upload, started)
            except UploadCancelled:
                logger.info("upload cancelled while processing: stopped, nothing applied")
                with pipeline_writer_context():
                    staging.staging_rows_delete(upload.id)
                    return Upload.objects.get(pk=upload.id)
            except FileUnreadable as error:
                _fail(upload.id, str(error), started, reason_class="unreadable_file", dlq=True)
                with pipeline_writer_context():
                    return Upload.objects.get(pk=upload.id)
            except Exception as error:
                if transient_database_error(error, connection):
                    raise  # not the upload's fault: the run starts again (retry_transient)
                logger.exception("upload ingestion failed")
                reason = f"internal error ({type(error).__name__}); the upload can be re-run"
                _fail(upload.id, reason, started, reason_class="internal_error", error=error)
                raise


def _progress(upload_id):
    def report(result: staging.StageResult, fraction: float) -> None:
        # Each staged batch asks, by this update, whether the upload was cancelled since the last one.
        reported = Upload.objects.filter(pk=upload_id, cancelled_at__isnull=True).update(
            progress=round(fraction * STAGE_PROGRESS_SHARE, 4),
            rows_total=result.rows_total,
            rows_rejected=result.rows_rejected,
            blank_lines=result.blank_lines,
            unrecognised_columns=result.unrecognised_columns,
            columns=result.columns,
            encoding=result.encoding,
            updated_at=timezone.now(),
        )
        if not reported:
            raise UploadCancelled(upload_id)

    return report


def _ingest(upload: Upload, started: float) -> Upload:
    staging_started = time.monotonic()
    result = staging.stage_file(
        upload_id=str(upload.id),
        path=upload.file.path,
        broker_id=str(upload.broker_id) if upload.broker_id else None,
        size_bytes=upload.size_bytes,
        on_progress=_progress(upload.id),
    )
    staging_ms = int((time.monotonic() - staging_started) * 1000)
    source = upload.source or "upload"  # the partner's name when the request named no source
    for attempt in range(APPLY_ATTEMPTS):
        try:
            with pipeline_writer_context():
                apply_gate()
                # The upload's row, locked until this commits: a cancel either committed before (and wins) or
                # waits for this transaction and finds the upload done (control.upload_cancel).
                locked = Upload.objects.select_for_update().filter(pk=upload.id, cancelled_at__isnull=True)
                if not list(locked.values_list("pk", flat=True)):
                    raise UploadCancelled(upload.id)
                counts = apply.apply_staged(
                    upload_id=str(upload.id),
                    source=source,
                    lead_events_max=settings.INGEST_LEAD_EVENTS_MAX,
                    write_dlq=result.rows_rejected > 0,  # staging counted them: no scan for none
                )
                if not settings.INGEST_KEEP_STAGING:
                    staging.staging_rows_delete(upload.id)
                duration_ms = int((time.monotonic() - started) * 1000)
                Upload.objects.filter(pk=upload.id).update(
                    status=UploadStatus.DONE,
                    progress=1.0,
                    rows_total=result.rows_total,
                    rows_rejected=counts.rows_rejected,
                    leads_created=counts.leads_created,
                    leads_merged=counts.leads_merged,
                    duplicates_in_file=counts.duplicates_in_file,
                    possible_duplicates=counts.possible_duplicates,
                    blank_lines=result.blank_lines,
                    unrecognised_columns=result.unrecognised_columns,
                    columns=result.columns,
                    encoding=result.encoding,
                    finished_at=timezone.now(),
                    updated_at=timezone.now(),
                )
                data = {
                    "rows_total": result.rows_total,
                    "leads_created": counts.leads_created,
                    "leads_merged": counts.leads_merged,
                    "duplicates_in_file": counts.duplicates_in_file,
                    "rows_rejected": counts.rows_rejected,
                    "possible_duplicates": counts.possible_duplicates,
                    "owner_changes": counts.owner_changes,
                    "rows_erased": counts.rows_erased,
                    "leads_suppressed": counts.leads_suppressed,
                    "blank_lines": result.blank_lines,
                    "encoding": result.encoding,
                    "propagation_passes": counts.propagation_passes,
                    **counts.race_figures(),
                    "lead_events": counts.clusters <= settings.INGEST_LEAD_EVENTS_MAX,
                    "timings": {"staging_ms": staging_ms, **counts.timings},
                    "normaliser_peak_rss_kb": result.normaliser_peak_rss_kb,
                }
                if counts.rows_rejected + counts.rows_valid != result.rows_total:
                    raise RuntimeError(
                        f"staged {result.rows_total} rows but applied {counts.rows_rejected + counts.rows_valid}"
                    )
                record_event(
                    "dedupe_success",
                    upload_id=upload.id,
                    broker_id=upload.broker_id,
                    data=data,
                    duration_ms=duration_ms,
                )
                if counts.sequences_to_stop:
                    transaction.on_commit(partial(_stop_sequences, counts.sequences_to_stop))
            break
        except (IntegrityError, OperationalError) as error:
            # Anything but a race goes up: a lost connection takes the upload lock with it, so only a
            # run from the top (retry_transient) may go on.
            if attempt == APPLY_ATTEMPTS - 1 or sqlstate(error) not in APPLY_RACES:
                raise
            logger.warning("upload apply conflict; retrying (attempt %s)", attempt + 2)
    apply.possible_duplicates_sweep_after_commit(upload_id=str(upload.id), counts=counts)
    logger.info(
        "upload done",
        extra={
            "rows_total": result.rows_total,
            "leads_created": counts.leads_created,
            "leads_merged": counts.leads_merged,
            "duplicates_in_file": counts.duplicates_in_file,
            "rows_rejected": counts.rows_rejected,
            "duration_ms": duration_ms,
            "timings": data["timings"],
        },
    )
    with pipeline_writer_context():
        return Upload.objects.get(pk=upload.id)


def _stop_sequences(sequences: list[tuple[str, str]]) -> None:
    # By the task's dotted name: the old owners' Instantly sequences stop in the task cluster, with retries.
    async_task("pipeline.tasks.instantly_sequences_stop", sequences, task_name="stop sequences", group="instantly")


def _fail(
    upload_id, reason: str, started: float, *, reason_class: str, error: BaseException | None = None, dlq: bool = False
) -> None:
    """Mark the upload failed and release its replay guard in one transaction, so that the partner may send
    the same file again; record `upload_failed` with the reason's class (the `upload_failed` alert quotes
    it: `error_message` may quote the file's header, the class never quotes the file)."""
    try:
        with pipeline_writer_context():
            upload = Upload.objects.get(pk=upload_id)
            if upload.status == UploadStatus.DONE or upload.cancelled_at is not None:
                return  # its apply committed before the database went away; or a person cancelled it
            staging.staging_rows_delete(upload.id)
            Upload.objects.filter(pk=upload.id).update(
                status=UploadStatus.FAILED,
                error_message=reason,
                rows_total=0,
                rows_rejected=0,
                progress=0.0,
                finished_at=timezone.now(),
                updated_at=timezone.now(),
            )
            # Only this upload's guard: the same bytes sent again since hold a guard of their own.
            released, _ = IngestReplayGuard.objects.filter(upload_id=upload.id).delete()
            if dlq:
                dlq_record_failed_upload(upload=upload, reason=reason)
            record_event(
                "upload_failed",
                upload_id=upload.id,
                broker_id=upload.broker_id,
                status="failure",
                error_message=reason,
                duration_ms=int((time.monotonic() - started) * 1000),
                data={
                    "reason": reason_class,
                    "error_class": type(error).__name__ if error is not None else None,
                    "replay_guard_released": bool(released),
                },
            )
    except Exception as failure:
        if transient_database_error(failure, connection):
            raise  # the run starts again and fails again, with a database to record it in
        logger.exception("could not record the upload's failure", extra={"upload_id": str(upload_id)})


def _lead_for_keys(keys: dict[str, str | None]):
    """(id, broker id) of the lead that holds the strongest of the keys (MAK, then APN, then address hash)."""
    for name in ("mak", "apn", "addr_hash"):
        if keys[name]:
            found = Lead.objects.filter(**{name: keys[name]}).values_list("id", "assigned_broker_id").first()
            if found:
                return found
    return None, None


def dlq_row_reprocess(dlq_item: PipelineDLQ | int, payload: dict | None = None, user=None):
    """Re-run one rejected upload row (optionally edited: `payload` is the raw row, header → value)
    through the same normalise/validate/dedupe/merge SQL as a whole upload.

    On success: the lead is created or merged, the DLQ row is `resolved` (resolution `reprocessed`,
    `resolved_by`/`resolved_at`, the lead), the upload's counts move the row from rejected to created or
    merged and count it in `rows_recovered` (the invariant holds), and `dlq_reprocessed` is recorded.
    Returns the lead id. Idempotent: a row already resolved returns None and changes nothing. Raises
    RowStillInvalid (the DLQ row keeps the edit and the new reason) or IngestError."""
    dlq_id = getattr(dlq_item, "pk", dlq_item)
    with service_context(budget="ingest"):
        item = PipelineDLQ.objects.select_for_update(of=("self",)).select_related("upload").get(pk=dlq_id)
        if item.status in CLOSED_STATUSES:
            return None
        if item.source != DLQSource.UPLOAD_ROW or item.upload is None:
            raise IngestError("only rows of a still-existing upload can be reprocessed here")
        payload = dict(item.payload if payload is None else payload)
        extra = payload.pop("_extra_values", None)
        headers = list(payload)
        row = ["" if value is None else str(value) for value in payload.values()]
        if isinstance(extra, list):
            row += ["" if value is None else str(value) for value in extra]
        upload = item.upload
        line = item.line_number if item.line_number is not None else 0
        layout = staging.layout_for(
            headers, upload_id=str(upload.id), broker_id=str(upload.broker_id) if upload.broker_id else None
        )
        staged, reason = layout.row(list(row), line)
        stored_payload = payload if extra is None else {**payload, "_extra_values": extra}
        dlq_attempt_record(item=item, payload=stored_payload, reason=reason)
    if reason is not None:
        raise RowStillInvalid(reason)
    offset = layout.normalised_offset  # upload, line, raw JSON, payload, then the normalised columns
    keys = {name: staged[offset + NORMALISED_NAMES.index(name)] for name in ("mak", "apn", "addr_hash")}
    with service_context(budget="ingest"):
        item = PipelineDLQ.objects.select_for_update().get(pk=dlq_id)
        if item.status in CLOSED_STATUSES:
            return None
        apply_gate()
        staging.staging_rows_delete(upload.id, [line])
        staging.staging_rows_copy(layout, [(row, line)])
        source = upload.source or "dlq_reprocess"
        counts = apply.apply_staged(
            upload_id=str(upload.id), source=source, lines=[line], lead_events_max=1, write_dlq=False
        )
        if counts.rows_erased:  # the row names an erased person: rolled back, never imported
            raise RowStillInvalid(ERASED_PERSON)
        staging.staging_rows_delete(upload.id, [line])
        lead_id, broker_id = _lead_for_keys(keys)
        dlq_mark_resolved(
            item=item,
            resolution="reprocessed",
            user=user,
            lead_id=lead_id,
            broker_id=broker_id,
            payload=stored_payload,
            event_data={
                "line_number": item.line_number,
                "outcome": "created" if counts.leads_created else "merged",
                "by": getattr(user, "pk", None),
            },
        )
        Upload.objects.filter(pk=upload.id, rows_rejected__gt=0).update(
            rows_rejected=F("rows_rejected") - 1,
            rows_recovered=F("rows_recovered") + 1,
            leads_created=F("leads_created") + counts.leads_created,
            leads_merged=F("leads_merged") + counts.leads_merged,
            updated_at=timezone.now(),
        )
    apply.possible_duplicates_sweep_after_commit(upload_id=str(upload.id), counts=counts)
    return lead_id
