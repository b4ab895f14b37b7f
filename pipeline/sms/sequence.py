"""The SMS sequence: the follow-ups (SMS_SEQUENCE) after the first text, for the leads that have not answered.

Step n (1-based) of SMS_SEQUENCE is due `after_days` after the lead's text of step n-1 was accepted by Twilio, and
is sent only while all of these hold:
- the previous step was sent (`send_state` `sent`) and Twilio did not report it failed or undelivered;
- the lead is still `active` (a reply makes it `replied`; unsubscribed, do-not-contact, bounced, booked end it),
  has no `last_reply_at`, and no text came from its number since the first text (a reply or a STOP ends the
  sequence);
- consent to texts still holds, its broker is active, it is not suppressed for SMS (its marks, then the
  suppression list itself);
- its SMS contact window is open now (otherwise a later run sends it), and the day's SMS_DAILY_CAP has room
  (the feed sends follow-ups before first texts: a conversation already started comes first).
"""

from __future__ import annotations

import datetime as dt
import string

from django.conf import settings
from django.db.models import Exists, OuterRef

from leads.compliance.contact_windows import ContactWindows, contact_window_open
from leads.models import CampaignStatus, Lead
from leads.suppressions.selectors import leads_bound_for

from .models import SmsDirection, SmsKind, SmsMessage, SmsSendState

ENDED_BY_DELIVERY = ("failed", "undelivered", "canceled")
PAGE = 200


class _Blank(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def sms_text(template: str, lead) -> str:
    """`template` filled in for `lead` (an unknown field stays as written; never raises)."""
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
        return string.Formatter().vformat(template, (), fields).strip()
    except (ValueError, IndexError, AttributeError, KeyError):
        return template


def _still_listening():
    """Leads a follow-up may go to (before the window, the cap and the suppression list's own check)."""
    return Lead.objects.filter(
        campaign_status=CampaignStatus.ACTIVE,
        last_reply_at__isnull=True,
        consent=True,
        consent_sms=True,
        assigned_broker__active=True,
    ).exclude(suppressed_channels__has_key="sms")


def follow_ups_due(*, now: dt.datetime, limit: int) -> list[tuple[Lead, int]]:
    """Up to `limit` (lead, step) pairs whose next step is due now, oldest first."""
    steps = settings.SMS_SEQUENCE
    if not steps or limit <= 0:
        return []
    leads = _still_listening()
    firsts = SmsMessage.objects.filter(
        direction=SmsDirection.OUTBOUND,
        kind=SmsKind.FIRST,
        send_state=SmsSendState.SENT,
        lead_id=OuterRef(OuterRef("pk")),
    )
    answered_since_first = SmsMessage.objects.filter(
        direction=SmsDirection.INBOUND,
        lead_id=OuterRef("pk"),
        created_at__gte=firsts.order_by("created_at").values("created_at")[:1],
    )
    due: list[tuple[Lead, int]] = []
    windows = ContactWindows.load("sms")
    for number, step in enumerate(steps, start=1):
        previous = SmsMessage.objects.filter(
            direction=SmsDirection.OUTBOUND,
            lead_id=OuterRef("pk"),
            step=number - 1,
            send_state=SmsSendState.SENT,
            sent_at__lte=now - dt.timedelta(days=step["after_days"]),
        ).exclude(status__in=ENDED_BY_DELIVERY)
        this_step = SmsMessage.objects.filter(
            direction=SmsDirection.OUTBOUND, lead_id=OuterRef("pk"), step=number
        ).exclude(send_state=SmsSendState.NOT_SENT)
        candidates = (
            leads.filter(Exists(previous))
            .exclude(Exists(this_step))
            .exclude(Exists(answered_since_first))
            .select_related("assigned_broker")
            .order_by("id")
        )
        after = None
        while True:  # page on: leads whose window is closed now must not hide those whose window is open
            page = list((candidates.filter(id__gt=after) if after is not None else candidates)[:PAGE])
            if not page:
                break
            after = page[-1].id
            bound = leads_bound_for(lead_ids=[lead.id for lead in page], channel="sms")
            for lead in page:
                if lead.id in bound or not contact_window_open(lead, "sms", now, windows=windows):
                    continue
                due.append((lead, number))
                if len(due) >= limit:
                    return due
    return due


def follow_up_text(lead, step: int) -> str:
    return sms_text(settings.SMS_SEQUENCE[step - 1]["template"], lead)


def follow_ups_waiting(now: dt.datetime) -> bool:
    """Whether a follow-up is due and may go now (the job runs only then or when a first text waits)."""
    return bool(follow_ups_due(now=now, limit=1))
