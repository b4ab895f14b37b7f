"""A person's hand on an upload: cancel it, or run it again (the uploads admin calls these; nothing else does).

The status set is a partner contract (received, processing, done, failed), so a cancelled upload is `failed`,
with "cancelled by <user>" as its error and `cancelled_at`/`cancelled_by` set, and its replay guard is released
(the partner may send the same bytes again). Exactly once still holds:
- a worker that is running the upload sees the cancel at its next staged batch (its progress update is
  conditional) or at its apply, which locks the upload's row first: a cancel that committed before wins and the
  worker applies nothing; a cancel that comes while the apply runs waits at most CANCEL_LOCK_WAIT and is refused
  (the upload is about to be done);
- a re-run claims the replay guard again for a failed upload: when the same partner sent the same bytes again
  since (a new upload holds the guard), the re-run is refused, as running both would apply the file twice. A stuck
  upload (received or processing, no worker holding it) keeps its guard and is simply queued again; the ingestion's
  upload lock and its `done` check keep two runs from both applying it.
"""

from __future__ import annotations

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from pipeline.intake.services import upload_enqueue
from pipeline.models import IngestReplayGuard, Upload, UploadStatus

from . import staging
from .locks import upload_lock_held
from .retry import sqlstate

CANCEL_LOCK_WAIT = "3s"  # a staged batch's progress update holds the row for milliseconds; an apply for longer
UNFINISHED = (UploadStatus.RECEIVED, UploadStatus.PROCESSING)


class UploadControlError(Exception):
    """The upload cannot be cancelled or re-run now; the message is safe to show."""


def _lock_upload(upload_id) -> Upload:
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{CANCEL_LOCK_WAIT}'")
    try:
        return Upload.objects.select_for_update(of=("self",)).select_related("partner").get(pk=upload_id)
    except OperationalError as error:
        if sqlstate(error) == "55P03":  # lock_not_available
            raise UploadControlError(
                "the upload is being applied right now and will be done in a moment; it can no longer be cancelled"
            ) from error
        raise


def _who(user) -> str:
    return user.get_username() if getattr(user, "pk", None) else "system"


def upload_cancel(*, upload_id, user) -> Upload:
    """Cancel a `received` or `processing` upload: it becomes `failed` ("cancelled by <user>"), its replay guard is
    released, and (when no worker holds it) what it staged is deleted. A running worker stops at its next batch.

    Records `upload_cancelled` (not `upload_failed`: a decision, not a fault for the alert). Raises
    UploadControlError for an upload that is done or failed already, or whose apply is committing."""
    with service_context():
        upload = _lock_upload(upload_id)
        if upload.status not in UNFINISHED:
            raise UploadControlError(
                f"only a received or processing upload can be cancelled; this one is {upload.status}"
            )
        now = timezone.now()
        Upload.objects.filter(pk=upload.pk).update(
            status=UploadStatus.FAILED,
            error_message=f"cancelled by {_who(user)}",
            cancelled_at=now,
            cancelled_by=user if getattr(user, "pk", None) else None,
            progress=0.0,
            rows_total=0,
            rows_rejected=0,
            finished_at=now,
            updated_at=now,
        )
        released, _ = IngestReplayGuard.objects.filter(upload_id=upload.pk).delete()
        worker_on_it = upload_lock_held(upload.pk)
        if not worker_on_it:
            staging.staging_rows_delete(upload.pk)  # a running worker deletes its own when it stops
        record_event(
            "upload_cancelled",
            upload_id=upload.pk,
            broker_id=upload.broker_id,
            status="failure",
            error_message=f"cancelled by {_who(user)}",
            data={
                "by": _who(user),
                "was": upload.status,
                "worker_running": worker_on_it,
                "replay_guard_released": bool(released),
            },
        )
        upload.refresh_from_db()
    return upload


def upload_rerun(*, upload_id, user) -> Upload:
    """Queue a failed or stuck upload again (stuck: received or processing with no worker holding it).

    A failed upload claims its replay guard again first. Resets it to `received` (the ingestion resets the counts
    when it starts), records `upload_rerun` and enqueues the ingestion on commit. Raises UploadControlError for a
    done upload, one a worker is processing, or one whose file the same partner has sent again since."""
    with service_context():
        upload = _lock_upload(upload_id)
        if upload.status == UploadStatus.DONE:
            raise UploadControlError("the upload is done: there is nothing to re-run (fix its rows in the DLQ)")
        if upload.status in UNFINISHED and upload_lock_held(upload.pk):
            raise UploadControlError("a worker is processing this upload right now: it is not stuck")
        if not upload.file:
            raise UploadControlError("the upload's file is gone (retention): ask the partner to send it again")
        if upload.status == UploadStatus.FAILED:
            guard_id = IngestReplayGuard.objects.claim(content_sha256=upload.content_sha256, partner=upload.partner)
            if guard_id is None:
                other = IngestReplayGuard.objects.upload_id_for(
                    content_sha256=upload.content_sha256, partner=upload.partner
                )
                raise UploadControlError(
                    f"the same file was received again since, as upload {other}: re-running this one would apply "
                    "it twice"
                )
            IngestReplayGuard.objects.filter(pk=guard_id).update(upload=upload)
        was = upload.status
        now = timezone.now()
        Upload.objects.filter(pk=upload.pk).update(
            status=UploadStatus.RECEIVED,
            error_message="",
            cancelled_at=None,
            cancelled_by=None,
            progress=0.0,
            finished_at=None,
            enqueued_at=now,
            updated_at=now,
        )
        record_event(
            "upload_rerun",
            upload_id=upload.pk,
            broker_id=upload.broker_id,
            status="retry",
            data={"by": _who(user), "was": was, "previous_error": upload.error_message[:200]},
        )
        transaction.on_commit(lambda: upload_enqueue(upload.pk))
        upload.refresh_from_db()
    return upload
