"""Inbound Instantly events: `POST /api/v1/webhooks/instantly` (pipeline/campaigns/views.py calls this).

Instantly does not sign deliveries; the webhook is configured with a custom header carrying a long random
secret (`INSTANTLY_WEBHOOK_HEADER`, default `X-Webhook-Secret`, value `INSTANTLY_WEBHOOK_SECRET`), compared
in constant time. With no secret configured every delivery is refused (fail closed).

Idempotency: deliveries have no id, so each is keyed by an HMAC-SHA256 (keyed with SECRET_KEY: a plain hash of
a lead's address could be reversed by guessing addresses) of (event_type, lead_email, campaign_id, timestamp,
step); `webhook_deliveries` keeps the keys, and a delivery seen before changes nothing.

Mapping (the lead is found by its email; when the payload carries our `ec_lead_id` custom variable, that
lead is preferred):
- reply_received      -> campaign_status `replied`, last_reply_at, step; `email_replied` event
- email_bounced       -> `bounced`; `email_bounced` event          (every lead with that address), and
                         the address on the suppression list (reason bounce)
- lead_unsubscribed   -> `unsubscribed`; `unsubscribed` event      (every lead with that address), and
                         the address on the suppression list (reason unsubscribe)
- lead_meeting_booked -> `appointment_booked` event
- lead_not_interested / lead_wrong_person -> the event of that name, on the timeline
- email_sent          -> current_sequence_step
A never-contact status (do_not_contact > unsubscribed > bounced) is never replaced by a weaker one.
Instantly's other known events (opens, clicks, …) are acknowledged and kept only as deliveries. Unknown
event types and unknown leads go to the DLQ (`source='webhook'`); the endpoint answers 2xx either way,
so Instantly does not retry what retrying cannot fix.

Input that can never succeed is a 4xx, never a 5xx (a 5xx makes Instantly retry it forever): a body over
`INSTANTLY_WEBHOOK_MAX_BYTES` is 413 (checked from Content-Length before the body is read); a body that is
not a JSON object, nested deeper than MAX_DEPTH, holding a NUL character (PostgreSQL text cannot), a
`timestamp` that is not an ISO 8601 date-time, or a `step` that is not a whole number in 0..MAX_STEP is 400.
A timestamp without an offset is taken as UTC. Only a fault on our side (the database is down) is a 5xx,
and then the delivery was rolled back, so Instantly's retry is what we want.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.dateparse import parse_datetime

from equity_connect.db import service_context
from equity_connect.events import record_events
from leads.contact_indexes import indexes_of
from leads.models import CampaignStatus, Lead
from leads.suppressions.rules import SuppressionInvalid, SuppressionKind, SuppressionReason
from leads.suppressions.services import suppression_add
from pipeline.dlq import dlq_record
from pipeline.models import DLQSource, WebhookDelivery
from security.fields import seal_note
from security.pii import EMAIL

logger = logging.getLogger(__name__)

MAPPED_EVENTS = (
    "reply_received",
    "email_bounced",
    "lead_unsubscribed",
    "lead_meeting_booked",
    "lead_not_interested",
    "lead_wrong_person",
    "email_sent",
)
# Instantly's documented events we have no use for (yet): acknowledged, not dead-lettered.
IGNORED_EVENTS = (
    "email_opened",
    "link_clicked",
    "email_link_clicked",
    "auto_reply_received",
    "account_error",
    "campaign_completed",
    "lead_neutral",
    "lead_interested",
    "lead_meeting_completed",
    "lead_closed",
    "lead_out_of_office",
)
# Stronger first: a weaker never-contact status never replaces a stronger one.
STATUS_RANK = {CampaignStatus.DO_NOT_CONTACT: 3, CampaignStatus.UNSUBSCRIBED: 2, CampaignStatus.BOUNCED: 1}
# Instantly's event -> our pipeline_events type (equity_connect/events.py).
EVENT_NAMES = {
    "reply_received": "email_replied",
    "email_bounced": "email_bounced",
    "lead_unsubscribed": "unsubscribed",
    "lead_meeting_booked": "appointment_booked",
    "lead_not_interested": "lead_not_interested",
    "lead_wrong_person": "lead_wrong_person",
}
STORED_TEXT_LIMIT = 2000
MAX_DEPTH = 8  # Instantly's deliveries are two levels deep (custom variables)
MAX_STEP = 1000  # a sequence has a handful of steps; anything near int32 is garbage


class WebhookUnauthorized(Exception):
    pass


class WebhookBadRequest(Exception):
    status = 400


class WebhookTooLarge(WebhookBadRequest):
    status = 413


@dataclass
class WebhookOutcome:
    status: str  # applied | duplicate | ignored | dead_lettered
    event_type: str
    leads: int = 0
    dlq_id: int | None = None

    def as_json(self) -> dict:
        body = {"status": self.status, "event_type": self.event_type, "leads": self.leads}
        if self.dlq_id:
            body["dlq_id"] = self.dlq_id
        return body


def webhook_secret_check(provided: str | None) -> None:
    expected = settings.INSTANTLY_WEBHOOK_SECRET or ""
    if not expected:
        logger.warning("instantly webhook refused: INSTANTLY_WEBHOOK_SECRET is not set")
        raise WebhookUnauthorized("webhook secret not configured")
    if not provided or not hmac.compare_digest(provided.encode(), expected.encode()):
        raise WebhookUnauthorized("bad webhook secret")


def webhook_length_check(content_length: str | None) -> None:
    """Refuse a declared body over INSTANTLY_WEBHOOK_MAX_BYTES before anything reads it."""
    try:
        declared = int(content_length or 0)
    except ValueError as exc:
        raise WebhookBadRequest("Content-Length is not a number") from exc
    if declared > settings.INSTANTLY_WEBHOOK_MAX_BYTES:
        raise WebhookTooLarge(
            f"the body is {declared} bytes; deliveries over {settings.INSTANTLY_WEBHOOK_MAX_BYTES} bytes are refused"
        )


def delivery_parse(body: bytes) -> dict:
    """The delivery as a dict whose fields can be stored and applied, or WebhookBadRequest saying why not."""
    if len(body) > settings.INSTANTLY_WEBHOOK_MAX_BYTES:
        raise WebhookTooLarge(f"deliveries over {settings.INSTANTLY_WEBHOOK_MAX_BYTES} bytes are refused")
    try:
        payload = json.loads(body.decode("utf-8"))
    except RecursionError as exc:
        raise WebhookBadRequest(f"the body is nested deeper than {MAX_DEPTH} levels") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookBadRequest("the body is not JSON") from exc
    if not isinstance(payload, dict) or not payload.get("event_type"):
        raise WebhookBadRequest("the body must be a JSON object with an event_type")
    _shape_check(payload, depth=1)
    _event_time(payload)
    _step(payload)
    return payload


def _shape_check(value, *, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise WebhookBadRequest(f"the body is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise WebhookBadRequest("the body holds a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _shape_check(key, depth=depth)
            _shape_check(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            _shape_check(item, depth=depth + 1)


DELIVERY_KEY_SALT = "pipeline.campaigns.webhooks.delivery"


def delivery_hash(payload: dict) -> str:
    key = [
        str(payload.get("event_type") or ""),
        str(payload.get("lead_email") or "").strip().lower(),
        str(payload.get("campaign_id") or ""),
        str(payload.get("timestamp") or ""),
        str(payload.get("step") if payload.get("step") is not None else ""),
    ]
    return salted_hmac(DELIVERY_KEY_SALT, json.dumps(key, separators=(",", ":")), algorithm="sha256").hexdigest()


def instantly_webhook_receive(*, secret: str | None, body: bytes) -> WebhookOutcome:
    """Check the secret, then apply one delivery exactly once (service context, one transaction).

    Changes leads per the mapping; records the mapped event per lead; stores the delivery key; unknown
    event types and leads become DLQ rows. Raises WebhookUnauthorized / WebhookBadRequest."""
    webhook_secret_check(secret)
    payload = delivery_parse(body)
    event_type = str(payload["event_type"])
    email = str(payload.get("lead_email") or "").strip().lower()
    stored = _stored_payload(payload)
    dedupe_hash = delivery_hash(payload)
    with service_context():
        fresh = WebhookDelivery.objects.record(
            dedupe_hash=dedupe_hash, event_type=event_type[:64], lead_email=email, payload_json=json.dumps(stored)
        )
        if not fresh:
            return WebhookOutcome("duplicate", event_type)
        if event_type in IGNORED_EVENTS:
            return WebhookOutcome("ignored", event_type)
        if event_type not in MAPPED_EVENTS:
            row = dlq_record(
                source=DLQSource.WEBHOOK,
                payload=stored,
                reason=f"Unknown Instantly event type {event_type!r}: nothing was changed. Map it in "
                "pipeline/campaigns/webhooks.py or discard it.",
            )
            return WebhookOutcome("dead_lettered", event_type, dlq_id=row.id)
        leads = _leads_for(payload, email, event_type)
        if not leads:
            row = dlq_record(
                source=DLQSource.WEBHOOK,
                payload=stored,
                reason=f"Instantly sent {event_type!r} for {'an e-mail address' if email else 'no email'}, but no "
                "lead has that address (it is in the payload): nothing was changed.",
            )
            return WebhookOutcome("dead_lettered", event_type, dlq_id=row.id)
        _apply(event_type, payload, leads)
        _suppress(event_type, email)
        _link_delivery(dedupe_hash, leads[0].pk)
        return WebhookOutcome("applied", event_type, leads=len(leads))


def _leads_for(payload: dict, email: str, event_type: str) -> list[Lead]:
    if not email:
        return []
    # E-mails are encrypted: the lead is found by the address's blind index under every key version
    # (`leads_email_bidx_idx`); ingestion lower-cases addresses before indexing them, as this does.
    leads = list(Lead.objects.filter(email_bidx__in=indexes_of(email, EMAIL)).select_for_update().order_by("id"))
    if event_type in ("email_bounced", "lead_unsubscribed"):
        return leads  # the address bounced / asked to stop: true for every lead that uses it
    ours = str(payload.get("ec_lead_id") or (payload.get("custom_variables") or {}).get("ec_lead_id") or "")
    chosen = [lead for lead in leads if str(lead.pk) == ours]
    if chosen:
        return chosen
    in_campaign = [lead for lead in leads if lead.added_to_campaign_at is not None]
    return (in_campaign or leads)[:1]


def _event_time(payload: dict) -> dt.datetime:
    """The delivery's time (UTC when it has no offset); now when it has none; WebhookBadRequest if garbled."""
    raw = payload.get("timestamp")
    if raw is None or raw == "":
        return timezone.now()
    try:
        parsed = parse_datetime(raw) if isinstance(raw, str) else None
    except ValueError:  # well formed but impossible, e.g. month 13
        parsed = None
    if parsed is None:
        raise WebhookBadRequest("timestamp must be an ISO 8601 date-time, e.g. 2026-01-06T17:04:05Z")
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=dt.UTC)


def _step(payload: dict) -> int | None:
    """The sequence step: None when absent; WebhookBadRequest unless a whole number in 0..MAX_STEP."""
    raw = payload.get("step")
    if raw is None or raw == "":
        return None
    if isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) <= 4:
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_STEP:
        raise WebhookBadRequest(f"step must be a whole number from 0 to {MAX_STEP}")
    return raw


def _status_after(current: str | None, wanted: str) -> str | None:
    """The status to set, or None to keep `current` (a never-contact status is never weakened)."""
    current_rank = STATUS_RANK.get(current, 0)
    if current_rank and STATUS_RANK.get(wanted, 0) <= current_rank:
        return None
    return wanted


def _apply(event_type: str, payload: dict, leads: list[Lead]) -> None:
    when = _event_time(payload)
    step = _step(payload)
    detail = {"campaign_id": payload.get("campaign_id"), "step": step, "instantly_timestamp": payload.get("timestamp")}
    event_name = EVENT_NAMES.get(event_type)
    events = []
    for lead in leads:
        changes: dict = {}
        if event_type == "reply_received":
            changes["last_reply_at"] = when
            if step is not None:
                changes["current_sequence_step"] = step
            if _status_after(lead.campaign_status, CampaignStatus.REPLIED):
                changes["campaign_status"] = CampaignStatus.REPLIED
        elif event_type == "email_bounced":
            if _status_after(lead.campaign_status, CampaignStatus.BOUNCED):
                changes["campaign_status"] = CampaignStatus.BOUNCED
        elif event_type == "lead_unsubscribed":
            if _status_after(lead.campaign_status, CampaignStatus.UNSUBSCRIBED):
                changes["campaign_status"] = CampaignStatus.UNSUBSCRIBED
        elif event_type == "email_sent" and step is not None:
            changes["current_sequence_step"] = step
        if changes:
            changes["updated_at"] = timezone.now()
            Lead.objects.filter(pk=lead.pk).update(**changes)
        if event_name:
            data = dict(detail)
            if event_type == "reply_received":
                # The lead's own words: sealed in the event, opened on the timeline (security/fields.py).
                data["reply_snippet"] = seal_note(str(payload.get("reply_text_snippet") or "")[:500])
                data["reply_subject"] = seal_note(str(payload.get("reply_subject") or "")[:300])
            if "campaign_status" in changes:
                data["campaign_status"] = {"from": lead.campaign_status, "to": changes["campaign_status"]}
            events.append((event_name, {"lead_id": lead.pk, "broker_id": lead.assigned_broker_id, "data": data}))
    record_events(events)


# A bounce or an unsubscribe goes on the suppression list: every lead with the address, now and in every
# future upload, is never e-mailed again (leads/suppressions/services.py).
SUPPRESSION_REASONS = {"email_bounced": SuppressionReason.BOUNCE, "lead_unsubscribed": SuppressionReason.UNSUBSCRIBE}


def _suppress(event_type: str, email: str) -> None:
    reason = SUPPRESSION_REASONS.get(event_type)
    if reason is None:
        return
    try:
        suppression_add(kind=SuppressionKind.EMAIL, value=email, reason=reason, source="instantly_webhook")
    except SuppressionInvalid:
        # Not an address we could list (Instantly sent something odd): the leads' own status still stops them.
        logger.warning("instantly webhook: %s for an address the suppression list cannot hold", event_type)


def _link_delivery(dedupe_hash: str, lead_id) -> None:
    WebhookDelivery.objects.filter(pk=dedupe_hash).update(lead_id=lead_id)


def _stored_payload(payload: dict) -> dict:
    """The delivery as kept: HTML bodies dropped, long texts cut (the reply itself stays in Instantly)."""
    kept = {}
    for key, value in payload.items():
        if key in ("email_html", "reply_html"):
            continue
        if isinstance(value, str) and len(value) > STORED_TEXT_LIMIT:
            value = value[:STORED_TEXT_LIMIT] + "…"
        kept[key] = value
    return kept
