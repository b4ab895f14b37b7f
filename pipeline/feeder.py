"""The campaign feeder (DESIGN §8): each weekday, the best FEEDER_DAILY_LIMIT queued leads go to Instantly.

One feed, in the job's transaction (pipeline/jobs.py holds the `job:campaign_feeder` advisory lock):
1. the business date is the intended run date in Los Angeles (django-q2 passes the schedule's intended
   instant; by hand it is today or `--date`); Saturdays and Sundays feed nothing;
2. the ledger: `INSERT INTO feeder_runs (business_date) … ON CONFLICT DO NOTHING`. If the day already has
   a row, nothing is fed — so a day is fed at most once, whether triggered twice, by hand, or by two
   clusters (a concurrent insert waits for the first transaction and then finds the row);
3. candidates come from `mv_contactable_leads` by `lead_score` (its partial index), page by page; each page
   is re-checked live against `leads` (`Lead.objects.feedable()`: consent, verified, assigned, not
   DNC/unsubscribed/bounced/converted, queued, never fed, has an email; and the broker is active) and
   claimed with `FOR UPDATE SKIP LOCKED`, until the limit is reached or the view runs out;
4. the claimed leads are set `active` (the trigger stamps `added_to_campaign_at`) and pushed to Instantly
   in batches of ≤ 1000 (pipeline/instantly.py);
5. created leads keep their Instantly id and get a `campaign_added` event; leads Instantly skipped get a
   `campaign_skipped` event with the reason (and `paused`, unless they were already in the campaign);
   a batch that still fails after its retries goes back to `queued` (added_to_campaign_at NULL) and to
   the DLQ (`source='instantly_push'`, with `retry_after`) — the DLQ retry job pushes it later.

A dry run (or no INSTANTLY_API_KEY) does all of it inside a savepoint that is rolled back: it reports what
would be fed and changes nothing (no ledger row either); it is recorded as a `job_run` event with
`dry_run: true`, and a weekend or an already-fed day as `job_skipped`, so the last `feeder_run` event is
always the last real feed (the "feeder failed" alert reads it).
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from equity_connect.events import record_events
from leads.models import Broker, Lead
from pipeline.dlq import dlq_record
from pipeline.instantly import ALREADY_IN_CAMPAIGN, InstantlyClient, PushResult
from pipeline.jobs import CAMPAIGN_FEEDER, JobReport, JobResult, JobSkipped, job_run
from pipeline.models import DLQSource, PipelineDLQ

logger = logging.getLogger(__name__)

CANDIDATE_PAGE_FACTOR = 4  # MV rows read per page, as a multiple of the leads still needed


def business_date_for(instant: dt.datetime | str | None = None) -> dt.date:
    """The Los Angeles calendar date of `instant` (an aware datetime or ISO string; default: now)."""
    if instant is None:
        instant = timezone.now()
    elif isinstance(instant, str):
        parsed = parse_datetime(instant)
        if parsed is None:
            raise ValueError(f"not an ISO date-time: {instant!r}")
        instant = parsed
    if timezone.is_naive(instant):
        instant = timezone.make_aware(instant, dt.UTC)
    return instant.astimezone(zoneinfo.ZoneInfo(settings.SCHEDULE_TIME_ZONE)).date()


def is_business_day(day: dt.date) -> bool:
    return day.weekday() < 5


@dataclass
class FeedOutcome:
    business_date: dt.date
    dry_run: bool = False
    claimed: list[dict] = field(default_factory=list)
    pushed: int = 0
    skipped: int = 0
    failed: int = 0
    dlq_ids: list[int] = field(default_factory=list)
    note: str = ""


# --- selecting and claiming -----------------------------------------------------------------------------

# Keyset pages over the view's partial index `(lead_score DESC) WHERE queued AND never fed`. Leads without a
# score are not ranked, so not fed (ingestion always scores; the column defaults to 0).
_MV_FIRST_PAGE_SQL = """
SELECT id, lead_score FROM mv_contactable_leads
 WHERE campaign_status = 'queued' AND added_to_campaign_at IS NULL AND lead_score IS NOT NULL
 ORDER BY lead_score DESC, id DESC
 LIMIT %(page)s
"""
_MV_NEXT_PAGE_SQL = """
SELECT id, lead_score FROM mv_contactable_leads
 WHERE campaign_status = 'queued' AND added_to_campaign_at IS NULL AND lead_score IS NOT NULL
   AND (lead_score, id) < (%(after_score)s, %(after_id)s)
 ORDER BY lead_score DESC, id DESC
 LIMIT %(page)s
"""


def leads_claim(*, limit: int) -> list[Lead]:
    """Claim up to `limit` leads to feed, best score first, locking them (`FOR UPDATE SKIP LOCKED`).

    Reads candidates from the materialized view and keeps only those that are still feedable now."""
    claimed: list[Lead] = []
    after = None
    while len(claimed) < limit:
        need = limit - len(claimed)
        page_size = max(need * CANDIDATE_PAGE_FACTOR, 100)
        with connection.cursor() as cursor:
            if after is None:
                cursor.execute(_MV_FIRST_PAGE_SQL, {"page": page_size})
            else:
                cursor.execute(_MV_NEXT_PAGE_SQL, {"after_score": after[1], "after_id": after[0], "page": page_size})
            page = cursor.fetchall()
        if not page:
            break
        after = page[-1]
        live = (
            Lead.objects.feedable()
            .filter(id__in=[row[0] for row in page], assigned_broker__active=True)
            .order_by("-lead_score", "id")
            .select_for_update(skip_locked=True, of=("self",))
            .only(
                "id",
                "email",
                "first_name",
                "last_name",
                "phone",
                "lead_score",
                "assigned_broker_id",
                "property_address",
                "property_city",
                "property_state",
                "property_zip",
            )
        )[:need]
        claimed.extend(live)
        if len(page) < page_size:
            break
    # Pages are read best-first, but a later page may hold a live score above an earlier page's (the view
    # is a snapshot); keep the final order by live score.
    claimed.sort(key=lambda lead: (-(lead.lead_score or 0), str(lead.id)))
    return claimed[:limit]


def instantly_payload(leads: list[Lead]) -> list[dict]:
    """The leads as Instantly's `leads[]` items (email required; our ids and the broker as custom variables)."""
    brokers = {}
    broker_ids = {lead.assigned_broker_id for lead in leads}
    if broker_ids:
        brokers = {b.id: b for b in Broker.objects.filter(id__in=broker_ids).only("id", "name", "email")}
    payload = []
    for lead in leads:
        broker = brokers.get(lead.assigned_broker_id)
        payload.append(
            {
                "email": lead.email,
                "first_name": lead.first_name or "",
                "last_name": lead.last_name or "",
                "phone": lead.phone or "",
                "custom_variables": {
                    "ec_lead_id": str(lead.id),
                    "broker_id": str(lead.assigned_broker_id) if lead.assigned_broker_id else "",
                    "broker_name": broker.name if broker else "",
                    "broker_email": broker.email if broker else "",
                    "property_address": lead.property_address or "",
                    "property_city": lead.property_city or "",
                },
            }
        )
    return payload


# --- applying the push's results --------------------------------------------------------------------------


def push_results_apply(
    *,
    leads: list[Lead],
    result: PushResult,
    campaign_id: str,
    context: dict,
    dlq_row: PipelineDLQ | None = None,
) -> tuple[int, int, int, list[int]]:
    """Write what Instantly did to `leads` (in the order they were pushed). Returns
    (created, skipped, failed, new DLQ row ids). Failed batches go back to the queue and, unless this is
    a retry of `dlq_row` (which the caller updates), to a new DLQ row."""
    created = result.created
    skipped = result.skipped
    events = []
    if created:
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE leads SET instantly_lead_id = %s, updated_at = now() WHERE id = %s",
                [(instantly_id, leads[index].id) for index, instantly_id in created.items()],
            )
        for index, instantly_id in created.items():
            lead = leads[index]
            events.append(
                (
                    "campaign_added",
                    {
                        "lead_id": lead.id,
                        "broker_id": lead.assigned_broker_id,
                        "data": {**context, "instantly_lead_id": instantly_id, "campaign_id": campaign_id},
                    },
                )
            )
    if skipped:
        pause = [leads[index].id for index, reason in skipped.items() if reason != ALREADY_IN_CAMPAIGN]
        if pause:
            # Not in the campaign and not to be offered again automatically: a person decides (admin).
            Lead.objects.filter(id__in=pause).update(campaign_status="paused", updated_at=timezone.now())
        for index, reason in skipped.items():
            lead = leads[index]
            events.append(
                (
                    "campaign_skipped",
                    {
                        "lead_id": lead.id,
                        "broker_id": lead.assigned_broker_id,
                        "status": "failure",
                        "data": {**context, "reason": reason, "campaign_id": campaign_id},
                        "error_message": reason,
                    },
                )
            )
    failed_count, dlq_ids = 0, []
    for batch in result.failed_batches:
        lead_ids = [leads[index].id for index in batch.indexes]
        failed_count += len(lead_ids)
        leads_requeue(lead_ids)
        if dlq_row is None:
            dlq_ids.append(
                push_failure_dead_letter(
                    lead_ids=lead_ids,
                    error=batch.error,
                    attempts=batch.attempts,
                    campaign_id=campaign_id,
                    context=context,
                )
            )
    record_events(events)
    return len(created), len(skipped), failed_count, dlq_ids


def leads_requeue(lead_ids: list) -> int:
    """Back to the queue as never fed (the trigger stamps added_to_campaign_at again when re-fed)."""
    return Lead.objects.filter(id__in=lead_ids, campaign_status="active", instantly_lead_id__isnull=True).update(
        campaign_status="queued", added_to_campaign_at=None, updated_at=timezone.now()
    )


def push_failure_dead_letter(*, lead_ids: list, error: str, attempts: int, campaign_id: str, context: dict) -> int:
    row = dlq_record(
        source=DLQSource.INSTANTLY_PUSH,
        payload={"lead_ids": [str(lead_id) for lead_id in lead_ids], "campaign_id": campaign_id, **context},
        reason=f"Instantly did not accept a batch of {len(lead_ids)} leads after {attempts} attempts; "
        "the leads are back in the queue and the batch is retried automatically",
        error_detail=error,
        max_attempts=settings.DLQ_RETRY_MAX_ATTEMPTS,
        retry_after=timezone.now() + dt.timedelta(minutes=settings.DLQ_RETRY_BACKOFF_MINUTES),
    )
    return row.id


# --- the feed -----------------------------------------------------------------------------------------------


class _DryRunRollback(Exception):
    def __init__(self, outcome: FeedOutcome):
        self.outcome = outcome


def campaign_feed(
    *,
    business_date: dt.date | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    client: InstantlyClient | None = None,
) -> JobReport:
    """Feed one business day (needs the service context; `campaign_feeder_run` provides it and the lock).

    Changes: a `feeder_runs` row; leads -> active (+ instantly_lead_id), or paused (skipped), or back to
    queued (failed push); DLQ rows for failed batches. Records `campaign_added` / `campaign_skipped`
    per lead; the job runner records the `feeder_run` event with this report's data (a dry run: `job_run`).
    Raises JobSkipped on a weekend or when the day was already fed (recorded as `job_skipped`)."""
    business_date = business_date or business_date_for()
    limit = settings.FEEDER_DAILY_LIMIT if limit is None else limit
    client = client or InstantlyClient()
    dry_run = dry_run or client.dry_run
    why_dry = "INSTANTLY_API_KEY is not set" if client.dry_run else "--dry-run"
    base = {"business_date": business_date.isoformat(), "limit": limit, "dry_run": dry_run}

    if not is_business_day(business_date):
        raise JobSkipped(
            f"{business_date:%a %Y-%m-%d} is not a business day: nothing fed", data={**base, "fed": 0, "weekend": True}
        )

    if dry_run:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM feeder_runs WHERE business_date = %s", [business_date])
            fed_run = cursor.fetchone()
        if fed_run:
            raise JobSkipped(
                f"DRY RUN ({why_dry}): {business_date} was already fed (feeder run #{fed_run[0]});"
                " a real run would feed nothing",
                data={**base, "fed": 0, "already_fed": True},
            )
        try:
            with transaction.atomic():
                outcome = _feed(business_date, limit, client, ledger=False)
                raise _DryRunRollback(outcome)
        except _DryRunRollback as rollback:
            outcome = rollback.outcome
        sample = [str(lead["id"]) for lead in outcome.claimed[:10]]
        return JobReport(
            message=f"DRY RUN ({why_dry}): would feed {len(outcome.claimed)} leads for {business_date}; "
            "nothing was sent and nothing changed",
            data={
                **base,
                "dry_run_reason": why_dry,
                "would_feed": len(outcome.claimed),
                "fed": 0,
                "lead_ids_sample": sample,
            },
            event_type="job_run",  # not a `feeder_run`: a dry run must not hide the last real run's failure
        )

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO feeder_runs (business_date, status, dry_run, leads_claimed, leads_pushed, leads_skipped,"
            " error_message, started_at) VALUES (%s, 'running', false, 0, 0, 0, '', now())"
            " ON CONFLICT (business_date) DO NOTHING RETURNING id",
            [business_date],
        )
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                "SELECT id, status, leads_pushed FROM feeder_runs WHERE business_date = %s", [business_date]
            )
            run_id, status, pushed = cursor.fetchone()
            raise JobSkipped(
                f"{business_date} was already fed (feeder run #{run_id}, {status}, {pushed} pushed): nothing fed",
                data={**base, "fed": 0, "already_fed": True, "feeder_run_id": run_id},
            )
        run_id = row[0]

    outcome = _feed(business_date, limit, client, ledger=True, run_id=run_id)
    status = "done" if not outcome.failed else ("push_failed" if not outcome.pushed else "partial")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE feeder_runs SET status = %s, leads_claimed = %s, leads_pushed = %s, leads_skipped = %s,"
            " error_message = %s, finished_at = now() WHERE id = %s",
            [status, len(outcome.claimed), outcome.pushed, outcome.skipped, outcome.note, run_id],
        )
    data = {
        **base,
        "feeder_run_id": run_id,
        "claimed": len(outcome.claimed),
        "fed": outcome.pushed,
        "skipped": outcome.skipped,
        "failed": outcome.failed,
        "dlq_ids": outcome.dlq_ids,
    }
    message = (
        f"fed {outcome.pushed} leads for {business_date} (claimed {len(outcome.claimed)}, "
        f"skipped by Instantly {outcome.skipped}, failed {outcome.failed})"
    )
    if outcome.failed:
        return JobReport(
            message=message + f"; failed batches are in the DLQ {outcome.dlq_ids}",
            data=data,
            status="failure",
            error_message=outcome.note,
        )
    return JobReport(message=message, data=data)


def _feed(
    business_date: dt.date, limit: int, client: InstantlyClient, *, ledger: bool, run_id: int | None = None
) -> FeedOutcome:
    outcome = FeedOutcome(business_date=business_date, dry_run=not ledger)
    leads = leads_claim(limit=limit)
    outcome.claimed = [{"id": lead.id} for lead in leads]
    if not leads:
        outcome.note = "no feedable leads in mv_contactable_leads"
        return outcome
    Lead.objects.filter(id__in=[lead.id for lead in leads]).update(campaign_status="active", updated_at=timezone.now())
    if not ledger:
        return outcome
    result = client.add_leads(instantly_payload(leads))
    context = {"business_date": business_date.isoformat(), "feeder_run_id": run_id}
    pushed, skipped, failed, dlq_ids = push_results_apply(
        leads=leads,
        result=result,
        campaign_id=client.campaign_id,
        context=context,
    )
    outcome.pushed, outcome.skipped, outcome.failed, outcome.dlq_ids = pushed, skipped, failed, dlq_ids
    if failed:
        outcome.note = "; ".join(sorted({batch.error for batch in result.failed_batches}))
    return outcome


def campaign_feeder_run(
    *,
    business_date: dt.date | None = None,
    intended_date: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    client: InstantlyClient | None = None,
) -> JobResult:
    """The feeder as a job: under its advisory lock, with its `feeder_run` event and heartbeat.

    `intended_date` is django-q2's intended run instant (ISO, UTC); its Los Angeles date is the business
    date, so a late or repeated delivery of Monday's task still feeds Monday (once)."""
    if business_date is None and intended_date:
        business_date = business_date_for(intended_date)
    business_date = business_date or business_date_for()
    return job_run(
        CAMPAIGN_FEEDER,
        lambda: campaign_feed(business_date=business_date, limit=limit, dry_run=dry_run, client=client),
        event_type="feeder_run",
    )
