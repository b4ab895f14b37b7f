"""The campaign feeder: each weekday, the best FEEDER_DAILY_LIMIT queued leads go to Instantly (less the leads the
SMS feed texted that day when the limit is shared: pipeline/campaigns/limits.py).

One feed, in the job's transaction (pipeline/jobs.py holds the `job:campaign_feeder` advisory lock):
1. the business date is the intended run date in Los Angeles (django-q2 passes the schedule's intended
   instant; by hand it is today or `--date`); Saturdays, Sundays and the holidays of the calendar
   (`business_holidays`, pipeline/campaigns/calendar.py: US federal holidays by default, edited in the admin)
   feed nothing;
2. the ledger: `INSERT INTO feeder_runs (business_date) … ON CONFLICT DO NOTHING`. If the day already has
   a row, nothing is fed — so a day is fed at most once, whether triggered twice, by hand, or by two
   clusters (a concurrent insert waits for the first transaction and then finds the row);
3. candidates come from `mv_contactable_leads` by `lead_score` (its partial index), page by page; each page
   is re-checked live against `leads` (`Lead.objects.feedable()`: consent to e-mail, a verified e-mail,
   assigned, not DNC/unsubscribed/bounced/converted, not suppressed for e-mail, queued, never fed; and the
   broker is active) and against the suppression list itself (leads/suppressions/selectors.py), and
   claimed with `FOR UPDATE SKIP LOCKED`, until the limit is reached or the view runs out;
   a share of the day's leads (FEEDER_EXPLORATION_SHARE, default 10%) is first drawn at random from all the
   view's candidates, whatever their score, with the same live checks: outcomes exist only for leads that were
   fed, so the learned score (leads/learned/) needs some leads the score did not choose. Their `campaign_added`
   events say `exploration: true` and the ledger row counts them (`leads_explored`);
4. the claimed leads are set `active` (the trigger stamps `added_to_campaign_at`) and pushed to Instantly
   in batches of ≤ 1000 (pipeline/campaigns/instantly.py, pipeline/campaigns/pushes.py), to the campaign of
   each lead's variant when an experiment runs (pipeline/experiments/routing.py, which records the assignment);
5. created leads keep their Instantly id and get a `campaign_added` event; leads Instantly skipped get a
   `campaign_skipped` event with the reason (and `paused`, unless they were already in the campaign);
   a batch that still fails after its retries goes back to `queued` (added_to_campaign_at NULL) and to
   the DLQ (`source='instantly_push'`, with `retry_after`) — the DLQ retry job pushes it later.

A dry run (or no INSTANTLY_API_KEY) does all of it inside a savepoint that is rolled back: it reports what
would be fed and changes no lead (it leaves a `feeder_runs` row marked `dry_run`, never the day's feed); it is
recorded as a `job_run` event with `dry_run: true`, and a weekend, a holiday or an already-fed day as
`job_skipped`, so the last `feeder_run` event is always the last real feed (the "feeder failed" alert reads it).
A run or dry run short of the limit says why (pipeline/campaigns/shortfall.py).
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

from leads.models import Lead
from leads.suppressions.selectors import leads_bound_for
from pipeline.experiments.routing import feed_routes
from pipeline.jobs import CAMPAIGN_FEEDER, JobReport, JobResult, JobSkipped, job_run
from pipeline.models import FeederRun

from .calendar import holiday_on
from .instantly import InstantlyClient
from .limits import feed_limit_remaining
from .pushes import instantly_payload, push_results_apply
from .shortfall import feed_funnel, feed_shortfall

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


@dataclass
class FeedOutcome:
    business_date: dt.date
    dry_run: bool = False
    claimed: list[dict] = field(default_factory=list)
    explored: int = 0
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
# How many leads the view offered this morning (the dead-man's switch compares it with the leads fed).
_MV_READY_COUNT_SQL = """
SELECT count(*) FROM mv_contactable_leads
 WHERE campaign_status = 'queued' AND added_to_campaign_at IS NULL AND lead_score IS NOT NULL
"""
# Exploration: candidates in random order, whatever their score.
_MV_RANDOM_PAGE_SQL = """
SELECT id FROM mv_contactable_leads
 WHERE campaign_status = 'queued' AND added_to_campaign_at IS NULL AND lead_score IS NOT NULL
 ORDER BY random()
 LIMIT %(page)s
"""
EXPLORATION_ATTEMPTS = 3
_MV_NEXT_PAGE_SQL = """
SELECT id, lead_score FROM mv_contactable_leads
 WHERE campaign_status = 'queued' AND added_to_campaign_at IS NULL AND lead_score IS NOT NULL
   AND (lead_score, id) < (%(after_score)s, %(after_id)s)
 ORDER BY lead_score DESC, id DESC
 LIMIT %(page)s
"""


def _live_claim(ids: list, need: int, exclude: set) -> list[Lead]:
    """Of `ids`, up to `need` leads still feedable now (live re-check), locked; by live score."""
    live = (
        Lead.objects.feedable()
        .filter(id__in=[i for i in ids if i not in exclude], assigned_broker__active=True)
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
    live = list(live)
    # The suppression list itself, read at send time: an entry added since the lead was marked (or that
    # a mark missed) still stops it.
    bound = leads_bound_for(lead_ids=[lead.id for lead in live], channel="email")
    return [lead for lead in live if lead.id not in bound]


def leads_claim_exploration(*, limit: int) -> list[Lead]:
    """Claim up to `limit` leads drawn at random from all the view's candidates (whatever their score), with the
    same live checks and locks as `leads_claim`."""
    claimed: list[Lead] = []
    tried: set = set()
    for _ in range(EXPLORATION_ATTEMPTS):
        need = limit - len(claimed)
        if need <= 0:
            break
        page_size = max(need * CANDIDATE_PAGE_FACTOR, 100)
        with connection.cursor() as cursor:
            cursor.execute(_MV_RANDOM_PAGE_SQL, {"page": page_size})
            page = [row[0] for row in cursor.fetchall()]
        fresh = [i for i in page if i not in tried]
        tried.update(fresh)
        if fresh:
            # `_live_claim` orders by score: shuffle back into the random draw's order before taking `need`.
            order = {lead_id: position for position, lead_id in enumerate(fresh)}
            live = sorted(_live_claim(fresh, len(fresh), set()), key=lambda lead: order[lead.id])
            claimed.extend(live[:need])
        if len(page) < page_size:
            break
    return claimed


def leads_claim(*, limit: int, exclude: set | None = None) -> list[Lead]:
    """Claim up to `limit` leads to feed, best score first, locking them (`FOR UPDATE SKIP LOCKED`).

    Reads candidates from the materialized view and keeps only those that are still feedable now; `exclude`
    holds leads this feed already claimed (the exploration draw)."""
    exclude = exclude or set()
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
        claimed.extend(_live_claim([row[0] for row in page], need, exclude))
        if len(page) < page_size:
            break
    # Pages are read best-first, but a later page may hold a live score above an earlier page's (the view
    # is a snapshot); keep the final order by live score.
    claimed.sort(key=lambda lead: (-(lead.lead_score or 0), str(lead.id)))
    return claimed[:limit]


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
    Raises JobSkipped on a weekend, on a holiday of the calendar, or when the day was already fed (recorded as
    `job_skipped`)."""
    business_date = business_date or business_date_for()
    # FEEDER_DAILY_LIMIT less what the SMS feed texted today, when SMS shares the limit (limits.py).
    limit = feed_limit_remaining("email", business_date) if limit is None else limit
    client = client or InstantlyClient()
    dry_run = dry_run or client.dry_run
    why_dry = "INSTANTLY_API_KEY is not set" if client.dry_run else "--dry-run"
    base = {"business_date": business_date.isoformat(), "limit": limit, "dry_run": dry_run}

    if business_date.weekday() >= 5:
        raise JobSkipped(
            f"{business_date:%a %Y-%m-%d} is not a business day: nothing fed", data={**base, "fed": 0, "weekend": True}
        )
    holiday = holiday_on(business_date)
    if holiday is not None:
        raise JobSkipped(
            f"{business_date:%a %Y-%m-%d} is a holiday ({holiday.name}): nothing fed",
            data={**base, "fed": 0, "holiday": holiday.name},
        )

    if dry_run:
        fed_run = (
            FeederRun.objects.filter(business_date=business_date, dry_run=False).values_list("id", flat=True).first()
        )
        if fed_run:
            raise JobSkipped(
                f"DRY RUN ({why_dry}): {business_date} was already fed (feeder run #{fed_run});"
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
        shortfall = feed_shortfall(
            limit=limit, got=len(outcome.claimed), view_offers=_view_offers(), funnel=feed_funnel()
        )
        # The dry run's own ledger row (never the day's real one: feeder_runs is unique per day among real runs).
        FeederRun.objects.create(
            business_date=business_date,
            status="dry_run",
            dry_run=True,
            leads_claimed=len(outcome.claimed),
            error_message=shortfall.text() if shortfall else "",
            finished_at=timezone.now(),
        )
        return JobReport(
            message=f"DRY RUN ({why_dry}): would feed {len(outcome.claimed)} leads for {business_date}; "
            "nothing was sent and no lead changed" + (f". Short: {shortfall.text()}" if shortfall else ""),
            data={
                **base,
                "dry_run_reason": why_dry,
                "would_feed": len(outcome.claimed),
                "fed": 0,
                "lead_ids_sample": sample,
                **({"shortfall": shortfall.as_data()} if shortfall else {}),
            },
            event_type="job_run",  # not a `feeder_run`: a dry run must not hide the last real run's failure
        )

    run_id = FeederRun.objects.open_day(business_date)
    if run_id is None:
        run = FeederRun.objects.get(business_date=business_date, dry_run=False)
        raise JobSkipped(
            f"{business_date} was already fed (feeder run #{run.pk}, {run.status}, {run.leads_pushed} pushed):"
            " nothing fed",
            data={**base, "fed": 0, "already_fed": True, "feeder_run_id": run.pk},
        )

    ready, funnel = _view_offers(), feed_funnel()
    outcome = _feed(business_date, limit, client, ledger=True, run_id=run_id)
    shortfall = feed_shortfall(limit=limit, got=len(outcome.claimed), view_offers=ready, funnel=funnel)
    status = "done" if not outcome.failed else ("push_failed" if not outcome.pushed else "partial")
    FeederRun.objects.filter(pk=run_id).update(
        status=status,
        leads_claimed=len(outcome.claimed),
        leads_pushed=outcome.pushed,
        leads_skipped=outcome.skipped,
        leads_explored=outcome.explored,
        error_message="; ".join(filter(None, (outcome.note, shortfall and f"short: {shortfall.text()}"))),
        finished_at=timezone.now(),
    )
    data = {
        **base,
        "feeder_run_id": run_id,
        "ready": ready,
        "claimed": len(outcome.claimed),
        "explored": outcome.explored,
        "fed": outcome.pushed,
        "skipped": outcome.skipped,
        "failed": outcome.failed,
        "dlq_ids": outcome.dlq_ids,
        **({"shortfall": shortfall.as_data()} if shortfall else {}),
    }
    message = (
        f"fed {outcome.pushed} leads for {business_date} (claimed {len(outcome.claimed)}, "
        f"skipped by Instantly {outcome.skipped}, failed {outcome.failed})"
    ) + (f". Short: {shortfall.text()}" if shortfall else "")
    if outcome.failed:
        return JobReport(
            message=message + f"; failed batches are in the DLQ {outcome.dlq_ids}",
            data=data,
            status="failure",
            error_message=outcome.note,
        )
    return JobReport(message=message, data=data)


def _view_offers() -> int:
    with connection.cursor() as cursor:
        cursor.execute(_MV_READY_COUNT_SQL)
        return cursor.fetchone()[0]


def _feed(
    business_date: dt.date, limit: int, client: InstantlyClient, *, ledger: bool, run_id: int | None = None
) -> FeedOutcome:
    outcome = FeedOutcome(business_date=business_date, dry_run=not ledger)
    explored = leads_claim_exploration(limit=round(limit * settings.FEEDER_EXPLORATION_SHARE)) if limit else []
    explored_ids = {lead.id for lead in explored}
    leads = leads_claim(limit=limit - len(explored), exclude=explored_ids) + explored
    outcome.explored = len(explored)
    outcome.claimed = [{"id": lead.id, "exploration": lead.id in explored_ids} for lead in leads]
    if not leads:
        outcome.note = "no feedable leads in mv_contactable_leads"
        return outcome
    Lead.objects.filter(id__in=[lead.id for lead in leads]).update(campaign_status="active", updated_at=timezone.now())
    if not ledger:
        return outcome
    context = {"business_date": business_date.isoformat(), "feeder_run_id": run_id}
    errors: set[str] = set()
    # An experiment splits the day's leads across its variants' campaigns (pipeline/experiments/routing.py).
    for route in feed_routes(leads=leads, default_campaign_id=client.campaign_id):
        result = client.for_campaign(route.campaign_id).add_leads(instantly_payload(route.leads))
        pushed, skipped, failed, dlq_ids = push_results_apply(
            leads=route.leads,
            result=result,
            campaign_id=route.campaign_id,
            context={**context, "variant_id": route.variant_id} if route.variant_id else context,
            explored_ids=explored_ids,
        )
        outcome.pushed += pushed
        outcome.skipped += skipped
        outcome.failed += failed
        outcome.dlq_ids += dlq_ids
        errors |= {batch.error for batch in result.failed_batches}
    if outcome.failed:
        outcome.note = "; ".join(sorted(errors))
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
