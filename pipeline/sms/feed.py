"""The SMS feed: a first text to the best queued leads that e-mail cannot reach and that may be texted now.

Every 15 minutes (schedules.py `sms_feeder`; the job's advisory lock keeps runs apart), in the job's transaction:
1. the budget: the day's remaining feed limit for SMS (pipeline/campaigns/limits.py: FEEDER_DAILY_LIMIT shared
   with e-mail, or FEEDER_SMS_DAILY_LIMIT), and never more than SMS_DAILY_CAP first texts per Los Angeles day;
2. candidates, best score first (`Lead.objects.sms_feedable()`): consent to texts, a verified phone that no
   line type marks as a landline, assigned to an active broker, queued and never fed, not suppressed for SMS,
   never texted before; and not reachable by the e-mail feed (e-mail stays the first channel: SMS reaches the
   leads e-mail cannot). Each page is re-checked against the suppression list itself and claimed with
   `FOR UPDATE SKIP LOCKED`;
3. the contact window: a lead whose SMS window (leads/compliance/contact_windows.py) is closed now is left for a
   later run, so a text due at night waits for the morning;
4. per lead: an `sms_messages` row (`pending`) is written first (one first text per lead, a unique index), then
   Twilio is asked (pipeline/sms/twilio.py). Accepted: the row keeps Twilio's sid and status, the lead turns
   `active` (the trigger stamps `added_to_campaign_at`) and gets an `sms_sent` event. Refused by Twilio (a bad
   number, an opted-out recipient): `failed`, never tried again. A transient failure: `not_sent`, offered again.
   A timeout after sending: `uncertain`, never sent again.

No Twilio credentials: a dry run that reports what would be sent and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import string

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
from security.pii import PHONE, codec

from .models import SmsDirection, SmsKind, SmsMessage
from .twilio import TwilioClient

PAGE = 200


class _Blank(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def first_message_text(lead) -> str:
    """SMS_FIRST_MESSAGE_TEMPLATE filled in for `lead` (an unknown field stays as written; never raises)."""
    broker = lead.assigned_broker
    street = (lead.property_address or "").strip()
    fields = _Blank(
        first_name=(lead.first_name or "").strip() or "there",
        broker_name=getattr(broker, "name", "") or "your local advisor",
        broker_company=getattr(broker, "company", "") or "",
        property_street=street or "your street",
        property_city=(lead.property_city or "").strip(),
    )
    try:
        return string.Formatter().vformat(settings.SMS_FIRST_MESSAGE_TEMPLATE, (), fields).strip()
    except (ValueError, IndexError, AttributeError, KeyError):
        return settings.SMS_FIRST_MESSAGE_TEMPLATE


def sms_candidates():
    """The leads the SMS feed may text (before the contact window and the suppression list's own check)."""
    texted = SmsMessage.objects.filter(lead_id=OuterRef("pk"), kind=SmsKind.FIRST).exclude(status="not_sent")
    return (
        Lead.objects.sms_feedable()
        .filter(assigned_broker__active=True)
        .exclude(id__in=Lead.objects.feedable().values("id"))
        .exclude(Exists(texted))
    )


def sms_feed(*, now: dt.datetime | None = None, client: TwilioClient | None = None) -> JobReport:
    """Text the day's share of SMS leads whose window is open (needs the service context; the job gives it).

    Changes: `sms_messages` rows; texted leads -> `active`. Records `sms_sent` per lead (the job runner records
    the run). Raises JobSkipped when the day's limit or cap is used up."""
    now = now or timezone.now()
    client = client or TwilioClient()
    business_date = business_date_for(now)
    remaining = feed_limit_remaining("sms", business_date)
    sent_today = (
        SmsMessage.objects.filter(kind=SmsKind.FIRST, business_date=business_date).exclude(status="not_sent").count()
    )
    budget = min(remaining, max(0, settings.SMS_DAILY_CAP - sent_today))
    base = {"business_date": business_date.isoformat(), "budget": budget, "dry_run": client.dry_run}
    if budget <= 0:
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
            message=f"DRY RUN (TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN not set): would text {len(chosen)} leads; "
            f"{waiting} wait for their contact window; nothing was sent",
            data={**base, "would_text": len(chosen), "waiting_for_window": waiting, "texted": 0},
        )
    texted = refused = not_sent = uncertain = 0
    pii = codec()
    for lead in chosen:
        body = first_message_text(lead)
        message = SmsMessage.objects.create(
            direction=SmsDirection.OUTBOUND,
            kind=SmsKind.FIRST,
            lead=lead,
            broker_id=lead.assigned_broker_id,
            phone=lead.phone,
            phone_bidx=pii.blind_index(lead.phone, PHONE),
            body=body,
            business_date=business_date,
        )
        result = client.send(to=lead.phone, body=body)
        if result.ok:
            message.twilio_sid, message.status = result.sid, result.status if result.status in _KNOWN else "queued"
            texted += 1
            Lead.objects.filter(pk=lead.pk).update(campaign_status="active", updated_at=timezone.now())
            record_event(
                "sms_sent",
                lead_id=lead.pk,
                broker_id=lead.assigned_broker_id,
                data={"sms_message_id": message.pk, "business_date": business_date.isoformat()},
            )
        elif result.uncertain:
            message.status, uncertain = "uncertain", uncertain + 1
        elif result.final:
            message.status, refused = "failed", refused + 1
        else:
            message.status, not_sent = "not_sent", not_sent + 1
        message.error, message.error_code = result.error[:500], result.error_code
        message.save(update_fields=["twilio_sid", "status", "error", "error_code", "updated_at"])
    data = {
        **base,
        "texted": texted,
        "refused": refused,
        "not_sent": not_sent,
        "uncertain": uncertain,
        "waiting_for_window": waiting,
    }
    report = (
        f"texted {texted} leads for {business_date} (refused by Twilio {refused}, not sent {not_sent}, "
        f"uncertain {uncertain}; {waiting} wait for their contact window)"
    )
    failed = (not_sent or uncertain) and not texted
    return JobReport(message=report, data=data, status="failure" if failed else "success")


_KNOWN = {"accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered", "failed", "canceled"}


def sms_feeder_run(*, now: dt.datetime | None = None, client: TwilioClient | None = None) -> JobResult | None:
    """The SMS feed as a job: under its advisory lock, with its `job_run` event and heartbeat — only when a lead
    waits for a first text, so an idle quarter-hour records nothing (None)."""
    with service_context():
        waiting = sms_candidates().exists()
    if not waiting:
        return None
    return job_run(SMS_FEEDER, lambda: sms_feed(now=now, client=client))
