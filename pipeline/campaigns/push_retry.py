"""The DLQ retry job (every 15 minutes, and `manage.py dlq retry` by hand): failed Instantly pushes again.

A batch Instantly did not accept is a DLQ row (`source='instantly_push'`) with a `retry_after`. When it
has passed (and `attempts < max_attempts`), the batch's leads are claimed again — only those still
queued, never fed and still contactable (`Lead.objects.feedable()`, `FOR UPDATE SKIP LOCKED`), so a lead
that the feeder or an earlier retry already pushed, or that unsubscribed meanwhile, is never pushed
(never double-added) — and pushed to Instantly. A batch that fails again waits for the next `retry_after`
(DLQ_RETRY_BACKOFF_MINUTES doubled per attempt, with jitter), until `max_attempts`, when the row stays open
for a person. Rows of other sources (rejected upload rows, unknown webhook events) are not transient: a
person fixes and reprocesses or discards them in the admin. Each retried row gets a `dlq_reprocessed`
event (success, or retry/failure).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from leads.models import Lead
from pipeline.dlq import OPEN_STATUSES, dlq_attempt_failed, dlq_mark_resolved
from pipeline.jobs import DLQ_RETRY, JobReport, JobResult, job_run
from pipeline.models import DLQSource, PipelineDLQ

from .instantly import InstantlyClient
from .pushes import instantly_payload, push_results_apply

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
            source=DLQSource.INSTANTLY_PUSH,
            status__in=OPEN_STATUSES,
            retry_after__isnull=False,
            retry_after__lte=now,
            attempts__lt=F("max_attempts"),
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
    message = "only Instantly pushes are retried here: reprocess or discard this row in the admin"
    return RetryOutcome(row.id, "no_handler", message)


def _instantly_push_retry(row: PipelineDLQ, client: InstantlyClient) -> RetryOutcome:
    if client.dry_run:
        return RetryOutcome(row.id, "skipped", "dry-run: INSTANTLY_API_KEY is not set; nothing sent")
    lead_ids = list((row.payload or {}).get("lead_ids") or [])
    # The batch goes to the campaign it failed for (an experiment's variant), not always the default one.
    client = client.for_campaign((row.payload or {}).get("campaign_id"))
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
    dlq_mark_resolved(item=row, resolution="retried", note=note, count_attempt=True)  # records `dlq_reprocessed`
    return RetryOutcome(row.id, "resolved", note)


def _failed_attempt(row: PipelineDLQ, error: str, extra: dict | None = None) -> RetryOutcome:
    attempt = row.attempts + 1
    if attempt >= row.max_attempts:
        retry_after = None  # no more automatic retries: a person decides (`manage.py dlq retry|discard`)
        outcome, message = "gave_up", f"attempt {attempt} failed ({error}); no automatic retries left"
    else:
        retry_after = timezone.now() + dlq_backoff(attempt)
        outcome = "retrying"
        message = f"attempt {attempt} failed ({error}); next try after {retry_after:%Y-%m-%d %H:%M %Z}"
    dlq_attempt_failed(item=row, error=error, retry_after=retry_after, extra=extra)
    return RetryOutcome(row.id, outcome, message)


def dlq_backoff(attempts: int) -> dt.timedelta:
    """DLQ_RETRY_BACKOFF_MINUTES * 2^(attempts-1), plus up to 20% jitter so retries do not bunch up."""
    minutes = settings.DLQ_RETRY_BACKOFF_MINUTES * 2 ** max(0, attempts - 1)
    return dt.timedelta(minutes=minutes * (1 + random.uniform(0, 0.2)))  # noqa: S311 (jitter)
