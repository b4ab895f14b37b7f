"""How every scheduled job runs: `job_run`, its lock, its event and its heartbeat.

`job_run(name, work)`:
- opens the jobs' database context (`service_context()`: one transaction, the `service_role`);
- takes the transaction-scoped advisory lock `pg_try_advisory_xact_lock(hashtext('job:<name>'))`. If
  another run holds it, records a `job_skipped` event and returns at once. The lock ends with the
  transaction, so a job that fails (or a worker that dies) never leaves it held;
- runs `work()` in a savepoint: if it raises, its writes are rolled back but the failure is still
  recorded (and committed) in the outer transaction;
- records one `pipeline_events` row with the job's status and `duration_ms` (`mv_refreshed` for the
  MV refresh, `feeder_run` for the feeder, `job_run` for the others), and upserts the job's
  `JobHeartbeat` row (named like its schedule);
- logs with the fields `job` and `job_run_id` on every line of the run (the event's data has both too), and
  ends with one line carrying `status` and `duration_ms`.

A job's `work()` returns a `JobReport` (a line for people, data for the event, a status). The jobs
themselves live with their concern: the MV refresh in pipeline/campaigns/contactable.py, the feeder in
pipeline/campaigns/feeder.py, the push retry in pipeline/campaigns/push_retry.py, the alerts in
pipeline/monitoring/alerts.py, the cleanups in pipeline/cleanup.py, retention in pipeline/retention.py, the
event partitions in pipeline/partitions.py, the learned score's training in pipeline/campaigns/learning.py;
pipeline/tasks.py runs them.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction

from equity_connect.db import service_context
from equity_connect.events import record_event
from equity_connect.logging import log_context
from pipeline.models import JobHeartbeat

logger = logging.getLogger(__name__)

# Job names are the schedules' names (pipeline/schedules.py) and the heartbeat rows' names.
MV_REFRESH = "refresh_contactable_leads"
CAMPAIGN_FEEDER = "campaign_feeder"
CLEANUP = "cleanup"
RETENTION = "retention"
EVENT_PARTITIONS = "event_partitions"
DLQ_RETRY = "dlq_retry"
ALERTS = "alerts_evaluate"
UPLOAD_SWEEP = "uploads_sweep"
CONTACTS_ENCRYPT = "contacts_encrypt"
SUPPRESSION_SYNC = "suppressions_instantly_sync"
NOTIFICATIONS_MAIL = "broker_notifications_mail"
SCORE_MODEL_TRAIN = "score_model_train"
SMS_FEEDER = "sms_feeder"
LEAD_SEARCH_FOLD = "lead_search_fold"
# The heartbeat /healthz reads to know the scheduler is alive (pipeline/monitoring/health.py).
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
    JobHeartbeat.objects.touch(name, status=status, duration_ms=duration_ms)


def job_run(
    name: str, work: Callable[[], JobReport], *, event_type: str = "job_run", budget: str = "job"
) -> JobResult:
    """Run `work` as job `name` under its advisory lock; record its event and heartbeat. Never raises for
    a failure of `work` (the result says `failure`); the caller decides whether that is an error."""
    started = time.monotonic()
    run_id = uuid.uuid4().hex
    # Every line logged during the run carries the job and this run's id (equity_connect/logging.py); the run's
    # event carries the id too, so a log search starts from the admin's event trail.
    with log_context(job=name, job_run_id=run_id):
        result = _job_run(name, work, run_id, started, event_type=event_type, budget=budget)
        logger.info(
            "job %s: %s",
            name,
            result.status,
            extra={"status": result.status, "duration_ms": result.duration_ms},
        )
    return result


def _job_run(name: str, work: Callable[[], JobReport], run_id: str, started: float, *, event_type: str, budget: str):
    ids = {"job": name, "job_run_id": run_id}
    with service_context(budget=budget):
        if not job_lock_try(name):
            message = f"{name}: skipped, another run holds the lock"
            record_event("job_skipped", data={**ids, "reason": "lock_held"})
            logger.info(message)
            return JobResult(name=name, status="skipped", message=message)
        try:
            with transaction.atomic():
                report = work()
        except JobSkipped as skip:
            record_event("job_skipped", data={**skip.data, **ids, "reason": skip.reason})
            heartbeat_touch(name, status="skipped", duration_ms=ms_since(started))
            return JobResult(
                name=name,
                status="skipped",
                message=f"{name}: skipped, {skip.reason}",
                duration_ms=ms_since(started),
                data=skip.data,
            )
        except Exception as exc:
            duration_ms = ms_since(started)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            logger.exception("job %s failed", name, extra={"duration_ms": duration_ms})
            record_event(event_type, data=ids, duration_ms=duration_ms, status="failure", error_message=error)
            heartbeat_touch(name, status="failure", duration_ms=duration_ms)
            return JobResult(
                name=name,
                status="failure",
                message=f"{name}: FAILED: {error}",
                duration_ms=duration_ms,
                error_message=error,
            )
        duration_ms = ms_since(started)
        record_event(
            report.event_type or event_type,
            data={**ids, **report.data},
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


def ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
