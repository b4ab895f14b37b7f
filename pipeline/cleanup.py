"""The daily cleanups (03:15 Los Angeles): what is only kept for a while."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from equity_connect.throttle import throttles_prune
from pipeline.jobs import CLEANUP, JobReport, JobResult, job_run
from pipeline.models import Upload, UploadStatus

logger = logging.getLogger(__name__)


def cleanup() -> JobReport:
    """The daily cleanups: replay guards > 7 days, consent tokens used/expired > 30 days (the seed's SQL
    functions), the stored files of uploads finished more than UPLOAD_FILE_RETENTION_DAYS ago (their rows, counts
    and DLQ items stay), and rate-limit counters whose window ended more than a day ago. Personal data's retention
    (webhook deliveries among it) is the retention job's (pipeline/retention.py)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT cleanup_old_replay_guards()")
        replay_guards = cursor.fetchone()[0]
        cursor.execute("SELECT cleanup_old_consent_tokens()")
        consent_tokens = cursor.fetchone()[0]
    upload_files = _upload_files_expire()
    throttles = throttles_prune()
    data = {
        "replay_guards": replay_guards,
        "consent_tokens": consent_tokens,
        "upload_files": upload_files,
        "throttles": throttles,
    }
    return JobReport(
        message=f"removed {replay_guards} replay guards, {consent_tokens} consent tokens, "
        f"{upload_files} upload files, {throttles} rate-limit counters",
        data=data,
    )


def _upload_files_expire() -> int:
    """Forget the stored files of long-finished uploads; the files are deleted once the transaction commits."""
    cutoff = timezone.now() - timedelta(days=settings.UPLOAD_FILE_RETENTION_DAYS)
    expired = list(
        Upload.objects.filter(status__in=[UploadStatus.DONE, UploadStatus.FAILED], finished_at__lt=cutoff)
        .exclude(file="")
        .values_list("id", "file")
    )
    if not expired:
        return 0
    Upload.objects.filter(id__in=[upload_id for upload_id, _ in expired]).update(file="")
    names = [name for _, name in expired]

    def delete_files():
        for name in names:
            try:
                default_storage.delete(name)
            except OSError:
                logger.warning("could not delete an expired upload file", extra={"file": name})

    transaction.on_commit(delete_files)
    return len(expired)


def cleanup_run() -> JobResult:
    return job_run(CLEANUP, cleanup)
