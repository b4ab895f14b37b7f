"""The DLQ retry job (every 15 minutes) and the by-hand DLQ actions of `manage.py dlq`.

Transient failures carry a `retry_after`. When it has passed (and `attempts < max_attempts`), the row is
retried:
- `instantly_push` rows: the batch's leads are claimed again — only those still queued, never fed and
  still contactable (`Lead.objects.feedable()`, `FOR UPDATE SKIP LOCKED`), so a lead that the feeder or an
  earlier retry already pushed, or that unsubscribed meanwhile, is never pushed (never double-added) — and
  pushed to Instantly; a batch that fails again goes back to the queue with the next `retry_after`
  (DLQ_RETRY_BACKOFF_MINUTES doubled per attempt, with jitter), until `max_attempts`, when the row stays
  open for a person;
- other sources: the function named in `DLQ_REPROCESSORS[source]` (the ingestion's reprocess service,
  `f(row) -> bool`) is called; a source without one is left alone.
Each retried row gets a `dlq_reprocessed` event (success, or retry/failure).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from equity_connect.events import record_event
from leads.models import Lead
from pipeline.dlq import OPEN_STATUSES, dlq_mark_resolved
from pipeline.instantly import InstantlyClient
from pipeline.jobs import DLQ_RETRY, JobReport, JobResult, job_run
from pipeline.models import DLQSource, DLQStatus, PipelineDLQ

logger = logging.getLogger(__name__)

RETRY_BATCH = 50  # rows per run: the rest wait for the next run


@dataclass
class RetryOutcome:
    row_id: int
    status: str  # resolved | retrying | gave_up | no_handler | skipped
    message: str


def dlq_rows_due(*, now: dt.datetime | None = None, limit: int = RETRY_BATCH):
    now = now or timezone.now()
    return (
        PipelineDLQ.objects.filter(
            status__in=OPEN_STATUSES, retry_after__isnull=False, retry_after__lte=now, attempts__lt=F("max_attempts")
        )
        .order_by("retry_after", "id")
        .select_for_update(skip_locked=True)[:limit]
    )


def dlq_retry_due(*, now: dt.datetime | None = None, client: InstantlyClient | None = None) -> JobReport:
    """Retry every due row (needs the service context; `dlq_retry_run` provides it and the lock)."""
    outcomes = []
    for row in list(dlq_rows_due(now=now)):
        outcomes.append(dlq_row_retry(row=row, client=client))
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "nothing due"
    return JobReport(message=f"DLQ retry: {summary}", data={"rows": len(outcomes), **counts})


def dlq_retry_run(*, client: InstantlyClient | None = None) -> JobResult:
    return job_run(DLQ_RETRY, lambda: dlq_retry_due(client=client))


def dlq_retry_now_run(*, row_ids: list[int], client: InstantlyClient | None = None) -> JobResult:
    """Retry the given rows now, whatever their `retry_after` (ops, by hand), under the retry job's lock."""

    def work() -> JobReport:
        rows = list(PipelineDLQ.objects.filter(id__in=row_ids).select_for_update().order_by("id"))
        missing = sorted(set(row_ids) - {row.id for row in rows})
        outcomes = [dlq_row_retry(row=row, client=client) for row in rows]
        lines = [f"#{o.row_id}: {o.status} — {o.message}" for o in outcomes]
        lines += [f"#{row_id}: no such DLQ row" for row_id in missing]
        return JobReport(
            message="\n".join(lines) or "nothing to retry",
            data={"rows": [o.row_id for o in outcomes], "missing": missing},
        )

    return job_run(DLQ_RETRY, work)


def dlq_row_retry(*, row: PipelineDLQ, client: InstantlyClient | None = None) -> RetryOutcome:
    """Retry one row (locked by the caller). Changes the row (attempts, status, retry_after, resolution)."""
    if row.status not in OPEN_STATUSES:
        return RetryOutcome(row.id, "skipped", f"row is {row.status}")
    if row.source == DLQSource.INSTANTLY_PUSH:
        return _instantly_push_retry(row, client or InstantlyClient())
    path = settings.DLQ_REPROCESSORS.get(row.source)
    if not path:
        return RetryOutcome(row.id, "no_handler", f"no reprocessor configured for source {row.source!r}")
    try:
        with transaction.atomic():
            ok = bool(import_string(path)(row))
        error = "" if ok else "the reprocessor reported failure"
    except Exception as exc:
        logger.exception("DLQ reprocessor %s failed for row %s", path, row.id)
        ok, error = False, f"{type(exc).__name__}: {exc}"
    if ok:
        return _resolve(row, note=f"reprocessed by {path}")
    return _failed_attempt(row, error)


def _instantly_push_retry(row: PipelineDLQ, client: InstantlyClient) -> RetryOutcome:
    from pipeline.feeder import instantly_payload, push_results_apply

    if client.dry_run:
        return RetryOutcome(row.id, "skipped", "dry-run: INSTANTLY_API_KEY is not set; nothing sent")
    lead_ids = list((row.payload or {}).get("lead_ids") or [])
    leads = list(
        Lead.objects.feedable()
        .filter(id__in=lead_ids, instantly_lead_id__isnull=True)
        .order_by("-lead_score", "id")
        .select_for_update(skip_locked=True, of=("self",))
    )
    if not leads:
        return _resolve(
            row, note=f"nothing left to push: the {len(lead_ids)} leads were fed since, or are no longer contactable"
        )
    Lead.objects.filter(id__in=[lead.id for lead in leads]).update(campaign_status="active", updated_at=timezone.now())
    result = client.add_leads(instantly_payload(leads))
    context = {"business_date": (row.payload or {}).get("business_date"), "dlq_id": row.id}
    created, skipped, failed, _ = push_results_apply(
        leads=leads,
        result=result,
        campaign_id=client.campaign_id,
        context=context,
        dlq_row=row,
    )
    if failed:
        errors = "; ".join(sorted({batch.error for batch in result.failed_batches}))
        return _failed_attempt(row, errors, extra={"pushed": created, "skipped": skipped, "failed": failed})
    not_pushed = len(lead_ids) - len(leads)
    return _resolve(
        row,
        note=f"pushed {created}, skipped by Instantly {skipped}; {not_pushed} of the batch were "
        "already fed or no longer contactable",
    )


def _resolve(row: PipelineDLQ, *, note: str) -> RetryOutcome:
    row.attempts += 1
    row.retry_after = None
    row.save(update_fields=["attempts", "retry_after", "updated_at"])
    dlq_mark_resolved(item=row, resolution="retried", note=note)  # records `dlq_reprocessed`
    return RetryOutcome(row.id, "resolved", note)


def _failed_attempt(row: PipelineDLQ, error: str, extra: dict | None = None) -> RetryOutcome:
    row.attempts += 1
    row.error_detail = error[:4000]
    if row.attempts >= row.max_attempts:
        row.status = DLQStatus.OPEN
        row.retry_after = None  # no more automatic retries: a person decides (`manage.py dlq retry|discard`)
        outcome, status = "gave_up", "failure"
        message = f"attempt {row.attempts} failed ({error}); no automatic retries left"
    else:
        row.status = DLQStatus.RETRYING
        row.retry_after = timezone.now() + dlq_backoff(row.attempts)
        outcome, status = "retrying", "retry"
        message = f"attempt {row.attempts} failed ({error}); next try after {row.retry_after:%Y-%m-%d %H:%M %Z}"
    row.save(update_fields=["attempts", "error_detail", "status", "retry_after", "updated_at"])
    record_event(
        "dlq_reprocessed",
        broker_id=row.broker_id,
        lead_id=row.lead_id,
        upload_id=row.upload_id,
        status=status,
        error_message=error[:2000],
        data={"dlq_id": row.id, "source": row.source, "attempt": row.attempts, **(extra or {})},
    )
    return RetryOutcome(row.id, outcome, message)


def dlq_backoff(attempts: int) -> dt.timedelta:
    """DLQ_RETRY_BACKOFF_MINUTES * 2^(attempts-1), plus up to 20% jitter so retries do not bunch up."""
    minutes = settings.DLQ_RETRY_BACKOFF_MINUTES * 2 ** max(0, attempts - 1)
    return dt.timedelta(minutes=minutes * (1 + random.uniform(0, 0.2)))  # noqa: S311 (jitter)
