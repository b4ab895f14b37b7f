"""The SMS feed: a first text to the best queued leads that e-mail cannot reach and that may be texted now, and
the follow-ups of SMS_SEQUENCE to those who have not answered.

Every 15 minutes (schedules.py `sms_feeder`), in two parts:
A. the job (`job_run`: its advisory lock, event and heartbeat; one transaction, committed at its end):
   0. texts left `sending` by a sender that died, or whose read timed out, are reconciled with Twilio
      (pipeline/sms/outbox.py) — never sent again blindly;
   1. the budget: the day's remaining feed limit for SMS (pipeline/campaigns/limits.py: FEEDER_DAILY_LIMIT shared
      with e-mail, or FEEDER_SMS_DAILY_LIMIT) for first texts, and never more than SMS_DAILY_CAP texts (first
      texts and follow-ups) per Los Angeles day;
   2. the follow-ups due (pipeline/sms/sequence.py), before any first text;
   3. first-text candidates, best score first (`Lead.objects.sms_feedable()`): consent to texts, a verified
      phone that no line type marks as a landline, assigned to an active broker, queued and never fed, not
      suppressed for SMS, never texted before; and not reachable by the e-mail feed (e-mail stays the first
      channel: SMS reaches the leads e-mail cannot). Each page is re-checked against the suppression list
      itself and claimed with `FOR UPDATE SKIP LOCKED`; a lead whose SMS window (leads/compliance/
      contact_windows.py) is closed now is left for a later run, so a text due at night waits for the morning;
   4. each chosen text becomes a `queued` row of `sms_messages` (one first text per lead and one text per step,
      unique indexes) — committed with the job, before Twilio hears of it;
B. after the commit, the outbox sends each queued text in its own short transactions (pipeline/sms/outbox.py):
   accepted, the row keeps Twilio's sid, a first text turns the lead `active` (the trigger stamps
   `added_to_campaign_at`), and `sms_sent` is recorded; refused by Twilio: final; a transient failure:
   `not_sent`, offered again; a read timeout: left `sending` for the next run's reconciliation.

No Twilio credentials: a dry run that reports what would be sent and changes nothing.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from leads.compliance.contact_windows import ContactWindows, contact_window_open
from leads.models import Lead
from leads.suppressions.selectors import leads_bound_for
from pipeline.campaigns.feeder import business_date_for
from pipeline.campaigns.limits import feed_limit_remaining
from pipeline.jobs import SMS_FEEDER, JobReport, JobResult, JobSkipped, job_run

from .models import SmsDirection, SmsKind, SmsMessage, SmsSendState
from .outbox import OutboxCounts, outbox_add, outbox_deliver, outbox_reconcile
from .sequence import follow_up_text, follow_ups_due, follow_ups_waiting, sms_text
from .twilio import TwilioClient

PAGE = 200


def first_message_text(lead) -> str:
    """SMS_FIRST_MESSAGE_TEMPLATE filled in for `lead` (an unknown field stays as written; never raises)."""
    return sms_text(settings.SMS_FIRST_MESSAGE_TEMPLATE, lead)


def sms_candidates():
    """The leads the SMS feed may text (before the contact window and the suppression list's own check)."""
    texted = SmsMessage.objects.filter(lead_id=OuterRef("pk"), kind=SmsKind.FIRST).exclude(status="not_sent")
    return (
        Lead.objects.sms_feedable()
        .filter(assigned_broker__active=True)
        .exclude(id__in=Lead.objects.feedable().values("id"))
        .exclude(Exists(texted))
    )


def sms_feed(
    *, now: dt.datetime | None = None, client: TwilioClient | None = None, queued: list[int] | None = None
) -> JobReport:
    """Part A of the module's docstring (needs the service context; the job gives it): reconcile, then queue the
    due follow-ups and the day's share of first texts. Appends the queued rows' ids to `queued`.

    Changes: `sms_messages` rows (reconciled, or new and `queued`). Records `sms_sent` for a reconciled text
    (the job runner records the run). Raises JobSkipped when the day's limit or cap is used up."""
    now = now or timezone.now()
    client = client or TwilioClient()
    queued = queued if queued is not None else []
    reconciled = outbox_reconcile(client=client, now=now) if not client.dry_run else OutboxCounts()
    business_date = business_date_for(now)
    remaining = feed_limit_remaining("sms", business_date)
    sent_today = (
        SmsMessage.objects.filter(direction=SmsDirection.OUTBOUND, business_date=business_date)
        .exclude(status="not_sent")
        .count()
    )
    room = max(0, settings.SMS_DAILY_CAP - sent_today)
    follow_ups = follow_ups_due(now=now, limit=room)
    budget = min(remaining, room - len(follow_ups))
    base = {
        "business_date": business_date.isoformat(),
        "budget": budget,
        "dry_run": client.dry_run,
        "reconciled_sent": reconciled.reconciled_sent,
        "reconciled_not_sent": reconciled.reconciled_not_sent,
        "unknown": reconciled.unknown,
    }
    if budget <= 0 and not follow_ups:
        raise JobSkipped(
            f"the day's SMS limit is used up ({sent_today} texted, cap {settings.SMS_DAILY_CAP}, "
            f"{remaining} left of the feed limit)",
            data={**base, "texted": 0},
        )
    windows = ContactWindows.load("sms")
    chosen: list[Lead] = []
    waiting = 0
    after = None
    while len(chosen) < budget:
        page = (
            sms_candidates()
            .filter(lead_score__isnull=False)
            .select_related("assigned_broker")
            .order_by("-lead_score", "-id")
        )
        if after is not None:
            page = page.filter(lead_score__lte=after[0]).exclude(lead_score=after[0], id__gte=after[1])
        page = list(page.select_for_update(skip_locked=True, of=("self",))[:PAGE])
        if not page:
            break
        after = (page[-1].lead_score, page[-1].id)
        bound = leads_bound_for(lead_ids=[lead.id for lead in page], channel="sms")
        for lead in page:
            if lead.id in bound:
                continue
            if not contact_window_open(lead, "sms", now, windows=windows):
                waiting += 1  # its window opens later: a later run texts it
                continue
            chosen.append(lead)
            if len(chosen) >= budget:
                break
        if len(page) < PAGE:
            break
    if client.dry_run:
        return JobReport(
            message=f"DRY RUN (TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN not set): would text {len(chosen)} leads "
            f"and send {len(follow_ups)} follow-ups; {waiting} wait for their contact window; nothing was sent",
            data={
                **base,
                "would_text": len(chosen),
                "would_follow_up": len(follow_ups),
                "waiting_for_window": waiting,
                "texted": 0,
            },
        )
    for lead, step in follow_ups:
        message = outbox_add(
            lead=lead, kind=SmsKind.FOLLOW_UP, step=step, body=follow_up_text(lead, step), business_date=business_date
        )
        queued.append(message.pk)
    for lead in chosen:
        message = outbox_add(
            lead=lead, kind=SmsKind.FIRST, step=0, body=first_message_text(lead), business_date=business_date
        )
        queued.append(message.pk)
    data = {**base, "queued_first": len(chosen), "queued_follow_ups": len(follow_ups), "waiting_for_window": waiting}
    return JobReport(
        message=f"queued {len(chosen)} first texts and {len(follow_ups)} follow-ups for {business_date} "
        f"({waiting} wait for their contact window; reconciled: {reconciled.reconciled_sent} sent, "
        f"{reconciled.reconciled_not_sent} not sent, {reconciled.unknown} unknown)",
        data=data,
    )


def sms_feeder_run(*, now: dt.datetime | None = None, client: TwilioClient | None = None) -> JobResult | None:
    """The SMS feed as a job (part A, under its advisory lock, with its `job_run` event and heartbeat), then the
    outbox's sending (part B, after A committed), with an `sms_send_run` event for what Twilio answered. Runs
    only when there is something to do, so an idle quarter-hour records nothing (None). Must run outside any
    transaction for the outbox's guarantees (a test's transaction works, without them)."""
    now = now or timezone.now()
    client = client or TwilioClient()
    with service_context():
        waiting = (
            sms_candidates().exists()
            or follow_ups_waiting(now)
            or SmsMessage.objects.filter(send_state__in=[SmsSendState.QUEUED, SmsSendState.SENDING]).exists()
        )
    if not waiting:
        return None
    queued: list[int] = []
    result = job_run(SMS_FEEDER, lambda: sms_feed(now=now, client=client, queued=queued))
    if client.dry_run or result.status == "failure":
        return result
    counts = outbox_deliver(client=client, now=now)  # this run's rows, and any a dead run left queued
    if result.status == "skipped" and not counts.ids:
        return result
    data = {**result.data, **counts.delivery_data()}
    failed = (counts.not_sent or counts.uncertain) and not counts.texted
    status = "failure" if failed else "success"
    with service_context():
        record_event("sms_send_run", data=data, status=status)
    message = (
        f"texted {counts.texted} (refused by Twilio {counts.refused}, not sent {counts.not_sent}, uncertain "
        f"{counts.uncertain}, left for later {counts.skipped}); {result.message}"
    )
    return JobResult(name=SMS_FEEDER, status=status, message=message, duration_ms=result.duration_ms, data=data)
