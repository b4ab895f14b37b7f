"""Inbound texts and delivery statuses from Twilio: `POST /api/v1/webhooks/twilio` (pipeline/sms/views.py).

Twilio signs every request (`X-Twilio-Signature`, security/twilio_signature.py) with TWILIO_AUTH_TOKEN over the
public URL (TWILIO_WEBHOOK_BASE_URL + path + query) and the POST parameters. A missing or wrong signature, or no
token configured, is 403 (fail closed); nothing is read into the database before the signature holds.

A request with a `Body` is an inbound text (`MessageSid`, `From`, `Body`):
- an opt-out word alone (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT; any case, trimmed): the
  number goes on the suppression list at once (reason `sms_opt_out`, texts only), through the suppressions
  service, so every lead with that number is bound now and in every future upload; `sms_opted_out` per lead;
- an opt-in word alone (START, UNSTOP, YES): the `sms_opt_out` entries of that number are removed, and nothing
  else: a do-not-call, complaint or customer-request entry keeps binding (the lead's marks are recomputed);
  `sms_opted_in` per lead, saying whether the number is still suppressed for texts;
- any other text is a reply: `sms_replied` on the leads texted at that number (or every lead with it), the
  words sealed like e-mail replies (security/fields.py `seal_note`), `last_reply_at`, and `replied` unless a
  never-contact status holds. The broker reads it on the lead's timeline; the event carries their id for the
  broker notifications to read (main has no broker notification yet). A reply that reads like an opt-out
  ("please stop texting me", "remove me", "wrong number") is also put in review (`review = pending`, an
  `sms_possible_opt_out` event): ops open "Text messages to review" in the admin and opt the number out or not.
A request without a `Body` and with a `MessageStatus` is a status callback for a text we sent: the status moves
forward only (a late `sent` never replaces `delivered`); error 21610 (the recipient opted out with the carrier)
also puts the number on the suppression list.

The same `MessageSid` delivered twice changes nothing the second time. Input that can never be applied (no
MessageSid, a From that is not a phone number) is a 400; no input gives a 5xx.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_events
from leads.contact_indexes import indexes_of
from leads.models import CampaignStatus, Lead
from leads.suppressions.models import Suppression
from leads.suppressions.rules import SuppressionKind, SuppressionReason
from leads.suppressions.services import suppression_add, suppression_remove
from security.fields import seal_note
from security.pii import PHONE, codec
from security.twilio_signature import twilio_signature_valid

from .models import SmsDirection, SmsKind, SmsMessage, SmsReview

logger = logging.getLogger(__name__)

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
# Free text that reads like an opt-out: a person decides (review), the text is never silently kept as a reply.
POSSIBLE_OPT_OUT = re.compile(
    r"\b(stop|unsubscribe|remove me|take me off|opt[\s-]?out|wrong (number|person)|do not (text|contact|message)"
    r"|don'?t (text|contact|message)|no more (texts?|messages)|leave me alone|not interested|lose my number"
    r"|harass)",
    re.IGNORECASE,
)
MAX_BODY_BYTES = 64 * 1024  # Twilio's requests are a few hundred bytes; larger bodies are refused (413)
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
# How far a status has come: a status never moves back (callbacks can arrive out of order).
STATUS_ORDER = {
    "pending": 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    "delivered": 5,
    "read": 6,
    "undelivered": 5,
    "failed": 5,
    "canceled": 5,
}
CARRIER_OPT_OUT = 21610
NEVER_WEAKENED = (CampaignStatus.DO_NOT_CONTACT, CampaignStatus.UNSUBSCRIBED, CampaignStatus.BOUNCED)


class TwilioForbidden(Exception):
    pass


class TwilioBadRequest(Exception):
    status = 400


class TwilioTooLarge(TwilioBadRequest):
    status = 413


@dataclass
class TwilioOutcome:
    status: str  # opted_out | opted_in | replied | status_updated | duplicate | ignored
    leads: int = 0
    review: bool = False


def twilio_length_check(content_length: str | None) -> None:
    try:
        declared = int(content_length or 0)
    except ValueError as exc:
        raise TwilioBadRequest("Content-Length is not a number") from exc
    if declared > MAX_BODY_BYTES:
        raise TwilioTooLarge(f"requests over {MAX_BODY_BYTES} bytes are refused")


def twilio_signature_check(*, url: str, params: list[tuple[str, str]], signature: str | None) -> None:
    token = settings.TWILIO_AUTH_TOKEN
    if not token:
        logger.warning("twilio webhook refused: TWILIO_AUTH_TOKEN is not set")
        raise TwilioForbidden("not configured")
    if not twilio_signature_valid(auth_token=token, url=url, params=params, provided=signature):
        raise TwilioForbidden("bad signature")


def sms_word(body: str) -> str:
    """The text as one keyword: trimmed, upper-case (Twilio's own matching of opt-out words)."""
    return (body or "").strip().upper()


def reads_like_opt_out(body: str) -> bool:
    return bool(POSSIBLE_OPT_OUT.search(body or ""))


def twilio_webhook_receive(*, url: str, params: list[tuple[str, str]], signature: str | None) -> TwilioOutcome:
    """Check the signature, then apply one request (service context, one transaction). Raises TwilioForbidden
    or TwilioBadRequest. Changes and records: see the module's docstring."""
    twilio_signature_check(url=url, params=params, signature=signature)
    fields = {}
    for name, value in params:
        fields.setdefault(name, value)
    sid = (fields.get("MessageSid") or fields.get("SmsSid") or "").strip()
    if not _SID.match(sid):
        raise TwilioBadRequest("MessageSid is missing or malformed")
    status = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").strip().lower()
    if "Body" in fields and status in ("", "received"):
        phone = (fields.get("From") or "").strip()
        if not _E164.match(phone):
            raise TwilioBadRequest("From is not an E.164 phone number")
        return _inbound(sid=sid, phone=phone, body=fields["Body"].replace("\x00", "")[:1600])
    if status:
        code = (fields.get("ErrorCode") or "").strip()
        error_code = int(code) if code.isdigit() and len(code) < 9 else None
        return _status_update(sid=sid, status=status, error_code=error_code)
    return TwilioOutcome("ignored")


def _leads_with(phone: str) -> list[Lead]:
    return list(Lead.objects.filter(phone_bidx__in=indexes_of(phone, PHONE)).select_for_update().order_by("id"))


def _inbound(*, sid: str, phone: str, body: str) -> TwilioOutcome:
    word = sms_word(body)
    kind = SmsKind.OPT_OUT if word in OPT_OUT_WORDS else SmsKind.OPT_IN if word in OPT_IN_WORDS else SmsKind.REPLY
    review = kind == SmsKind.REPLY and reads_like_opt_out(body)
    with service_context(), transaction.atomic():
        if SmsMessage.objects.filter(twilio_sid=sid).exists():
            return TwilioOutcome("duplicate")
        leads = _leads_with(phone)
        texted = set(
            SmsMessage.objects.filter(
                lead_id__in=[lead.pk for lead in leads], direction=SmsDirection.OUTBOUND
            ).values_list("lead_id", flat=True)
        )
        main = next((lead for lead in leads if lead.pk in texted), leads[0] if leads else None)
        try:
            with transaction.atomic():
                SmsMessage.objects.create(
                    direction=SmsDirection.INBOUND,
                    kind=kind,
                    lead=main,
                    broker_id=main.assigned_broker_id if main else None,
                    phone=phone,
                    phone_bidx=codec().blind_index(phone, PHONE),
                    body=body,
                    twilio_sid=sid,
                    status="received",
                    review=SmsReview.PENDING if review else "",
                )
        except IntegrityError:
            return TwilioOutcome("duplicate")  # the same delivery, applied at the same moment by another request
        if kind == SmsKind.OPT_OUT:
            sms_opt_out(phone=phone, source="twilio_stop")
            _events("sms_opted_out", leads, {"word": word})
            return TwilioOutcome("opted_out", leads=len(leads))
        if kind == SmsKind.OPT_IN:
            removed = _opt_in(phone)
            fresh = {lead.pk: lead for lead in Lead.objects.filter(pk__in=[lead.pk for lead in leads])}
            events = [
                (
                    "sms_opted_in",
                    {
                        "lead_id": lead.pk,
                        "broker_id": lead.assigned_broker_id,
                        "data": {
                            "word": word,
                            "opt_outs_removed": removed,
                            "still_suppressed_for_sms": "sms" in (fresh[lead.pk].suppressed_channels or {}),
                        },
                    },
                )
                for lead in leads
            ]
            record_events(events)
            return TwilioOutcome("opted_in", leads=len(leads))
        replied_to = [lead for lead in leads if lead.pk in texted] or leads
        now = timezone.now()
        for lead in replied_to:
            changes = {"last_reply_at": now, "updated_at": now}
            if lead.campaign_status not in NEVER_WEAKENED:
                changes["campaign_status"] = CampaignStatus.REPLIED
            Lead.objects.filter(pk=lead.pk).update(**changes)
        snippet = seal_note(body[:500])
        _events("sms_replied", replied_to, {"reply_snippet": snippet, "channel": "sms"})
        if review:
            _events("sms_possible_opt_out", replied_to, {"reply_snippet": snippet})
        return TwilioOutcome("replied", leads=len(replied_to), review=review)


def _events(event_type: str, leads: list[Lead], data: dict) -> None:
    record_events(
        (event_type, {"lead_id": lead.pk, "broker_id": lead.assigned_broker_id, "data": dict(data)}) for lead in leads
    )


def sms_opt_out(*, phone: str, source: str, user=None, by: str = "") -> None:
    """The number on the suppression list for texts (every lead with it, now and in future uploads)."""
    suppression_add(
        kind=SuppressionKind.PHONE, value=phone, reason=SuppressionReason.SMS_OPT_OUT, source=source, user=user, by=by
    )


def _opt_in(phone: str) -> int:
    """Remove the number's text opt-outs (only those: another reason keeps binding). Returns how many."""
    entries = Suppression.objects.active().filter(
        kind=SuppressionKind.PHONE,
        reason=SuppressionReason.SMS_OPT_OUT,
        value_indexes__overlap=indexes_of(phone, PHONE),
    )
    removed = 0
    for entry in entries:
        suppression_remove(entry=entry, note="the person texted START", by="twilio")
        removed += 1
    return removed


def _status_update(*, sid: str, status: str, error_code: int | None) -> TwilioOutcome:
    with service_context(), transaction.atomic():
        message = SmsMessage.objects.select_for_update().filter(twilio_sid=sid).first()
        if message is None or status not in STATUS_ORDER:
            return TwilioOutcome("ignored")
        if STATUS_ORDER[status] <= STATUS_ORDER.get(message.status, 0):
            return TwilioOutcome("duplicate")
        message.status = status
        if error_code is not None:
            message.error_code = error_code
        message.save(update_fields=["status", "error_code", "updated_at"])
        if status in ("undelivered", "failed") and message.lead_id:
            lead = Lead.objects.filter(pk=message.lead_id).first()
            if lead is not None:
                _events("sms_undelivered", [lead], {"sms_message_id": message.pk, "error_code": error_code})
        if error_code == CARRIER_OPT_OUT:
            sms_opt_out(phone=message.phone, source="twilio_error_21610")
        return TwilioOutcome("status_updated", leads=1 if message.lead_id else 0)
