"""How every scheduled job runs (DESIGN §8), and the small jobs themselves (MV refresh, cleanups).

`job_run(name, work)`:
- opens the jobs' database context (`service_context()`: one transaction, the `service_role`);
- takes the transaction-scoped advisory lock `pg_try_advisory_xact_lock(hashtext('job:<name>'))`. If
  another run holds it, records a `job_skipped` event and returns at once. The lock ends with the
  transaction, so a job that fails (or a worker that dies) never leaves it held;
- runs `work()` in a savepoint: if it raises, its writes are rolled back but the failure is still
  recorded (and committed) in the outer transaction;
- records one `pipeline_events` row with the job's status and `duration_ms` (`mv_refreshed` for the
  MV refresh, `feeder_run` for the feeder, `job_run` for the others), and upserts the job's
  `JobHeartbeat` row (named like its schedule).

A job's `work()` returns a `JobReport` (a line for people, data for the event, a status).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event

logger = logging.getLogger(__name__)

# Job names are the schedules' names (pipeline/schedules.py) and the heartbeat rows' names.
MV_REFRESH = "refresh_contactable_leads"
CAMPAIGN_FEEDER = "campaign_feeder"
CLEANUP = "cleanup"
DLQ_RETRY = "dlq_retry"
ALERTS = "alerts_evaluate"
# The heartbeat /healthz reads to know the scheduler is alive (contract with pipeline/health.py).
SCHEDULER_HEARTBEAT = "scheduler"


@dataclass
class JobReport:
    message: str
    data: dict = field(default_factory=dict)
    status: str = "success"  # success | failure | retry
    error_message: str | None = None
    event_type: str | None = None  # instead of the job's usual event (e.g. a dry run is not a real run)


@dataclass
class JobResult:
    name: str
    status: str  # success | failure | retry | skipped
    message: str
    duration_ms: int = 0
    data: dict = field(default_factory=dict)
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("success", "skipped")


class JobSkipped(Exception):
    """Raised by a job's work when there is nothing for it to do: the work is being done elsewhere (a
    refresh lock held) or was already done (the day already fed). Recorded as `job_skipped`, not as a run,
    so the job's last real run (which alerts look at) stays the last event of its type."""

    def __init__(self, reason: str, data: dict | None = None):
        super().__init__(reason)
        self.reason = reason
        self.data = data or {}


def job_lock_try(name: str) -> bool:
    """Take the job's transaction-scoped advisory lock; False if another transaction holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [f"job:{name}"])
        return bool(cursor.fetchone()[0])


def heartbeat_touch(name: str, *, status: str = "", duration_ms: int | None = None) -> None:
    """Upsert a `job_heartbeats` row (needs the service context)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO job_heartbeats (name, last_seen_at, last_status, last_duration_ms)"
            " VALUES (%s, now(), %s, %s) ON CONFLICT (name) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at,"
            " last_status = EXCLUDED.last_status, last_duration_ms = EXCLUDED.last_duration_ms",
            [name, status, duration_ms],
        )


def job_run(name: str, work: Callable[[], JobReport], *, event_type: str = "job_run") -> JobResult:
    """Run `work` as job `name` under its advisory lock; record its event and heartbeat. Never raises for
    a failure of `work` (the result says `failure`); the caller decides whether that is an error."""
    started = time.monotonic()
    with service_context():
        if not job_lock_try(name):
            message = f"{name}: skipped, another run holds the lock"
            record_event("job_skipped", data={"job": name, "reason": "lock_held"})
            logger.info(message, extra={"job": name})
            return JobResult(name=name, status="skipped", message=message)
        try:
            with transaction.atomic():
                report = work()
        except JobSkipped as skip:
            record_event("job_skipped", data={**skip.data, "job": name, "reason": skip.reason})
            heartbeat_touch(name, status="skipped", duration_ms=_ms_since(started))
            return JobResult(
                name=name,
                status="skipped",
                message=f"{name}: skipped, {skip.reason}",
                duration_ms=_ms_since(started),
                data=skip.data,
            )
        except Exception as exc:
            duration_ms = _ms_since(started)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            logger.exception("job %s failed", name, extra={"job": name})
            record_event(
                event_type, data={"job": name}, duration_ms=duration_ms, status="failure", error_message=error
            )
            heartbeat_touch(name, status="failure", duration_ms=duration_ms)
            return JobResult(
                name=name,
                status="failure",
                message=f"{name}: FAILED: {error}",
                duration_ms=duration_ms,
                error_message=error,
            )
        duration_ms = _ms_since(started)
        record_event(
            report.event_type or event_type,
            data={"job": name, **report.data},
            duration_ms=duration_ms,
            status=report.status,
            error_message=report.error_message,
        )
        heartbeat_touch(name, status=report.status, duration_ms=duration_ms)
    return JobResult(
        name=name,
        status=report.status,
        message=report.message,
        duration_ms=duration_ms,
        data=report.data,
        error_message=report.error_message,
    )


def scheduler_heartbeat() -> None:
    """The scheduler is alive: every scheduled task calls this (pipeline/tasks.py)."""
    with service_context():
        heartbeat_touch(SCHEDULER_HEARTBEAT, status="success")


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# --- the small jobs -------------------------------------------------------------------------------------


def contactable_leads_refresh() -> JobReport:
    """`refresh_contactable_leads()`: REFRESH MATERIALIZED VIEW CONCURRENTLY under the SQL function's own
    advisory lock. Waits at most MV_REFRESH_LOCK_TIMEOUT_SECONDS for the view's lock, then fails."""
    with connection.cursor() as cursor:
        lock_timeout_ms = max(1, int(settings.MV_REFRESH_LOCK_TIMEOUT_SECONDS * 1000))
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{lock_timeout_ms}ms"])
        started = time.monotonic()
        cursor.execute("SELECT refresh_contactable_leads()")
        refreshed = cursor.fetchone()[0]
        refresh_ms = _ms_since(started)
        if not refreshed:
            raise JobSkipped("another refresh of mv_contactable_leads is running")
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE campaign_status = 'queued' AND added_to_campaign_at IS NULL)"
            " FROM mv_contactable_leads"
        )
        rows, queued = cursor.fetchone()
    return JobReport(
        message=f"refreshed mv_contactable_leads in {refresh_ms} ms: {rows} contactable leads, {queued} queued",
        data={"rows": rows, "queued": queued, "refresh_ms": refresh_ms},
    )


def contactable_leads_refresh_run() -> JobResult:
    return job_run(MV_REFRESH, contactable_leads_refresh, event_type="mv_refreshed")


def cleanup() -> JobReport:
    """The daily cleanups: replay guards > 7 days, consent tokens used/expired > 30 days (the seed's SQL
    functions), inbound webhook dedupe records older than WEBHOOK_DELIVERY_RETENTION_DAYS, and the stored files
    of uploads finished more than UPLOAD_FILE_RETENTION_DAYS ago (their rows, counts and DLQ items stay)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT cleanup_old_replay_guards()")
        replay_guards = cursor.fetchone()[0]
        cursor.execute("SELECT cleanup_old_consent_tokens()")
        consent_tokens = cursor.fetchone()[0]
        cursor.execute(
            "DELETE FROM webhook_deliveries WHERE received_at < %s",
            [timezone.now() - timedelta(days=settings.WEBHOOK_DELIVERY_RETENTION_DAYS)],
        )
        deliveries = cursor.rowcount
    upload_files = _upload_files_expire()
    data = {
        "replay_guards": replay_guards,
        "consent_tokens": consent_tokens,
        "webhook_deliveries": deliveries,
        "upload_files": upload_files,
    }
    return JobReport(
        message=f"removed {replay_guards} replay guards, {consent_tokens} consent tokens, "
        f"{deliveries} webhook delivery records, {upload_files} upload files",
        data=data,
    )


def _upload_files_expire() -> int:
    """Forget the stored files of long-finished uploads; the files are deleted once the transaction commits."""
    from django.core.files.storage import default_storage

    from pipeline.models import Upload, UploadStatus

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
