"""Consent links, the lead's answer, and unsubscribes. Keyword-only; each runs in a transaction.

Who does what:
- a broker asks, in the portal, for a link to be e-mailed to the lead (`consent_link_send`); a django-q2 task
  then makes the link and mails it to the lead's own address (`consent_link_deliver`): no broker ever sees
  a usable link, so no broker can answer for the lead. The mail goes only inside the lead's contact window
  on the channel CONSENT_EMAIL_WINDOW names (leads/compliance/contact_windows.py): asked for at night, the
  task is scheduled for the window's opening;
- ops may make one by hand (`consent_link_create`, `manage.py consent_link`), a staff tool;
- the lead answers on the public page (`consent_lead_for_token`, `consent_record`); the view refuses a
  session that is logged in;
- whoever holds an e-mail's unsubscribe link unsubscribes the address it was sent to (unsubscribe.py).

A link is usable while it is unused, unexpired, and its lead still has the broker, e-mail and phone it was
issued for (`consent_tokens.fingerprint`). An unusable link raises ConsentLinkError and changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from equity_connect.models import PipelineEvent
from security.consent_tokens import (
    ConsentTokenInvalid,
    consent_fingerprint,
    consent_fingerprint_matches,
    consent_token_sign,
    consent_token_verify,
    consent_url,
    unsubscribe_token_sign,
    unsubscribe_url,
)
from security.pii import EMAIL, codec

from ..compliance.contact_windows import NoContactWindow, local_time_text
from ..contact_indexes import indexes_of
from ..models import ConsentToken, Lead, LeadConsentAudit
from ..services import LeadError, locked_lead
from ..statuses import NEVER_CONTACT_STATUSES, CampaignStatus
from .delivery import consent_link_delivery_enqueue, consent_mail_opening
from .mail import consent_link_message
from .texts import CHANNELS, CONSENT_TEXTS, consent_text

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class ConsentLinkError(Exception):
    """A consent or unsubscribe link that cannot be used. `reason` is one of: invalid, expired, used."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ConsentAnswerInvalid(Exception):
    """An answer the form should not have let through; the message is safe to show to the lead."""


@dataclass(frozen=True)
class ConsentRequest:
    """Where a consent form submission came from (for the audit row)."""

    ip_address: str | None = None
    user_agent: str = ""
    utm: dict[str, str] = field(default_factory=dict)


def _fingerprint(lead: Lead) -> str:
    # The blind indexes, not the values: they change exactly when the e-mail or phone does, and reading
    # them decrypts nothing (a rotation of BLIND_INDEX_KEY re-indexes leads, so it also ends open links).
    return consent_fingerprint(broker_id=lead.assigned_broker_id, email=lead.email_bidx, phone=lead.phone_bidx)


def _bound_to(token: ConsentToken, lead: Lead | None) -> bool:
    """Whether the link was issued for the lead as it is now (same broker, e-mail and phone; not merged)."""
    if lead is None or lead.merged_into_id is not None:
        return False
    return consent_fingerprint_matches(
        token.fingerprint, broker_id=lead.assigned_broker_id, email=lead.email_bidx, phone=lead.phone_bidx
    )


def email_suppressed(address: str | None) -> bool:
    """Whether the address is unsubscribed, bounced or do-not-contact on any lead, any broker's (so it reads
    in a service context of its own: a broker's context would not see the other brokers' leads)."""
    address = (address or "").strip().lower()
    if not address:
        return False
    with service_context():
        # By the address's blind index under every key version (`leads_email_bidx_idx`).
        return Lead.objects.filter(
            email_bidx__in=indexes_of(address, EMAIL), campaign_status__in=NEVER_CONTACT_STATUSES
        ).exists()


def _unsendable(lead: Lead) -> str | None:
    """Why a consent e-mail must not go to the lead (None: it may)."""
    if not (lead.email or "").strip():
        return "The lead has no e-mail address to send a consent link to."
    if lead.email_unconfirmed:
        # Typed in the portal (leads/contact_edit.py): a broker must not be able to route a link to their own address.
        return (
            "The lead's e-mail address was typed in the portal and is not confirmed yet: a consent link goes only to"
            " an address a partner file or a verification confirmed."
        )
    if lead.campaign_status in NEVER_CONTACT_STATUSES or email_suppressed(lead.email):
        return "The lead's e-mail address is unsubscribed, bounced or marked do-not-contact: no consent link was sent."
    if not settings.SENDER_POSTAL_ADDRESS.strip():
        return "Consent e-mails cannot be sent: the sender's postal address (SENDER_POSTAL_ADDRESS) is not set."
    return None


def _links_sent_today(broker_id) -> int:
    """The broker's consent e-mails in the last 24 hours, counted while holding the broker's lock, so two
    requests at once cannot both take the last one."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"consent_links:{broker_id}"])
    return PipelineEvent.objects.filter(
        broker_id=broker_id,
        event_type="consent_link_requested",
        created_at__gte=timezone.now() - timedelta(days=1),
    ).count()


def consent_link_send(*, lead: Lead, broker, user=None, at: datetime | None = None) -> datetime | None:
    """E-mail the lead a consent link (the portal's action): to the address the partner supplied, never to an
    address that is unsubscribed, bounced or do-not-contact on any lead, at most CONSENT_LINKS_PER_BROKER_PER_DAY
    a day per broker. Records `consent_link_requested` (the broker and user who asked) and, when the transaction
    commits, enqueues the task that makes and mails the link, or, when the lead's contact window is closed at
    `at` (now), schedules it for the window's opening. Returns that opening, or None when the mail goes now.
    Raises LeadError (safe to show)."""
    at = at or timezone.now()
    with transaction.atomic():
        lead = locked_lead(lead, broker)
        problem = _unsendable(lead)
        if problem:
            raise LeadError(problem)
        limit = settings.CONSENT_LINKS_PER_BROKER_PER_DAY
        if _links_sent_today(lead.assigned_broker_id) >= limit:
            raise LeadError(f"You have sent {limit} consent links in the last 24 hours, the most allowed: try later.")
        try:
            opening = consent_mail_opening(lead, at)
        except NoContactWindow as error:
            raise LeadError(str(error)) from None
        send_id = uuid.uuid4()
        waits = {"waits_until": opening, "waits_until_local": local_time_text(lead, opening)} if opening else {}
        record_event(
            "consent_link_requested",
            lead_id=lead.pk,
            broker_id=lead.assigned_broker_id,
            data={
                "send_id": str(send_id),
                "by": "broker",
                "user": user.get_username() if user is not None else None,
                "user_id": getattr(user, "pk", None),
                **waits,
            },
        )
        args = (str(lead.pk), str(lead.assigned_broker_id), str(send_id))
        transaction.on_commit(partial(consent_link_delivery_enqueue, args, at=opening))
    return opening


def consent_link_deliver(*, lead_id, broker_id, send_id, now: datetime | None = None) -> str:
    """Make the consent link a broker asked for and e-mail it to the lead (the task; needs a service context).

    Checks again what may have changed since the request (the lead merged or deleted, another broker, the
    address suppressed) and then records `consent_link_sent` (the address, or the reason it was not sent).
    Outside the lead's contact window at `now` (a queue that ran late, a lead who moved) it sends nothing and
    schedules itself again for the window's opening.
    A failed send rolls the link back and raises, so django-q2 retries; a send already done is not repeated.
    The lead is not locked: the mail server may be slow, and the link dies anyway if the lead changes."""
    if PipelineEvent.objects.filter(
        event_type="consent_link_sent", lead_id=lead_id, event_data__send_id=str(send_id)
    ).exists():
        return "already done"
    lead = Lead.objects.live().select_related("assigned_broker").filter(pk=lead_id).first()
    if lead is None:
        problem = "The lead no longer exists, or was merged into another."
    elif str(lead.assigned_broker_id) != str(broker_id):
        problem = "The lead has another broker now."
    elif not lead.assigned_broker.active:
        problem = "The lead's broker is not active."
    else:
        problem = _unsendable(lead)
    opening = None
    if not problem:
        try:
            opening = consent_mail_opening(lead, now or timezone.now())
        except NoContactWindow as error:
            problem = str(error)
    with transaction.atomic():
        if opening:
            consent_link_delivery_enqueue((str(lead_id), str(broker_id), str(send_id)), at=opening)
            return f"waiting for the lead's contact window: {opening.isoformat()}"
        if problem:
            record_event(
                "consent_link_sent",
                lead_id=lead_id,
                broker_id=broker_id,
                status="failure",
                error_message=problem,
                data={"send_id": str(send_id), "reason": problem},
            )
            return f"not sent: {problem}"
        signed = _token_issue(lead, broker_id)
        record_event(
            "consent_link_sent",
            lead_id=lead.pk,
            broker_id=broker_id,
            data={
                "send_id": str(send_id),
                "to": codec().encrypt(lead.email, EMAIL),  # encrypted: events are not for personal data
                "expires_at": signed.expires_at,
                "token_hash_prefix": signed.token_hash[:12],
            },
        )
        unsubscribe = unsubscribe_url(unsubscribe_token_sign(lead_id=lead.pk, send_id=send_id))
        consent_link_message(lead=lead, consent_url=consent_url(signed.token), unsubscribe_url=unsubscribe).send()
    return "sent"


def _token_issue(lead: Lead, broker_id):
    """A new consent token for the lead, bound to its broker, e-mail and phone: stored as its hash."""
    signed = consent_token_sign(lead_id=lead.pk, broker_id=broker_id)
    ConsentToken.objects.create(
        lead=lead,
        broker_id=broker_id,
        token_hash=signed.token_hash,
        expires_at=signed.expires_at,
        fingerprint=_fingerprint(lead),
    )
    return signed


def consent_link_create(*, lead: Lead, broker=None) -> str:
    """Create a consent link and return its URL: a staff tool (`manage.py consent_link`), never the portal's.

    Stores `sha256(nonce)`, the expiry and the lead's fingerprint in `consent_tokens`; records
    `consent_link_created`. The URL is returned once and never stored."""
    broker_id = getattr(broker, "pk", broker) or lead.assigned_broker_id
    with transaction.atomic():
        lead = locked_lead(lead, broker)
        signed = _token_issue(lead, broker_id)
        record_event(
            "consent_link_created",
            lead_id=lead.pk,
            broker_id=broker_id,
            data={"expires_at": signed.expires_at, "token_hash_prefix": signed.token_hash[:12], "by": "staff"},
        )
    return consent_url(signed.token)


def _claims(token: str):
    try:
        return consent_token_verify(token)
    except ConsentTokenInvalid:
        raise ConsentLinkError("invalid") from None


def _token_rows(claims):
    """The stored row of a signed token: its nonce hash, lead and broker must all match the signed claims."""
    return ConsentToken.objects.filter(
        token_hash=claims.token_hash, lead_id=claims.lead_id, broker_id=claims.broker_id
    )


def _token_state(token: ConsentToken | None) -> str | None:
    """Why a token cannot be used now (invalid, used, expired), or None if it can."""
    if token is None:
        return "invalid"
    if token.used_at is not None:
        return "used"
    if token.expires_at <= timezone.now():
        return "expired"
    return None


def consent_lead_for_token(*, token: str) -> Lead:
    """The lead a usable consent token is for (the public page's GET). Raises ConsentLinkError.

    Runs with no request context: the signature is checked first, then a narrow service context reads
    only this token's row and its lead."""
    claims = _claims(token)
    with service_context():
        row = _token_rows(claims).first()
        problem = _token_state(row)
        if problem:
            raise ConsentLinkError(problem)
        lead = Lead.objects.select_related("assigned_broker").filter(pk=claims.lead_id).first()
        if not _bound_to(row, lead):
            raise ConsentLinkError("invalid")
        return lead


def consent_record(*, token: str, consent: bool, channels=(), text_version: str, request: ConsentRequest) -> Lead:
    """Record the lead's answer on the public form and spend the token (once, atomically).

    consent=True: the channels chosen (at least one; the others are withdrawn), `consented_at`,
    `consent_method='form'`; `consent_given` event. consent=False ("do not contact me"): every channel
    withdrawn, `campaign_status='do_not_contact'`; `consent_refused` event. Both write a `lead_consent_audit`
    row: the text and version shown, the channels, IP, user agent, token hash and UTM. An unusable token
    raises ConsentLinkError and changes nothing; a bad answer raises ConsentAnswerInvalid."""
    chosen = [name for name in CHANNELS if name in set(channels or ())] if consent else []
    if consent and not chosen:
        raise ConsentAnswerInvalid("Tick at least one way we may contact you, or choose “No”.")
    if text_version not in CONSENT_TEXTS:
        raise ConsentAnswerInvalid("This page was out of date: please answer again.")
    claims = _claims(token)
    now = timezone.now()
    with service_context():
        # The claim is one UPDATE: of two concurrent submissions the second waits for the first's row
        # lock, then finds used_at set and updates nothing.
        claimed = _token_rows(claims).filter(used_at__isnull=True, expires_at__gt=now).update(used_at=now)
        if claimed != 1:
            raise ConsentLinkError(_token_state(_token_rows(claims).first()) or "used")
        row = _token_rows(claims).get()
        lead = (
            Lead.objects.select_related("assigned_broker")
            .select_for_update(of=("self",))
            .filter(pk=claims.lead_id)
            .first()
        )
        if not _bound_to(row, lead):
            raise ConsentLinkError("invalid")  # leaving the context rolls the claim back
        for name in CHANNELS:
            setattr(lead, f"consent_{name}", name in chosen)
        lead.consent, lead.consent_method = bool(chosen), "form"
        fields = ["consent", *(f"consent_{name}" for name in CHANNELS), "consent_method", "updated_at"]
        if consent:
            lead.consented_at = now
            fields.append("consented_at")
        else:
            lead.campaign_status = CampaignStatus.DO_NOT_CONTACT
            lead.do_not_contact_reason = "The lead chose 'do not contact me' on the consent form."
            fields += ["campaign_status", "do_not_contact_reason"]
        lead.save(update_fields=fields)
        utm = {name: (request.utm.get(name) or "")[:200] for name in UTM_FIELDS}
        broker_name = lead.assigned_broker.name if lead.assigned_broker else None
        LeadConsentAudit.objects.create(
            lead=lead,
            consent=consent,
            channels=chosen,
            consent_text=consent_text(version=text_version, broker_name=broker_name),
            consent_text_version=text_version,
            method="form",
            ip_address=request.ip_address,
            user_agent=(request.user_agent or "")[:1000],
            token_hash=claims.token_hash,
            **utm,
        )
        record_event(
            "consent_given" if consent else "consent_refused",
            lead_id=lead.pk,
            broker_id=lead.assigned_broker_id,
            data={
                "method": "form",
                "channels": chosen,
                "text_version": text_version,
                **{k: v for k, v in utm.items() if v},
            },
        )
    return lead
