"""The SMS outbox: every outbound text is sent exactly once, or shown to ops — never silently twice.

A text's life (`sms_messages.send_state`):
1. `queued`: the feed (or the sequence) commits the row — body, number, a stable `idempotency_key` — in the job's
   transaction, before anyone talks to Twilio;
2. `sending`: one short transaction claims the row (`queued` -> `sending`, `sending_at` = the database clock) and
   commits; only then is Twilio asked (pipeline/sms/twilio.py);
3. Twilio's answer is recorded in its own short transaction: `sent` (Twilio's sid and status; the lead's event),
   `refused` (final: a bad number, an opted-out recipient), `not_sent` (a transient failure: offered again).
   A read timeout leaves the row `sending`: Twilio may have taken it.
A sender that dies between 2 and 3 (killed, the database gone) leaves the row `sending`. The next run reconciles
every row `sending` for longer than SMS_RECONCILE_AFTER_SECONDS instead of sending it again: it asks Twilio for
the messages to that number since `sending_at` (`TwilioClient.find_sent`). One message with that body and no
other row's sid: `sent`, with that sid. None: `not_sent` (Twilio never took it; the lead is offered again).
Twilio cannot say (an error, a timeout) or more than one could be it: `unknown` — never sent again; the admin's
*Text messages* filtered on *unknown* lists them for ops (`sms_send_unknown` on the timeline).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from leads.compliance.contact_windows import ContactWindows, contact_window_open
from leads.models import Lead
from leads.suppressions.selectors import leads_bound_for
from security.pii import PHONE, codec

from .models import TWILIO_SEND_STATUSES, SmsDirection, SmsKind, SmsMessage, SmsSendState
from .twilio import SendResult, TwilioClient

KNOWN_STATUSES = set(TWILIO_SEND_STATUSES)


@dataclass
class OutboxCounts:
    texted: int = 0
    refused: int = 0
    not_sent: int = 0
    uncertain: int = 0  # read timed out: left `sending`, reconciled by a later run
    reconciled_sent: int = 0
    reconciled_not_sent: int = 0
    unknown: int = 0
    skipped: int = 0  # bound since it was queued (suppressed, window closed): left queued or dropped
    ids: list[int] = field(default_factory=list)

    def delivery_data(self) -> dict:
        keys = ("texted", "refused", "not_sent", "uncertain", "skipped")
        return {key: getattr(self, key) for key in keys}


def outbox_add(*, lead: Lead, kind: str, step: int, body: str, business_date: dt.date) -> SmsMessage:
    """A `queued` outbound text for `lead` (in the caller's transaction; it is sent once that commits)."""
    return SmsMessage.objects.create(
        direction=SmsDirection.OUTBOUND,
        kind=kind,
        step=step,
        lead=lead,
        broker_id=lead.assigned_broker_id,
        phone=lead.phone,
        phone_bidx=codec().blind_index(lead.phone, PHONE),
        body=body,
        business_date=business_date,
        send_state=SmsSendState.QUEUED,
        idempotency_key=f"sms-{uuid.uuid4().hex}",
    )


def _claim(message_id: int, now: dt.datetime, windows: ContactWindows) -> SmsMessage | None:
    """`queued` -> `sending`, committed (own transaction). None: taken by another sender, or not to be sent now."""
    with service_context():
        message = (
            SmsMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=message_id, send_state=SmsSendState.QUEUED)
            .select_related("lead")
            .first()
        )
        if message is None:
            return None
        lead = message.lead
        if lead is None or lead.id in leads_bound_for(lead_ids=[lead.id], channel="sms"):
            # Opted out (or erased) since it was queued: never sent.
            message.send_state, message.status, message.error = SmsSendState.NOT_SENT, "not_sent", "bound since queued"
            message.save(update_fields=["send_state", "status", "error", "updated_at"])
            return None
        if not contact_window_open(lead, "sms", now, windows=windows):
            return None  # a later run sends it
        message.send_state = SmsSendState.SENDING
        message.save(update_fields=["send_state", "updated_at"])
        SmsMessage.objects.filter(pk=message.pk).update(sending_at=_db_now())
        return message


def _db_now() -> dt.datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def _mark_sent(message: SmsMessage, *, sid: str, status: str, now: dt.datetime, reconciled: bool = False) -> None:
    message.send_state, message.twilio_sid, message.sent_at = SmsSendState.SENT, sid, now
    message.status = status if status in KNOWN_STATUSES else "queued"
    message.error, message.error_code = "", None
    message.save(update_fields=["send_state", "twilio_sid", "status", "sent_at", "error", "error_code", "updated_at"])
    if message.kind == SmsKind.FIRST and message.lead_id:
        Lead.objects.filter(pk=message.lead_id).update(campaign_status="active", updated_at=timezone.now())
    data = {"sms_message_id": message.pk, "step": message.step, "business_date": str(message.business_date)}
    if reconciled:
        data["reconciled"] = True
    record_event("sms_sent", lead_id=message.lead_id, broker_id=message.broker_id, data=data)


def _finish(message_id: int, result: SendResult, now: dt.datetime, counts: OutboxCounts) -> None:
    with service_context():
        message = SmsMessage.objects.select_for_update().get(pk=message_id)
        if message.send_state != SmsSendState.SENDING:
            return
        if result.ok:
            _mark_sent(message, sid=result.sid, status=result.status, now=now)
            counts.texted += 1
            return
        message.error, message.error_code = result.error[:500], result.error_code
        if result.uncertain:
            counts.uncertain += 1  # stays `sending`: a later run asks Twilio what became of it
        elif result.final:
            message.send_state, message.status = SmsSendState.REFUSED, "failed"
            counts.refused += 1
        else:
            message.send_state, message.status = SmsSendState.NOT_SENT, "not_sent"
            counts.not_sent += 1
        message.save(update_fields=["send_state", "status", "error", "error_code", "updated_at"])


def outbox_deliver(*, client: TwilioClient, now: dt.datetime, message_ids: list[int] | None = None) -> OutboxCounts:
    """Send the `queued` texts (those of `message_ids`, else every one), each claimed, sent and recorded in its
    own transactions (module docstring). Must run outside any transaction."""
    counts = OutboxCounts()
    with service_context():
        queued = SmsMessage.objects.filter(send_state=SmsSendState.QUEUED)
        if message_ids is not None:
            queued = queued.filter(pk__in=message_ids)
        ids = list(queued.order_by("id").values_list("id", flat=True))
        windows = ContactWindows.load("sms")
    for message_id in ids:
        message = _claim(message_id, now, windows)
        if message is None:
            counts.skipped += 1
            continue
        counts.ids.append(message_id)
        result = client.send(to=message.phone, body=message.body)
        _finish(message_id, result, now, counts)
    return counts


def outbox_reconcile(*, client: TwilioClient, now: dt.datetime, counts: OutboxCounts | None = None) -> OutboxCounts:
    """Settle every text `sending` for longer than SMS_RECONCILE_AFTER_SECONDS by asking Twilio (module
    docstring); needs the service context. Records `sms_sent` (reconciled) or `sms_send_unknown`."""
    counts = counts or OutboxCounts()
    cutoff = _db_now() - dt.timedelta(seconds=settings.SMS_RECONCILE_AFTER_SECONDS)
    stale = SmsMessage.objects.select_for_update(skip_locked=True).filter(
        Q(sending_at__lte=cutoff) | Q(sending_at__isnull=True), send_state=SmsSendState.SENDING
    )
    for message in stale.order_by("id"):
        since = message.sending_at or message.created_at
        found = client.find_sent(to=message.phone, body=message.body, since=since)
        if found.known:
            taken = set(
                SmsMessage.objects.filter(twilio_sid__in=[sid for sid, _ in found.sids]).values_list(
                    "twilio_sid", flat=True
                )
            )
            candidates = [(sid, status) for sid, status in found.sids if sid and sid not in taken]
            if len(candidates) == 1:
                _mark_sent(message, sid=candidates[0][0], status=candidates[0][1], now=now, reconciled=True)
                counts.reconciled_sent += 1
                continue
            if not candidates:
                message.send_state, message.status = SmsSendState.NOT_SENT, "not_sent"
                message.error = "reconciled: Twilio holds no such message, so it was never sent"
                message.save(update_fields=["send_state", "status", "error", "updated_at"])
                counts.reconciled_not_sent += 1
                continue
            reason = f"{len(candidates)} messages at Twilio could be this one"
        else:
            reason = found.error
        message.send_state, message.status = SmsSendState.UNKNOWN, "uncertain"
        message.error = f"not known whether Twilio sent it ({reason}); never sent again: ops decide"[:500]
        message.save(update_fields=["send_state", "status", "error", "updated_at"])
        record_event(
            "sms_send_unknown",
            lead_id=message.lead_id,
            broker_id=message.broker_id,
            status="failure",
            data={"sms_message_id": message.pk, "reason": reason[:200]},
        )
        counts.unknown += 1
    return counts
